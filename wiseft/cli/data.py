"""``wiseft data``: list, show, download and verify datasets, sort ImageNet's flat validation folder, and derive
YTBB-Robust's pm-k metadata."""

from __future__ import annotations

import argparse

import yaml

_ROOT_HELP = "data folder holding one sub-folder per dataset (default: $WISEFT_DATA or <cache>/data)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list, download and verify datasets",
                       description="The datasets of the paper and your own (see docs/datasets.md): list them, fetch "
                                   "them from their published sources (or print the manual steps), and check them "
                                   "on disk.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    q = dsub.add_parser("list", help="every registered dataset with its role, splits and expected counts")
    q.set_defaults(func=run_list)

    q = dsub.add_parser("show", help="print one dataset's registry entry as YAML")
    q.add_argument("name")
    q.set_defaults(func=run_show)

    q = dsub.add_parser("download", help="fetch a dataset (size and checksum checked) or print the manual steps")
    q.add_argument("name")
    q.add_argument("--root", default=None, help=_ROOT_HELP)
    q.add_argument("--keep-archives", action="store_true", help="keep downloaded archives after extracting them")
    q.set_defaults(func=run_download)

    q = dsub.add_parser("verify", help="check layout and counts and decode every image; non-zero exit on problems")
    q.add_argument("name")
    q.add_argument("--root", default=None, help=_ROOT_HELP)
    q.add_argument("--split", action="append", default=None, help="only this split (repeatable; default: all)")
    q.add_argument("--sample", type=int, default=None, metavar="N",
                   help="decode only N images per split (a fixed random sample) for a quick look")
    q.add_argument("--no-decode", action="store_true", help="check layout and counts only")
    q.set_defaults(func=run_verify)

    q = dsub.add_parser("convert-imagenet-val", help="sort ImageNet's official flat val folder into class folders")
    q.add_argument("--flat", required=True,
                   help="folder holding ILSVRC2012_val_*.JPEG (the unpacked ILSVRC2012_img_val.tar)")
    q.add_argument("--out", required=True, help="output folder, normally <root>/imagenet/val")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--devkit", help="ILSVRC2012_devkit_t12.tar.gz or its unpacked folder")
    src.add_argument("--labels", help="Kaggle's LOC_val_solution.csv or a '<file> <wnid>' text file")
    q.add_argument("--copy", action="store_true", help="copy instead of moving the images")
    q.set_defaults(func=run_convert)

    q = dsub.add_parser("prepare-ytbb", help="derive YTBB-Robust's anchors and pm-k sets from the paper's review files")
    q.add_argument("--annotations", required=True,
                   help="folder with anchor_labels.json, pmk_labels.json and ytbb_robustness_test_anchors_full.csv "
                        "(wise-ft's src/datasets/ytbb-robust_metadata)")
    q.add_argument("--root", default=None, help=_ROOT_HELP)
    q.set_defaults(func=run_prepare_ytbb)


def run_list(args: argparse.Namespace) -> int:
    from ..datasets import get_dataset_cfg, list_datasets

    names = list_datasets()
    width = max((len(n) for n in names), default=0)
    for name in names:
        cfg = get_dataset_cfg(name)
        splits = ", ".join(f"{s}" + (f" {spec['count']}" if spec.get("count") is not None else "")
                           for s, spec in cfg["splits"].items())
        print(f"{name:<{width}}  {cfg['role']:<9}  [{splits}]  {cfg['description']}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ..datasets import get_dataset_cfg

    print(yaml.safe_dump({args.name: get_dataset_cfg(args.name)}, sort_keys=False, allow_unicode=True), end="")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from ..datasets.download import ManualDownloadRequired, download_dataset

    try:
        produced = download_dataset(args.name, root=args.root, keep_archives=args.keep_archives)
    except ManualDownloadRequired as e:
        print(str(e))
        return 1
    for path in produced:
        print(f"{args.name}: {path}")
    print(f"Check it with: wiseft data verify {args.name}" + (f" --root {args.root}" if args.root else ""))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ..datasets import verify_dataset

    report = verify_dataset(args.name, root=args.root, splits=args.split, sample=args.sample,
                            decode=not args.no_decode)
    print(report.format())
    return 0 if report.ok else 1


def run_convert(args: argparse.Namespace) -> int:
    from ..datasets import convert_imagenet_val

    n = convert_imagenet_val(args.flat, args.out, devkit=args.devkit, labels=args.labels, copy=args.copy)
    print(f"{n} images in class folders under {args.out}")
    return 0


def run_prepare_ytbb(args: argparse.Namespace) -> int:
    from ..datasets import get_dataset_cfg
    from ..datasets.registry import resolve_dataset_root
    from ..datasets.ytbb_prepare import prepare_ytbb_robust

    cfg = get_dataset_cfg("ytbb-robust")
    folder = resolve_dataset_root(cfg, args.root) / cfg["splits"][cfg["eval_split"]]["path"]
    anchors, frames = prepare_ytbb_robust(args.annotations, folder)
    print(f"YTBB-Robust: {anchors} reviewed anchors and {frames} pm-k frames written to {folder / 'metadata'}")
    return 0
