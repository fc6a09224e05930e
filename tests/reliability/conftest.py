"""Fixtures of the reliability suite (the shared tiny model comes from ``tests/conftest.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def clean_registry():
    """Forget datasets a test registered from its own YAML files."""
    from wiseft.datasets import registry

    yield
    registry._reset_registry()


@pytest.fixture
def toy_cli(tmp_path, tiny_model_name, clean_registry):
    """``(run, common)``: the toy task on disk and the CLI arguments that point a command at it.

    ``run(*argv)`` calls ``wiseft.cli.main`` in this process and returns ``(exit code, stdout, stderr)``.
    """
    import contextlib
    import io

    from tests.helpers.toy_task import build_toy_task, toy_profile
    from wiseft.cli import main

    build_toy_task(tmp_path)
    common = ["--profile", str(toy_profile(tmp_path, tiny_model_name)), "--out", str(tmp_path / "run"),
              "--set", "finetune.e2e.enabled=false", "--set", "finetune.lc.shots=[]",
              "--set", "interpolation.fisher=false"]

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    run.root = tmp_path
    return run, common


@pytest.fixture
def one_line_error():
    """``check(code, stderr, *names)``: exit code 2, one line on stderr (log lines aside), no traceback, and
    each of ``names`` in that line; returns the line."""
    def check(code: int, err: str, *names) -> str:
        assert code == 2, err
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.strip() and " INFO " not in line
                 and " WARNING " not in line]
        assert len(lines) == 1, err
        for name in names:
            assert str(name) in lines[0], (name, err)
        return lines[0]

    return check
