"""Course tooling: the assignments' check functions, and stripping solutions out of the solved notebooks.

Two assignments run on the `mini` run (``notebooks/course/``):

- ``wiseft_assignment`` — write θ_α = (1 − α)·θ₀ + α·θ₁ (checked by :func:`check_interpolation` at asymmetric α),
  sweep α (:func:`check_sweep`), and read the robustness curves of the shifts fine-tuning hurts
  (:func:`check_robustness`, :func:`plot_sweep`);
- ``wiseft_choose_alpha`` — choose α on the reference's held-out split only, then see what that choice gives under
  shift (:func:`check_choice`, :func:`check_outcome`, :func:`plot_choice`).

Every check returns a :class:`Check` that prints the most specific hint first and at most five lines of detail.
:func:`accuracy`, :func:`preload` and :func:`reference_sweep` do the plumbing, so students write the method.
``python -m wiseft.course strip SOLVED -o HANDOUT`` (:mod:`wiseft.course.strip`) makes the students' copy.
"""

from .evaluate import PREFERRED_SHIFTS, accuracy, losing_shifts, preload, reference_sweep
from .report import MAX_DETAIL, Check, CourseError
from .robustness import SHIFT_AVERAGE, check_robustness, plot_sweep, wiseft_curves
from .selection import OUTCOME_ROWS, check_choice, check_outcome, heldout_choice, plot_choice
from .strip import BEGIN, CODE_STUB, END, main, strip_file, strip_notebook, strip_source
from .sweep import as_sweep, check_sweep
from .weights import CHECK_ALPHAS, check_interpolation

__all__ = ["CourseError", "Check", "MAX_DETAIL", "BEGIN", "END", "CODE_STUB", "strip_source", "strip_notebook",
           "strip_file", "main", "as_sweep", "check_sweep", "CHECK_ALPHAS", "check_interpolation", "accuracy",
           "preload", "reference_sweep", "losing_shifts", "PREFERRED_SHIFTS", "SHIFT_AVERAGE", "wiseft_curves",
           "check_robustness", "plot_sweep", "OUTCOME_ROWS", "heldout_choice", "check_choice", "check_outcome",
           "plot_choice"]
