"""auperf/_core.pyi is generated from the compiled module (pybind11-stubgen) and must match it.

Regenerate after changing a binding:
    pybind11-stubgen auperf._core -o /tmp/stubs && cp /tmp/stubs/auperf/_core.pyi auperf/_core.pyi
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from auperf import _core

STUB = Path(__file__).resolve().parents[1] / "auperf" / "_core.pyi"


def _stub_signatures() -> dict[str, list[str]]:
    tree = ast.parse(STUB.read_text())
    return {
        node.name: [a.arg for a in node.args.args]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def _runtime_signatures() -> dict[str, list[str]]:
    out = {}
    for name in dir(_core):
        fn = getattr(_core, name)
        if name.startswith("_") or not callable(fn) or isinstance(fn, type):
            continue
        first = (fn.__doc__ or "").strip().splitlines()[0]
        m = re.match(rf"{name}\((.*)\)\s*->", first)
        assert m, f"{name}: no signature line in its docstring"
        args = [a.split(":")[0].strip() for a in re.split(r",\s*(?![^\[]*\])", m.group(1)) if a]
        out[name] = args
    return out


def test_stub_matches_compiled_module():
    assert _stub_signatures() == _runtime_signatures(), (
        "auperf/_core.pyi is out of date; regenerate it with pybind11-stubgen (see this file)"
    )
