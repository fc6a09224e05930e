"""Check a student's weight interpolation θ_α = (1 − α)·θ₀ + α·θ₁ (assignment 1, Task 1).

The student hands in θ_α at asymmetric α values and the two ends (0, 0.25, 0.8, 1 by default), as a mapping
``{alpha: state_dict}`` or a function ``interpolate(theta_0, theta_1, alpha)`` that :func:`check_interpolation`
calls. At α = 0.5 alone a reversed mix, α·θ₀ + (1 − α)·θ₁, gives the right tensors, so a check there cannot see the
most common mistake.

The hints name what the tensors show: a reversed α (every tensor equals θ at 1 − α), a partial mix (some groups of
keys — the classification head ``head.*``, the image encoder ``image_encoder.*`` — mixed, the rest an endpoint's
unchanged), the endpoints' weights returned unmixed, or θ₀/θ₁ changed in place.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from .report import Check

__all__ = ["CHECK_ALPHAS", "check_interpolation"]

#: The α values the check calls the student's function at: asymmetric ones, where reversal shows, and the ends.
CHECK_ALPHAS = (0.0, 0.25, 0.8, 1.0)

PASSED = "Your θ_α matches wiseft's in every tensor at α = {alphas}."


def _group(key: str) -> str:
    return key.split(".", 1)[0] + ".*"


def _fingerprint(sd: Mapping[str, Any]) -> list[tuple[float, float]]:
    return [(float(t.double().sum()), float(t.double().square().sum())) for t in sd.values()]


def _same(a: Any, b: Any, tol: float) -> bool:
    import torch

    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), atol=tol, rtol=1e-5))


def _describe_partial(got: Mapping[str, Any], want: Mapping[str, Any], theta_0: Mapping[str, Any],
                      theta_1: Mapping[str, Any], tol: float) -> str | None:
    """At one 0 < α < 1: when every wrong tensor is an endpoint's unchanged and some are mixed, say which."""
    wrong = [k for k in want if not _same(got[k], want[k], tol)]
    kept = {k: next((name for name, end in (("θ₀", theta_0), ("θ₁", theta_1)) if _same(got[k], end[k], tol)), None)
            for k in wrong}
    if not wrong or None in kept.values():
        return None
    mixed = [k for k in want if k not in kept]
    kept_groups = sorted({_group(k) for k in wrong})
    ends = " or ".join(sorted(set(kept.values())))
    if not mixed:
        return (f"your θ_α is {ends} unchanged at every tensor: return new tensors "
                "(1 − α)·θ₀[k] + α·θ₁[k] for every key k.")
    mixed_groups = sorted({_group(k) for k in mixed} - set(kept_groups)) or sorted({_group(k) for k in mixed})
    what = "the classification head" if mixed_groups == ["head.*"] else ", ".join(mixed_groups)
    return (f"you mixed only {what} ({len(mixed)} tensors); the other {len(wrong)} tensors "
            f"({', '.join(kept_groups)}) are {ends}'s unchanged. Mix every key of the state dict, the image "
            "encoder and the head.")


def check_interpolation(interpolate: Callable[[Any, Any, float], Mapping[str, Any]] | Mapping[float, Any],
                        theta_0: Mapping[str, Any],
                        theta_1: Mapping[str, Any], alphas: Sequence[float] = CHECK_ALPHAS,
                        tol: float = 1e-5) -> Check:
    """Compare the student's θ_α at ``alphas`` with wiseft's.

    Args:
        interpolate: the student's ``{alpha: θ_α}`` for every α of ``alphas``, or a function
            ``interpolate(theta_0, theta_1, alpha)`` returning θ_α as a state dict (called at each α).
        theta_0, theta_1: the zero-shot and fine-tuned state dicts.
        alphas: where to call it; keep asymmetric values (a reversed α is invisible at 0.5).
        tol: allowed absolute difference per element.

    Returns:
        A :class:`~wiseft.course.report.Check`; its ``table`` has one row per α: ``alpha, wrong, of``.
    """
    import pandas as pd

    from ..interpolation import interpolate_state_dicts

    wanted = ", ".join(f"{a:g}" for a in alphas)
    by_alpha = isinstance(interpolate, Mapping) and all(isinstance(a, (int, float)) for a in interpolate)
    if not callable(interpolate) and not by_alpha:
        return Check(False, summary=f"expected {{alpha: θ_α}} or a function, got a {type(interpolate).__name__}.",
                     hints=[f"give θ_α at every α = {wanted}, as a dict {{alpha: state dict}}: at one α (0.5 above "
                            "all) a reversed mix can look right."])
    if by_alpha:
        absent = [a for a in alphas if not any(abs(float(k) - a) < 1e-9 for k in interpolate)]
        if absent:
            return Check(False, summary="your dict has no θ_α at α = " + ", ".join(f"{a:g}" for a in absent) + ".",
                         hints=[f"compute θ_α for every α = {wanted}."])
    expected = {a: interpolate_state_dicts(theta_0, theta_1, a) for a in alphas}
    before = (_fingerprint(theta_0), _fingerprint(theta_1))
    if by_alpha:
        got = {a: next(v for k, v in interpolate.items() if abs(float(k) - a) < 1e-9) for a in alphas}
    else:
        got = {a: interpolate(theta_0, theta_1, a) for a in alphas}
    messages: list[str] = []
    hints: list[str] = []
    rows = []
    if (_fingerprint(theta_0), _fingerprint(theta_1)) != before:
        hints.append("your function changed theta_0 or theta_1 in place (an in-place op such as mul_ or +=, or a "
                     "tensor of theta_0 returned and then modified): build new tensors. Reload θ₀ and θ₁ and rerun.")
    for a in alphas:
        mine, want = got[a], expected[a]
        if not isinstance(mine, Mapping):
            messages.append(f"α={a:g}: your function returned a {type(mine).__name__}, not a dict of tensors.")
            continue
        missing = [k for k in want if k not in mine]
        extra = [k for k in mine if k not in want]
        if missing:
            messages.append(f"α={a:g}: {len(missing)} tensor(s) missing, e.g. {missing[0]!r}.")
        if extra:
            messages.append(f"α={a:g}: {len(extra)} unexpected key(s), e.g. {extra[0]!r}.")
        wrong = [k for k in want if k in mine and not _same(mine[k], want[k], tol)]
        rows.append({"alpha": a, "wrong": len(wrong) + len(missing), "of": len(want)})
        if wrong:
            messages.append(f"α={a:g}: {len(wrong)} of {len(want)} tensors differ from (1 − α)·θ₀ + α·θ₁, "
                            f"e.g. {wrong[0]!r}.")
    if messages:
        complete = all(isinstance(got[a], Mapping) and set(got[a]) == set(expected[a]) for a in alphas)
        if not complete:
            hints.append("return a dict with exactly the keys of theta_0 — every tensor of the image encoder and the "
                         "head, none added.")
        elif all(all(_same(got[a][k], interpolate_state_dicts(theta_0, theta_1, 1 - a)[k], tol) for k in got[a])
                 for a in alphas):
            hints.append("your θ_α equals wiseft's at 1 − α: the mixing is reversed. WiSE-FT is "
                         "θ_α = (1 − α)·θ₀ + α·θ₁, so α = 0 gives the zero-shot θ₀ and α = 1 the fine-tuned θ₁.")
        else:
            partial = [_describe_partial(got[a], expected[a], theta_0, theta_1, tol) for a in alphas if 0 < a < 1]
            hints += list(dict.fromkeys(p for p in partial if p))[:1]
            for a, name in ((0.0, "θ₀ (zero-shot)"), (1.0, "θ₁ (fine-tuned)")):
                if a in got and any(r["alpha"] == a and r["wrong"] for r in rows):
                    hints.append(f"at α = {a:g} your θ_α must be exactly {name}.")
    n_bad = sum(1 for r in rows if r["wrong"]) + sum(1 for a in alphas if not isinstance(got[a], Mapping))
    return Check(ok=not messages and not hints, passed=PASSED.format(alphas=wanted),
                 summary=f"Your θ_α is off at {n_bad} of the {len(alphas)} α values checked:",
                 messages=messages, hints=hints, table=pd.DataFrame(rows, columns=["alpha", "wrong", "of"]))
