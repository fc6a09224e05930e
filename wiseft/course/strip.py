"""Strip the solutions out of a solved assignment notebook, and the ``python -m wiseft.course strip`` command.

The repository keeps *solved* assignments (``notebooks/course/*_solved.ipynb``) that nbval runs. Solutions sit
between marker lines, in code or markdown cells::

    ### BEGIN SOLUTION
    theta = {k: (1 - alpha) * theta_0[k] + alpha * theta_1[k] for k in theta_0}
    ### END SOLUTION

or fill a whole cell tagged ``solution``. :func:`strip_notebook` replaces each region with
``raise NotImplementedError("write your code here")`` (a short prompt in markdown) and clears every output, so
the handed-out notebook shows no answers. From the shell::

    python -m wiseft.course strip notebooks/course/wiseft_assignment_solved.ipynb -o wiseft_assignment.ipynb
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import WiseftError
from ..io import atomic_write_text
from .report import CourseError

log = logging.getLogger(__name__)

__all__ = ["BEGIN", "END", "CODE_STUB", "strip_source", "strip_notebook", "strip_file", "main"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = 'raise NotImplementedError("write your code here")'
MARKDOWN_STUB = "_Your answer here._"
SOLUTION_TAG = "solution"


# ----------------------------------------------------------------------------------------------- strip
def strip_source(source: str, cell_type: str = "code", where: str = "cell") -> tuple[str, int]:
    """Replace every solution region of one cell's source; return the new source and the number of regions.

    Raises:
        CourseError: for an END without BEGIN, a BEGIN inside a region, or a region left open, naming ``where``
            and the line.
    """
    out: list[str] = []
    inside, indent, count, opened = False, "", 0, 0
    for lineno, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise CourseError(f"{where}, line {lineno}: '{BEGIN}' inside a region opened on line {opened}")
            inside, opened, count = True, lineno, count + 1
            indent = line[: len(line) - len(line.lstrip())]
            if cell_type == "code":
                out += [f"{indent}# YOUR CODE HERE", f"{indent}{CODE_STUB}"]
            else:
                out.append(f"{indent}{MARKDOWN_STUB}")
        elif stripped.startswith(END):
            if not inside:
                raise CourseError(f"{where}, line {lineno}: '{END}' without a '{BEGIN}' before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise CourseError(f"{where}: the region opened on line {opened} has no '{END}'")
    return "\n".join(out), count


def strip_notebook(nb: Any, require_solutions: bool = True) -> Any:
    """A copy of ``nb`` (an ``nbformat`` notebook) without solutions and without outputs.

    Raises:
        CourseError: for malformed markers, or when ``require_solutions`` and there was nothing to strip
            (the wrong notebook was given).
    """
    nb = copy.deepcopy(nb)
    total = 0
    for index, cell in enumerate(nb.cells):
        where = f"cell {index + 1} ({cell.cell_type})"
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION_TAG in tags:
            cell.source = f"# YOUR CODE HERE\n{CODE_STUB}" if cell.cell_type == "code" else MARKDOWN_STUB
            cell.metadata["tags"] = [t for t in tags if t != SOLUTION_TAG]
            total += 1
        else:
            cell.source, n = strip_source(cell.source, cell.cell_type, where)
            total += n
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    if require_solutions and total == 0:
        raise CourseError(f"no solution regions found (no '{BEGIN}' lines and no cells tagged '{SOLUTION_TAG}'); "
                          "is this the solved notebook?")
    nb.metadata.pop("papermill", None)
    log.info("stripped %d solution region(s)", total)
    return nb


def strip_file(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write the students' copy of the solved notebook ``src`` to ``dst`` (atomically); return ``dst``.

    Raises:
        CourseError: when ``dst`` is ``src`` (the solved copy would be lost) or the markers are malformed.
    """
    import nbformat

    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise CourseError(f"refusing to overwrite the solved notebook {src}; give another output path with -o")
    stripped = strip_notebook(nbformat.read(src, as_version=4))
    return atomic_write_text(dst, nbformat.writes(stripped) + "\n")


# ------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wiseft.course strip SOLVED.ipynb -o STUDENT.ipynb``."""
    parser = argparse.ArgumentParser(prog="python -m wiseft.course",
                                     description="Course tooling for the wiseft assignments.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("strip", help="write the students' copy of a solved notebook (solutions and outputs removed)")
    p.add_argument("notebook", help="the solved notebook")
    p.add_argument("-o", "--output", required=True, help="where to write the students' copy")
    args = parser.parse_args(argv)
    try:
        out = strip_file(args.notebook, args.output)
    except (WiseftError, OSError) as e:
        print(f"wiseft.course strip: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
