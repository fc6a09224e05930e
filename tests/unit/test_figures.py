"""Figures and tables from synthetic results shaped like real runs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tests.helpers import synth_results as S  # noqa: E402
from wiseft.errors import WiseftError  # noqa: E402
from wiseft.figures import (get_figure, list_figures, load_run_results, save_figure, save_table)  # noqa: E402
from wiseft.figures import data as D  # noqa: E402
from wiseft.figures import tables as T  # noqa: E402
from wiseft.robustness import logit  # noqa: E402
from wiseft.figures.curves import kshot_gains  # noqa: E402
from wiseft.results import ResultsStore  # noqa: E402


@pytest.fixture(scope="module")
def df():
    return S.full_frame()


def _data_for(name, df):
    spec = get_figure(name)
    if spec.source == "analyses":
        return S.analyses_frame()
    if spec.scope == "suite":
        return S.transfer_frame()
    if name in ("fig9", "table6"):
        return S.further_shift_frame()
    return df


@pytest.fixture(scope="module")
def drawn(df):
    """Each entry drawn once from its full data and shared by the tests (drawing dominates the runtime)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = get_figure(name).draw(_data_for(name, df))
        return cache[name]

    yield get
    plt.close("all")


def _labels(ax):
    return set(ax.get_legend_handles_labels()[1])


# --------------------------------------------------------------------------------------------- registry
def test_registry_has_the_papers_figures():
    names = set(list_figures())
    assert {"fig1", "fig3", "fig5", "fig6", "fig7", "fig9", "fig10", "fig11", "fig12", "fig13", "fig16", "fig17",
            "table1", "sweep_table", "table6", "table2"} <= names
    assert set(list_figures("suite")) == {"fig16", "table2"}


def test_unknown_figure_lists_known_names():
    with pytest.raises(WiseftError, match="fig1.*table1"):
        get_figure("fig99")


@pytest.mark.parametrize("name", list_figures())
def test_every_figure_draws_from_full_data(name, df, drawn):
    spec = get_figure(name)
    assert spec.requires(_data_for(name, df)) is None
    out = drawn(name)
    assert isinstance(out, Figure if spec.kind == "figure" else pd.DataFrame)
    if spec.kind == "table":
        assert out.notna().to_numpy().any()


@pytest.mark.parametrize("name", list_figures())
def test_every_figure_says_what_is_missing(name):
    spec = get_figure(name)
    empty = pd.DataFrame(columns=["dataset", "measure", "value"]) if spec.source == "analyses" else S.frame([])
    reason = spec.requires(empty)
    assert isinstance(reason, str) and reason


def test_requires_names_the_missing_method(df):
    core_only = S.frame(S.core_rows())
    assert "kshot" in get_figure("fig17").requires(core_only)
    assert "variants" in get_figure("fig3").requires(core_only)
    assert "ema_biased" in get_figure("fig12").requires(core_only)
    assert "further shifts" in get_figure("fig9").requires(df)
    assert "output-space" in get_figure("fig10").requires(core_only)
    assert "columns" in get_figure("fig5").requires(pd.DataFrame({"dataset": ["a"], "value": [1.0]}))
    no_shift = S.frame([r for r in S.core_rows() if r["dataset"] == S.REF])
    assert "no distribution shifts" in get_figure("fig1").requires(no_shift)


# ----------------------------------------------------------------------------------------- wide table
def test_settings_table_averages_and_dedupes():
    rows = S.core_rows()
    dup = dict(rows[0], value=0.5)  # a re-evaluated zero-shot ImageNet row: the last one wins
    st = D.settings_table(S.frame(rows + [dup]))
    zs = D.zeroshot_point(st, ("ViT-B-16", "openai"))
    assert zs["imagenet"] == pytest.approx(0.5)
    assert st.attrs["reference"] == "imagenet" and st.attrs["shifts"] == S.SHIFTS
    ft = D.finetuned_point(st, "e2e")
    expected_avg = np.mean([S.acc(d, "e2e", 1.0) for d in S.SHIFTS])
    assert ft[D.AVG_SHIFTS] == pytest.approx(expected_avg)
    assert ft[D.AVG] == pytest.approx((S.acc("imagenet", "e2e", 1.0) + expected_avg) / 2)


def test_subsampled_reference_mapping():
    ds = ["imagenet", "imagenet-r", "objectnet", "imagenet-sub-r", "imagenet-sub-objectnet"]
    assert D.subsampled_reference(ds, "imagenet", "imagenet-r") == "imagenet-sub-r"
    assert D.subsampled_reference(ds, "imagenet", "objectnet") == "imagenet-sub-objectnet"
    assert D.subsampled_reference(ds, "imagenet", "imagenet-a") == "imagenet"


# ----------------------------------------------------------------------------------------------- Fig. 1
_ER_LINE = "effective-robustness fit (zero-shot models) (95% band)"


def test_fig1_series_axes_and_fit(df):
    third = [S._row("zeroshot", None, None, d, S.ACC[d][0] - 0.05 + (0.01 if d == S.REF else 0.0), model="RN101")
             for d in [S.REF, *S.SHIFTS]]
    fig = get_figure("fig1").draw(pd.concat([df, S.frame(third)], ignore_index=True))
    ax = fig.axes[0]
    assert ax.get_xscale() == "logit" and ax.get_yscale() == "logit"
    assert all(t.get_text().endswith("%") for t in ax.get_xticklabels() if t.get_text())
    assert {"zero-shot", "fine-tuned (E2E)", "fine-tuned (LC)", "WiSE-FT (E2E)", "WiSE-FT (LC)", "α = 0.5", "y = x",
            _ER_LINE} <= _labels(ax)
    # The line is the least-squares fit through the three zero-shot models (ViT-B-16, RN50, RN101) in logit space.
    line = next(l for l in ax.get_lines() if l.get_label() == _ER_LINE)
    x, y = line.get_xdata(), line.get_ydata()
    pts = [(S.ACC["imagenet"][0] - off + bump, np.mean([S.ACC[d][0] - off for d in S.SHIFTS]))
           for off, bump in ((0.0, 0.0), (0.1, 0.0), (0.05, 0.01))]
    slope, intercept = np.polyfit(logit([p[0] for p in pts]), logit([p[1] for p in pts]), 1)
    assert np.allclose(logit(y), slope * logit(x) + intercept, atol=1e-6)
    assert ax.collections and any(c.get_alpha() == pytest.approx(0.15) for c in ax.collections)  # the 95% band
    # The WiSE-FT E2E curve has the 21 α values; its α = 0.5 point is marked.
    curve = next(l for l in ax.get_lines() if l.get_label() == "WiSE-FT (E2E)")
    assert len(curve.get_xdata()) == 21
    assert len(fig.axes) == 2  # with the zoom panel
    plt.close(fig)


def test_fig1_points_carry_95_percent_intervals(drawn):
    ax = drawn("fig1").axes[0]
    bars = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
    assert bars, "no error bars on the zero-shot and fine-tuned points"
    # n = 1000 at ~68%: the exact interval is about ±3 pp wide on the reference axis.
    segs = bars[0].lines[2][0].get_segments()
    width = segs[0][1][0] - segs[0][0][0]
    assert 0.04 < width < 0.08


def test_fit_lines_come_from_wiseft_robustness(monkeypatch):
    """The figures draw the fit of :mod:`wiseft.robustness` (no private copy): a replaced fit shows in the line."""
    import wiseft.robustness as R
    from wiseft.figures import style

    assert style.fit_logit_line is R.fit_logit_line and style.logit is R.logit and style.inv_logit is R.inv_logit
    calls = []

    def spy(ref, shift):
        calls.append((list(ref), list(shift)))
        return R.LogitFit(slope=1.0, intercept=0.5, n=len(ref), r2=1.0)

    monkeypatch.setattr(style, "fit_logit_line", spy)
    fig, ax = plt.subplots()
    ax.set_xlim(0.2, 0.8)
    assert style.draw_fit(ax, [0.3, 0.6], [0.2, 0.5], "fit", "k") == (1.0, 0.5)
    x, y = ax.get_lines()[0].get_data()
    assert calls == [([0.3, 0.6], [0.2, 0.5])]
    assert np.allclose(R.logit(y), R.logit(x) + 0.5)
    monkeypatch.undo()
    # the library's error for equal reference accuracies means "no line", not a crash
    assert style.draw_fit(ax, [0.4, 0.4], [0.3, 0.5], "none", "k") is None
    plt.close(fig)


def test_fig1_single_zero_shot_model_draws_no_fit_and_baseline_csv_adds_groups(tmp_path):
    rows = [r for r in S.core_rows() if r["model"] != "RN50"]
    csv = tmp_path / "models.csv"
    recs = []
    for i, off in enumerate((0.0, 0.05, 0.1)):
        for d in [S.REF, *S.SHIFTS]:
            recs.append(dict(name=f"resnet{i}", group="standard ImageNet models", dataset=d,
                             top1=100 * (0.7 + off) if d == S.REF else 100 * (0.4 + off)))
    pd.DataFrame(recs).to_csv(csv, index=False)
    fig = get_figure("fig1").draw(S.frame(rows), zoom=False)
    assert _ER_LINE not in _labels(fig.axes[0])
    assert any("no effective-robustness line: 1 zero-shot model" in t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
    fig = get_figure("fig1").draw(S.frame(rows), baseline_models=str(csv), zoom=False)
    labels = _labels(fig.axes[0])
    plt.close(fig)
    assert {"standard ImageNet models", "linear fit (standard ImageNet models) (95% band)"} <= labels


# ------------------------------------------------------------------------------------------ Figs. 6, 7
def test_fig6_panels_have_the_endpoint_line_and_better_endpoint(drawn):
    fig = drawn("fig6")
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == [D.display_name(d) for d in [S.REF, *S.SHIFTS]]
    r = axes[2]  # ImageNet-R: zero-shot is the better endpoint
    lines = {l.get_label(): l for l in r.get_lines()}
    assert lines["better endpoint"].get_ydata()[0] == pytest.approx(100 * S.ACC["imagenet-r"][0])
    assert list(lines["(1−α)·Acc(θ₀) + α·Acc(θ₁)"].get_ydata()) == pytest.approx(
        [100 * S.acc("imagenet-r", "e2e", 0), 100 * S.acc("imagenet-r", "e2e", 1)])


def test_fig7_uses_class_subsampled_reference(drawn):
    fig = drawn("fig7")
    by_title = {a.get_title(): a for a in fig.axes if a.get_visible()}
    assert len(by_title) == len(S.SHIFTS)
    assert "class-subsampled" in by_title["ImageNet-R"].get_xlabel()
    assert "class-subsampled" in by_title["ObjectNet"].get_xlabel()
    assert "class-subsampled" not in by_title["ImageNetV2"].get_xlabel()
    assert by_title["ImageNet-A"].get_xscale() == "logit"


def test_fig10_and_fig13_show_baselines_beside_wiseft(drawn):
    ax = drawn("fig10").axes[0]
    assert {"WiSE-FT (E2E)", "output-space ensemble (logits)"} <= _labels(ax)
    fig = drawn("fig13")
    titles = [a.get_title() for a in fig.axes if a.get_visible()]
    assert len(titles) == 6 and titles[0].startswith("Random interpolation")
    for ax in fig.axes:
        if ax.get_visible():
            assert any(l.get_label().startswith("WiSE-FT") for l in ax.get_lines())


def test_fig17_optimal_alpha_per_k_by_hand(df, drawn):
    gains = kshot_gains(df)
    for k in (1, 5, 10, 25):
        part = gains[(gains["shots"] == k) & (gains["alpha"] != "optimal")]
        best = gains[(gains["shots"] == k) & (gains["alpha"] == "optimal")].iloc[0]
        assert best["acc"] == pytest.approx(part["acc"].max())
        lc = part[part["alpha"] == "1"]["acc"].iloc[0]
        assert best["gain_lc"] == pytest.approx(best["acc"] - lc)
        assert part[part["alpha"] == "0"]["gain_zeroshot"].iloc[0] == pytest.approx(0.0)
    ax = drawn("fig17").axes[0]
    assert ax.get_xscale() == "log"


# ---------------------------------------------------------------------------------------------- tables
def test_table1_optimal_alpha_is_one_per_column_by_hand(df):
    table = T.table1(df)
    assert list(table.index) == ["Zero-shot", "Fine-tuned LC", "Fine-tuned E2E", "WiSE-FT LC, α=0.5",
                                 "WiSE-FT LC, optimal α", "WiSE-FT E2E, α=0.5", "WiSE-FT E2E, optimal α"]
    assert list(table.columns) == [S.REF, *S.SHIFTS, D.AVG_SHIFTS, D.AVG]
    for mode in ("e2e", "lc"):
        for d in [S.REF, *S.SHIFTS]:
            values = [S.acc(d, mode, a) for a in S.ALPHAS]
            i = int(np.argmax(values))
            assert table.attrs["optimal_alpha"][mode][d] == pytest.approx(S.ALPHAS[i])
            assert table.loc[f"WiSE-FT {mode.upper()}, optimal α", d] == pytest.approx(100 * values[i])
        avg = [np.mean([S.acc(d, mode, a) for d in S.SHIFTS]) for a in S.ALPHAS]
        assert table.attrs["optimal_alpha"][mode][D.AVG_SHIFTS] == pytest.approx(S.ALPHAS[int(np.argmax(avg))])
    assert table.loc["Zero-shot", "imagenet-a"] == pytest.approx(100 * S.ACC["imagenet-a"][0])
    assert table.loc["WiSE-FT E2E, α=0.5", S.REF] == pytest.approx(100 * S.acc(S.REF, "e2e", 0.5))
    md = T.to_markdown(table)
    assert "| WiSE-FT E2E, optimal α |" in md and "ImageNet-A" in md and "optimal α per column" in md


def test_sweep_table_layout(df):
    table = T.sweep_table(df, mode="lc")
    assert list(table.index) == S.ALPHAS
    assert list(table.columns) == [S.REF, *S.SHIFTS, D.AVG_SHIFTS, D.AVG]
    assert table.loc[0.35, "objectnet"] == pytest.approx(100 * S.acc("objectnet", "lc", 0.35))


def test_video_sets_feed_fig9_and_table6_but_not_the_shift_average():
    df = S.video_frame()
    assert get_figure("fig9").requires(df) is None
    fig = get_figure("fig9").draw(df)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["ImageNet-Vid-Robust", "YTBB-Robust"]
    assert all(ax.get_xlabel() == "ImageNet (class-subsampled) accuracy (%)" for ax in axes)
    assert [ax.get_ylabel() for ax in axes] == ["ImageNet-Vid-Robust pm-0 accuracy (%)", "YTBB-Robust pm-0 accuracy (%)"]
    plt.close(fig)
    t6 = T.table6(df)
    assert list(t6["dataset"]) == ["imagenet-sub-vid-robust", "imagenet-vid-robust", "imagenet-sub-ytbb-robust",
                                   "ytbb-robust"]
    assert list(t6["metric"]) == ["top1", "pm0", "top1", "pm0"]
    assert t6.index[2] == "ImageNet, YTBB-Robust classes (accuracy)"
    assert t6.loc["YTBB-Robust (pm-0 accuracy)", "Fine-tuned LC"] == pytest.approx(100 * S.VIDEO["ytbb-robust"][2])
    half = 100 * S.video("ytbb-robust", "lc", 0.5)
    assert t6.loc["YTBB-Robust (pm-0 accuracy)", "WiSE-FT, α=0.5"] == pytest.approx(half)
    assert T.table6(df, mode="e2e").loc["YTBB-Robust (pm-0 accuracy)", "Fine-tuned E2E"] == pytest.approx(70.0)
    st = D.settings_table(df)
    assert st.attrs["shifts"] == S.SHIFTS  # the video sets stay out of the average over the five shifts
    from wiseft.figures.paper import compare_with_paper

    cmp = compare_with_paper(df, "table1_vitl14_336")  # the main-setting profile's table6 notebook
    video = cmp[cmp["table"] == "table6"]
    assert set(video["dataset"]) == {"imagenet-vid-robust", "ytbb-robust"} and set(video["mode"]) == {"", "lc"}
    ft = video[(video["method"] == "finetuned") & (video["dataset"] == "ytbb-robust")].iloc[0]
    assert ft["paper"] == pytest.approx(66.5) and ft["run"] == pytest.approx(100 * S.VIDEO["ytbb-robust"][2])


def test_table6_and_table2_by_hand():
    t6 = T.table6(S.further_shift_frame())
    assert list(t6["dataset"]) == ["fmow", "fmow-ood"]
    assert list(t6["metric"]) == ["top1", "worst_region_acc"]
    assert t6.iloc[1]["Zero-shot"] == pytest.approx(24.0)
    t2 = T.table2(S.transfer_frame())
    assert list(t2.columns) == ["cifar10", "dtd"]
    ft = 80.0
    half = 100 * (0.5 * 0.45 + 0.5 * 0.80 + 0.04)
    assert t2.loc["Fine-tuned (E2E)", "dtd"] == pytest.approx(ft)
    assert t2.loc["gain α=0.5 (pp)", "dtd"] == pytest.approx(half - ft)


# ------------------------------------------------------------------------------------------------ saving
def test_save_figure_and_table_write_every_format_atomically(tmp_path, df):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    paths = save_figure(fig, tmp_path, "fig6", dpi=50)
    plt.close(fig)
    assert [p.name for p in paths] == ["fig6.png", "fig6.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"
    paths = save_table(T.table1(df), tmp_path, "table1", title="Table 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig6.pdf", "fig6.png", "table1.csv", "table1.md"]
    assert pd.read_csv(tmp_path / "table1.csv", index_col=0).shape == (7, 8)


def test_tables_read_a_real_results_store(tmp_path, df):
    rows = [dict(r, alpha=None if pd.isna(r["alpha"]) else r["alpha"]) for r in S.core_rows()]
    ResultsStore(tmp_path / "results.jsonl").append(rows)
    stored = load_run_results(tmp_path)
    assert T.table1(stored).round(6).equals(T.table1(S.frame(S.core_rows())).round(6))


def test_load_run_results_concatenates_suite_members(tmp_path):
    rows = S.transfer_frame().to_dict("records")
    for member in ("transfer-cifar10", "transfer-dtd"):
        ResultsStore(tmp_path / member / "results.jsonl").append(
            [dict(r, alpha=None if pd.isna(r["alpha"]) else r["alpha"]) for r in rows if r["profile"] == member])
    both = load_run_results(tmp_path, ["transfer-cifar10", "transfer-dtd"])
    assert set(both["dataset"]) == {"cifar10", "dtd"}
    assert get_figure("table2").requires(both) is None


def test_headline_by_hand(df):
    table = T.headline(df)
    assert list(table.index) == ["E2E", "LC"]
    for mode in ("e2e", "lc"):
        ref = np.array([100 * S.acc(S.REF, mode, a) for a in S.ALPHAS])
        shift = np.array([100 * np.mean([S.acc(d, mode, a) for d in S.SHIFTS]) for a in S.ALPHAS])
        avg = (ref + shift) / 2
        row = table.loc[mode.upper()]
        assert row["ref gain"] == pytest.approx(ref[-1] - ref[0])
        best = int(np.argmax(avg))
        assert row["best α"] == f"{S.ALPHAS[best]:g}"
        assert row["margin over ends"] == pytest.approx(avg[best] - max(avg[0], avg[-1]))
        near = [i for i in range(len(S.ALPHAS)) if ref[i] >= ref[-1] - 1.0]
        calm = max(near, key=lambda i: shift[i])
        assert row["no-cost α"] == f"{S.ALPHAS[calm]:g}"
        assert row["no-cost shift gain"] == pytest.approx(shift[calm] - shift[-1])
        assert row["no-cost ref change"] >= -1.0
    # a stricter tolerance can only keep α closer to the fine-tuned end, never a larger shift gain
    strict = T.headline(df, ref_tolerance=0.0)
    assert (strict["no-cost shift gain"] <= table["no-cost shift gain"] + 1e-9).all()
    assert "| E2E |" in T.to_markdown(table)


def test_headline_of_a_run_without_shifts_chooses_alpha_on_the_reference(df):
    # a transfer suite member (Table 2) has a reference and no shifts: its interpolate step prints this headline
    alone = df[df["role"] != "shift"]
    table = T.headline(alone)
    for mode in ("e2e", "lc"):
        ref = np.array([100 * S.acc(S.REF, mode, a) for a in S.ALPHAS])
        row = table.loc[mode.upper()]
        assert row["ref gain"] == pytest.approx(ref[-1] - ref[0])
        assert row["best α"] == f"{S.ALPHAS[int(np.argmax(ref))]:g}"
        assert np.isnan(row["best avg"]) and np.isnan(row["no-cost shift gain"]) and row["no-cost α"] == "—"
    assert "no shifts" in " ".join(table.attrs["notes"])


def test_perfect_accuracies_are_drawn_inside_logit_axes():
    """A fine-tuned model with every test image right (100%) is drawn at 99.95%, and the axes stay readable."""
    from wiseft.figures.style import PLOT_EDGE, plottable

    assert plottable([0.0, 0.5, 1.0]).tolist() == [PLOT_EDGE, 0.5, 1 - PLOT_EDGE]
    rows = [r for r in S.core_rows() if not (r["method"] == "finetuned" and r["mode"] == "e2e")]
    rows += [S._row("finetuned", "e2e", None, d, 1.0 if d == S.REF else S.acc(d, "e2e", 1.0)) for d in
             [S.REF, *S.SHIFTS]]
    fig = get_figure("fig1").draw(S.frame(rows))
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert 0.999 < hi < 0.99995 and lo > 0.01  # not stretched over ten decades towards 1 - 1e-6
    offsets = [c.get_offsets() for c in ax.collections if c.get_label() == "fine-tuned (E2E)"]
    assert offsets and offsets[0][0][0] == pytest.approx(1 - PLOT_EDGE)
    plt.close(fig)


def test_fig1_draws_the_papers_own_points_beside_the_runs(df):
    fig = get_figure("fig1").draw(df, paper_table="table5_vitb16", zoom=False)
    labels = _labels(fig.axes[0])
    plt.close(fig)
    assert {"paper: zero-shot", "paper: fine-tuned (E2E)", "paper: WiSE-FT (E2E)"} <= labels
    from wiseft.figures.overview import paper_series

    zs = next(s for s in paper_series("table5_vitb16", "imagenet", D.AVG_SHIFTS) if s.label == "paper: zero-shot")
    paper = __import__("wiseft.figures.paper", fromlist=["x"]).load_paper_numbers("table5_vitb16")
    # Table 5 is a sweep: its zero-shot model is the E2E row at α = 0.
    at0 = paper[(paper["mode"] == "e2e") & np.isclose(paper["alpha"], 0.0) & (paper["dataset"] == "imagenet")]
    want = at0["value"].iloc[0] / 100
    assert zs.x[0] == pytest.approx(want)
