"""Atomic writes and path safety."""

from __future__ import annotations

import json

import pytest

from wiseft.io import atomic_path, atomic_write_json, atomic_write_text, safe_join, safe_name, stable_hash


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "x.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    atomic_write_json(target, {"c": 3})
    assert json.loads(target.read_text()) == {"c": 3}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_a_failing_writer_keeps_the_old_file(tmp_path):
    target = tmp_path / "fig.png"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_atomic_path_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_path(tmp_path / "a.pdf") as tmp:
        assert tmp.name.endswith(".pdf.tmp") or tmp.suffixes[-2:] == [".pdf", ".tmp"]
        tmp.write_text("x")


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "..", "ok name", "x\\y"])
def test_safe_name_never_contains_separators_or_dotdot(name):
    cleaned = safe_name(name) if name != ".." else None
    if cleaned is None:
        with pytest.raises(ValueError):
            safe_name(name)
        return
    assert "/" not in cleaned and "\\" not in cleaned and not cleaned.startswith(".")


def test_safe_join_refuses_escapes(tmp_path):
    assert safe_join(tmp_path, "a", "b.txt") == (tmp_path / "a" / "b.txt").resolve()
    for bad in (["..", "x"], ["a/../../x"], ["/etc/passwd"]):
        with pytest.raises(ValueError, match="escapes"):
            safe_join(tmp_path, *bad)


def test_stable_hash_ignores_dict_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
