"""Disk and permission faults through the CLI (issue 19, item 4): a read-only run folder is refused before any
work, a folder where a file belongs (or the reverse) and a full disk are one line naming the path, exit code 2."""

from __future__ import annotations

import errno
import os
import resource
import signal
import tempfile
from pathlib import Path

import pytest

from wiseft.oserrors import describe_os_error



def _read_only_folder(tmp: Path) -> Path:
    """A folder this process cannot create files in: a 0555 folder, or (as root, who ignores modes) one of a
    kernel file system that refuses new files even to root."""
    folder = tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys/kernel"), Path("/proc/sys")):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            return candidate
    pytest.skip("no folder here refuses new files to this user")


def test_a_read_only_run_folder_is_refused_before_any_work(toy_cli, one_line_error, monkeypatch):
    run, common = toy_cli
    out = _read_only_folder(run.root)
    import wiseft.steps.zeroshot as zs

    monkeypatch.setattr(zs, "build_zeroshot", lambda *a, **k: pytest.fail("work started"))
    args = [a if a != str(run.root / "run") else str(out) for a in common]
    code, _, err = run("zeroshot", *args)
    line = one_line_error(code, err, str(out), "--out")
    assert "writable" in line


def test_results_file_that_is_a_folder_is_named_before_the_evaluation(toy_cli, one_line_error, monkeypatch):
    run, common = toy_cli
    (run.root / "run" / "results.jsonl").mkdir(parents=True)
    import wiseft.steps.zeroshot as zs

    monkeypatch.setattr(zs, "build_zeroshot", lambda *a, **k: pytest.fail("work started"))
    code, _, err = run("zeroshot", *common)
    one_line_error(code, err, str(run.root / "run" / "results.jsonl"), "move it away")


def test_an_out_that_is_a_file_is_named(toy_cli, one_line_error):
    run, common = toy_cli
    (run.root / "run").write_text("not a folder")
    code, _, err = run("zeroshot", *common)
    one_line_error(code, err, str(run.root / "run"), "a file stands where a folder belongs")


def test_a_full_disk_is_one_line_naming_the_file(toy_cli, one_line_error):
    """A file-size limit makes every write past 32 kB (the checkpoint, not the profile) fail as a full disk
    does; the CLI names the file."""
    run, common = toy_cli
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (32768, hard))
    try:
        code, _, err = run("zeroshot", *common)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    line = one_line_error(code, err, str(run.root / "run"), "disk space")
    assert "zeroshot.safetensors" in line
    assert not (run.root / "run" / "checkpoints" / "zeroshot.safetensors").exists()  # atomicity held
    assert not [p for p in (run.root / "run" / "checkpoints").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "free some disk space"), (errno.EACCES, "writable"),
                                         (errno.EROFS, "writable"), (errno.EISDIR, "folder stands"),
                                         (errno.ENOTDIR, "file stands"), (errno.EIO, "check the path")])
def test_every_os_error_is_worded_with_its_path_and_a_fix(code, words):
    line = describe_os_error(OSError(code, os.strerror(code), "/runs/x/results.jsonl"))
    assert "/runs/x/results.jsonl" in line and words in line and "\n" not in line


def test_an_os_error_anywhere_in_a_command_is_exit_code_2(toy_cli, one_line_error, monkeypatch):
    run, common = toy_cli
    import wiseft.steps.zeroshot as zs

    def broken(*a, **k):
        raise OSError(errno.EIO, "Input/output error", str(run.root / "somewhere"))

    monkeypatch.setattr(zs, "build_zeroshot", broken)
    code, _, err = run("zeroshot", *common)
    one_line_error(code, err, str(run.root / "somewhere"))


def test_a_write_error_without_a_file_name_names_the_run_folder(toy_cli, one_line_error, monkeypatch):
    """`os.write` on a full disk names no file (results rows are appended that way): the line names --out."""
    run, common = toy_cli
    from wiseft.results import ResultsStore

    def full(self, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ResultsStore, "append", full)
    code, _, err = run("zeroshot", *common)
    one_line_error(code, err, str(run.root / "run"), "free some disk space")
