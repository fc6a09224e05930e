"""Bad profiles: whatever a YAML file says, the loader answers with ProfileError naming the file and the key.

The unit tests (``tests/unit/test_profile.py``) cover each rule with an example and fuzz the schema with arbitrary
mappings, values and ``--set`` strings (without the reference checks). Here: the same contract for
(1) raw YAML text, mutated byte by byte from a packaged profile, so the YAML parser's own types (dates, binary,
anchors, odd keys) reach the schema; (2) the reference checks: unknown dataset and model names, missing files;
(3) YAML aliases that expand to billions of values or refer to themselves, which used to hang or crash
``wiseft run`` when the profile was copied or written out.
"""

from __future__ import annotations

import sys
import time
import types

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wiseft.errors import ProfileError
from wiseft.profile import _packaged_dir, dump_profile, load_profile, profile_from_dict, profile_to_dict

MINI = _packaged_dir().joinpath("mini.yaml").read_text(encoding="utf-8")
BASE = {"name": "t", "model": {"name": "wiseft-test-tiny"}, "data": {"reference": "cifar10"}}
HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@pytest.fixture
def world(monkeypatch):
    """The offline world's name checks (a stand-in while ``wiseft.world`` is not part of this tree)."""
    try:
        import wiseft.world  # noqa: F401
    except ModuleNotFoundError:
        import wiseft

        stub = types.ModuleType("wiseft.world")
        stub.check_world_tag = lambda tag: None if tag == "world:mini" else f"unknown world {tag!r}"
        monkeypatch.setitem(sys.modules, "wiseft.world", stub)
        monkeypatch.setattr(wiseft, "world", stub, raising=False)


# ------------------------------------------------------------------------------------------ raw YAML text
_edits = st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(["delete", "insert", "replace"]),
                            st.sampled_from(list(":-[]{}#&*!|>'\"\n ,.0123456789e") + ["2020-01-01", "!!binary",
                                                                                        "&a", "*a", "null", "~",
                                                                                        "yes", ".inf", "1e400"])),
                  min_size=1, max_size=6)


@HYP
@given(edits=_edits)
def test_mutated_yaml_files_raise_only_profile_errors(tmp_path, edits):
    text = MINI
    for pos, op, piece in edits:
        i = pos % (len(text) + 1)
        text = text[:i] + (piece if op != "delete" else "") + text[i + (op != "insert"):]
    path = tmp_path / "mutant.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        profile = load_profile(path, check_references=False)
    except ProfileError as e:
        assert str(e).startswith(str(path)), str(e)
        return
    dump_profile(profile)  # what `wiseft run` writes into the run folder
    profile_to_dict(profile)


# ----------------------------------------------------------------------------------------- reference checks
_names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@HYP
@given(key=st.sampled_from(["reference", "shifts", "extra", "suite"]), name=_names)
def test_unknown_dataset_names_are_named_with_the_known_ones(key, name):
    from wiseft.datasets import list_datasets

    assume(name not in list_datasets())
    raw = {**BASE, "data": dict(BASE["data"])}
    if key == "suite":
        raw["suite"] = [name]
    elif key == "reference":
        raw["data"]["reference"] = name
    else:
        raw["data"][key] = [name]
    with pytest.raises(ProfileError) as info:
        profile_from_dict(raw, source="p.yaml")
    message = str(info.value)
    where = "suite" if key == "suite" else f"data.{key}"
    assert message.startswith(f"p.yaml: key '{where}': unknown dataset") and "cifar10" in message


@HYP
@given(name=_names)
def test_unknown_model_names_are_named(world, tiny_model_name, name):
    import open_clip

    assume(name not in open_clip.list_models())
    with pytest.raises(ProfileError, match=r"^p.yaml: key 'model': unknown model"):
        profile_from_dict({**BASE, "model": {"name": name}}, source="p.yaml")


@pytest.mark.parametrize("patch, fragment", [
    ({"model": {"name": "wiseft-test-tiny", "pretrained": "/nonexistent/weights.pt"}}, "does not exist"),
    ({"model": {"name": "wiseft-test-tiny", "pretrained": "./missing.safetensors"}}, "does not exist"),
    ({"model": {"name": "wiseft-test-tiny", "pretrained": "not-a-tag"}}, "unknown pretrained tag"),
    ({"templates": "file:/nonexistent/templates.txt"}, "does not exist"),
    ({"templates": "no-such-set"}, "unknown template set"),
    ({"figures": {"baseline_models": "/nonexistent/models.csv"}}, "does not exist"),
])
def test_missing_files_and_unknown_names_are_named(world, tiny_model_name, patch, fragment):
    raw = {**BASE, **patch}
    key = next(iter(patch))
    with pytest.raises(ProfileError, match=rf"^p.yaml: key '{key}[.a-z_]*': .*{fragment}"):
        profile_from_dict(raw, source="p.yaml")


def test_a_complete_profile_with_existing_files_passes(world, tiny_model_name, tmp_path):
    (tmp_path / "t.txt").write_text("a photo of a {}.\n")
    (tmp_path / "models.csv").write_text("name,group,dataset,top1\n")
    profile = profile_from_dict({**BASE, "templates": f"file:{tmp_path / 't.txt'}",
                                 "figures": {"baseline_models": str(tmp_path / "models.csv")}}, source="p.yaml")
    assert profile.data.reference == "cifar10"


def test_extends_a_missing_file_is_named(tmp_path):
    path = tmp_path / "child.yaml"
    path.write_text(f"extends: {tmp_path / 'nope.yaml'}\n")
    with pytest.raises(ProfileError, match="nope.yaml.*does not exist"):
        load_profile(path, check_references=False)


# ----------------------------------------------------------------------------------------- alias bombs
LAUGHS = "\n".join(["name: laughs", "model: {name: m}", "data: {reference: r}", "world:",
                    "  l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
                   + [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]) + "\n"


@pytest.mark.parametrize("where", ["laughs", "self-reference", "variant-self-reference", "extends", "set"])
def test_alias_bombs_and_self_references_are_refused_quickly(tmp_path, where):
    bomb = tmp_path / "bomb.yaml"
    if where == "laughs":
        bomb.write_text(LAUGHS)  # 10^10 values from 1 kB
    elif where == "self-reference":
        bomb.write_text("name: cyc\nmodel: {name: m}\ndata: {reference: r}\nworld: &w {x: *w}\n")
    elif where == "variant-self-reference":
        bomb.write_text("name: cyc\nmodel: {name: m}\ndata: {reference: r}\n"
                        "finetune: {variants: [&v {name: a, lr: [*v]}]}\n")
    elif where == "extends":
        (tmp_path / "base.yaml").write_text(LAUGHS)
        bomb.write_text(f"extends: {tmp_path / 'base.yaml'}\nseed: 1\n")
    started = time.monotonic()
    with pytest.raises(ProfileError) as info:
        if where == "set":
            load_profile("mini", overrides=["world=&w {x: *w}"], check_references=False)
        else:
            load_profile(bomb, check_references=False)
    assert time.monotonic() - started < 5
    assert "alias" in str(info.value) or "expected" in str(info.value)
