"""Bad dataset input: any registry entry a user may write, on a small image tree, fails only with DatasetError.

The unit tests show each documented problem once (missing folders, wrong layouts, empty class folders, truncated
and non-image files, class-count mismatches: ``tests/unit/test_datasets_verify.py``, ``test_datasets_loaders.py``,
``test_datasets_registry.py``). Here hypothesis writes arbitrary entries (known keys with values of any type,
every loader kind) and arbitrary damage to the images, and checks that registering, opening and verifying them
either works or raises :class:`DatasetError` (naming the file, key or value at fault); never a ``KeyError``,
``TypeError`` or ``AttributeError`` from deep inside a loader.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from wiseft.datasets import add_dataset_config, create_eval_set, verify_dataset
from wiseft.datasets.fixtures import make_image_folder, write_bad_file
from wiseft.datasets.loaders import LOADERS
from wiseft.datasets.registry import ENTRY_KEYS, SPLIT_KEYS, _reset_registry
from wiseft.errors import DatasetError

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2, 5), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["a", "b", "tiny", "../x", "/etc", "loader", "file:nope.txt", "range:3", "range:x",
                                     "dataset:x", "package:../x", "open_clip:imagenet", "timm:nope", "identity",
                                     "test", "train", "x.npy"]),
                    st.text(max_size=5))
_value = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(["from", "indices", "type",
                                                                                        "groups", "a", "replace",
                                                                                        "objectnet"]),
                                                                       inner, max_size=2)), max_leaves=5)
_split = st.fixed_dictionaries({"path": st.one_of(st.just("tiny"), _scalar)},
                               optional={"loader": st.sampled_from(sorted(LOADERS)) | _scalar,
                                         **{k: _value for k in sorted(SPLIT_KEYS - {"loader", "path"})}})
_any_entry = st.fixed_dictionaries(
    {"classnames": st.one_of(st.just(["a", "b"]), _value), "splits": st.dictionaries(
        st.sampled_from(["test", "train", "val"]), _split, min_size=1, max_size=2)},
    optional={k: _value for k in sorted(ENTRY_KEYS - {"classnames", "splits", "download"})})

# Well-typed entries with wrong contents: they pass the registry's checks and reach the loaders and sources.
_LISTS = st.sampled_from([["a", "b"], ["a"], ["a", "b", "c"], ["b", "a"], "loader", "range:2", "range:x", ["../x"],
                          "file:nope.txt", "dataset:nope.txt", "dataset:names.txt", "package:nope.txt",
                          {"from": ["a", "b"], "indices": [0, 5]}, {"from": ["a", "b"], "indices": ["x"]},
                          {"from": "loader", "replace": {"a": "z"}}, {"from": "range:2", "lower": True},
                          {"objectnet": "folders"}, {"a": 1}, ["a", ["b"]], [1, 2]])
_MAPS = st.sampled_from([{"a": 0, "b": 1}, {"a": 0, "b": 5}, {"a": 0, "b": -1}, {"a": "x"}, {"a": None}, ["a"],
                         "range:2", {"from": ["a"]}, {"../x": 0}, {"a/b": 0}])
_FILES = st.sampled_from(["images.npy", "labels.npy", "dict.npy", "garbage.npy", "names.txt", "nope.npy",
                          "tiny", "../x.npy", "batch"])
_OPTIONAL_SPLIT = {"folders": _LISTS, "label_map": _MAPS, "ignore_other_folders": st.booleans(),
                   "count": st.integers(0, 6), "files": st.lists(_FILES, min_size=1, max_size=2), "label_key": _FILES,
                   "data": _FILES, "labels": _FILES, "file": _FILES, "images_key": st.sampled_from(["images", "x"]),
                   "labels_key": st.sampled_from(["labels", "x"]),
                   "dataset": st.sampled_from(["iwildcam", "fmow", "nope"]), "split": st.sampled_from(["test", "x"]),
                   "class": st.sampled_from(["DTD", "Food101", "Nope", "__class__"]),
                   "kwargs": st.sampled_from([{}, {"x": 1}, {"partition": 11}]),
                   "extensions": st.sampled_from([[".jpg"], [".png"], [".JPG", ".jpeg"]])}
_NEEDS = {"cifar_python": ("files",), "npy_pair": ("data", "labels"), "npy_dict": ("file",),
          "torchvision": ("class", "split"), "sun397": ("file",), "wilds": ("dataset", "split")}


@st.composite
def _typed_split(draw):
    loader = draw(st.sampled_from(sorted(LOADERS)))
    spec = {"loader": loader, "path": draw(st.sampled_from(["tiny", "arrays", ".", "nope", "tiny/a"]))}
    for key in _NEEDS.get(loader, ()):
        spec[key] = draw(_OPTIONAL_SPLIT[key])
    extra = draw(st.lists(st.sampled_from(sorted(_OPTIONAL_SPLIT)), max_size=2, unique=True))
    for key in extra:
        spec[key] = draw(_OPTIONAL_SPLIT[key])
    return spec


_PROTOCOLS = st.sampled_from(["identity", "macro_f1", "nope", {"type": "class_subset", "indices": [0, 5]},
                              {"type": "class_subset", "indices": ["x"]}, {"type": "maxpool", "groups": [[0], [1, 7]]},
                              {"type": "maxpool", "groups": [[], [0]]}, {"type": "maxpool"}, {"type": "wilds"},
                              {"type": "identity", "extra": 1}, {"type": "class_subset", "indices": "range:2"}])
_typed_entry = st.fixed_dictionaries(
    {"classnames": _LISTS, "splits": st.dictionaries(st.sampled_from(["test", "train", "val"]), _typed_split(),
                                                     min_size=1, max_size=2)},
    optional={"protocol": _PROTOCOLS, "border_crop": st.integers(0, 40), "role": st.sampled_from(["shift", "extra"]),
              "templates": st.sampled_from(["simple_imagenet", "nope", "file:nope.txt"])})
_entry = st.one_of(_typed_entry, _typed_entry, _typed_entry, _any_entry)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    import pickle

    import numpy as np

    root = tmp_path_factory.mktemp("data")
    make_image_folder(root / "tiny", ["a", "b"], per_class=2)
    arrays = root / "arrays"
    arrays.mkdir()
    rng = np.random.default_rng(0)
    np.save(arrays / "images.npy", rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8))
    np.save(arrays / "labels.npy", np.array([0, 1, 5, -1]))
    np.save(arrays / "dict.npy", {"images": np.zeros((2, 8, 8, 3), np.uint8), "labels": [0, 7]}, allow_pickle=True)
    (arrays / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (arrays / "names.txt").write_text("a\nb\n")
    (arrays / "batch").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 9]}))
    (root / "names.txt").write_text("a\nb\n")
    return root


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(entry=_entry)
def test_any_registry_entry_fails_only_with_dataset_errors(tmp_path_factory, data_root, entry):
    folder = tmp_path_factory.mktemp("cfg")
    (folder / "fuzz.yaml").write_text(yaml.safe_dump({"fuzz": entry}))
    try:
        try:
            add_dataset_config(folder / "fuzz.yaml")
        except DatasetError as e:
            assert "fuzz" in str(e)
            event("refused by the registry: " + str(e).split(": ", 1)[-1][:40])
            return
        for what, call in (("open", lambda: create_eval_set("fuzz", root=data_root)),
                           ("verify", lambda: verify_dataset("fuzz", root=data_root, decode=False))):
            try:
                call()
                event(f"{what}: works")
            except DatasetError as e:
                assert len(str(e)) > 20  # a sentence naming the file, key or value at fault
                event(f"{what}: DatasetError")
    finally:
        _reset_registry()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["truncated", "text", "empty"])),
                       min_size=1, max_size=3))
def test_damaged_images_are_named_by_path(tmp_path_factory, damage):
    root = tmp_path_factory.mktemp("bad")
    make_image_folder(root / "tiny", ["a", "b"], per_class=2)
    (root / "fuzz.yaml").write_text("fuzz:\n  classnames: [a, b]\n  splits: {test: {path: tiny}}\n")
    try:
        add_dataset_config(root / "fuzz.yaml")
        bad = set()
        for i, (cls, kind) in enumerate(damage):
            path = root / "tiny" / cls / f"bad{i}.png"
            if kind == "empty":
                path.write_bytes(b"")
            else:
                write_bad_file(path, kind=kind)
            bad.add(str(path))
        report = verify_dataset("fuzz", root=root)
        assert {p for p, _ in report.unreadable} == bad and not report.ok
        ev = create_eval_set("fuzz", root=root, skip_bad_images=True)
        assert set(ev.skipped) == bad and len(ev) == 4
        ev = create_eval_set("fuzz", root=root)
        with pytest.raises(DatasetError) as info:
            for i in range(len(ev)):
                ev.dataset[i]
        assert any(p in str(info.value) for p in bad)
    finally:
        _reset_registry()


@pytest.mark.parametrize("split, match", [
    # Found by the fuzz above; each used to escape as KeyError, AttributeError or TypeError.
    ("{loader: npy_pair, path: arrays}", "needs key.*data, labels"),
    ("{loader: sun397, path: tiny}", "needs key.*file"),
    ("{loader: cifar_python, path: arrays}", "needs key.*files"),
    ("{loader: wilds, path: tiny, dataset: iwildcam}", "needs key.*split"),
    ("{loader: torchvision, path: tiny, class: DTD}", "needs key.*split"),
    ("{loader: nope, path: tiny}", "'loader' must be one of"),
    ("{path: 5}", "'path' must be a non-empty string"),
    ("{path: tiny, files: x}", "'files' must be a non-empty list"),
    ("{path: tiny, extensions: jpg}", "'extensions' must be a list"),
    ("{path: tiny, label_map: [a]}", "'label_map' must map class folder names"),
    ("{path: tiny, label_map: 'range:2'}", "'label_map' must map class folder names"),
    ("{path: tiny, folders: [a, [b]]}", "'folders' must give a list"),
    ("{loader: torchvision, path: tiny, class: DTD, split: test, kwargs: {x: 1}}", "does not accept the arguments"),
])
def test_malformed_splits_are_named(data_root, tmp_path, split, match, clean_registry):
    (tmp_path / "bad.yaml").write_text(f"bad:\n  classnames: [a, b]\n  splits: {{test: {split}}}\n")
    with pytest.raises(DatasetError, match=match):
        add_dataset_config(tmp_path / "bad.yaml")
        create_eval_set("bad", root=data_root)
