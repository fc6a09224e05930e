"""``wiseft run``: execute a profile's notebooks in order (papermill), skipping steps whose inputs are unchanged."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import default_run_dir
from .common import add_profile_args, profile_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run the pipeline notebooks of a profile (data → zero-shot → fine-tune → α sweep → figures)",
        description="Execute the profile's notebooks with papermill into runs/<profile>/notebooks/, skipping steps "
                    "whose profile, notebook and upstream steps are unchanged, and write runs/<profile>/report.md "
                    "linking every figure and table. Exits 1 when a step fails, naming the notebook and the cell.")
    add_profile_args(p)
    p.add_argument("--only", nargs="+", default=None, metavar="STEP",
                   help="run only these steps (e.g. --only fig1 table1); their dependencies are not run")
    p.add_argument("--force", action="store_true", help="rerun the selected steps even when unchanged")
    p.add_argument("--notebooks", default=None,
                   help="folder holding the step notebooks (default: $WISEFT_NOTEBOOKS or the repository's notebooks/)")
    p.add_argument("--kernel", default=None, help="Jupyter kernel name (default: $WISEFT_KERNEL or python3)")
    p.add_argument("--rehearse", action="store_true",
                   help="rehearse the profile on the CPU in minutes: fixture data in the real layouts, the model's "
                        "reduced twin at random init, toy sizes, every step and figure; nothing is downloaded "
                        "(default --out runs/<profile>-rehearsal)")
    p.add_argument("--one-kernel", action=argparse.BooleanOptionalAction, default=None,
                   help="run every notebook in one shared Jupyter kernel, reset between notebooks (default: on for "
                        "--rehearse, off otherwise)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import contextlib

    from ..pipeline import run_pipeline
    from ..pipeline.warm import WarmKernel

    common = dict(only=args.only, force=args.force, device=args.device, notebooks_dir=args.notebooks)
    one_kernel = args.rehearse if args.one_kernel is None else args.one_kernel
    with contextlib.ExitStack() as stack:
        executor = stack.enter_context(WarmKernel(args.kernel, cwd=Path.cwd())) if one_kernel else None
        if args.rehearse:
            from ..rehearsal import describe_rehearsal
            from ..pipeline.rehearse import rehearse

            outcomes, folder, profile = rehearse(args.profile, args.overrides, args.out, executor=executor,
                                                 one_kernel=one_kernel, kernel_name=args.kernel, **common)
            print(f"wiseft run: REHEARSAL of {profile.name} in {folder} ({describe_rehearsal(profile)})")
        else:
            profile = profile_from_args(args)
            # Notebooks reload the profile from what the user typed; a relative path must survive the kernel's cwd.
            ref = str(Path(args.profile).resolve()) if Path(args.profile).is_file() else args.profile
            folder = Path(args.out) if args.out else default_run_dir(profile.name)
            outcomes = run_pipeline(profile, profile_ref=ref, overrides=args.overrides, out_dir=folder,
                                    kernel_name=args.kernel, executor=executor, **common)
    ran = sum(o.status == "ran" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    what = "rehearsal" if args.rehearse else "run"
    print(f"wiseft {what}: {ran} step(s) ran, {skipped} skipped (unchanged); report: {folder / 'report.md'}")
    return 0
