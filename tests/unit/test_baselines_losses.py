"""L2-SP penalties (paper Figs. 3c, 13), the LC distillation loss (Fig. 13) and LP-FT's start."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from wiseft.baselines.distill import DistillationLoss, distillation_loss, soft_cross_entropy
from wiseft.baselines.lpft import lpft_init
from wiseft.baselines.regularizers import l2sp_penalty, lc_l2sp_penalty
from wiseft.errors import IncompatibleStateError, WiseftError


def _close(actual: torch.Tensor, expected, tol: float = 1e-6) -> None:
    """allclose with a message; cheaper than torch.testing.assert_close, whose first call costs ~2 s of imports."""
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    assert actual.shape == expected.shape and torch.allclose(actual, expected, rtol=tol, atol=tol), (actual, expected)


class Head(torch.nn.Linear):
    def __init__(self, dim, classes, normalize=True):
        super().__init__(dim, classes)
        self.normalize = normalize

    def forward(self, x):
        return super().forward(F.normalize(x, dim=-1) if self.normalize else x)


class Classifier(torch.nn.Module):
    """Stand-in for ImageClassifier: an encoder and a head."""

    def __init__(self, dim=6, classes=4, normalize=True):
        super().__init__()
        self.image_encoder = torch.nn.Linear(5, dim)
        self.head = Head(dim, classes, normalize)

    def forward(self, x):
        return self.head(self.image_encoder(x))


# ----------------------------------------------------------------------------------------------- L2-SP
def test_l2sp_value_and_gradient_equal_the_formula():
    torch.manual_seed(0)
    model = Classifier()
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    lam = 0.3
    penalty = l2sp_penalty(theta0, lam)
    value = penalty(model)
    expected = lam * sum(((p - theta0[n]) ** 2).sum() for n, p in model.named_parameters())
    _close(value, expected)
    value.backward()
    for name, p in model.named_parameters():
        _close(p.grad, 2 * lam * (p.detach() - theta0[name]))


def test_l2sp_skips_frozen_and_unmatched_parameters_and_refuses_no_overlap():
    model = Classifier()
    theta0 = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("image_encoder")}
    model.image_encoder.bias.requires_grad_(False)
    with torch.no_grad():
        model.image_encoder.weight.add_(1.0)
        model.image_encoder.bias.add_(1.0)
        model.head.weight.add_(1.0)
    value = l2sp_penalty(theta0, 1.0)(model)  # only image_encoder.weight counts
    assert value.item() == pytest.approx(model.image_encoder.weight.numel())
    with pytest.raises(IncompatibleStateError, match="no trainable parameter"):
        l2sp_penalty({"other.weight": torch.zeros(1)}, 1.0)(model)
    with pytest.raises(IncompatibleStateError, match="same architecture"):
        l2sp_penalty({"head.weight": torch.zeros(3, 3)}, 1.0)(model)
    with pytest.raises(WiseftError, match="lambda"):
        l2sp_penalty(theta0, -1.0)


def test_lc_l2sp_regularises_only_the_head_weight():
    model = Classifier()
    w0 = model.head.weight.detach().clone()
    with torch.no_grad():
        model.head.weight.add_(0.5)
    penalty = lc_l2sp_penalty(w0, 2.0)
    value = penalty(model)
    assert value.item() == pytest.approx(2.0 * 0.25 * w0.numel())
    value.backward()
    _close(model.head.weight.grad, torch.full_like(w0, 2 * 2.0 * 0.5))
    assert model.head.bias.grad is None and model.image_encoder.weight.grad is None
    bare = torch.nn.Linear(6, 4)  # the LC loop may train a bare head on cached features
    assert lc_l2sp_penalty(bare.weight.detach(), 1.0, weight_name="weight")(bare).item() == 0.0
    with pytest.raises(IncompatibleStateError, match="no parameter"):
        lc_l2sp_penalty(w0, 1.0)(bare)


# ------------------------------------------------------------------------------------------ distillation
def test_distillation_loss_endpoints_and_mixture():
    torch.manual_seed(1)
    logits = torch.randn(8, 5, requires_grad=True)
    teacher = torch.randn(8, 5) * 3
    labels = torch.randint(0, 5, (8,))
    ce = F.cross_entropy(logits, labels)
    soft = -(F.softmax(teacher, -1) * F.log_softmax(logits, -1)).sum(-1).mean()  # by hand
    _close(distillation_loss(logits, labels, teacher, alpha=0.0), ce)
    _close(distillation_loss(logits, labels, teacher, alpha=1.0), soft)
    _close(distillation_loss(logits, labels, teacher, alpha=0.25), 0.75 * ce + 0.25 * soft)
    # with one-hot-like zero-shot targets the soft term is the label cross-entropy again
    sharp = F.one_hot(labels, 5).float() * 1e4
    _close(soft_cross_entropy(logits, sharp), ce)
    with pytest.raises(WiseftError, match="alpha"):
        distillation_loss(logits, labels, teacher, alpha=1.5)


def test_distillation_temperature_scales_both_logits_and_multiplies_by_t_squared():
    logits, teacher = torch.randn(4, 3), torch.randn(4, 3)
    t = 2.0
    by_hand = -(F.softmax(teacher / t, -1) * F.log_softmax(logits / t, -1)).sum(-1).mean() * t**2
    _close(soft_cross_entropy(logits, teacher, temperature=t), by_hand)
    with pytest.raises(WiseftError, match="temperature"):
        soft_cross_entropy(logits, teacher, temperature=0.0)


def test_distillation_loss_callable_runs_the_teacher_without_training_it():
    torch.manual_seed(2)
    student, teacher = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
    feats, labels = torch.randn(10, 6), torch.randint(0, 4, (10,))
    loss_fn = DistillationLoss(teacher, alpha=0.5)
    loss = loss_fn(student(feats), labels, feats)
    loss.backward()
    assert student.weight.grad is not None and teacher.weight.grad is None
    expected = distillation_loss(student(feats), labels, teacher(feats).detach(), alpha=0.5)
    _close(loss, expected)


# ------------------------------------------------------------------------------------------------ LP-FT
def test_lpft_starts_from_the_probe_head_and_leaves_the_zero_shot_model_alone():
    torch.manual_seed(3)
    zeroshot = Classifier()
    probe = Head(6, 4)
    with torch.no_grad():
        probe.weight.normal_()
        probe.bias.normal_()
    names = ["a", "b", "c", "d"]
    before = copy.deepcopy(zeroshot.state_dict())
    start = lpft_init(zeroshot, probe, classnames=names, probe_classnames=list(names))
    assert torch.equal(start.head.weight, probe.weight) and torch.equal(start.head.bias, probe.bias)
    assert torch.equal(start.image_encoder.weight, zeroshot.image_encoder.weight)  # zero-shot encoder
    assert all(torch.equal(v, zeroshot.state_dict()[k]) for k, v in before.items())  # the original is untouched
    assert start.head.weight.requires_grad and start.head.weight.data_ptr() != probe.weight.data_ptr()
    # the first fine-tuning step starts from the probe: the logits equal the probe on the zero-shot features
    x = torch.randn(3, 5)
    _close(start(x), probe(zeroshot.image_encoder(x)))


def test_lpft_accepts_a_state_dict_and_inplace():
    model = Classifier()
    sd = {"head.weight": torch.ones(4, 6), "head.bias": torch.zeros(4)}
    out = lpft_init(model, sd, inplace=True)
    assert out is model and torch.equal(model.head.weight, torch.ones(4, 6))


def test_lpft_checks_shapes_classes_and_normalisation():
    model = Classifier()
    with pytest.raises(IncompatibleStateError, match="probe weight"):
        lpft_init(model, Head(6, 3))
    with pytest.raises(IncompatibleStateError, match="class 1"):
        lpft_init(model, Head(6, 4), classnames=["a", "b", "c", "d"], probe_classnames=["a", "x", "c", "d"])
    with pytest.raises(IncompatibleStateError, match="4 classes"):
        lpft_init(model, Head(6, 4), classnames=["a", "b", "c", "d"], probe_classnames=["a", "b", "c"])
    with pytest.raises(IncompatibleStateError, match="normalize"):
        lpft_init(model, Head(6, 4, normalize=False))
    with pytest.raises(WiseftError, match="no linear head"):
        lpft_init(torch.nn.Linear(2, 2), Head(6, 4))
