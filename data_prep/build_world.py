"""Draw the embedded offline world and pretrain its small CLIP (both cached; a rerun only prints the paths).

Usage:
    python data_prep/build_world.py                  # the `mini` world: ~1 min to draw, a few minutes to pretrain
    python data_prep/build_world.py --world tiny     # seconds: for smoke tests
    python data_prep/build_world.py --no-pretrain --workers 2
    python data_prep/build_world.py --pretrain-here  # pretrain even where wiseft ships this setting's weights
    python data_prep/build_world.py --ship           # maintainers: pretrain here and put the result in
                                                     # wiseft/world/weights/ (what the package ships)

Everything comes from installed packages (matplotlib's fonts, scikit-learn's digits, PIL); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from wiseft.world import ensure_pretrained, ensure_world, list_worlds, packaged_weights_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="mini", choices=list_worlds(), help="packaged world (default: mini)")
    parser.add_argument("--seed", type=int, default=None, help="override the world's seed (another, separate world)")
    parser.add_argument("--root", default=None, help="folder for built worlds and models (default: <cache>/world)")
    parser.add_argument("--workers", type=int, default=1, help="processes drawing images")
    parser.add_argument("--device", default="cpu", help="device of the pretraining (only cpu repeats exactly)")
    parser.add_argument("--no-pretrain", action="store_true", help="only draw the world")
    parser.add_argument("--pretrain-here", action="store_true",
                        help="pretrain rather than copy the weights wiseft ships for this setting")
    parser.add_argument("--ship", action="store_true",
                        help="pretrain here and copy the weights and sidecar into wiseft/world/weights/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = ensure_world(args.world, seed=args.seed, root=args.root, workers=args.workers)
    print(f"world: {root}")
    if not args.no_pretrain:
        weights = ensure_pretrained(args.world, seed=args.seed, root=args.root, device=args.device,
                                    workers=args.workers, packaged=not (args.pretrain_here or args.ship))
        print(f"pretrained: {weights}")
        if args.ship:
            target = packaged_weights_dir()
            target.mkdir(parents=True, exist_ok=True)
            for src in (weights, weights.with_suffix(".json")):
                shutil.copyfile(src, target / src.name)
            print(f"shipped: {target / weights.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
