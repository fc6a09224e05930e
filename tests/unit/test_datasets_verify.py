"""Verification and bad input: missing folders, wrong layouts, empty class folders, bad files, count mismatches,
paths that try to leave the data root, and the ``wiseft data`` command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WISEFT_PROGRESS", "0")

from wiseft.cli import main  # noqa: E402
from wiseft.datasets import add_dataset_config, create_eval_set, verify_dataset  # noqa: E402
from wiseft.datasets import registry  # noqa: E402
from wiseft.datasets.fixtures import build_fake_dataset, make_image_folder, write_bad_file, write_image  # noqa: E402
from wiseft.datasets.imagenet_val import convert_imagenet_val  # noqa: E402
from wiseft.datasets.layout import join_inside  # noqa: E402
from wiseft.errors import DatasetError  # noqa: E402


@pytest.fixture
def clean_registry():
    yield
    registry._reset_registry()


@pytest.fixture(scope="module")
def imagenet_a(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ina")
    build_fake_dataset("imagenet-a", root)
    return root


def _tiny(tmp_path: Path, text: str) -> str:
    (tmp_path / "tiny.yaml").write_text(text)
    return add_dataset_config(tmp_path / "tiny.yaml")[0]


TINY = """tiny:
  classnames: [a, b, c]
  splits: {{test: {{path: tiny, count: {count}}}}}
"""


def test_missing_folder_names_layout_and_fetch_command(tmp_path):
    with pytest.raises(DatasetError) as e:
        create_eval_set("imagenet-r", root=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "imagenet-r") in msg and "imagenet-r/<class folder>/<image>" in msg
    assert f"wiseft data download imagenet-r --root {tmp_path}" in msg


def test_flat_imagenet_val_points_to_the_converter(tmp_path):
    for i in range(3):
        write_image(tmp_path / "imagenet" / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG")
    report = verify_dataset("imagenet", root=tmp_path, splits=["val"])
    text = report.format()
    assert not report.ok and "lie directly in" in text and "convert-imagenet-val" in text
    assert "class-count mismatch" in text


def test_empty_class_folder_and_missing_and_extra_folders(tmp_path, clean_registry):
    build_fake_dataset("imagenet-a", tmp_path)
    for f in (tmp_path / "imagenet-a" / "n01498041").iterdir():
        f.unlink()
    (tmp_path / "imagenet-a" / "n01531178").rename(tmp_path / "imagenet-a" / "n99999999")
    with pytest.raises(DatasetError) as e:
        create_eval_set("imagenet-a", root=tmp_path)
    msg = str(e.value)
    assert "empty class folder(s)" in msg and "n01498041" in msg
    assert "1 missing (e.g. n01531178)" in msg and "unexpected folder(s)" in msg and "n99999999" in msg


def test_verify_lists_every_unreadable_file_by_path(imagenet_a, tmp_path):
    build_fake_dataset("imagenet-a", tmp_path)
    bad = {write_bad_file(tmp_path / "imagenet-a" / "n01498041" / "cut.jpg"),
           write_bad_file(tmp_path / "imagenet-a" / "n01531178" / "readme.png", kind="text"),
           write_bad_file(tmp_path / "imagenet-a" / "n01534433" / "cut2.JPEG")}
    report = verify_dataset("imagenet-a", root=tmp_path)
    assert {Path(p) for p, _ in report.unreadable} == bad
    text = report.format()
    assert all(str(p) in text for p in bad) and "count mismatch: found 203 images" in text
    with pytest.raises(DatasetError, match="cut.jpg"):
        report.raise_if_failed()


def test_verify_clean_tree_and_sample(tmp_path, clean_registry):
    name = _tiny(tmp_path, TINY.format(count=6))
    make_image_folder(tmp_path / "tiny", ["a", "b", "c"], per_class=2)
    report = verify_dataset(name, root=tmp_path)
    assert report.ok and report.splits[0].found == 6 and report.splits[0].decoded == 6
    write_bad_file(tmp_path / "tiny" / "a" / "z.png")
    sampled = verify_dataset(name, root=tmp_path, sample=2)
    assert sampled.splits[0].decoded == 2 and "count mismatch: found 7" in sampled.format()
    assert not verify_dataset(name, root=tmp_path, decode=False).splits[0].unreadable


def test_class_count_mismatch_against_class_names(tmp_path, clean_registry):
    name = _tiny(tmp_path, TINY.format(count=2))
    make_image_folder(tmp_path / "tiny", ["a", "b"])
    assert "class-count mismatch: 2 class folders but 3 class names" in verify_dataset(name, root=tmp_path).format()
    with pytest.raises(DatasetError, match="class-count mismatch"):
        create_eval_set(name, root=tmp_path)


@pytest.mark.parametrize("spec,match", [
    ("classnames: [a]\n  splits: {test: {path: ../outside}}", "may not contain '..'"),
    ("classnames: [a]\n  splits: {test: {path: /etc}}", "must be relative"),
    ("classnames: [a]\n  splits: {test: {path: tiny, folders: ['../../etc']}}", "one folder name"),
    ("classnames: [a, b]\n  splits: {test: {path: tiny, folders: [ok, 'x/y']}}", "one folder name"),
    ("classnames: file:../../../etc/passwd\n  splits: {test: {path: tiny}}", None),
    ("classnames: dataset:../secret.txt\n  splits: {test: {path: tiny}}", "may not contain '..'"),
])
def test_names_and_paths_never_escape_the_root(tmp_path, spec, match, clean_registry):
    make_image_folder(tmp_path / "data" / "tiny", ["ok"])
    (tmp_path / "secret.txt").write_text("secret\n")
    name = _tiny(tmp_path, f"tiny:\n  {spec}\n")
    if match is None:  # a user's own class-name file may live anywhere: it is read, never written
        with pytest.raises(DatasetError):
            create_eval_set(name, root=tmp_path / "data")
        return
    with pytest.raises(DatasetError, match=match):
        create_eval_set(name, root=tmp_path / "data")


def test_join_inside_follows_symlinked_data_folders(tmp_path):
    target = tmp_path / "other_disk" / "imagenet-a"
    target.mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "imagenet-a").symlink_to(target)
    assert join_inside(tmp_path / "data", "imagenet-a").resolve() == target.resolve()


def test_cli_verify_and_list(tmp_path, capsys, clean_registry):
    name = _tiny(tmp_path, TINY.format(count=3))
    make_image_folder(tmp_path / "tiny", ["a", "b", "c"])
    assert main(["data", "verify", name, "--root", str(tmp_path)]) == 0
    bad = write_bad_file(tmp_path / "tiny" / "b" / "bad.jpg")
    assert main(["data", "verify", name, "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert str(bad) in out and "PROBLEMS" in out
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "imagenet-sub-objectnet" in out and "tiny" in out
    assert main(["data", "show", "imagenet-a"]) == 0
    assert "timm:imagenet_a_indices.txt" in capsys.readouterr().out
    assert main(["data", "verify", "no-such-set"]) == 2
    assert "Known datasets" in capsys.readouterr().err


def test_convert_flat_imagenet_val(tmp_path):
    flat = tmp_path / "flat"
    wnids = ["n01440764", "n01443537", "n01440764"]
    for i in range(3):
        write_image(flat / f"ILSVRC2012_val_{i + 1:08d}.JPEG", seed=i)
    rows = "".join(f"ILSVRC2012_val_{i + 1:08d},{w} 1 2 3 4\n" for i, w in enumerate(wnids))
    (tmp_path / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + rows)
    assert convert_imagenet_val(flat, tmp_path / "imagenet" / "val", labels=tmp_path / "LOC_val_solution.csv") == 3
    assert sorted(p.name for p in (tmp_path / "imagenet" / "val" / "n01440764").iterdir()) == [
        "ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000003.JPEG"]
    assert not any(flat.iterdir())


def test_convert_with_the_devkit(tmp_path, capsys):
    import numpy as np
    import scipy.io

    devkit = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    devkit.mkdir(parents=True)
    synsets = np.array([(1, "n02119789", 0), (2, "n02100735", 0), (1001, "n00000001", 5)],
                       dtype=[("ILSVRC2012_ID", object), ("WNID", object), ("num_children", object)])
    scipy.io.savemat(devkit / "meta.mat", {"synsets": synsets})
    (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text("2\n1\n")
    for i in range(2):
        write_image(tmp_path / "flat" / f"ILSVRC2012_val_{i + 1:08d}.JPEG", seed=i)
    rc = main(["data", "convert-imagenet-val", "--flat", str(tmp_path / "flat"), "--devkit", str(tmp_path),
               "--out", str(tmp_path / "val")])
    assert rc == 0
    assert (tmp_path / "val" / "n02100735" / "ILSVRC2012_val_00000001.JPEG").is_file()
    assert (tmp_path / "val" / "n02119789" / "ILSVRC2012_val_00000002.JPEG").is_file()


def test_convert_refuses_labels_that_are_paths(tmp_path):
    write_image(tmp_path / "flat" / "ILSVRC2012_val_00000001.JPEG")
    (tmp_path / "labels.txt").write_text("ILSVRC2012_val_00000001.JPEG ../../escape\n")
    with pytest.raises(DatasetError, match="one folder name"):
        convert_imagenet_val(tmp_path / "flat", tmp_path / "val", labels=tmp_path / "labels.txt")
