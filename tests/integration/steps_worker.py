"""Entry point for torchrun in tests: register the tiny test model with open_clip, then run the wiseft CLI."""

import sys
from pathlib import Path

import open_clip

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
open_clip.add_model_config(Path(__file__).resolve().parents[1] / "fixtures" / "wiseft-test-tiny.json")

from wiseft.cli import main  # noqa: E402

raise SystemExit(main(sys.argv[1:]))
