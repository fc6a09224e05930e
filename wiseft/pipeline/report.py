"""``<run>/report.md``: the steps of a run, and every figure and table it produced, linked (and shown)."""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..io import atomic_write_text
from .markers import read_marker
from .report_html import write_report_html
from .steps import Step, get_step, list_steps

__all__ = ["StepOutcome", "write_report"]


@dataclass
class StepOutcome:
    """What happened to one step in this invocation: ``ran``, ``skipped`` (unchanged) or ``failed``."""

    step: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    notebook: Path | None = None
    run_dir: Path | None = None


def _link(path: Path, run_dir: Path) -> str:
    return path.relative_to(run_dir).as_posix()


def _step_rows(steps: Sequence[Step], outcomes: Sequence[StepOutcome], run_dir: Path) -> list[str]:
    by_name = {o.step: o for o in outcomes}
    rows = ["| step | status | time | notebook |", "|---|---|---:|---|"]
    for step in steps:
        outcome = by_name.get(step.name)
        marker = read_marker(run_dir / "steps", step.name)
        if outcome is not None:
            status = {"ran": "ran", "skipped": "skipped (unchanged)", "failed": "**failed**"}[outcome.status]
            seconds = outcome.seconds if outcome.status != "skipped" else (marker or {}).get("seconds", 0.0)
        elif marker is not None:
            status, seconds = f"done earlier ({marker.get('finished', '?')})", marker.get("seconds", 0.0)
        else:
            status, seconds = "not run", 0.0
        stem = Path(step.notebook)
        nb_dir = run_dir / "notebooks" / stem.parent
        links = []
        for label, name in (("executed", f"{stem.stem}.ipynb"), ("failed run", f"{stem.stem}.failed.ipynb")):
            if (nb_dir / name).is_file():
                links.append(f"[{label}]({_link(nb_dir / name, run_dir)})")
        rows.append(f"| {step.name} | {status} | {seconds:.1f} s | {' · '.join(links) or '—'} |")
    return rows


def _outputs(run_dir: Path) -> list[str]:
    figures_dir = run_dir / "figures"
    files = sorted(p for p in figures_dir.glob("*") if p.is_file() and not p.name.startswith(".")) \
        if figures_dir.is_dir() else []
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for p in files:
        by_stem[p.stem].append(p)
    registry = [get_step(n) for n in list_steps()]  # titles of every figure, also those this run left out
    titles = {s.name: s.description for s in registry if s.is_figure}
    order = [s.name for s in registry if s.is_figure]

    def owner(stem: str) -> str | None:
        return next((n for n in order if stem == n or stem.startswith(n + "_")), None)

    lines: list[str] = []
    figures = [s for s in by_stem if any(p.suffix in (".png", ".svg", ".pdf") for p in by_stem[s])]
    tables = [s for s in by_stem if s not in figures]
    key = lambda s: (order.index(owner(s)) if owner(s) in order else len(order), s)  # noqa: E731
    if figures:
        lines += ["## Figures", ""]
        for stem in sorted(figures, key=key):
            paths = {p.suffix: p for p in by_stem[stem]}
            lines.append(f"### {stem}" + (f" — {titles[owner(stem)]}" if owner(stem) in titles else ""))
            lines.append("")
            image = paths.get(".png") or paths.get(".svg")
            if image is not None:
                lines += [f"![{stem}]({_link(image, run_dir)})", ""]
            lines.append(" · ".join(f"[{p.suffix[1:].upper()}]({_link(p, run_dir)})" for p in by_stem[stem]))
            lines.append("")
    if tables:
        lines += ["## Tables", ""]
        for stem in sorted(tables, key=key):
            lines.append(f"### {stem}" + (f" — {titles[owner(stem)]}" if owner(stem) in titles else ""))
            lines.append("")
            md = next((p for p in by_stem[stem] if p.suffix == ".md"), None)
            if md is not None:
                lines += [md.read_text(encoding="utf-8").rstrip(), ""]
            lines.append(" · ".join(f"[{p.suffix[1:].upper()}]({_link(p, run_dir)})" for p in by_stem[stem]))
            lines.append("")
    if not lines:
        lines = ["_No figures or tables yet._", ""]
    return lines


def write_report(run_dir: Path, *, title: str, description: str, steps: Sequence[Step],
                 outcomes: Sequence[StepOutcome], members: Sequence[tuple[str, Path]] = (),
                 error: str | None = None, in_progress: bool = False, banner: str | None = None) -> Path:
    """Write ``<run_dir>/report.md`` (and ``report.html`` beside it) atomically and return the Markdown's path.

    Args:
        steps: every step of this run folder's scope, in order (the report lists each, run or not).
        outcomes: what this invocation did.
        members: ``(name, run folder)`` of a suite's members, linked to their own reports.
        error: the failure that stopped the run, shown at the top.
        in_progress: written as a run starts, so that a run killed before its end never leaves the previous
            run's report looking current: it says the run started and has not finished.
        banner: markdown shown right under the title (a rehearsal says so there).
    """
    run_dir = Path(run_dir)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    lines = [f"# wiseft run: {title}", ""]
    if banner:
        lines += [banner, ""]
    if description:
        lines += [description, ""]
    lines += [f"Updated {now}. Resolved profile: [profile.yaml](profile.yaml); results: "
              f"[results.jsonl](results.jsonl).", ""]
    if in_progress:
        lines += [f"> **A run started at {now} and has not finished**: it is still running, or it was interrupted. "
                  "The steps below show what is on disk; rerun to finish (finished steps are skipped).", ""]
    if error:
        lines += ["> **The run stopped with an error:**", ">", *[f"> {line}" for line in error.splitlines()], ""]
    if members:
        lines += ["## Suite members", ""]
        lines += [f"- [{name}]({_link(path / 'report.md', run_dir)})" for name, path in members]
        lines.append("")
    step_rows = _step_rows(steps, outcomes, run_dir)
    lines += ["## Steps", "", *step_rows, ""]
    lines += _outputs(run_dir)
    path = atomic_write_text(run_dir / "report.md", "\n".join(lines).rstrip() + "\n")
    write_report_html(run_dir, title=title, description=description, step_rows=step_rows, error=error, updated=now)
    return path
