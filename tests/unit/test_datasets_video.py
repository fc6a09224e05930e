"""ImageNet-Vid-Robust and YTBB-Robust on fixtures in the archive's real layout: loaders, the max-merge of
ImageNet logits, pm-0 / pm-10 as the paper's code computes them, the class-subsampled ImageNet references, and
the evaluation engine carrying each frame's key to the metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wiseft.cli import main
from wiseft.datasets import create_eval_set, get_dataset_cfg, verify_dataset
from wiseft.datasets.fixtures import build_fake_dataset, build_fake_video_sets, write_image
from wiseft.datasets.video import MergeProtocol, load_video_meta, pmk_scores
from wiseft.errors import DatasetError

VIDEO = ("imagenet-vid-robust", "ytbb-robust", "imagenet-sub-vid-robust", "imagenet-sub-ytbb-robust")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    for name in VIDEO:
        build_fake_dataset(name, root)
    return root


def test_the_archive_layout_loads_with_the_papers_class_counts(root):
    vid = create_eval_set("imagenet-vid-robust", root=root)
    ytbb = create_eval_set("ytbb-robust", root=root)
    assert len(vid.classnames) == 30 and len(ytbb.classnames) == 24
    assert len(vid) == 30 * 3 and len(ytbb) == 23 * 3  # anchors (every class but 'none') and two neighbours each
    keys = vid.metadata["video_key"]
    assert keys[0].startswith("val/ILSVRC2015_val_") and len(keys) == len(vid)
    assert vid.dataset.files[0].endswith(keys[0])
    assert ytbb.protocol.primary_metric == "pm0" and ytbb.protocol.never == [ytbb.classnames.index("none")]
    for name in VIDEO:
        assert verify_dataset(name, root).splits[0].found > 0


def test_logits_are_max_merged_with_the_official_fill_values():
    proto = MergeProtocol([[1, 3], [], [0], [2]], never=[3])
    logits = torch.tensor([[5.0, 1.0, 9.0, -2.0], [-1.0, -3.0, 0.5, -4.0]])
    merged = proto.project_logits(logits)
    assert merged[:, 0].tolist() == [1.0, -3.0]  # max of columns 1 and 3
    assert merged[:, 1].tolist() == [0.0, 0.0]  # no ImageNet counterpart: logit 0, as in the paper's code
    assert merged[:, 2].tolist() == [5.0, -1.0]
    assert torch.isneginf(merged[:, 3]).all()  # 'none' is never predicted
    assert merged.argmax(1).tolist() == [2, 1]  # an empty class wins only when every mapped logit is negative


def test_pm0_counts_anchors_and_pm10_needs_every_neighbour():
    labels = {"a": (0,), "a1": (0,), "a2": (0, 2), "b": (1,), "b1": (1,), "c": (2,), "c1": (2,)}
    pmsets = {"a": ("a1", "a2"), "b": ("b1",), "c": ("c1",)}
    preds = {"a": 0, "a1": 0, "a2": 2, "b": 1, "b1": 0, "c": 1, "c1": 2}
    scores = pmk_scores(preds, labels, pmsets)
    assert scores["pm0"] == pytest.approx(2 / 3)  # a and b right, c wrong
    assert scores["pm10"] == pytest.approx(1 / 3)  # only a stays right on every frame (a2 accepts label 2)
    del preds["b1"]  # a quick-look subset without that frame: b is judged on what was predicted
    assert pmk_scores(preds, labels, pmsets) == {"pm0": pytest.approx(2 / 3), "pm10": pytest.approx(2 / 3)}


def test_pm_k_through_the_real_protocol_on_the_fixture(root):
    ev = create_eval_set("imagenet-vid-robust", root=root)
    keys = ev.metadata["video_key"]
    truth = np.asarray(ev.dataset.labels)
    # ImageNet logits that put each frame's class on column 2k+1 (merged into Vid class k by the fixture's map)
    logits = torch.full((len(ev), 1000), -5.0)
    logits[torch.arange(len(ev)), torch.as_tensor(2 * truth + 1)] = 10.0
    preds = ev.protocol.project_logits(logits).argmax(1).numpy()
    assert (preds == truth).all()
    assert ev.protocol.metrics(preds, truth, ev.metadata) == {"pm0": 1.0, "pm10": 1.0}
    wrong = preds.copy()
    neighbour = next(i for i, k in enumerate(keys) if not k.endswith("000000.JPEG"))
    wrong[neighbour] = (wrong[neighbour] + 1) % 30
    assert ev.protocol.metrics(wrong, truth, ev.metadata) == {"pm0": 1.0, "pm10": pytest.approx(29 / 30)}
    with pytest.raises(DatasetError, match="video_key"):
        ev.protocol.metrics(preds, truth, None)


def test_the_class_subsampled_reference_keeps_the_mapped_classes(root):
    sub = create_eval_set("imagenet-sub-vid-robust", root=root)
    assert len(sub) == 60 and len(sub.classnames) == 30  # two ImageNet classes merged into each Vid class
    labels = np.asarray(sub.dataset.labels)
    assert sorted(set(labels.tolist())) == list(range(30)) and np.bincount(labels).tolist() == [2] * 30
    ytbb_sub = create_eval_set("imagenet-sub-ytbb-robust", root=root)
    meta = load_video_meta(root / "imagenet_vid_ytbb_robust" / "ytbb-robust", "ytbb")
    assert len(ytbb_sub) == sum(len(g) for g in meta.groups)


def test_the_engine_hands_frame_keys_to_pm_k(root, tiny_model_name):
    import open_clip

    from wiseft.evaluation import WeightSetting, evaluate_settings
    from wiseft.models import ClassificationHead, ImageClassifier, eval_transform

    ev = create_eval_set("ytbb-robust", root=root, transform=eval_transform(32, (0.5,) * 3, (0.25,) * 3))
    clip = open_clip.create_model(tiny_model_name, pretrained=None)
    dim = clip.visual.output_dim
    weights = torch.zeros(1000, dim)
    weights[151] = 1.0  # ImageNet 151 (a dog breed) merges into YTBB 'dog'; every image ends up there
    model = ImageClassifier(torch.nn.Sequential(torch.nn.Flatten(), _Const(dim)), ClassificationHead(weights))
    setting = WeightSetting(label="const", method="zeroshot", alpha=None, mode=None, extra={},
                            apply=lambda m: None)
    result = evaluate_settings(model, [setting], [ev], batch_size=16)
    dog = ev.classnames.index("dog")
    share = float(np.mean([ev.protocol.labels[a][0] == dog for a in ev.protocol.pmsets]))
    assert result.value("const", "ytbb-robust", "pm0") == pytest.approx(share) == pytest.approx(1 / 23)
    assert result.value("const", "ytbb-robust", "pm10") == pytest.approx(1 / 23)


class _Const(torch.nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones(x.shape[0], self.dim)


def test_missing_metadata_and_frames_are_reported(tmp_path):
    top = build_fake_video_sets(tmp_path)
    (top / "ytbb-robust" / "metadata" / "pmsets.json").unlink()
    with pytest.raises(DatasetError, match="metadata/pmsets.json not found"):
        create_eval_set("ytbb-robust", root=tmp_path)
    labels = json.loads((top / "imagenet-vid-robust" / "metadata" / "labels.json").read_text())
    frame = top / "imagenet-vid-robust" / min(labels)
    frame.unlink()
    report = verify_dataset("imagenet-vid-robust", tmp_path, decode=False)
    assert not report.ok and "1 frame(s) named by the pm-k metadata are missing" in report.format()


def test_data_list_shows_both_video_sets(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in VIDEO:
        assert name in out
    assert get_dataset_cfg("imagenet-vid-robust")["download"]["files"][0]["url"].endswith(
        "imagenet_vid_ytbb_robust.tar.gz")


def _review_file(path, names, rows):
    path.write_text(json.dumps({"labels": names, "annotations": [
        {"key": key, "notes": "", "labels": [names.index(n) for n in marks]} for key, marks in rows]}))


def test_ytbb_metadata_is_derived_from_the_papers_review_files(tmp_path, capsys):
    """Reviewed anchors only, similar neighbours within ±10 frames only, bad anchors dropped, the CSV's original
    label (22 and 23 swapped) joined with the reviewed class names; then the loader and pm-k read the result."""
    top = build_fake_video_sets(tmp_path)
    ytbb = top / "ytbb-robust"
    ann = tmp_path / "ytbb-robust_metadata"
    ann.mkdir()
    a, b, c, d = "vidA_1000/frame-15.jpg", "vidB_2000/frame-30.jpg", "vidC_3000/frame-45.jpg", "vidD_4000/frame-60.jpg"
    _review_file(ann / "anchor_labels.json", ["good", "bad", "unsure", "person", "dog", "boat"], [
        (f"/somewhere/ytbb_videos/{a}", ["good", "person", "boat"]), (b, ["good", "dog"]), (c, ["bad", "dog"]),
        (d, ["good"])])
    _review_file(ann / "pmk_labels.json", ["similar", "dissimilar", "bad-anchor", "correct"], [
        (f"{a},vidA_1000/frame-14.jpg", ["similar", "correct"]), (f"{a},vidA_1000/frame-26.jpg", ["similar"]),
        (f"{a},vidA_1000/frame-16.jpg", ["similar", "dissimilar"]), (f"{b},vidB_2000/frame-31.jpg", ["similar"]),
        (f"{d},vidD_4000/frame-61.jpg", ["similar", "bad-anchor"])])
    (ann / "ytbb_robustness_test_anchors_full.csv").write_text(
        "ytid,time_ms,label\nvidA,1000,0\nvidB,2000,23\nvidC,3000,19\nvidD,4000,1\n")
    for key in (a, "vidA_1000/frame-14.jpg", "vidA_1000/frame-26.jpg", b, "vidB_2000/frame-31.jpg"):
        write_image(ytbb / "ytbb_videos" / key)
    assert main(["data", "prepare-ytbb", "--annotations", str(ann), "--root", str(tmp_path)]) == 0
    assert "2 reviewed anchors and 2 pm-k frames" in capsys.readouterr().out
    meta = load_video_meta(ytbb, "ytbb")
    names = list(meta.classnames)
    # c is marked bad, d has a bad-anchor mark; frame 16 is dissimilar and frame 26 is 11 frames away
    assert meta.pmsets == {a: ("vidA_1000/frame-14.jpg",), b: ("vidB_2000/frame-31.jpg",)}
    assert set(meta.labels[a]) == {names.index("person"), names.index("boat")}
    assert set(meta.labels[b]) == {names.index("dog"), names.index("none")}  # CSV 23 is 'none' after the swap
    ev = create_eval_set("ytbb-robust", root=tmp_path)
    assert sorted(ev.metadata["video_key"]) == sorted({a, b, *meta.pmsets[a], *meta.pmsets[b]})
