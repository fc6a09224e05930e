"""The notebooks' device-independent regression check: the paper's claims, and key numbers within a tolerance.

The committed notebooks are checked in two tiers (``docs/notebooks.md``):

- the **exact tier** (CPU, the arithmetic the outputs were recorded with): nbval compares every printed table of
  the cells marked ``# NBVAL_CHECK_OUTPUT`` digit for digit;
- the **device tier** (a GPU runner: ``WISEFT_DEVICE=cuda bash scripts/run_tests.sh``): TF32/bf16 matmuls and
  nondeterministic kernels move accuracies by tenths of a point, so nbval blanks the numbers of those tables
  (``tests/notebooks/sanitize_device.cfg``) and the numbers are judged here instead.

:func:`check_run`, called by a CHECK cell at the end of ``04_interpolate`` and ``figures/table1``, prints one
verdict line per claim. The lines of a sound run say ``ok`` and hold nothing a device changes, so both tiers compare
them; a broken run (α applied reversed, a head left un-interpolated, a sweep off by more than the tolerance) prints
``FAIL`` with the value at fault, which neither tier's recorded output holds. The claims, per fine-tuning mode:

1. fine-tuning raises the reference accuracy;
2. the sweep's ends are the separately evaluated models: α = 0 the zero-shot, α = 1 the fine-tuned one
   (within the tolerance, on every dataset);
3. the best α on the mean of the reference and the average shift lies strictly inside (0, 1);
4. WiSE-FT at that α beats both ends on that mean;
5. every number of the run's paper tables (:func:`wiseft.figures.tables.run_numbers`: endpoints, every α of the
   sweeps, the optimal-α rows) lies within the tolerance (0.5 pp) of the values recorded for the profile and the
   device, ``notebooks/expected/<profile>-<device>.json`` (the CPU file when the device has none).

Recording: ``scripts/record_notebooks.sh`` sets ``WISEFT_RECORD_EXPECTED=1``, under which :func:`check_run` first
writes the run's values to the expected file of its profile and device, so the recorded CHECK cells say ``ok``;
``scripts/record_notebooks.sh --device cuda`` runs the pipeline on the GPU into a scratch folder and calls
``python -m wiseft.check record RUN_DIR --device cuda`` (the GPU tier's values, the CPU outputs left alone).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import WiseftError

log = logging.getLogger(__name__)

__all__ = ["TOLERANCE_PP", "RECORD_ENV", "EXPECTED_DIR", "EXPECTED_ENV", "expected_file", "key_numbers", "claims", "compare_numbers",
           "check_results", "check_run", "record_expected", "main"]

#: Largest difference (percentage points) between a number and its recorded value that still counts as the same.
TOLERANCE_PP = 0.5
#: Set to 1 (``scripts/record_notebooks.sh``): :func:`check_run` records the run's values before checking them.
RECORD_ENV = "WISEFT_RECORD_EXPECTED"
#: Where the expected values live, relative to the repository root (``$WISEFT_EXPECTED_DIR`` moves it).
EXPECTED_DIR = Path("notebooks") / "expected"
EXPECTED_ENV = "WISEFT_EXPECTED_DIR"
_MAX_LISTED = 8


def expected_file(profile: str, device: str, root: str | os.PathLike | None = None) -> Path:
    """``notebooks/expected/<profile>-<device>.json`` of the repository, else the CPU file of the profile.

    Args:
        profile: the profile's name.
        device: a device type (``cpu``, ``cuda``, ``mps``).
        root: the repository root (default: the one the notebooks run in, :func:`wiseft.paths.repo_root`);
            ``$WISEFT_EXPECTED_DIR``, when set, is the folder itself.
    """
    from .io import safe_name

    profile, device = safe_name(profile, "profile name"), safe_name(device, "device")
    if root is None and os.environ.get(EXPECTED_ENV):
        folder = Path(os.environ[EXPECTED_ENV]).expanduser()
    else:
        from .paths import repo_root

        folder = Path(root if root is not None else repo_root() or Path.cwd()) / EXPECTED_DIR
    own = folder / f"{profile}-{device}.json"
    return own if own.is_file() or device == "cpu" else folder / f"{profile}-cpu.json"


def key_numbers(df: pd.DataFrame) -> dict[str, float]:
    """The run's paper-table numbers (%), keyed ``method|mode|alpha|dataset`` (the optimal-α rows without α:
    a near tie may pick another α on another device; the value is what counts)."""
    from .figures.tables import run_numbers

    out = {}
    for r in run_numbers(df).itertuples(index=False):
        alpha = "" if r.method == "wiseft_opt" or pd.isna(r.alpha) else f"{float(r.alpha):g}"
        out[f"{r.method}|{r.mode}|{alpha}|{r.dataset}"] = round(float(r.value), 4)
    return out


def _names(modes: Sequence[str]) -> str:
    return ", ".join(m.upper() for m in modes)


def claims(df: pd.DataFrame, tolerance: float = TOLERANCE_PP) -> list[tuple[bool, str]]:
    """The paper's qualitative claims about a run, ``(holds, verdict line)`` each (see the module's list)."""
    from .figures import data as D
    from .figures.tables import headline

    st = D.settings_table(df)
    modes = D.modes_with_sweep(st)
    if not modes:
        return [(False, "FAIL  no WiSE-FT α sweep in the results; run the interpolate step")]
    head = headline(df)
    columns = [c for c in [*st.attrs["references"], *st.attrs["shifts"]] if c in st]
    out = []

    def claim(text: str, failures: list[str]) -> None:
        listed = failures[:4] + ([f"… and {len(failures) - 4} more"] if len(failures) > 4 else [])
        out.append((not failures, f"ok    {text}: {_names(modes)}" if not failures
                    else f"FAIL  {text}: " + "; ".join(listed)))

    claim("fine-tuning raises the reference accuracy",
          [f"{m.upper()} {head.loc[m.upper(), 'fine-tuned ref']:.1f} after, {head.loc[m.upper(), 'zero-shot ref']:.1f}"
           " before" for m in modes if not head.loc[m.upper(), "ref gain"] > 0])
    ends = []
    for mode in modes:
        curve = D.sweep(st, mode)
        for alpha, point in ((0.0, D.zeroshot_point(st)), (1.0, D.finetuned_point(st, mode))):
            at = curve[np.isclose(curve["alpha"], alpha)]
            if point is None or at.empty:
                ends.append(f"{mode.upper()} α={alpha:g}: no {'zero-shot' if alpha == 0 else 'fine-tuned'} model or "
                            "no sweep row to compare")
                continue
            for c in columns:
                got, want = 100 * float(at[c].iloc[-1]), 100 * float(point[c])
                if not abs(got - want) <= tolerance:
                    ends.append(f"{mode.upper()} α={alpha:g} on {c}: {got:.1f}, the "
                                f"{'zero-shot' if alpha == 0 else 'fine-tuned'} model {want:.1f}")
    claim("the sweep's ends are the zero-shot (α = 0) and fine-tuned (α = 1) models", ends)
    claim("the best α (mean of reference and shifts) lies strictly inside (0, 1)",
          [f"{m.upper()} best α = {head.loc[m.upper(), 'best α']}" for m in modes
           if not 0.0 < float(head.loc[m.upper(), "best α"]) < 1.0])
    claim("WiSE-FT at that α beats both ends on that mean",
          [f"{m.upper()} margin {head.loc[m.upper(), 'margin over ends']:.2f} pp" for m in modes
           if not head.loc[m.upper(), "margin over ends"] > 0])
    return out


def _label(key: str) -> str:
    method, mode, alpha, dataset = key.split("|")
    return " ".join(p for p in (method, mode.upper(), f"α={alpha}" if alpha else "", dataset) if p)


def compare_numbers(measured: dict[str, float], expected: dict[str, float], tolerance: float = TOLERANCE_PP
                    ) -> tuple[bool, list[str]]:
    """Every expected number against the measured one; ``(all within tolerance, verdict lines)``."""
    bad = []
    for key, want in expected.items():
        got = measured.get(key)
        if got is None or not math.isfinite(got) or not abs(got - want) <= tolerance:
            shown = "missing" if got is None else f"{got:.2f}"
            bad.append(f"{_label(key)}: {shown} (recorded {want:.2f})")
    extra = sorted(set(measured) - set(expected))
    if not bad and not extra:
        return True, [f"ok    {len(expected)} numbers within {tolerance:g} pp of the recorded ones"]
    lines = [f"FAIL  {len(bad)} of {len(expected)} numbers off by more than {tolerance:g} pp"
             + (f", {len(extra)} not recorded" if extra else "")]
    lines += [f"      {b}" for b in bad[:_MAX_LISTED]] + (
        [f"      … and {len(bad) - _MAX_LISTED} more"] if len(bad) > _MAX_LISTED else [])
    return False, lines


def check_results(df: pd.DataFrame, expected: dict | None, run_id: str | None = None) -> str:
    """The verdict on a run's results rows (see the module docstring), one line per claim."""
    tolerance = float((expected or {}).get("tolerance_pp", TOLERANCE_PP))
    lines = [line for _, line in claims(df, tolerance)]
    if expected is None:
        lines.append("(no recorded values for this profile: the claims only)")
    elif run_id is not None and expected.get("run_id") not in (None, run_id):
        lines.append("(recorded for another setting of the profile: the claims only)")
    else:
        lines += compare_numbers(key_numbers(df), expected["numbers"], tolerance)[1]
    return "\n".join(lines)


def _read_expected(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise WiseftError(f"{path}: not readable JSON ({e}); record it again with scripts/record_notebooks.sh") from e
    if not isinstance(data, dict) or not isinstance(data.get("numbers"), dict):
        raise WiseftError(f"{path}: no 'numbers' object; record it again with scripts/record_notebooks.sh")
    return data


def check_run(ctx, expected: str | os.PathLike | None = None) -> str:
    """The verdict on a run (:func:`check_results`) against the values recorded for its profile and device.

    Args:
        ctx: the run (:class:`~wiseft.run.RunContext`).
        expected: the expected-values file (default: :func:`expected_file` of the run's profile and device).
    """
    from .notebook import run_results

    df = run_results(ctx)
    device = ctx.device.type
    path = Path(expected) if expected is not None else expected_file(ctx.profile.name, device)
    if os.environ.get(RECORD_ENV) == "1":
        path = path if expected is not None else path.with_name(f"{ctx.profile.name}-{device}.json")
        record_expected(df, path, profile=ctx.profile.name, device=device, run_id=ctx.run_id)
        log.info("recorded the expected values of %s in %s", ctx.profile.name, path)
    log.info("checking %s against %s", ctx.dir, path)
    return check_results(df, _read_expected(path), ctx.run_id)


def record_expected(df: pd.DataFrame, path: str | os.PathLike, *, profile: str, device: str, run_id: str,
                    tolerance: float = TOLERANCE_PP) -> Path:
    """Write the expected values of a finished run (sorted keys, so a re-recording diffs cleanly)."""
    from .io import atomic_write_json

    numbers = key_numbers(df)
    if not numbers:
        raise WiseftError(f"no paper-table numbers in the results of profile {profile}; run the pipeline first")
    return atomic_write_json(path, {"profile": profile, "device": device, "run_id": run_id,
                                    "tolerance_pp": tolerance, "numbers": numbers})


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wiseft.check record RUN_DIR [--device cuda]`` / ``python -m wiseft.check run RUN_DIR``."""
    from .notebook import open_run
    from .paths import display_path

    parser = argparse.ArgumentParser(prog="python -m wiseft.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("record", "run"), help="record the expected values, or check a run")
    parser.add_argument("run_dir", help="a finished run folder (runs/mini)")
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--device", default="cpu", help="the device the run was made on (names the file)")
    parser.add_argument("--out", default=None, help="where to write (default notebooks/expected/<profile>-<device>.json)")
    args = parser.parse_args(argv)
    try:
        ctx = open_run(args.profile, [], args.run_dir, "cpu")
        if args.action == "run":
            verdict = check_run(ctx, expected_file(args.profile, args.device))
            print(verdict)
            return 1 if "FAIL" in verdict else 0
        from .notebook import run_results

        out = Path(args.out) if args.out else expected_file(args.profile, args.device).with_name(
            f"{args.profile}-{args.device}.json")
        written = record_expected(run_results(ctx), out, profile=ctx.profile.name, device=args.device,
                                  run_id=ctx.run_id)
        print(f"wrote {display_path(written)}")
    except WiseftError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
