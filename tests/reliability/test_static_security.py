"""Static scan of the package: no code path can unpickle, ``eval`` or ``exec`` what it reads from disk.

Every module of ``wiseft/`` and ``data_prep/`` is parsed (not imported) and walked. A call is a finding when it can
run code chosen by a file's author or escape the folder it writes to:

- ``pickle``/``cPickle``/``dill``/``joblib``/``marshal``/``shelve`` loads, and subclasses of ``pickle.Unpickler``;
- ``torch.load`` without a literal ``weights_only=True``; ``numpy.load`` with ``allow_pickle=True``;
- the builtins ``eval``, ``exec``, ``compile`` and ``__import__``;
- ``yaml.load``/``load_all`` without a ``SafeLoader``/``CSafeLoader``, ``yaml.unsafe_load``/``full_load``;
- ``subprocess`` calls with ``shell=True``, ``os.system``, ``os.popen``, ``os.exec*``, ``os.spawn*``;
- ``tarfile`` ``extractall``/``extract`` without ``filter=`` (members could land outside the target);
- ``importlib.import_module`` with an argument that is not a string literal.

The allowlist below names each exception, why it is safe, and the test that proves it; a stale entry (the call
went away) fails too, so the list cannot rot into a blanket pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("wiseft", "data_prep", "scripts", "benchmarks")

PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "marshal", "shelve", "cloudpickle"}
PICKLE_LOADS = {"load", "loads", "Unpickler", "open"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}

#: (relative path, rule) -> why it is safe and which test proves it.
ALLOWLIST: dict[tuple[str, str], str] = {
    ("wiseft/datasets/safe_pickle.py", "pickle.Unpickler"):
        "CIFAR's python batches are pickles; _NumpyOnlyUnpickler.find_class resolves only numpy array/dtype "
        "reconstructors and codecs.encode, anything else raises DatasetError "
        "(tests/reliability/test_no_code_from_data.py, tests/unit/test_datasets_loaders.py)",
    ("wiseft/datasets/safe_pickle.py", "importlib.import_module(non-literal)"):
        "imports only the numpy modules named in the constant _ALLOWED table, never a name read from a file",
    ("wiseft/datasets/registry.py", "importlib.import_module(non-literal)"):
        "named dataset roots ('root: world') map to 'module:function' strings registered in code "
        "(_ROOT_RESOLVERS); a YAML entry can only pick a registered name, never a module path",
    ("wiseft/datasets/__init__.py", "importlib.import_module(non-literal)"):
        "lazy attribute access: the module name comes from the constant _LAZY table of the package",
    ("wiseft/cli/__init__.py", "importlib.import_module(non-literal)"):
        "subcommand modules from the constant COMMAND_MODULES tuple",
    ("wiseft/models.py", "importlib.import_module(non-literal)"):
        "imports a package named in the code's own _PRETRAINED_RESOLVERS table ('wiseft.world', which registers "
        "its 'world:' resolver and model configs); a profile can only pick a registered prefix, never a module",
    ("wiseft/_lazy.py", "importlib.import_module(non-literal)"):
        "lazy attribute access: the submodule name comes from the constant export table of the package itself",
}


def _modules() -> list[Path]:
    files: list[Path] = []
    for top in SCANNED:
        folder = ROOT / top
        if folder.is_dir():
            files += sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


class _Scanner(ast.NodeVisitor):
    def __init__(self) -> None:
        self.findings: list[tuple[int, str]] = []
        self.aliases: dict[str, str] = {}  # local name -> dotted origin ("pl" -> "pickle", "load" -> "torch.load")

    def _origin(self, node: ast.AST) -> str:
        dotted = _dotted(node)
        if not dotted:
            return ""
        head, _, rest = dotted.partition(".")
        base = self.aliases.get(head, head)
        return f"{base}.{rest}" if rest else base

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            for a in node.names:
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            origin = self._origin(base)
            if origin.split(".")[0] in PICKLE_MODULES and origin.endswith("Unpickler"):
                self.findings.append((node.lineno, "pickle.Unpickler"))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        origin = self._origin(node.func)
        rule = self._rule(node, origin)
        if rule:
            self.findings.append((node.lineno, rule))
        self.generic_visit(node)

    def _rule(self, node: ast.Call, origin: str) -> str | None:
        mod, _, attr = origin.rpartition(".")
        if isinstance(node.func, ast.Name) and node.func.id in {"eval", "exec", "compile", "__import__"} \
                and node.func.id not in self.aliases:
            return f"builtin {node.func.id}()"
        if mod.split(".")[0] in PICKLE_MODULES and attr in PICKLE_LOADS:
            return f"{mod}.{attr}"
        if origin == "torch.load" and not _is_const(_kw(node, "weights_only"), True):
            return "torch.load without weights_only=True"
        if origin in ("numpy.load", "np.load") and _is_const(_kw(node, "allow_pickle"), True):
            return "numpy.load(allow_pickle=True)"
        if origin in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all"):
            return origin
        if origin in ("yaml.load", "yaml.load_all"):
            loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or _dotted(loader).split(".")[-1] not in SAFE_YAML_LOADERS:
                return f"{origin} without SafeLoader"
        if mod == "subprocess" and _is_const(_kw(node, "shell"), True):
            return "subprocess with shell=True"
        if origin in ("os.system", "os.popen") or (mod == "os" and attr.startswith(("exec", "spawn"))):
            return origin
        if attr in ("extractall", "extract") and _kw(node, "filter") is None and self._tar_like(node):
            return "tarfile extract without filter="
        if origin == "importlib.import_module" and not (node.args and isinstance(node.args[0], ast.Constant)):
            return "importlib.import_module(non-literal)"
        return None

    @staticmethod
    def _tar_like(node: ast.Call) -> bool:
        # ``tf.extractall(...)``: the receiver's name says tar; zip members are checked with safe_join first.
        receiver = _dotted(node.func.value) if isinstance(node.func, ast.Attribute) else ""
        return "tar" in receiver.lower() or receiver in ("tf", "t")


def scan_source(text: str) -> list[tuple[int, str]]:
    scanner = _Scanner()
    scanner.visit(ast.parse(text))
    return scanner.findings


def scan_tree() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        for line, rule in scan_source(path.read_text(encoding="utf-8")):
            found.setdefault((rel, rule), []).append(line)
    return found


def test_the_scanner_sees_every_module():
    files = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert "wiseft/checkpoint.py" in files and "wiseft/datasets/safe_pickle.py" in files
    assert any(f.startswith("data_prep/") for f in files)
    assert len(files) > 60


def test_no_unsafe_deserialisation_or_code_execution_in_the_package():
    found = scan_tree()
    unexpected = {k: v for k, v in found.items() if k not in ALLOWLIST}
    lines = [f"{path}:{','.join(map(str, ln))}: {rule}" for (path, rule), ln in sorted(unexpected.items())]
    assert not unexpected, "unsafe calls (fix them, or justify them in ALLOWLIST):\n" + "\n".join(lines)


def test_every_allowlist_entry_is_still_needed():
    found = scan_tree()
    stale = [k for k in ALLOWLIST if k not in found]
    assert not stale, f"allowlist entries that match nothing any more (remove them): {stale}"


@pytest.mark.parametrize("snippet, rule", [
    ("import pickle\npickle.load(open('x', 'rb'))", "pickle.load"),
    ("import pickle as p\np.loads(b'')", "pickle.loads"),
    ("from pickle import loads\nloads(b'')", "pickle.loads"),
    ("import pickle\nclass U(pickle.Unpickler): pass", "pickle.Unpickler"),
    ("import joblib\njoblib.load('m.joblib')", "joblib.load"),
    ("import torch\ntorch.load('x.pt')", "torch.load without weights_only=True"),
    ("import torch\ntorch.load('x.pt', weights_only=False)", "torch.load without weights_only=True"),
    ("from torch import load\nload('x.pt', map_location='cpu')", "torch.load without weights_only=True"),
    ("import numpy as np\nnp.load('x.npy', allow_pickle=True)", "numpy.load(allow_pickle=True)"),
    ("eval(open('f').read())", "builtin eval()"),
    ("exec('x = 1')", "builtin exec()"),
    ("import yaml\nyaml.load(open('f'))", "yaml.load without SafeLoader"),
    ("import yaml\nyaml.load(s, Loader=yaml.Loader)", "yaml.load without SafeLoader"),
    ("import yaml\nyaml.unsafe_load(s)", "yaml.unsafe_load"),
    ("import subprocess\nsubprocess.run('ls ' + d, shell=True)", "subprocess with shell=True"),
    ("import os\nos.system('rm -rf ' + d)", "os.system"),
    ("import tarfile\nwith tarfile.open(p) as tf:\n    tf.extractall(d)", "tarfile extract without filter="),
    ("import importlib\nimportlib.import_module(cfg['module'])", "importlib.import_module(non-literal)"),
])
def test_the_scanner_catches_each_pattern(snippet, rule):
    assert rule in [r for _, r in scan_source(snippet)]


@pytest.mark.parametrize("snippet", [
    "import torch\ntorch.load('x.pt', map_location='cpu', weights_only=True)",
    "import yaml\nyaml.safe_load(s)",
    "import yaml\nyaml.load(s, Loader=yaml.SafeLoader)",
    "import numpy as np\nnp.load('x.npy', allow_pickle=False)",
    "model.eval()",
    "import subprocess\nsubprocess.run(['git', 'describe'], check=True)",
    "import tarfile\nwith tarfile.open(p) as tf:\n    tf.extractall(d, filter='data')",
    "import pickle\npickle.dumps({'a': 1})",
])
def test_the_scanner_passes_safe_calls(snippet):
    assert scan_source(snippet) == []
