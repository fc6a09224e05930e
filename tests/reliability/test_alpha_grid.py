"""The α grid is checked with the profile (issue 19, item 3): a step that does not divide 1 or an empty α list
is refused before any work, in one line naming the key and the values that work."""

from __future__ import annotations

import pytest

from wiseft.errors import ProfileError
from wiseft.profile import load_profile


@pytest.mark.parametrize("step", ["0.15", "0.3", "0.6", "0.07", "1.5", "0"])
def test_a_step_that_does_not_divide_one_is_refused_by_the_cli(toy_cli, one_line_error, step):
    run, common = toy_cli
    code, _, err = run("interpolate", *common, "--set", "interpolation.alphas=null",
                       "--set", f"interpolation.alpha_step={step}")
    one_line_error(code, err, "interpolation.alpha_step", step, "divides 1", "0.05")
    assert not (run.root / "run" / "results.jsonl").exists()


@pytest.mark.parametrize("key", ["alphas", "secondary_alphas"])
def test_an_empty_alpha_list_is_refused(toy_cli, one_line_error, key):
    run, common = toy_cli
    code, _, err = run("interpolate", *common, "--set", f"interpolation.{key}=[]")
    one_line_error(code, err, f"interpolation.{key}", "at least one α")


@pytest.mark.parametrize("step, n", [(0.05, 21), (0.1, 11), (0.125, 9), (0.25, 5), (0.5, 3), (1.0, 2),
                                     (1 / 3, 4), (1 / 7, 8)])
def test_every_step_that_divides_one_gives_a_grid_from_0_to_exactly_1(step, n):
    profile = load_profile("mini", overrides=[f"interpolation.alpha_step={step!r}"])
    grid = profile.interpolation.alpha_grid()
    assert len(grid) == n and grid[0] == 0.0 and grid[-1] == 1.0 and grid == sorted(set(grid))


def test_the_default_grid_is_the_papers_21_values():
    grid = load_profile("mini").interpolation.alpha_grid()
    assert grid == [round(i * 0.05, 6) for i in range(21)] and 0.35 in grid


def test_bad_steps_are_profile_errors_in_the_library_too():
    with pytest.raises(ProfileError, match="interpolation.alpha_step.*divides 1.*got 0.3"):
        load_profile("mini", overrides=["interpolation.alpha_step=0.3"])
