"""Recorded notebook outputs carry no machine paths: run folders, caches and written files are printed relative
to the repository (``runs/mini``), as ``$WISEFT_RUNS/…``/``$WISEFT_CACHE/…`` or under ``~``."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from wiseft.notebook import describe_run, describe_written, open_run
from wiseft.paths import display_path

REPO = Path(__file__).resolve().parents[2]
#: an absolute POSIX path under a folder that names a machine, or a Windows drive path
ABSOLUTE = re.compile(r"(?<![\w.$~])/(?:tmp|home|root|work|Users|var|private|mnt|opt|srv|scratch|data)(?:/|\b)"
                      r"|\b[A-Za-z]:\\")


def _texts(path: Path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            parts = [output.get("text", "")] + list(output.get("traceback", []))
            parts += [v for k, v in output.get("data", {}).items() if k.startswith("text/")]
            for part in parts:
                yield i, part if isinstance(part, str) else "".join(part)


@pytest.mark.parametrize("notebook", sorted(p.relative_to(REPO / "notebooks").as_posix()
                                            for p in (REPO / "notebooks").rglob("*.ipynb")))
def test_committed_outputs_hold_no_absolute_path(notebook):
    leaks = [(i, m.group(0), text[max(0, m.start() - 40):m.end() + 40])
             for i, text in _texts(REPO / "notebooks" / notebook) for m in ABSOLUTE.finditer(text)]
    assert not leaks, f"{notebook}: cell outputs print machine paths (record the notebooks again): {leaks[:3]}"


def test_the_pattern_sees_the_paths_that_leaked_before():
    for leak in ("run folder /tmp/rec1/mini;", "images in /work/main/.cache/wiseft/world", "C:\\Users\\me\\runs",
                 "[PosixPath('/home/u/runs/mini/figures/table1.md')]", "/Users/me/x"):
        assert ABSOLUTE.search(leak), leak
    for fine in ("run folder runs/mini;", "$WISEFT_RUNS/mini", "~/runs/mini", "world-print/heldout 1/2"):
        assert not ABSOLUTE.search(fine), fine


def test_display_path_never_prints_the_machines_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WISEFT_RUNS", raising=False)
    monkeypatch.delenv("WISEFT_CACHE", raising=False)
    assert display_path(REPO / "runs" / "mini") == "runs/mini"  # the repository wiseft is imported from
    assert display_path(REPO) == "."
    assert display_path(tmp_path / "out" / "mini") == "out/mini"  # the working directory
    monkeypatch.setenv("WISEFT_RUNS", str(tmp_path / "scratch"))
    monkeypatch.setenv("WISEFT_CACHE", str(tmp_path / "cache"))
    assert display_path(tmp_path / "scratch" / "mini") == "$WISEFT_RUNS/mini"
    assert display_path(tmp_path / "cache" / "world" / "abc") == "$WISEFT_CACHE/world/abc"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(REPO)
    assert display_path(tmp_path / "home" / "runs" / "mini") == "~/runs/mini"


def test_what_the_notebooks_print_about_a_run_holds_no_absolute_path(tmp_path, monkeypatch):
    monkeypatch.setenv("WISEFT_RUNS", str(tmp_path / "scratch"))
    monkeypatch.chdir(REPO / "notebooks")  # Jupyter starts a kernel in the notebook's folder
    ctx = open_run("mini", [], None, "cpu")
    assert describe_run(ctx) == "profile mini (wiseft/profiles/mini.yaml); run folder $WISEFT_RUNS/mini; device cpu"
    written = describe_written([ctx.figures_dir / "table1.md", ctx.figures_dir / "table1.csv"])
    assert written == "written: $WISEFT_RUNS/mini/figures/table1.md, $WISEFT_RUNS/mini/figures/table1.csv"
    monkeypatch.delenv("WISEFT_RUNS")
    ctx = open_run("mini", [], None, "cpu")
    assert "run folder runs/mini;" in describe_run(ctx)
    assert describe_written([ctx.figures_dir / "fig1.png"]) == "written: runs/mini/figures/fig1.png"


def test_the_offline_world_is_shown_under_the_cache_variable(tmp_path, monkeypatch):
    import pandas as pd

    from wiseft.steps.data import describe_world

    monkeypatch.setenv("WISEFT_CACHE", str(tmp_path / "cache"))
    table = pd.DataFrame()
    table.attrs["world"] = {"world": "digits", "folder": str(tmp_path / "cache" / "world" / "abc"),
                            "weights": str(tmp_path / "cache" / "world" / "models" / "m.safetensors")}
    assert describe_world(table) == ("Offline world 'digits': images in $WISEFT_CACHE/world/abc; pretrained CLIP "
                                     "weights $WISEFT_CACHE/world/models/m.safetensors (both built once, then reused "
                                     "from the cache).")
