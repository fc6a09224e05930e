"""The dataset registry: packaged entries, lookups, custom datasets added by YAML, malformed entries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WISEFT_PROGRESS", "0")

from wiseft.datasets import (  # noqa: E402
    add_dataset_config,
    create_eval_set,
    create_train_set,
    default_templates,
    get_classnames,
    get_dataset_cfg,
    list_datasets,
    register_root_resolver,
)
from wiseft.datasets import registry  # noqa: E402
from wiseft.datasets.fixtures import make_image_folder  # noqa: E402
from wiseft.errors import DatasetError  # noqa: E402

PROFILE_DATASETS = ["imagenet", "imagenet-v2", "imagenet-r", "imagenet-sketch", "objectnet", "imagenet-a",
                    "imagenet-sub-r", "imagenet-sub-a", "imagenet-sub-objectnet", "cifar10", "cifar10.1",
                    "cifar10.2", "cifar100", "stanford-cars", "dtd", "sun397", "food101", "iwildcam",
                    "iwildcam-ood", "fmow", "fmow-ood"]


@pytest.fixture
def clean_registry():
    """Forget datasets added by a test."""
    yield
    registry._reset_registry()


def test_every_paper_dataset_is_registered():
    assert set(PROFILE_DATASETS) <= set(list_datasets())
    assert list_datasets() == sorted(list_datasets())


@pytest.mark.parametrize("name", PROFILE_DATASETS)
def test_entries_are_complete(name):
    cfg = get_dataset_cfg(name)
    assert cfg["name"] == name and cfg["description"] and cfg["templates"]
    assert cfg["eval_split"] in cfg["splits"]
    assert cfg["download"], f"{name} says nothing about how to get it"
    for spec in cfg["splits"].values():
        assert isinstance(spec.get("count"), int), f"{name} lacks an expected count"


def test_get_dataset_cfg_returns_a_copy():
    cfg = get_dataset_cfg("imagenet-a")
    cfg["splits"]["test"]["path"] = "elsewhere"
    assert get_dataset_cfg("imagenet-a")["splits"]["test"]["path"] == "imagenet-a"


def test_unknown_name_lists_known_ones():
    with pytest.raises(DatasetError) as e:
        get_dataset_cfg("imagenet-b")
    assert "imagenet-a" in str(e.value) and "cifar10" in str(e.value) and "did you mean" in str(e.value)


@pytest.mark.parametrize("name,expected", [("imagenet", 1000), ("imagenet-a", 200), ("imagenet-r", 200),
                                           ("cifar10", 10), ("cifar100", 100), ("iwildcam", 182), ("fmow", 62)])
def test_classnames_without_data(name, expected):
    names = get_classnames(name)
    assert len(names) == expected and all(isinstance(n, str) and n for n in names)


def test_imagenet_a_names_are_the_1000_names_at_timms_indices():
    import open_clip

    from wiseft.datasets.sources import read_lines, timm_info_file

    idx = [int(i) for i in read_lines(timm_info_file("imagenet_a_indices.txt"))]
    assert get_classnames("imagenet-a") == [open_clip.IMAGENET_CLASSNAMES[i] for i in idx]
    assert get_classnames("imagenet-a")[0] == "stingray" and idx[0] == 6


def test_default_templates():
    assert default_templates("imagenet-r") == "openai_imagenet"
    assert default_templates("cifar10.1") == "cifar"
    assert default_templates("fmow-ood") == "fmow"
    assert default_templates("iwildcam") == "iwildcam"


def _custom_yaml(tmp_path: Path, n_classes: int = 3, extra: str = "") -> Path:
    folders = [f"c{i}" for i in range(n_classes)]
    make_image_folder(tmp_path / "mydata" / "train", folders, per_class=2)
    make_image_folder(tmp_path / "mydata" / "test", folders, per_class=1)
    make_image_folder(tmp_path / "mydata" / "shifted", folders, per_class=1, ext=".png")
    (tmp_path / "classes.txt").write_text("# my classes\ncat\ndog\nbird\n")
    (tmp_path / "templates.txt").write_text("a photo of a {}.\n")
    text = f"""
my-reference:
  description: my own reference set
  role: reference
  root: mydata
  classnames: file:classes.txt
  templates: file:templates.txt
  splits:
    train: {{path: train, count: {2 * n_classes}}}
    test: {{path: test, count: {n_classes}}}
my-shift:
  classnames: file:classes.txt
  templates: file:templates.txt
  root: mydata
  splits:
    test: {{path: shifted}}
{extra}"""
    path = tmp_path / "my_datasets.yaml"
    path.write_text(text)
    return path


def test_custom_dataset_by_yaml_alone(tmp_path, clean_registry):
    names = add_dataset_config(_custom_yaml(tmp_path))
    assert names == ["my-reference", "my-shift"]
    assert "my-shift" in list_datasets()
    assert get_classnames("my-reference") == ["cat", "dog", "bird"]
    assert default_templates("my-shift") == "file:" + str(tmp_path / "templates.txt")
    ev = create_eval_set("my-shift", transform=lambda im: torch.zeros(3, 4, 4))
    assert len(ev) == 3 and ev.classnames == ["cat", "dog", "bird"] and ev.role == "shift"
    assert [ev.dataset[i][1] for i in range(3)] == [0, 1, 2]
    assert ev.protocol.metrics([0, 1, 1], [0, 1, 2], None) == {"top1": pytest.approx(2 / 3)}
    ref = create_eval_set("my-reference", role="reference")
    assert len(ref) == 3 and ref.role == "reference"
    train = create_train_set("my-reference")
    assert len(train) == 6


def test_custom_dataset_registered_through_environment(tmp_path, monkeypatch, clean_registry):
    path = _custom_yaml(tmp_path)
    monkeypatch.setenv(registry.ENV_CONFIGS, str(path))
    registry._reset_registry()
    assert "my-reference" in list_datasets() and "imagenet" in list_datasets()


def test_custom_dataset_class_count_mismatch(tmp_path, clean_registry):
    add_dataset_config(_custom_yaml(tmp_path, n_classes=4))
    with pytest.raises(DatasetError, match="class-count mismatch: 4 class folders .* 3 class names"):
        create_eval_set("my-shift")


def test_named_root_resolver(tmp_path, clean_registry):
    make_image_folder(tmp_path / "w" / "digits", ["zero", "one"])
    register_root_resolver("test-world", lambda: tmp_path / "w")
    (tmp_path / "w.yaml").write_text("world-test:\n  root: test-world\n  classnames: [zero, one]\n"
                                     "  splits: {test: {path: digits}}\n")
    add_dataset_config(tmp_path / "w.yaml")
    ev = create_eval_set("world-test", root="/ignored")
    assert len(ev) == 2 and ev.classnames == ["zero", "one"]


@pytest.mark.parametrize("entry,match", [
    ("bad/name:\n  classnames: [a]\n  splits: {test: {path: x}}\n", "not allowed"),
    ("..:\n  classnames: [a]\n  splits: {test: {path: x}}\n", "not allowed"),
    ("ok:\n  classnames: [a]\n  splits: {test: {path: x}}\n  colour: red\n", "unknown key.*colour"),
    ("ok:\n  splits: {test: {path: x}}\n", "missing key 'classnames'"),
    ("ok:\n  classnames: [a]\n", "'splits' must map"),
    ("ok:\n  classnames: [a]\n  splits: {test: {path: x, count: -1}}\n", "non-negative integer"),
    ("ok:\n  classnames: [a]\n  splits: {test: {path: x, folder: y}}\n", "unknown key.*folder"),
    ("ok:\n  classnames: [a]\n  splits: {test: {path: x}}\n  eval_split: val\n", "not among the splits"),
    ("[1, 2]\n", "must map dataset names"),
    ("ok: {classnames: [a], splits: {test: {path: x}}, role: hero}\n", "reference, shift or extra"),
])
def test_malformed_entries_are_reported_with_file_and_key(tmp_path, entry, match, clean_registry):
    path = tmp_path / "bad.yaml"
    path.write_text(entry)
    with pytest.raises(DatasetError, match=match) as e:
        add_dataset_config(path)
    assert "bad.yaml" in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        add_dataset_config(tmp_path / "nope.yaml")


def test_profiles_validate_against_the_registry():
    """Every dataset the packaged profiles name exists (the world's come with wiseft/world/datasets.yaml)."""
    import yaml

    profiles = Path(registry.__file__).parent.parent / "profiles"
    known = set(list_datasets())
    for path in profiles.glob("*.yaml"):
        data = (yaml.safe_load(path.read_text()) or {}).get("data") or {}
        names = [data.get("reference")] + list(data.get("shifts") or []) + list(data.get("extra") or [])
        names = [n for n in names if n and not n.startswith("world-")]
        assert set(names) <= known, f"{path.name}: {set(names) - known}"
