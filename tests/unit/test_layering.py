"""The layering rule of docs/design.md ("House rules"), checked over the import graph.

Every module of the package has a layer; it imports (or cimports) only modules of lower
layers, so there is no cycle and the Cython core never reaches up into the Python facade.
No import runs inside a function (a hidden import loop, or a cost paid per call).
Imports under ``if TYPE_CHECKING:`` are for annotations only and are not counted.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import pyfuse3

SRC = Path(pyfuse3.__file__).parent

#: Bottom to top. A module may import modules of lower layers only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_libfuse",),                                     # C declarations only
    ("_version", "_install_check", "_state", "_sysutil", "_wire", "_backing", "_ring"),
    ("_fills",),                                       # a session's fill guard, its backing
    ("_types", "_opcodes", "_backends"),              # kernel data, the table, event loops
    ("_readdir",),                                     # readdir reply buffers
    ("_xattr", "_pyfuse3"),                            # Operations and its helpers
    ("_request", "_negotiation"),                     # the reply engine; INIT policy
    ("_session",),                                     # one libfuse session, drain()
    ("_dispatch", "_notify", "_connection"),           # serving, notify calls, INIT/DESTROY
    ("_callbacks",),                                   # the trampolines
    ("_entry_worker",),
    ("_cache_control",),                               # a mount's notifier
    ("_mount",),                                       # Mount
    ("_module_api",),                                  # upstream's module-level API
    ("cache", "asyncio"),                              # public modules
    ("__init__",),                                     # the package
    ("testing",),                                      # pyfuse3.testing (a layer of its own)
)
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}

_IMPORT = re.compile(r"^([ \t]*)(?:from\s+([\w.]+)\s+c?import|c?import\s+([\w.]+))", re.M)


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    return rel.parts[0] if rel.parts[0] in ("testing", "_libfuse", "_backends") else rel.name


def _target(module: str, unit: str) -> str | None:
    """The unit of the package an import names, or None if it is outside the package."""
    if module.startswith("pyfuse3."):
        module = module[len("pyfuse3."):]
    elif module == "pyfuse3":
        return "__init__"
    elif module.startswith(".."):
        module = module[2:]
    elif module.startswith("."):
        module = module[1:]
        if unit in ("testing", "_libfuse", "_backends"):
            return unit
    else:
        return None
    return module.split(".")[0] or "__init__"


def _python_imports(path: Path) -> tuple[set[str], list[str]]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    in_function: list[str] = []

    def visit(node: ast.AST, in_def: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if in_def:
                    in_function.append(f"{path.name}:{child.lineno}")
                names = ([a.name for a in child.names] if isinstance(child, ast.Import)
                         else ["." * child.level + (child.module or "")])
                if isinstance(child, ast.ImportFrom) and child.module is None:
                    names = ["." * child.level + a.name for a in child.names]
                found.update(names)
            visit(child, in_def or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.Lambda)))

    visit(tree, False)
    return found, in_function


def _cython_imports(path: Path) -> tuple[set[str], list[str]]:
    found: set[str] = set()
    in_function = []
    text = path.read_text()
    for m in _IMPORT.finditer(text):
        if m.group(1):  # indented: inside a def or a class (.pyx has no conditional imports)
            in_function.append(f"{path.name}:{text.count(chr(10), 0, m.start()) + 1}")
        found.add(m.group(2) or m.group(3))
    return found, in_function


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    graph: dict[str, set[str]] = {}
    in_function: list[str] = []
    for path in sorted(SRC.rglob("*")):
        if path.suffix == ".py":
            names, inner = _python_imports(path)
        elif path.suffix in (".pyx", ".pxd"):
            names, inner = _cython_imports(path)
        else:
            continue
        unit = _unit(path)
        in_function += inner
        targets = {t for n in names if (t := _target(n, unit)) is not None and t != unit}
        graph.setdefault(unit, set()).update(targets)
    return graph, in_function


def test_every_module_has_a_layer() -> None:
    graph, _ = _graph()
    assert sorted(set(graph) - set(LAYER)) == []


def test_no_import_inside_a_function() -> None:
    _, in_function = _graph()
    assert in_function == []


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{unit} (layer {LAYER[unit]}) imports {t} (layer {LAYER[t]})"
                  for unit, targets in graph.items() for t in targets
                  if LAYER[t] >= LAYER[unit])


def test_imports_go_down_only() -> None:
    graph, _ = _graph()
    assert _upward(graph) == []


def test_the_checks_see_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: an upward import and an import in a function are both found."""
    pkg = tmp_path / "pyfuse3"
    (pkg / "testing").mkdir(parents=True)
    (pkg / "_state.py").write_text("from . import _mount\n")
    (pkg / "_mount.py").write_text("def f():\n    import os\n")
    (pkg / "_request.pyx").write_text("cdef f():\n    from pyfuse3._dispatch import x\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", pkg)
    graph, in_function = _graph()
    assert graph["_state"] == {"_mount"} and graph["_request"] == {"_dispatch"}
    assert _upward(graph) == [
        f"_request (layer {LAYER['_request']}) imports _dispatch (layer {LAYER['_dispatch']})",
        f"_state (layer {LAYER['_state']}) imports _mount (layer {LAYER['_mount']})"]
    assert in_function == ["_mount.py:2", "_request.pyx:2"]
