"""The import graph of ``wiseft``: no import cycles (function-local imports count) and the layer contract.

The contract is ``.importlinter`` at the repository root (checked by import-linter, which reads every import
statement, function-local ones included); the cycle finder here is the same walk over the source as the
project's pre-stop check, so both agree on what a cycle is.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """``{module: modules of the same package it imports}`` from every import statement of every file, at any
    depth of the syntax tree (function-local imports included). An import of a parent or child package is not
    an edge: importing ``a.b`` always runs ``a/__init__``."""
    mods = {}
    for f in package_dir.rglob("*.py"):
        parts = list(f.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for target in names:
                while target and target not in mods:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target and target != m and not m.startswith(target + ".") and not target.startswith(m + "."):
                    graph[m].add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module, each sorted."""
    def reach(start: str) -> set[str]:
        out, todo = set(), [start]
        while todo:
            for w in graph[todo.pop()]:
                if w not in out:
                    out.add(w)
                    todo.append(w)
        return out

    reachable = {m: reach(m) for m in graph}
    seen: set[str] = set()
    cycles = []
    for m in sorted(graph):
        if m in seen:
            continue
        group = {w for w in reachable[m] if m in reachable[w]} | {m}
        if len(group) > 1:
            cycles.append(sorted(group))
            seen |= group
    return cycles


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))")
    return subprocess.run([sys.executable, "-c", code, str(cwd / ".importlinter")], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"})


def test_no_import_cycle_among_wiseft_modules():
    assert import_cycles(import_graph(ROOT / "wiseft")) == []


def test_the_cycle_finder_counts_function_local_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")  # a package importing its child: not a cycle
    (pkg / "sub" / "c.py").write_text("from .. import sub\n")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n    return g\n")
    (pkg / "b.py").write_text("from pkg.a import f\n\ndef g():\n    return f\n")
    (pkg / "d.py").write_text("from . import a\n")
    assert import_cycles(import_graph(pkg)) == [["pkg.a", "pkg.b"]]


def test_every_top_level_module_has_a_layer():
    """A new module must be placed in the contract, else nothing would check its imports."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    placed = {name.strip() for line in parser["importlinter:contract:layers"]["layers"].split("\n")
              for name in line.split("|")} - {""}
    modules = {p.stem if p.is_file() else p.name for p in (ROOT / "wiseft").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert modules - placed == set(), f"add these modules to a layer of {CONFIG.name}"
    assert placed - modules == set()


def test_the_layer_contract_holds():
    result = _lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_layer_contract_catches_an_upward_import(tmp_path):
    """The contract can fail: the same sources with one upward import (the errors module importing the CLI)."""
    shutil.copytree(ROOT / "wiseft", tmp_path / "wiseft", ignore=shutil.ignore_patterns("*.safetensors", "__pycache__"))
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    errors = tmp_path / "wiseft" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _upward():\n    from .cli import main\n    return main\n")
    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "wiseft.errors is not allowed to import wiseft.cli" in result.stdout


def test_the_front_doors_resolve_and_import_wiseft_stays_light():
    code = ("import sys, wiseft; light = 'torch' not in sys.modules and 'wiseft.profile' not in sys.modules; "
            "doors = {n: getattr(wiseft, n) for n in wiseft.__all__}; "
            "from wiseft import world; "  # a submodule is still a submodule, not a front door
            "print(light, all(callable(v) for n, v in doors.items() if n != '__version__'), world.__name__, "
            "doors['open_run'].__module__, doors['RunContext'].__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["True", "True", "wiseft.world", "wiseft.notebook", "wiseft.run"]


def test_the_package_docstring_names_every_front_door():
    import wiseft

    for name in wiseft.__all__:
        if name != "__version__" and not name.endswith("Error"):
            assert f"`{name}`" in wiseft.__doc__, name
    assert "load_profile" in dir(wiseft)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        wiseft.missing  # noqa: B018
