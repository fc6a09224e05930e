"""The paper's reported numbers (Tables 1, 2, 4, 5, 6) as package data, and their comparison with a run.

``wiseft/data/paper_numbers.csv`` is tidy: ``table, source, row, model, method, mode, alpha, dataset, metric,
value`` with values in percent, datasets named as in the dataset registry plus ``avg_shifts`` and ``avg``, and
``method`` one of ``zeroshot``, ``finetuned``, ``wiseft`` (with ``alpha``) and ``wiseft_opt`` (the paper's optimal
α, one per column). ``source`` is ``paper`` for the authors' numbers and ``radford`` for the two rows Table 1
quotes from the CLIP paper. Tables 4 and 5 are stored at the granularity of the digest they were copied from
(every 0.1 in α; every 0.05 for Table 5 E2E).

A profile names its paper setting in ``figures.paper_table`` (``table5_vitb16``, ``table1_vitl14_336``,
``table6``, ``table2_transfer``); :func:`compare_with_paper` puts the run's numbers beside the paper's.
"""

from __future__ import annotations

from importlib import resources
from io import StringIO

import pandas as pd

from ..errors import WiseftError
from . import data as D
from .tables import run_numbers

__all__ = ["load_paper_numbers", "list_paper_tables", "paper_tables_for", "compare_with_paper",
           "comparison_table", "format_comparison"]

#: A profile's ``figures.paper_table`` -> the stored tables it is compared with (sweep tables included).
_SETTINGS = {
    "table1_vitl14_336": ("table1_vitl14_336", "table4_vitl14_336", "table6"),  # Table 6's video rows: L/14@336
    "table4_vitl14_336": ("table4_vitl14_336",),
    "table5_vitb16": ("table5_vitb16",),
    "table6": ("table6",),
    "table2_transfer": ("table2_transfer",),
}
_KEYS = ["method", "mode", "alpha", "dataset", "metric"]


def _read() -> pd.DataFrame:
    text = resources.files("wiseft").joinpath("data/paper_numbers.csv").read_text(encoding="utf-8")
    frame = pd.read_csv(StringIO(text), dtype={"mode": str}, keep_default_na=False, na_values={"alpha": [""]})
    frame["alpha"] = pd.to_numeric(frame["alpha"], errors="coerce")
    frame["value"] = frame["value"].astype(float)
    return frame


def list_paper_tables() -> list[str]:
    """The names of the stored tables."""
    return list(dict.fromkeys(_read()["table"]))


def load_paper_numbers(table: str | None = None, source: str | None = "paper") -> pd.DataFrame:
    """The paper's numbers, in percent.

    Args:
        table: one stored table (``table5_vitb16`` …) or ``None`` for all.
        source: ``paper`` (the authors' numbers), ``radford`` (quoted from the CLIP paper) or ``None`` (both).

    Raises:
        WiseftError: for an unknown table, listing the stored ones.
    """
    frame = _read()
    if table is not None:
        if table not in set(frame["table"]):
            raise WiseftError(f"unknown paper table {table!r}; stored tables: {', '.join(dict.fromkeys(frame['table']))}")
        frame = frame[frame["table"] == table]
    if source is not None:
        frame = frame[frame["source"] == source]
    return frame.reset_index(drop=True)


def paper_tables_for(paper_table: str) -> tuple[str, ...]:
    """The stored tables a profile's ``figures.paper_table`` is compared with.

    Raises:
        WiseftError: for an unknown setting, listing the known ones.
    """
    try:
        return _SETTINGS[paper_table]
    except KeyError:
        raise WiseftError(f"unknown paper setting {paper_table!r} (profile key figures.paper_table); known: "
                          f"{', '.join(_SETTINGS)}") from None


def compare_with_paper(df: pd.DataFrame, paper_table: str) -> pd.DataFrame:
    """The run's numbers beside the paper's, for every number both have.

    Args:
        df: the run's results rows.
        paper_table: the profile's ``figures.paper_table``.

    Returns:
        Columns ``table, row, method, mode, alpha, dataset, metric, run, paper, diff`` (percent; ``diff`` is
        run minus paper in pp). For ``wiseft_opt`` rows ``alpha`` is the run's optimal α for that column.
    """
    paper = pd.concat([load_paper_numbers(t) for t in paper_tables_for(paper_table)], ignore_index=True)
    paper = paper.drop_duplicates(subset=_KEYS, keep="first")
    ours = run_numbers(df)
    if ours.empty:
        return pd.DataFrame(columns=["table", "row", *_KEYS, "run", "paper", "diff"])
    ours = ours.rename(columns={"value": "run"})
    # Optimal-α rows match on everything but α (the paper does not print it).
    key_alpha = lambda f: f["alpha"].where(f["method"] != "wiseft_opt", -1.0).round(4)  # noqa: E731
    paper = paper.assign(_a=key_alpha(paper))
    ours = ours.assign(_a=key_alpha(ours), mode=ours["mode"].fillna(""))
    merged = ours.merge(paper[["table", "row", "method", "mode", "_a", "dataset", "metric", "value"]],
                        on=["method", "mode", "_a", "dataset", "metric"], how="inner")
    merged = merged.rename(columns={"value": "paper"})
    merged["diff"] = merged["run"] - merged["paper"]
    # The paper's order: tables as listed, rows and columns as printed.
    merged["_t"] = merged["table"].map({t: i for i, t in enumerate(dict.fromkeys(paper["table"]))})
    merged["_r"] = merged["row"].map({r: i for i, r in enumerate(dict.fromkeys(paper["row"]))})
    merged["_d"] = merged["dataset"].map({d: i for i, d in enumerate(dict.fromkeys(paper["dataset"]))})
    merged = merged.sort_values(["_t", "_r", "_d"], kind="stable")
    return merged[["table", "row", *_KEYS, "run", "paper", "diff"]].reset_index(drop=True)


def comparison_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The comparison as a wide table: one row per row of the paper, one column per dataset, each cell
    ``run / paper / Δ`` (percent, Δ in pp), in the paper's order."""
    if comparison.empty:
        return pd.DataFrame()
    cells = comparison.assign(
        cell=[f"{r.run:.1f} / {r.paper:.1f} / {r.diff:+.1f}" for r in comparison.itertuples()],
        column=comparison["dataset"].map(D.display_name))
    wide = cells.pivot_table(index="row", columns="column", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(index=list(dict.fromkeys(cells["row"])), columns=list(dict.fromkeys(cells["column"])))
    wide.index.name = "paper row"
    wide.columns.name = None
    return wide.fillna("")


def format_comparison(comparison: pd.DataFrame, paper_table: str | None = None) -> str:
    """A readable comparison: a Markdown table (rows of the paper × datasets, each cell ``run / paper / Δ``) and
    a line with the mean and largest difference.

    Returns the text (notebooks print it); an empty comparison says why nothing matched.
    """
    if comparison.empty:
        return (f"No numbers of the run match the paper's {paper_table or 'table'}: the datasets, metrics, modes "
                "or α values differ (the comparison needs the paper's setting and dataset names).")
    wide = comparison_table(comparison)
    header = ["paper row", *wide.columns]
    lines = [f"Run vs. the paper ({paper_table or 'paper'}). Each cell: run / paper / Δ, in % and pp.", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":---:"] * len(wide.columns)) + "|"]
    lines += ["| " + " | ".join([str(row), *wide.loc[row].tolist()]) + " |" for row in wide.index]
    absdiff = comparison["diff"].abs()
    worst = comparison.loc[absdiff.idxmax()]
    lines += ["", f"{len(comparison)} numbers compared, mean |run − paper| = {absdiff.mean():.1f} pp, largest "
              f"{worst['diff']:+.1f} pp ({worst['row']}, {D.display_name(worst['dataset'])})."]
    return "\n".join(lines)
