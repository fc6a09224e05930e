"""The console script: help, profile listing, exit codes for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wiseft.cli import COMMAND_MODULES, main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMAND_MODULES:
        assert name in out


@pytest.mark.parametrize("command", COMMAND_MODULES)
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: wiseft" in capsys.readouterr().out


def test_profiles_lists_packaged_profiles_with_descriptions(capsys):
    assert main(["profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert "mini" in names and "imagenet-vitl14-336" in names
    assert all(len(line.split(None, 1)) == 2 for line in lines)


def test_bad_profile_is_exit_code_2_with_a_message(capsys):
    assert main(["profiles", "no-such-profile"]) == 2
    assert "unknown profile 'no-such-profile'" in capsys.readouterr().err


def test_console_entry_point_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "wiseft", "--version"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("wiseft ")
