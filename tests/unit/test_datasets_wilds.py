"""WILDS iWildCam and FMoW through small fixtures in the WILDS on-disk layout, scored by wilds' own eval."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("WISEFT_PROGRESS", "0")

from wiseft.datasets import create_eval_set, create_train_set, verify_dataset  # noqa: E402
from wiseft.datasets.fixtures import build_fake_fmow, build_fake_iwildcam  # noqa: E402
from wiseft.datasets.protocols import WildsProtocol, macro_f1  # noqa: E402
from wiseft.errors import DatasetError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:wilds.*")


@pytest.fixture(scope="module")
def iwildcam_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wilds_iw")
    # every class and location must occur somewhere (wilds asserts contiguous ids)
    rows = [("train", y, y % 2) for y in range(4)]
    rows += [("id_test", 0, 0), ("id_test", 0, 1), ("id_test", 1, 0), ("id_test", 1, 1), ("id_test", 2, 0)]
    rows += [("test", 3, 1), ("test", 3, 0), ("val", 0, 0), ("id_val", 1, 1)]
    build_fake_iwildcam(root, rows)
    return root


@pytest.fixture(scope="module")
def fmow_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wilds_fmow")
    rows = [("seq", "airport", "USA", "2012-01-01T00:00:00Z"),        # row 0: sequestered, still numbered
            ("train", "airport", "USA", "2002-03-01T00:00:00Z"),
            ("train", "barn", "FRA", "2010-03-01T00:00:00Z"),
            ("val", "dam", "KEN", "2010-03-01T00:00:00Z"),            # ID val
            ("val", "dam", "KEN", "2014-03-01T00:00:00Z"),            # OOD val (2013-2015)
            ("test", "barn", "USA", "2011-03-01T00:00:00Z"),          # ID test, row 5
            ("test", "dam", "FRA", "2012-03-01T00:00:00Z"),           # ID test
            ("test", "airport", "USA", "2017-03-01T00:00:00Z"),       # OOD test: Americas x2
            ("test", "barn", "USA", "2017-04-01T00:00:00Z"),
            ("test", "dam", "FRA", "2017-05-01T00:00:00Z"),           # Europe x2
            ("test", "barn", "FRA", "2017-06-01T00:00:00Z"),
            ("test", "airport", "KEN", "2016-06-01T00:00:00Z")]       # Africa x1
    build_fake_fmow(root, rows)
    return root


def test_iwildcam_id_and_ood_splits(iwildcam_root):
    ev = create_eval_set("iwildcam", root=iwildcam_root, role="reference")
    assert len(ev) == 5 and len(ev.classnames) == 182 and ev.classnames[0] == "empty"
    assert ev.metadata["wilds"].shape == (5, 10)  # location … y, from_source_domain
    assert ev.dataset.labels.tolist() == [0, 0, 1, 1, 2]
    assert Path(ev.dataset.files[0]).parent.name == "train"  # wilds keeps every image in train/
    ood = create_eval_set("iwildcam-ood", root=iwildcam_root)
    assert ood.dataset.labels.tolist() == [3, 3]
    assert len(create_train_set("iwildcam", root=iwildcam_root)) == 4


def test_iwildcam_macro_f1_through_wilds_eval(iwildcam_root):
    ev = create_eval_set("iwildcam", root=iwildcam_root)
    assert isinstance(ev.protocol, WildsProtocol) and ev.protocol.primary_metric == "macro_f1"
    labels = ev.dataset.labels
    preds = np.array([0, 1, 1, 1, 0])
    m = ev.protocol.metrics(preds, labels, ev.metadata)
    assert list(m) == ["macro_f1", "top1", "macro_recall"]
    # by hand: class 0 tp1 fp1 fn1 -> 0.5; class 1 tp2 fp1 fn0 -> 0.8; class 2 tp0 -> 0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["macro_f1"] == pytest.approx(macro_f1(preds, labels))
    assert m["top1"] == pytest.approx(3 / 5)
    assert m["macro_recall"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)


def test_fmow_images_are_numbered_by_metadata_row(fmow_root):
    ev = create_eval_set("fmow", root=fmow_root, role="reference")
    assert [Path(f).name for f in ev.dataset.files] == ["rgb_img_5.png", "rgb_img_6.png"]
    assert [ev.classnames[y] for y in ev.dataset.labels] == ["barn", "dam"]
    assert ev.dataset[0][0].size == (6, 6)


def test_fmow_ood_worst_region_accuracy_through_wilds_eval(fmow_root):
    ev = create_eval_set("fmow-ood", root=fmow_root)
    assert len(ev) == 5 and ev.protocol.primary_metric == "worst_region_acc"
    labels = ev.dataset.labels
    preds = labels.copy()
    files = [Path(f).name for f in ev.dataset.files]
    preds[files.index("rgb_img_10.png")] = (labels[files.index("rgb_img_10.png")] + 1) % 62  # one Europe miss
    m = ev.protocol.metrics(preds, labels, ev.metadata)
    assert list(m) == ["worst_region_acc", "top1", "worst_year_acc"]
    # Americas 2/2, Europe 1/2, Africa 1/1 (Asia, Oceania empty, Other ignored) -> worst 0.5; overall 4/5
    assert m["worst_region_acc"] == pytest.approx(0.5)
    assert m["top1"] == pytest.approx(0.8)
    assert all(0.0 <= v <= 1.0 for v in m.values())


def test_fmow_id_reports_accuracy_first(fmow_root):
    ev = create_eval_set("fmow", root=fmow_root)
    m = ev.protocol.metrics(np.array([0, 0]), ev.dataset.labels, ev.metadata)
    assert list(m) == ["top1", "worst_region_acc"] and m["top1"] == pytest.approx(0.0)


def test_wilds_metrics_need_metadata(iwildcam_root):
    ev = create_eval_set("iwildcam", root=iwildcam_root)
    with pytest.raises(DatasetError, match="metadata"):
        ev.protocol.metrics(np.zeros(5), ev.dataset.labels, None)


def test_missing_wilds_folder_names_layout_and_command(tmp_path):
    with pytest.raises(DatasetError) as e:
        create_eval_set("fmow-ood", root=tmp_path)
    assert "fmow_v1.1" in str(e.value) and "RELEASE_v1.1.txt" in str(e.value)
    assert f"wiseft data download fmow-ood --root {tmp_path}" in str(e.value)


def test_verify_wilds_lists_missing_images(tmp_path):
    build_fake_iwildcam(tmp_path)
    (tmp_path / "iwildcam_v2.0" / "train" / "img00003.jpg").unlink()
    report = verify_dataset("iwildcam", root=tmp_path, splits=["train"])
    assert not report.ok
    assert [Path(p).name for p, _ in report.unreadable] == ["img00003.jpg"]


def test_importing_wilds_starts_no_network_thread():
    code = ("import threading, sys; from wiseft.datasets.wilds_support import import_wilds; import_wilds(); "
            "import wilds.version as v; print(v.check_outdated is None, threading.active_count(), "
            "'outdated' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent.parent.parent)
    assert out.stdout.split() == ["True", "1", "False"], out.stderr
