"""What every course check returns: a verdict a student reads in a few lines, most specific hint first.

A check finds problems (``messages``, every one of them) and guesses their cause (``hints``, the most specific
first). Printed, a failed check shows the first hint, one line saying how much is off, and at most
:data:`MAX_DETAIL` lines of detail (further hints, then the first problems); the full lists stay on the object
(``check.messages``, ``check.hints``, ``check.table``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..errors import WiseftError

__all__ = ["CourseError", "Check", "MAX_DETAIL"]

#: Lines of detail a failed check prints below its hint and summary.
MAX_DETAIL = 5


class CourseError(WiseftError, ValueError):
    """A malformed assignment notebook (unbalanced solution markers) or a failed check."""


@dataclass
class Check:
    """The outcome of a course check; ``print`` it, or call :meth:`raise_if_failed`.

    Attributes:
        ok: nothing is off.
        passed: the sentence printed when ``ok``.
        summary: one line saying how much is off (printed below the first hint).
        messages: one sentence per problem found, in order.
        hints: the likely causes, the most specific first.
        table: the numbers compared (columns depend on the check), for a closer look.
    """

    ok: bool
    passed: str = "Right."
    summary: str = ""
    messages: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)

    def lines(self) -> list[str]:
        """The printed lines: the first hint, the summary, then at most :data:`MAX_DETAIL` lines of detail."""
        if self.ok:
            return [self.passed]
        head = [f"Hint: {self.hints[0]}"] if self.hints else []
        head.append(self.summary or f"{len(self.messages)} problem(s):")
        detail = [f"Also: {h}" for h in self.hints[1:]] + [f"- {m}" for m in self.messages]
        if len(detail) > MAX_DETAIL:
            more = len(detail) - (MAX_DETAIL - 1)
            detail = detail[: MAX_DETAIL - 1] + [f"… and {more} more (see .messages and .table)"]
        return head + detail

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__

    def raise_if_failed(self) -> None:
        """Raise :class:`CourseError` with the printed explanation unless the check passed."""
        if not self.ok:
            raise CourseError(str(self))
