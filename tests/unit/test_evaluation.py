"""The one-pass evaluation engine gives exactly the numbers of a naive per-α loop, reading each image once."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from wiseft.datasets.base import EvalSet, Protocol, top1
from wiseft.ensembles import mix_logits, output_settings
from wiseft.errors import WiseftError
from wiseft.evaluation import WeightSetting, evaluate_settings, lerp_settings
from wiseft.interpolation import clone_state_dict, interpolate_state_dicts
from wiseft.results import ResultRow, ResultsStore

ALPHAS = [0.0, 0.25, 0.5, 0.75, 1.0]
NUM_CLASSES = 5


class SubsetProtocol(Protocol):
    """Keeps model classes 0, 2, 4 (like ImageNet-A keeping 200 of 1000 columns)."""

    columns = [0, 2, 4]

    def project_logits(self, logits):
        return logits[:, self.columns]


class GroupProtocol(Protocol):
    """Top-1 plus worst-group accuracy from per-example metadata (like WILDS worst-region accuracy)."""

    def metrics(self, preds, labels, metadata=None):
        groups = metadata["group"]
        worst = min(top1(preds[groups == g], labels[groups == g]) for g in np.unique(groups))
        return {"worst_group_acc": worst, "top1": top1(preds, labels)}


def _eval_sets(counting_dataset, n=(37, 21)):
    subset_data = counting_dataset(n[0], 3, seed=1)
    group_data = counting_dataset(n[1], NUM_CLASSES, seed=2)
    return [
        EvalSet("subset", subset_data, ["a", "b", "c"], SubsetProtocol(), role="shift"),
        EvalSet("groups", group_data, [str(i) for i in range(NUM_CLASSES)], GroupProtocol(), role="reference",
                metadata={"group": np.arange(n[1]) % 3}),
    ]


def _endpoints(make_classifier, head_only: bool):
    zeroshot = make_classifier(NUM_CLASSES, seed=0)
    finetuned = copy.deepcopy(zeroshot)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in finetuned.named_parameters():
            if not head_only or name.startswith("head."):
                p.add_(0.05 * p.abs().mean() * torch.randn(p.shape, generator=g))
    return zeroshot, clone_state_dict(zeroshot), clone_state_dict(finetuned)


def _naive(template, theta0, theta1, alphas, eval_set, batch_size):
    """For each α: build θ_α, load it into a fresh model, loop over a DataLoader."""
    out = {}
    for alpha in alphas:
        model = copy.deepcopy(template)
        model.load_state_dict(interpolate_state_dicts(theta0, theta1, alpha))
        loader = torch.utils.data.DataLoader(eval_set.dataset, batch_size=batch_size, shuffle=False)
        with torch.no_grad():
            logits, labels = zip(*[(model(x), y) for x, y in loader])
        projected = eval_set.protocol.project_logits(torch.cat(logits))
        preds, labels = projected.argmax(-1).numpy(), torch.cat(labels).numpy()
        out[alpha] = (projected, preds, eval_set.protocol.metrics(preds, labels, eval_set.metadata))
    return out


@pytest.mark.parametrize("head_only", [False, True], ids=["e2e", "lc"])
def test_one_pass_equals_naive_loop_and_reads_each_image_once(make_classifier, counting_dataset, head_only):
    template, theta0, theta1 = _endpoints(make_classifier, head_only)
    sets = _eval_sets(counting_dataset)
    settings = lerp_settings(theta0, theta1, ALPHAS, mode="lc" if head_only else "e2e")
    labels = [s.label for s in settings]
    result = evaluate_settings(copy.deepcopy(template), settings, sets, batch_size=8, chunk_images=12,
                               keep_logits_for=labels)
    assert [s.dataset.calls for s in sets] == [37, 21]  # every image decoded once for 5 settings

    fresh = _eval_sets(counting_dataset)
    for eval_set in fresh:
        naive = _naive(template, theta0, theta1, ALPHAS, eval_set, batch_size=8)
        got = result.sets[eval_set.name]
        assert got.n == len(eval_set.dataset)
        for setting in settings:
            logits, preds, metrics = naive[setting.alpha]
            assert np.array_equal(got.preds[setting.label], preds), setting.label
            assert got.metrics[setting.label] == metrics, setting.label
            if head_only and setting.alpha not in (0.0, 1.0):  # logits mixed, not weights: equal up to rounding
                assert torch.allclose(got.logits[setting.label], logits, atol=1e-5)
            else:
                assert torch.equal(got.logits[setting.label], logits), setting.label
        assert eval_set.dataset.calls == len(eval_set.dataset) * len(ALPHAS)  # the naive loop re-reads per α


@pytest.mark.parametrize("head_only", [False, True], ids=["e2e", "lc"])
def test_encoder_passes_and_endpoint_copies_per_sweep(make_classifier, counting_dataset, head_only, monkeypatch):
    """A head-only sweep runs the encoder once per batch whatever the number of α (an E2E one once per α), and
    the endpoints are prepared once per sweep, not once per setting."""
    import wiseft.evaluation as E

    template, theta0, theta1 = _endpoints(make_classifier, head_only)
    sets = _eval_sets(counting_dataset)
    model = copy.deepcopy(template)
    passes = []
    model.image_encoder.register_forward_pre_hook(lambda *a: passes.append(1))
    planned = []
    real_plan = E._plan_linear
    monkeypatch.setattr(E, "_plan_linear", lambda *a: planned.append(real_plan(*a)) or planned[-1])
    evaluate_settings(model, lerp_settings(theta0, theta1, ALPHAS), sets, batch_size=8, chunk_images=16)
    batches = sum(-(-len(s.dataset) // 8) for s in sets)
    assert len(passes) == batches * (1 if head_only else len(ALPHAS))
    assert len(planned[0]) == 1  # one group: θ0 and θ1 moved to the device once


def test_endpoints_reproduce_zeroshot_and_finetuned_logits_exactly(make_classifier, counting_dataset):
    template, theta0, theta1 = _endpoints(make_classifier, head_only=False)
    eval_set = _eval_sets(counting_dataset)[1]
    settings = lerp_settings(theta0, theta1, [0.0, 1.0], endpoint_methods=("zeroshot", "finetuned"))
    result = evaluate_settings(copy.deepcopy(template), settings, [eval_set], batch_size=8,
                               keep_logits_for=[s.label for s in settings])
    images = eval_set.dataset.images
    model1 = copy.deepcopy(template)
    model1.load_state_dict(theta1)
    with torch.no_grad():
        assert torch.equal(result.sets["groups"].logits["wiseft α=0"], torch.cat([template(x) for x in images.split(8)]))
        assert torch.equal(result.sets["groups"].logits["wiseft α=1"], torch.cat([model1(x) for x in images.split(8)]))
    assert [s.method for s in result.settings] == ["zeroshot", "finetuned"]


def test_output_space_ensembles_from_the_same_pass(make_classifier, counting_dataset):
    template, theta0, theta1 = _endpoints(make_classifier, head_only=True)
    eval_set = _eval_sets(counting_dataset)[0]
    weight = lerp_settings(theta0, theta1, ALPHAS)
    ose = output_settings(ALPHAS, sources=("wiseft α=0", "wiseft α=1"), method="ose")
    prob = output_settings([0.5], sources=("wiseft α=0", "wiseft α=1"), method="ose_prob")
    rand = output_settings([0.0, 0.5, 1.0], sources=("wiseft α=0", "wiseft α=1"), method="random_interp", seed=3)
    labels = [s.label for s in weight + ose + prob + rand]
    result = evaluate_settings(copy.deepcopy(template), weight + ose + prob + rand, [eval_set], batch_size=8,
                               chunk_images=8, keep_logits_for=labels)
    got = result.sets["subset"]
    assert eval_set.dataset.calls == 37
    l0, l1 = got.logits["wiseft α=0"], got.logits["wiseft α=1"]
    for a in ALPHAS:  # a linear head: weight-space and output-space ensembles agree (paper Eq. 1)
        assert torch.allclose(got.logits[f"ose α={a:g}"], got.logits[f"wiseft α={a:g}"], atol=1e-5)
        assert torch.allclose(got.logits[f"ose α={a:g}"], mix_logits(l0, l1, a), atol=1e-6)
    assert torch.equal(got.logits["random_interp α=0"], l0) and torch.equal(got.logits["random_interp α=1"], l1)
    mixed = got.logits["random_interp α=0.5"]
    from_one = (mixed == l1).all(-1) & ~(mixed == l0).all(-1)
    assert 0 < int(from_one.sum()) < 37
    assert got.preds["ose_prob α=0.5"].shape == (37,)


def test_rows_follow_the_results_schema(make_classifier, counting_dataset, tmp_path):
    template, theta0, theta1 = _endpoints(make_classifier, head_only=True)
    sets = _eval_sets(counting_dataset)
    settings = lerp_settings(theta0, theta1, [0.0, 0.5, 1.0], mode="lc")
    result = evaluate_settings(copy.deepcopy(template), settings, sets, batch_size=16)

    def factory(**fields):
        return ResultRow(run_id="r", profile="test", model="tiny", pretrained=None, git_commit="abc", **fields)

    rows = result.to_rows(factory)
    assert len(rows) == 3 * (1 + 2)  # 3 settings × (subset: top1; groups: worst_group_acc, top1)
    for row in rows:
        row.validate()
        assert row.mode == "lc" and row.method == "wiseft"
    roles = {(r.dataset, r.role) for r in rows}
    assert roles == {("subset", "shift"), ("groups", "reference")}
    assert ResultsStore(tmp_path / "results.jsonl").append(rows) == 9
    frame = result.to_frame()
    assert len(frame) == 9 and result.value("wiseft α=0.5", "groups") == result.sets["groups"].metrics[
        "wiseft α=0.5"]["worst_group_acc"]


def test_generic_settings_and_max_images(make_classifier, counting_dataset):
    model = make_classifier(NUM_CLASSES, seed=0)
    theta = clone_state_dict(model)
    calls = []
    setting = WeightSetting("custom", "variant", None, apply=lambda m: calls.append(m.load_state_dict(theta)))
    eval_set = _eval_sets(counting_dataset)[1]
    result = evaluate_settings(model, [setting], [eval_set], batch_size=4, chunk_images=8, max_images=10)
    assert result.sets["groups"].n == 10 and eval_set.dataset.calls == 10
    assert len(calls) == 2  # applied once per chunk


def test_setting_errors(make_classifier, counting_dataset):
    template, theta0, theta1 = _endpoints(make_classifier, head_only=False)
    sets = _eval_sets(counting_dataset)
    settings = lerp_settings(theta0, theta1, [0.0, 1.0])
    with pytest.raises(WiseftError, match="differ outside the head"):
        evaluate_settings(template, settings, sets, linear=True)
    with pytest.raises(WiseftError, match="unique"):
        evaluate_settings(template, settings + settings[:1], sets)
    bad = output_settings([0.5], sources=("wiseft α=0", "nope"))
    with pytest.raises(WiseftError, match="'nope' is not a weight setting"):
        evaluate_settings(template, settings + bad, sets)


def test_sharded_evaluation_gathers_to_the_single_process_result(make_classifier, counting_dataset, monkeypatch):
    """Two ranks each evaluate a contiguous shard; the gathered metrics equal one process's."""
    template, theta0, theta1 = _endpoints(make_classifier, head_only=False)
    settings = lerp_settings(theta0, theta1, [0.0, 0.5, 1.0])
    single = evaluate_settings(copy.deepcopy(template), settings, _eval_sets(counting_dataset), batch_size=8)

    dist = torch.distributed
    from_rank1: list = []  # what rank 1 contributed to each all_gather, in call order

    def run(rank):
        monkeypatch.setattr(dist, "is_initialized", lambda: True)
        monkeypatch.setattr(dist, "get_rank", lambda: rank)
        monkeypatch.setattr(dist, "get_world_size", lambda: 2)
        pending = iter(list(from_rank1))

        def gather(parts, obj):
            if rank == 1:  # stand in for rank 0 with the first half of the single-process result
                res = list(single.sets.values())[len(from_rank1)]
                half = (res.n + 1) // 2
                rank0 = {"labels": res.labels[:half], "preds": {k: v[:half] for k, v in res.preds.items()},
                         "logits": {}}
                from_rank1.append(obj)
                parts[:] = [rank0, obj]
            else:
                parts[:] = [obj, next(pending)]
        monkeypatch.setattr(dist, "all_gather_object", gather)
        sets = _eval_sets(counting_dataset)
        out = evaluate_settings(copy.deepcopy(template), settings, sets, batch_size=8)
        return out, [s.dataset.calls for s in sets]

    _, calls1 = run(1)
    merged, calls0 = run(0)
    assert [a + b for a, b in zip(calls0, calls1)] == [37, 21]
    for name, res in single.sets.items():
        assert np.array_equal(merged.sets[name].labels, res.labels)
        for label in res.preds:
            assert np.array_equal(merged.sets[name].preds[label], res.preds[label])
            assert merged.sets[name].metrics[label] == res.metrics[label]
