"""Loaders on small fake trees in each real layout: every registered dataset opens, labels are right."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("WISEFT_PROGRESS", "0")

from wiseft.datasets import (  # noqa: E402
    create_eval_set,
    create_train_set,
    get_classnames,
    get_dataset_cfg,
    list_datasets,
)
from wiseft.datasets.fixtures import build_fake_dataset, make_image_folder, write_bad_file, write_image  # noqa: E402
from wiseft.datasets.protocols import MaxPoolProtocol, SubsetProtocol  # noqa: E402
from wiseft.errors import DatasetError  # noqa: E402

MAPPINGS = Path(__file__).parent.parent / "fixtures" / "objectnet-mappings"
PAPER = [n for n in list_datasets() if not n.startswith("world-")]


def to_tensor(img):
    return torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    """One data root holding a fake copy of every registered paper dataset (eval and train splits only)."""
    root = tmp_path_factory.mktemp("data")
    for name in PAPER:
        cfg = get_dataset_cfg(name)
        splits = {cfg["eval_split"], cfg.get("train_split", cfg["eval_split"])}
        build_fake_dataset(name, root, splits=sorted(splits), objectnet_mappings=MAPPINGS)
    return root


@pytest.mark.parametrize("name", PAPER)
def test_every_dataset_opens_in_its_real_layout(name, fake_root):
    ev = create_eval_set(name, root=fake_root, transform=to_tensor)
    assert len(ev) > 0 and ev.name == name
    img, label = ev.dataset[0]
    assert isinstance(img, torch.Tensor) and img.shape[0] == 3
    labels = np.asarray([ev.dataset[i][1] for i in range(len(ev))])
    assert labels.min() >= 0 and labels.max() < len(ev.classnames)
    width = 1000 if isinstance(ev.protocol, (SubsetProtocol, MaxPoolProtocol)) else len(ev.classnames)
    assert ev.protocol.project_logits(torch.randn(3, width)).shape == (3, len(ev.classnames))
    metrics = ev.protocol.metrics(labels, labels, ev.metadata)
    assert next(iter(metrics)) == ev.protocol.primary_metric
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics[ev.protocol.primary_metric] == pytest.approx(1.0)
    assert ev.protocol.describe()["primary_metric"] == ev.protocol.primary_metric


@pytest.mark.parametrize("name", [n for n in PAPER if "train_split" in get_dataset_cfg(n)])
def test_training_splits_open(name, fake_root):
    ds = create_train_set(name, root=fake_root, transform=to_tensor)
    assert len(ds) > 0
    img, label = ds[len(ds) - 1]
    assert img.ndim == 3 and 0 <= label < len(get_classnames(name, root=fake_root))


def test_eval_only_set_has_no_training_split(fake_root):
    with pytest.raises(DatasetError, match="no training split"):
        create_train_set("imagenet-a", root=fake_root)


def test_imagenet_v2_folder_names_are_class_indices(tmp_path):
    # ImageFolder would sort "0", "1", "10", "100" … and mislabel; V2's folder k holds class k
    make_image_folder(tmp_path / "imagenetv2-matched-frequency-format-val", [str(i) for i in range(1000)])
    ev = create_eval_set("imagenet-v2", root=tmp_path)
    by_folder = {Path(f).parent.name: int(y) for f, y in zip(ev.dataset.files, ev.dataset.labels)}
    assert by_folder["10"] == 10 and by_folder["999"] == 999 and by_folder["2"] == 2


def test_imagenet_a_labels_follow_timms_synsets(fake_root):
    ev = create_eval_set("imagenet-a", root=fake_root)
    label_of = {Path(f).parent.name: int(y) for f, y in zip(ev.dataset.files, ev.dataset.labels)}
    assert label_of["n01498041"] == 0  # ImageNet class 6, stingray: the first of the 200
    assert ev.classnames[0] == "stingray"


def test_objectnet_reads_mapping_ignores_other_folders_and_crops_only_on_request(tmp_path):
    build_fake_dataset("objectnet", tmp_path, objectnet_mappings=MAPPINGS)
    images = tmp_path / "objectnet-1.0" / "images"
    write_image(images / "air_freshener" / "x.png")  # one of the 200 classes without an ImageNet counterpart
    write_image(images / "banana" / "big.png", size=(20, 10))
    ev = create_eval_set("objectnet", root=tmp_path)
    assert len(ev.classnames) == 113 and ev.classnames[0] == "alarm clock"
    assert not any("air_freshener" in f for f in ev.dataset.files)
    i = ev.dataset.files.index(str(images / "banana" / "big.png"))
    img, label = ev.dataset[i]
    assert img.size == (20, 10) and ev.preprocessing == {"border_crop": 0}  # uncropped, as the paper ran
    assert ev.classnames[label] == "banana"
    cropped = create_eval_set("objectnet", root=tmp_path, border_crop=2)
    assert cropped.dataset[i][0].size == (16, 6) and cropped.preprocessing == {"border_crop": 2}  # 2 px per side


def test_imagenet_sub_objectnet_maps_imagenet_classes_to_objectnet_labels(tmp_path):
    build_fake_dataset("imagenet-sub-objectnet", tmp_path, objectnet_mappings=MAPPINGS)
    make_image_folder(tmp_path / "imagenet" / "val", ["n01440764"])  # tench: not an ObjectNet class, ignored
    ev = create_eval_set("imagenet-sub-objectnet", root=tmp_path)
    assert len(ev) == 125 and len(ev.classnames) == 113
    label_of = {Path(f).parent.name: ev.classnames[int(y)] for f, y in zip(ev.dataset.files, ev.dataset.labels)}
    # analog clock (n02708093, ImageNet 409) and digital clock (n03196217, 530) are both ObjectNet "alarm clock"
    assert label_of["n02708093"] == label_of["n03196217"] == "alarm clock"
    assert label_of["n07753592"] == "banana"
    assert "n01440764" not in label_of


def test_max_images_is_a_fixed_subset_with_aligned_metadata(fake_root):
    a = create_eval_set("imagenet-r", root=fake_root, max_images=17)
    b = create_eval_set("imagenet-r", root=fake_root, max_images=17)
    assert len(a) == 17 and a.dataset.files == b.dataset.files
    assert len(set(a.dataset.labels.tolist())) > 1  # spread over classes, not the first folder
    w = create_eval_set("iwildcam-ood", root=fake_root, max_images=3)
    assert len(w) == 3 and w.metadata["wilds"].shape[0] == 3


def test_cifar_batches_load_without_running_pickled_code(tmp_path):
    build_fake_dataset("cifar10", tmp_path, splits=["test"])
    ev = create_eval_set("cifar10", root=tmp_path)
    assert len(ev) == 10 and ev.dataset[3][0].size == (32, 32) and ev.dataset[3][1] == 3

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}))
    with pytest.raises(DatasetError, match="only numpy arrays"):
        create_eval_set("cifar10", root=tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_cifar102_npy_dict_and_tampered_file(tmp_path):
    build_fake_dataset("cifar10.2", tmp_path, splits=["test"])
    ev = create_eval_set("cifar10.2", root=tmp_path)
    assert len(ev) == 10 and ev.classnames[0] == "airplane"
    np.save(tmp_path / "CIFAR-10.2" / "cifar102_test.npy", {"images": Path("x"), "labels": [0]}, allow_pickle=True)
    with pytest.raises(DatasetError, match="pathlib"):
        create_eval_set("cifar10.2", root=tmp_path)


def test_cifar101_rejects_object_arrays(tmp_path):
    build_fake_dataset("cifar10.1", tmp_path)
    np.save(tmp_path / "CIFAR-10.1" / "cifar10.1_v6_labels.npy", np.array([{"a": 1}], dtype=object),
            allow_pickle=True)
    with pytest.raises(DatasetError, match="cifar10.1_v6_labels.npy"):
        create_eval_set("cifar10.1", root=tmp_path)


def test_unreadable_image_error_names_the_file(fake_root, tmp_path):
    build_fake_dataset("imagenet-a", tmp_path)
    bad = write_bad_file(tmp_path / "imagenet-a" / "n01498041" / "broken.jpg")
    ev = create_eval_set("imagenet-a", root=tmp_path)
    i = ev.dataset.files.index(str(bad))
    with pytest.raises(DatasetError, match="broken.jpg") as e:
        ev.dataset[i]
    assert "skip_bad_images" in str(e.value) and "wiseft data verify" in str(e.value)


def test_skip_bad_images_skips_and_counts(tmp_path):
    build_fake_dataset("imagenet-a", tmp_path)
    bad = [write_bad_file(tmp_path / "imagenet-a" / "n01498041" / "broken.jpg"),
           write_bad_file(tmp_path / "imagenet-a" / "n01531178" / "notes.png", kind="text")]
    ev = create_eval_set("imagenet-a", root=tmp_path, skip_bad_images=True, transform=to_tensor)
    assert ev.n_skipped == 2 and sorted(ev.skipped) == sorted(map(str, bad))
    assert len(ev) == 200
    for i in range(len(ev)):
        ev.dataset[i]  # every remaining image decodes


def test_dataloader_workers_can_pickle_the_dataset(fake_root):
    ev = create_eval_set("objectnet", root=fake_root, transform=to_tensor, max_images=8)
    loader = torch.utils.data.DataLoader(ev.dataset, batch_size=4, num_workers=1)
    images, labels = next(iter(loader))
    assert images.shape[0] == 4 and labels.dtype == torch.int64


def test_sun397_names_and_partition(fake_root):
    names = get_classnames("sun397", root=fake_root)
    assert names == ["abbey", "apartment building outdoor", "bakery shop"]


def test_food101_names_have_spaces(tmp_path):
    build_fake_dataset("food101", tmp_path, splits=["test"])
    assert get_classnames("food101", root=tmp_path) == ["class 0", "class 1", "class 2"]
