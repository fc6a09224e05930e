"""The paper's protocol as the official code ran it (docs/protocols.md): ObjectNet's crop, the profiles that
overlay a paper table, the paper defaults `wiseft profiles` shows, and the ledger's pointers into the code."""

from __future__ import annotations

import dataclasses
import importlib
import re
import types
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torchvision import transforms

from wiseft.datasets.fixtures import build_fake_dataset, write_image
from wiseft.datasets.images import BorderCrop, load_rgb
from wiseft.errors import ProfileError
from wiseft.profile import Profile, list_profiles, load_profile
from wiseft.steps.common import eval_sets, preprocessing_notes

MAPPINGS = Path(__file__).parent.parent / "fixtures" / "objectnet-mappings"
TRANSFORM = transforms.Compose([transforms.Resize(8), transforms.CenterCrop(8), transforms.ToTensor()])


def _objectnet_profile(root: Path, *overrides: str):
    return load_profile("imagenet-vitb16", [f"data.root={root}", "data.reference=objectnet", "data.shifts=[]",
                                            "data.extra=[]", *overrides], check_references=False)


def test_objectnet_paper_setting_is_the_uncropped_transform_and_the_intended_one_crops(tmp_path):
    build_fake_dataset("objectnet", tmp_path, objectnet_mappings=MAPPINGS)
    framed = tmp_path / "objectnet-1.0" / "images" / "banana" / "framed.png"
    write_image(framed, seed=7, size=(24, 16))
    for overrides, expected_crop in (((), 0), (("data.border_crop.objectnet=2",), 2)):
        profile = _objectnet_profile(tmp_path, *overrides)
        (objectnet,) = eval_sets(profile, TRANSFORM)
        i = objectnet.dataset.files.index(str(framed))
        raw = load_rgb(str(framed))
        uncropped, cropped = TRANSFORM(raw), TRANSFORM(BorderCrop(2)(raw))
        assert not torch.equal(uncropped, cropped)
        got = objectnet.dataset[i][0]
        assert torch.equal(got, cropped if expected_crop else uncropped)
        assert objectnet.preprocessing == {"border_crop": expected_crop}
        (note,) = preprocessing_notes(profile)
        assert note.startswith("objectnet: uncropped images" if expected_crop == 0 else "objectnet: 2 px cut")


def test_results_rows_record_the_border_crop_of_their_set():
    from types import SimpleNamespace

    from wiseft.datasets.base import EvalSet, Protocol
    from wiseft.steps.common import append_rows

    class Sweep:
        def to_rows(self, ctx, mode=None, extra=None):
            return [SimpleNamespace(dataset=d, extra=dict(extra or {})) for d in ("imagenet", "objectnet")]

    stored = []
    ctx = SimpleNamespace(results=SimpleNamespace(append=stored.extend))
    sets = [EvalSet("imagenet", [], [], Protocol()), EvalSet("objectnet", [], [], Protocol(),
                                                            preprocessing={"border_crop": 2})]
    frame = append_rows(ctx, Sweep(), sets, extra={"finetuned": "finetuned_e2e"})
    assert [row.extra for row in stored] == [{"finetuned": "finetuned_e2e"},
                                             {"finetuned": "finetuned_e2e", "border_crop": 2}]
    assert len(frame) == 2


def test_border_crop_key_is_checked():
    with pytest.raises(ProfileError, match="data.border_crop.objectnet"):
        load_profile("imagenet-vitb16", ["data.border_crop.objectnet=-2"], check_references=False)
    with pytest.raises(ProfileError, match="data.border_crop"):
        load_profile("imagenet-vitb16", ["data.border_crop.no-such-set=2"])


def test_profiles_that_overlay_a_paper_table_run_its_model():
    from wiseft.figures.paper import load_paper_numbers, paper_tables_for

    overlays = 0
    for name, _ in list_profiles():
        profile = load_profile(name, check_references=False)
        if profile.figures.paper_table is None:
            continue
        overlays += 1
        for table in paper_tables_for(profile.figures.paper_table):
            models = set(load_paper_numbers(table)["model"])
            assert models == {profile.model.name}, (name, table, models)
    assert overlays >= 5


def test_paper_profiles_default_to_what_produced_the_papers_numbers(capsys):
    from wiseft.cli import main

    assert main(["profiles", "imagenet-vitb16"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["eval"]["precision"] == "fp32"
    assert cfg["interpolation"]["fisher_floor"] == 1e-8 and cfg["interpolation"]["fisher_split"] == "eval"
    assert cfg["baselines"]["ema_decays"] == [0.99, 0.999, 0.9999, 0.99999, 0.999999]
    assert cfg["baselines"]["ema_biased_decays"] == [0.9999, 0.99992, 0.99994, 0.99997, 0.99999]
    lams = cfg["baselines"]["lc_l2sp_lambdas"]
    assert len(lams) == 22 and lams[0] == 1e-8 and lams[-1] == 500.0
    assert np.allclose(np.log10(lams[::2]), np.arange(-8, 3))
    assert cfg["finetune"]["lc"]["max_epochs"] is None and cfg["finetune"]["lc"]["search_trials"] == 64
    assert cfg["data"]["border_crop"] == {}
    mini = load_profile("mini", check_references=False)
    assert mini.finetune.lc.max_epochs == 20 and len(mini.baselines.ema_decays) == 2  # mini keeps its short grids


# ------------------------------------------------------------------------------------------ the ledger
LEDGER = Path(__file__).parent.parent.parent / "docs" / "protocols.md"


def _ledger_rows(section: str) -> list[list[str]]:
    lines = LEDGER.read_text(encoding="utf-8").split(f"## {section}\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i, line in enumerate(lines[start:], start) if not line.startswith("|")), len(lines))
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[start + 2:end]]


def _resolves_in_schema(key: str) -> bool:
    tp: object = Profile
    for i, part in enumerate(key.split(".")):
        if typing.get_origin(tp) is dict:
            return i == len(key.split(".")) - 1  # one level of free keys: data.border_crop.objectnet
        if not dataclasses.is_dataclass(tp):
            return False
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return False
        tp = hints[part]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]
    return True


def _code_exists(ref: str) -> bool:
    if "/" in ref:
        return (LEDGER.parent.parent / ref).exists()
    parts = ref.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_ledger_row_points_at_a_profile_key_and_at_code():
    rows = _ledger_rows("Ledger")
    assert len(rows) >= 30 and all(len(r) == 6 for r in rows)
    for choice, _paper, _official, _default, key_cell, code_cell in rows:
        keys, refs = re.findall(r"`([^`]+)`", key_cell), re.findall(r"`([^`]+)`", code_cell)
        assert keys and refs, choice
        for key in keys:
            assert _resolves_in_schema(key), (choice, key)
        for ref in refs:
            assert _code_exists(ref), (choice, ref)
    assert not _resolves_in_schema("finetune.lc.no_such_key") and not _code_exists("wiseft.fisher.no_such_name")


def test_ledger_profile_table_names_the_packaged_profiles_and_their_models():
    rows = _ledger_rows("Profiles and the tables they overlay")
    named = {p.strip("` ") for row in rows for p in row[0].split(",")}
    assert named == {name for name, _ in list_profiles()} - {"mini"}
    for row in rows:
        for name in (p.strip("` ") for p in row[0].split(",")):
            model = load_profile(name, check_references=False).model.name
            assert row[2].replace("/", "-").replace("@", "-").replace("px", "") == model, (name, row[2])
