"""The device-independent check (wiseft.check): a sound run says ok, a planted regression says FAIL, and both
tiers' nbval sanitizers (the exact tier's and the device tier's, read as nbval reads them) keep the difference."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nbval.plugin import get_sanitize_patterns

from tests.helpers.synth_results import core_rows
from wiseft.check import check_results, claims, expected_file, key_numbers, record_expected

REPO = Path(__file__).resolve().parents[2]
TIERS = {"exact": REPO / "tests" / "notebooks" / "sanitize.cfg",
         "device": REPO / "tests" / "notebooks" / "sanitize_device.cfg"}


def nbval_view(text: str, tier: str) -> str:
    """What nbval compares of a cell's output under a tier's sanitize file (nbval's own parser, its re.sub)."""
    for regex, replace in get_sanitize_patterns(TIERS[tier].read_text()):
        text = re.sub(regex, replace, text)
    return text


@pytest.fixture(scope="module")
def sound():
    df = pd.DataFrame(core_rows())
    return df, {"run_id": "synthetic-0", "tolerance_pp": 0.5, "numbers": key_numbers(df)}


def _reversed_alpha(df: pd.DataFrame) -> pd.DataFrame:
    """WiSE-FT with α applied reversed: the row of α holds θ_(1−α)."""
    out = df.copy()
    sweep = out["method"] == "wiseft"
    out.loc[sweep, "alpha"] = (1 - out.loc[sweep, "alpha"]).round(2)
    return out


def _head_not_interpolated(df: pd.DataFrame) -> pd.DataFrame:
    """The LC sweep with the head left at θ₀: every α scores as the zero-shot model."""
    out = df.copy()
    zs = out[(out["method"] == "zeroshot") & (out["model"] == "ViT-B-16")].set_index("dataset")["value"]
    lc = (out["method"] == "wiseft") & (out["mode"] == "lc")
    out.loc[lc, "value"] = out.loc[lc, "dataset"].map(zs)
    return out


def _jitter(df: pd.DataFrame, pp: float) -> pd.DataFrame:
    """Every sweep accuracy moved by ±pp percentage points, as another device's arithmetic would."""
    out = df.copy()
    sweep = out["method"] == "wiseft"
    signs = np.where(np.arange(sweep.sum()) % 2 == 0, 1.0, -1.0)
    out.loc[sweep, "value"] = out.loc[sweep, "value"] + signs * pp / 100
    return out


def test_a_sound_run_says_ok_on_every_line(sound):
    df, expected = sound
    verdict = check_results(df, expected, "synthetic-0")
    lines = verdict.splitlines()
    assert len(lines) == 5 and all(line.startswith("ok    ") for line in lines), verdict
    assert "best α (mean of reference and shifts) lies strictly inside (0, 1): E2E, LC" in verdict


@pytest.mark.parametrize("plant, failing", [
    (_reversed_alpha, ["fine-tuning raises the reference accuracy", "the sweep's ends are the zero-shot",
                       "numbers off by more than 0.5 pp"]),
    (_head_not_interpolated, ["the best α (mean of reference and shifts) lies strictly inside (0, 1): LC best α = 0",
                              "WiSE-FT at that α beats both ends on that mean: LC margin",
                              "numbers off by more than 0.5 pp"]),
])
@pytest.mark.parametrize("tier", ["exact", "device"])
def test_a_planted_regression_fails_both_tiers(sound, plant, failing, tier):
    df, expected = sound
    recorded = check_results(df, expected, "synthetic-0")
    fresh = check_results(plant(df), expected, "synthetic-0")
    for text in failing:
        assert any(line.startswith("FAIL") and text in line for line in fresh.splitlines()), (text, fresh)
    assert nbval_view(fresh, tier) != nbval_view(recorded, tier)


def test_the_device_tier_tolerates_what_a_device_changes_and_no_more(sound):
    df, expected = sound
    recorded = check_results(df, expected, "synthetic-0")
    near = check_results(_jitter(df, 0.3), expected, "synthetic-0")
    far = check_results(_jitter(df, 0.8), expected, "synthetic-0")
    assert near == recorded and nbval_view(near, "device") == nbval_view(recorded, "device")
    assert "FAIL  " in far and nbval_view(far, "device") != nbval_view(recorded, "device")
    # the tables printed beside the check differ in their digits: the exact tier sees it, the device tier not
    table = lambda d: d[d["method"] == "wiseft"]["value"].round(3).to_string()  # noqa: E731
    assert nbval_view(table(_jitter(df, 0.3)), "exact") != nbval_view(table(df), "exact")
    assert nbval_view(table(_jitter(df, 0.3)), "device") == nbval_view(table(df), "device")


def test_the_device_tier_keeps_every_rule_of_the_exact_tier():
    exact = get_sanitize_patterns(TIERS["exact"].read_text())
    device = get_sanitize_patterns(TIERS["device"].read_text())
    assert device[:len(exact)] == exact and len(device) == len(exact) + 1


def test_without_recorded_values_or_for_another_setting_only_the_claims_are_checked(sound):
    df, expected = sound
    assert check_results(df, None).splitlines()[-1] == "(no recorded values for this profile: the claims only)"
    other = check_results(df, expected, "synthetic-1")
    assert other.splitlines()[-1] == "(recorded for another setting of the profile: the claims only)"
    assert claims(pd.DataFrame(columns=df.columns))[0][1].startswith("FAIL  no WiSE-FT α sweep")


def test_expected_files_are_chosen_by_device_and_recorded_sorted(tmp_path, sound, monkeypatch):
    df, _ = sound
    monkeypatch.delenv("WISEFT_EXPECTED_DIR", raising=False)
    folder = tmp_path / "notebooks" / "expected"
    assert expected_file("mini", "cuda", tmp_path) == folder / "mini-cpu.json"  # no GPU values: the CPU ones
    record_expected(df, folder / "mini-cuda.json", profile="mini", device="cuda", run_id="r")
    assert expected_file("mini", "cuda", tmp_path) == folder / "mini-cuda.json"
    data = json.loads((folder / "mini-cuda.json").read_text())
    assert data["device"] == "cuda" and list(data["numbers"]) == sorted(data["numbers"])
    assert data["numbers"]["wiseft|e2e|0.5|imagenet"] == pytest.approx(100 * (0.68 + 0.81) / 2 + 4, abs=1e-3)
    monkeypatch.setenv("WISEFT_EXPECTED_DIR", str(tmp_path / "elsewhere"))
    assert expected_file("mini", "cpu") == tmp_path / "elsewhere" / "mini-cpu.json"


def test_the_committed_cpu_values_of_mini_pass_their_own_claims():
    data = json.loads((REPO / "notebooks" / "expected" / "mini-cpu.json").read_text())
    numbers = data["numbers"]
    for mode in ("e2e", "lc"):
        ends = [numbers[f"wiseft|{mode}|{a}|avg"] for a in ("0", "1")]
        best = max(v for k, v in numbers.items() if k.startswith(f"wiseft|{mode}|") and k.endswith("|avg"))
        assert best > max(ends) and numbers[f"wiseft|{mode}|0|world-print"] < numbers[f"wiseft|{mode}|1|world-print"]


def test_the_command_line_records_then_checks_a_run_folder(tmp_path, sound, capsys, monkeypatch):
    from wiseft.check import main
    from wiseft.results import ResultsStore

    df, _ = sound
    run = tmp_path / "run"
    rows = lambda frame: frame.astype(object).where(frame.notna(), None).to_dict("records")  # noqa: E731
    ResultsStore(run / "results.jsonl").append(rows(df))
    monkeypatch.setenv("WISEFT_EXPECTED_DIR", str(tmp_path / "expected"))
    assert main(["record", str(run), "--device", "cuda"]) == 0
    assert (tmp_path / "expected" / "mini-cuda.json").is_file()
    assert main(["run", str(run), "--device", "cuda"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("ok    ")
    ResultsStore(run / "results.jsonl").append(rows(_reversed_alpha(df)))  # replaces the sweep's rows
    assert main(["run", str(run), "--device", "cuda"]) == 1
    assert "FAIL  the sweep's ends" in capsys.readouterr().out
    (tmp_path / "expected" / "mini-cuda.json").write_text("{\"numbers\": [1, 2]}")
    assert main(["run", str(run), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "mini-cuda.json: no 'numbers' object" in err and "\n" not in err
