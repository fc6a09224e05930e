"""``wiseft plan``: the cost of each pipeline step of a profile on given hardware, before running it."""

from __future__ import annotations

import argparse

from .common import profile_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan", help="print each step's work, time, disk and peak memory on given hardware, before a run",
        description="Count each pipeline step's work (images × passes × GFLOPs per image, the GFLOPs computed from "
                    "the model's open_clip config) and turn it into time, disk and peak memory on the named hardware "
                    "with the constants of wiseft/data/cost_constants.json, saying which were measured and which "
                    "assumed.")
    p.add_argument("-p", "--profile", default="mini", help="packaged profile name or YAML path (default: mini)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile key (repeatable)")
    p.add_argument("--gpus", type=int, default=1, help="number of devices (default 1)")
    p.add_argument("--gpu-type", default=None,
                   help="a100, h100, v100 or cpu (default: cpu for a CPU profile, else a100)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..plan import format_plan, make_plan

    print(format_plan(make_plan(profile_from_args(args), gpus=args.gpus, gpu_type=args.gpu_type)))
    return 0
