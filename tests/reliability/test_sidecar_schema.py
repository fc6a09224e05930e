"""Checkpoint sidecars are checked against a schema with bounds, and `evaluate` refuses checkpoints that would
score silently wrong (issue 19, item 2; item 7: NaN weights, a bogus --method)."""

from __future__ import annotations

import json
import time

import pytest
import torch

from wiseft.checkpoint import classnames_sha256, load_classifier, read_sidecar, save_classifier
from wiseft.errors import CheckpointError


def _saved(tmp_path, make_classifier, num_classes=5):
    stem = tmp_path / "clf"
    save_classifier(make_classifier(num_classes), stem, {"alpha": None})
    return stem, tmp_path / "clf.json"


def _edit(sidecar, **fields):
    meta = json.loads(sidecar.read_text())
    meta.update(fields)
    if "classnames" in fields:
        meta["classnames_sha256"] = classnames_sha256(fields["classnames"])
    sidecar.write_text(json.dumps(meta))


def test_a_sidecar_nested_100k_levels_is_a_checkpoint_error(tmp_path, make_classifier):
    stem, sidecar = _saved(tmp_path, make_classifier)
    text = sidecar.read_text()
    sidecar.write_text(text[:-2] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(CheckpointError, match=r"clf\.json.*nested deeper"):
        load_classifier(stem)


@pytest.mark.parametrize("field, value", [
    ("normalization", {"mean": [0.5] * 5, "std": [0.25] * 5}),
    ("normalization", {"mean": [0.5] * 3, "std": [0.25, 0.0, 0.25]}),
    ("normalization", {"mean": [0.5] * 3, "std": [1e-308] * 3}),
    ("normalization", {"mean": [1e300] * 3, "std": [0.25] * 3}),
    ("image_size", [1, 1]),
    ("image_size", [30000, 30000]),
    ("image_size", [32.0, 32.0]),
    ("model_name", "x" * 10_000),
])
def test_out_of_bounds_preprocessing_is_refused_at_load_time(tmp_path, make_classifier, field, value):
    stem, sidecar = _saved(tmp_path, make_classifier)
    _edit(sidecar, **{field: value})
    with pytest.raises(CheckpointError, match=rf"clf\.json: field '{field}' is .*expected .*re-create"):
        read_sidecar(stem)


@pytest.mark.parametrize("outputs, names", [(7, 10), (10, 5)])
def test_head_outputs_must_equal_the_number_of_class_names(tmp_path, make_classifier, outputs, names):
    stem, sidecar = _saved(tmp_path, make_classifier, num_classes=outputs)
    _edit(sidecar, classnames=[f"c{i}" for i in range(names)])
    with pytest.raises(CheckpointError, match=rf"head has {outputs} outputs .* names {names} classes"):
        load_classifier(stem, verify=False)


@pytest.fixture
def scored(toy_cli):
    """The toy run with its zero-shot checkpoint, and ``derive(name, change)`` to save an altered copy."""
    run, common = toy_cli
    assert run("zeroshot", *common)[0] == 0
    checkpoints = run.root / "run" / "checkpoints"

    def derive(name: str, change) -> None:
        model, meta = load_classifier(checkpoints / "zeroshot")
        change(model)
        save_classifier(model, checkpoints / name, {"alpha": None})

    return run, common, derive


def test_evaluate_refuses_a_checkpoint_of_other_class_names(scored, one_line_error):
    run, common, derive = scored

    def reverse(model):
        model.info.classnames = list(reversed(model.info.classnames))

    derive("reversed", reverse)
    code, _, err = run("evaluate", "reversed", *common)
    one_line_error(code, err, "reversed.json", "class names", "'toy'", "--profile")
    assert run("evaluate", "zeroshot", "--no-record", *common)[0] == 0  # the right names still score


def test_evaluate_refuses_nan_weights(scored, one_line_error):
    run, common, derive = scored

    def poison(model):
        with torch.no_grad():
            model.head.weight[0, 0] = float("nan")

    derive("poisoned", poison)
    code, _, err = run("evaluate", "poisoned", *common)
    one_line_error(code, err, "poisoned.safetensors", "head.weight", "NaN", "scored")


def test_evaluate_refuses_a_bogus_method_before_any_work(toy_cli, one_line_error, monkeypatch):
    run, common = toy_cli
    import wiseft.steps.common as steps_common

    monkeypatch.setattr(steps_common, "evaluate", lambda *a, **k: pytest.fail("evaluation started"))
    started = time.monotonic()
    code, _, err = run("evaluate", "zeroshot", "--method", "bogus", *common)
    one_line_error(code, err, "--method 'bogus'", "finetuned")
    assert time.monotonic() - started < 5
