"""The install contract: dependency ranges, environment.yml in step with pyproject, CI = README test command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_dependencies_are_ranges_not_pins():
    project = _pyproject()
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pinned = [r for r in reqs if "==" in r]
    assert not pinned, f"pin with ranges, not ==: {pinned}"
    required = {"torch", "torchvision", "open-clip-torch", "timm", "safetensors", "numpy", "pandas", "pyyaml", "tqdm",
                "papermill", "ipykernel", "jupyterlab", "matplotlib", "seaborn"}
    assert required <= {_name(r) for r in project["dependencies"]}
    assert {"pytest", "nbval"} <= {_name(r) for r in project["optional-dependencies"]["test"]}
    assert {"wilds"} == {_name(r) for r in project["optional-dependencies"]["wilds"]}
    assert project["scripts"]["wiseft"] == "wiseft.cli:main"


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "wiseft"
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    editable = [r for r in pip_section if r.startswith("-e")]
    assert editable and editable[0].replace(" ", "").startswith("-e.")  # installs the package itself
    env_reqs = {r.strip() for r in pip_section if not r.startswith("-e")}
    project = _pyproject()
    py_reqs = set(project["dependencies"]) | set(project["optional-dependencies"]["test"]) | set(
        project["optional-dependencies"]["wilds"])
    assert {_name(r) for r in env_reqs} == {_name(r) for r in py_reqs}
    assert env_reqs == py_reqs, "the version ranges differ between environment.yml and pyproject.toml"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = "bash scripts/run_tests.sh"
    assert command in readme and f"exec {command}" in ci
    assert "bash scripts/run_main.sh" in readme
