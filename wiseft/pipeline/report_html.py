"""``<run>/report.html``: the run's report as one self-contained page a reader understands at a glance.

Headline first (the run's zero-shot, fine-tuned and WiSE-FT numbers), then every figure inline (base64 PNG, no
file beside it needed) with its title and what the run shows for it, then the tables (long ones collapsed in
``<details>``), the paper comparison when the profile names a paper setting, a line for every figure or table the
profile cannot feed saying why, and the steps. It is written beside ``report.md`` by
:func:`wiseft.pipeline.report.write_report`.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..io import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["write_report_html", "LONG_TABLE_ROWS"]

#: Tables with more rows than this are collapsed (``<details>``) so the page stays short.
LONG_TABLE_ROWS = 12

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.headline{background:#f6f3fb;border-left:4px solid #6a3d9a;padding:.6em 1em;margin:1em 0}
.error{background:#fdecea;border-left:4px solid #c62828;padding:.6em 1em}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.92em;color:#444}pre.shows{background:#fafafa;border:1px solid #eee;padding:.6em;
white-space:pre-wrap;font-size:.88em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:.2em .5em;
text-align:right}th:first-child,td:first-child{text-align:left}details{margin:.6em 0}summary{cursor:pointer}
.missing li{color:#555}
"""


def _md_inline(text: str) -> str:
    """Links and bold of one Markdown table cell, as HTML (everything else escaped)."""
    out = html.escape(text.strip())
    out = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def md_table_html(lines: Sequence[str]) -> str:
    """A Markdown pipe table (header, rule, rows) as an HTML table."""
    rows = [[c for c in line.strip().strip("|").split("|")] for line in lines if line.strip().startswith("|")]
    if len(rows) < 2:
        return ""
    head, body = rows[0], rows[2:]
    parts = ["<table><thead><tr>", *(f"<th>{_md_inline(c)}</th>" for c in head), "</tr></thead><tbody>"]
    for row in body:
        parts += ["<tr>", *(f"<td>{_md_inline(c)}</td>" for c in row), "</tr>"]
    return "".join(parts + ["</tbody></table>"])


def _frame_html(frame: pd.DataFrame, title: str, collapse: bool | None = None) -> str:
    table = frame.to_html(float_format=lambda v: f"{v:.1f}", na_rep="", border=0, escape=True)
    collapse = len(frame) > LONG_TABLE_ROWS if collapse is None else collapse
    if collapse:
        return f"<details><summary>{html.escape(title)} ({len(frame)} rows)</summary>{table}</details>"
    return f"<h3>{html.escape(title)}</h3>{table}"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def _profile(run_dir: Path) -> dict:
    """The run's resolved ``profile.yaml`` as a dict (empty when absent or unreadable, with a warning)."""
    import yaml

    path = run_dir / "profile.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        log.warning("report.html: %s could not be read (%s); leaving out what needs it", path, e)
        return {}
    return data if isinstance(data, dict) else {}


def _sections(run_dir: Path) -> tuple[list[str], list[str], list[str], list[str]]:
    """(headline lines, figure blocks, table blocks, lines for what was not drawn)."""
    from ..figures import get_figure, list_figures, load_analyses, load_run_results
    from ..figures.claims import CLAIMS, headline, what_this_run_shows

    profile = _profile(run_dir)
    results = load_run_results(run_dir)
    analyses = load_analyses(run_dir)
    figures_dir = run_dir / "figures"
    head = headline(results) if len(results) else ["No results yet."]
    figs, tables, missing = [], [], []
    for name in list_figures():
        spec = get_figure(name)
        data = analyses if spec.source == "analyses" else results
        shows = what_this_run_shows(data, name) if name in CLAIMS and data is not None and len(data) else ""
        shows_html = f'<pre class="shows">{html.escape(shows)}</pre>' if shows else ""
        png = figures_dir / f"{name}.png"
        stems = sorted(p for p in figures_dir.glob(f"{name}*.csv")) if figures_dir.is_dir() else []
        stems = [p for p in stems if p.stem == name or p.stem.startswith(name + "_")]
        if spec.kind == "figure" and png.is_file():
            figs.append(f'<figure id="{name}"><h3>{html.escape(spec.paper)} · {html.escape(spec.title)}</h3>'
                        f"{_image(png)}<figcaption>{shows_html}</figcaption></figure>")
        elif spec.kind == "table" and stems:
            for csv in stems:
                frame = pd.read_csv(csv, index_col=0)
                tables.append(_frame_html(frame, f"{spec.paper} · {spec.title} ({csv.stem})"))
            tables.append(shows_html)
        else:
            if spec.scope == "suite" and not profile.get("suite"):
                why = "drawn only for a suite profile (the transfer datasets); this run is a single profile"
            else:
                why = spec.requires(data)
                why = why or "its step has not run yet (run `wiseft run` again)"
            missing.append(f"{spec.paper} ({name}): {why}")
    paper_table = (profile.get("figures") or {}).get("paper_table")
    if paper_table and len(results):
        from ..figures.paper import compare_with_paper, comparison_table

        comparison = compare_with_paper(results, paper_table)
        if len(comparison):
            title = f"Run vs. the paper ({paper_table}); each cell run / paper / Δ"
            tables.insert(0, _frame_html(comparison_table(comparison), title, collapse=False))
    return head, figs, tables, missing


def write_report_html(run_dir: Path, *, title: str, description: str, step_rows: Sequence[str],
                      error: str | None = None, updated: str = "") -> Path:
    """Write ``<run_dir>/report.html`` atomically and return its path (see the module doc for its contents)."""
    run_dir = Path(run_dir)
    head, figs, tables, missing = _sections(run_dir)
    body = [f"<h1>wiseft run: {html.escape(title)}</h1>"]
    if description:
        body.append(f"<p>{html.escape(description)}</p>")
    if error:
        body.append('<div class="error"><strong>The run stopped with an error:</strong>'
                    f"<pre>{html.escape(error)}</pre></div>")
    body.append('<div class="headline"><strong>Headline.</strong><ul>'
                + "".join(f"<li>{html.escape(line)}</li>" for line in head) + "</ul></div>")
    body.append("<h2>Figures</h2>" + ("".join(figs) or "<p>No figures yet.</p>"))
    body.append("<h2>Tables</h2>" + ("".join(tables) or "<p>No tables yet.</p>"))
    if missing:
        body.append('<h2>Not drawn for this run</h2><ul class="missing">'
                    + "".join(f"<li>{html.escape(m)}</li>" for m in missing) + "</ul>")
    body.append("<h2>Steps</h2>" + md_table_html(step_rows))
    body.append(f'<p><small>Updated {html.escape(updated)}. Resolved profile: <a href="profile.yaml">profile.yaml</a>; '
                'results: <a href="results.jsonl">results.jsonl</a>; the same report in Markdown: '
                '<a href="report.md">report.md</a>.</small></p>')
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>wiseft run: {html.escape(title)}'
            f"</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n")
    return atomic_write_text(run_dir / "report.html", page)
