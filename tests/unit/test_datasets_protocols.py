"""Logit projections and metrics against hand-computed expectations (real timm indices, real ObjectNet mapping)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from wiseft.datasets import Protocol
from wiseft.datasets.objectnet import load_objectnet_mapping
from wiseft.datasets.protocols import MacroF1Protocol, MaxPoolProtocol, SubsetProtocol, build_protocol, macro_f1
from wiseft.datasets.sources import read_lines, timm_info_file
from wiseft.errors import DatasetError

MAPPINGS = Path(__file__).parent.parent / "fixtures" / "objectnet-mappings"


def _indices(name: str) -> list[int]:
    return [int(i) for i in read_lines(timm_info_file(f"imagenet_{name}_indices.txt"))]


@pytest.mark.parametrize("name,first,last", [("a", [6, 11, 13, 15, 17], 988), ("r", [1, 2, 4, 6, 8], 988)])
def test_subset_keeps_timms_200_columns_in_order(name, first, last):
    idx = _indices(name)
    proto = SubsetProtocol(idx)
    logits = torch.arange(1000, dtype=torch.float32).repeat(2, 1)
    out = proto.project_logits(logits)
    assert out.shape == (2, 200)
    assert out[0, :5].tolist() == first and out[0, -1].item() == last


def test_subset_ignores_columns_outside_the_200():
    proto = SubsetProtocol(_indices("a"))
    logits = torch.zeros(2, 1000)
    logits[0, 0] = 100.0  # tench: not an ImageNet-A class, must not win
    logits[0, 11] = 1.0   # goldfinch: ImageNet-A class 1
    logits[1, 988] = 2.0  # the last ImageNet-A class
    assert proto.project_logits(logits).argmax(dim=1).tolist() == [1, 199]


def test_objectnet_mapping_from_the_archive_files():
    m = load_objectnet_mapping(MAPPINGS)
    assert len(m.folders) == 113 and sum(len(g) for g in m.groups) == 125
    assert m.folders[:3] == ("alarm_clock", "backpack", "banana")
    assert m.groups[0] == (409, 530)            # analog clock, digital clock
    assert m.groups[2] == (954,)                # banana
    assert m.groups[m.folders.index("chair")] == (423, 559, 765)  # barber, folding, rocking chair
    assert m.imagenet_to_label[409] == m.imagenet_to_label[530] == 0
    assert m.classnames[m.folders.index("bicycle")] == "bicycle"


def test_objectnet_maxpool_against_hand_computed_values():
    m = load_objectnet_mapping(MAPPINGS)
    proto = MaxPoolProtocol([list(g) for g in m.groups])
    logits = torch.full((3, 1000), -1.0)
    logits[0, 409], logits[0, 530] = 3.0, 5.0   # alarm clock = max(analog 3, digital 5)
    logits[1, 954] = 7.0                        # banana
    logits[1, 0] = 99.0                         # tench is not an ObjectNet class: dropped
    logits[2, 559] = 4.0                        # folding chair -> chair
    out = proto.project_logits(logits)
    assert out.shape == (3, 113)
    assert out[0, 0].item() == 5.0 and out[1, 2].item() == 7.0
    assert out.argmax(dim=1).tolist() == [0, 2, m.folders.index("chair")]
    # the same as an explicit loop over the groups
    loop = torch.stack([logits[:, list(g)].max(dim=1).values for g in m.groups], dim=1)
    assert torch.equal(out, loop)


def test_projection_rejects_narrow_logits():
    with pytest.raises(DatasetError, match="at least 989 columns"):
        SubsetProtocol(_indices("a"), name="imagenet-a").project_logits(torch.zeros(2, 200))


def test_macro_f1_by_hand():
    labels = np.array([0, 0, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 0])
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1 -> 0.8; class 2: tp 0 -> 0
    assert macro_f1(preds, labels) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    # predictions of a class absent from the labels lower precision of nothing (WILDS: labels=unique(y_true))
    assert macro_f1(np.array([3, 0]), np.array([0, 0])) == pytest.approx(2 / 3)
    m = MacroF1Protocol().metrics(preds, labels)
    assert list(m) == ["macro_f1", "top1"] and m["top1"] == pytest.approx(0.6)


def test_identity_protocol_and_registry():
    proto = build_protocol({"type": "identity"}, lambda s, w: s, {"name": "x"})
    assert type(proto) is Protocol and proto.metrics([1, 2], [1, 3]) == {"top1": 0.5}
    sub = build_protocol({"type": "class_subset", "indices": [2, 0]}, lambda s, w: s, {"name": "x"})
    assert sub.project_logits(torch.tensor([[1.0, 2.0, 3.0]])).tolist() == [[3.0, 1.0]]
    with pytest.raises(DatasetError, match="unknown protocol 'top5'.*identity"):
        build_protocol({"type": "top5"}, lambda s, w: s, {"name": "x"})
    with pytest.raises(DatasetError, match="needs the key 'indices'"):
        build_protocol({"type": "class_subset"}, lambda s, w: s, {"name": "x"})


def test_describe_records_how_a_number_was_computed():
    d = SubsetProtocol(_indices("r")).describe()
    assert d["type"] == "SubsetProtocol" and d["n_classes"] == 200 and len(d["columns_hash"]) == 16
    assert json.dumps(MaxPoolProtocol([[1, 2], [3]]).describe())


def test_missing_or_broken_mapping_files(tmp_path):
    with pytest.raises(DatasetError, match="objectnet_to_imagenet_1k.json.*mappings/"):
        load_objectnet_mapping(tmp_path)
    shutil.copytree(MAPPINGS, tmp_path / "m")
    mapping = json.loads((tmp_path / "m" / "objectnet_to_imagenet_1k.json").read_text())
    mapping["Banana"] = "crane"  # two ImageNet classes are called crane
    (tmp_path / "m" / "objectnet_to_imagenet_1k.json").write_text(json.dumps(mapping))
    with pytest.raises(DatasetError, match="'crane'.*ambiguous"):
        load_objectnet_mapping(tmp_path / "m")
    (tmp_path / "m" / "objectnet_to_imagenet_1k.json").write_text("{not json")
    with pytest.raises(DatasetError, match="cannot read ObjectNet mapping"):
        load_objectnet_mapping(tmp_path / "m")
