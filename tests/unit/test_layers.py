"""The package's layering, checked on its source: no cycle, no import upwards.

Imports inside functions count: they are how a module reaches another at run
time, and a cycle through them is a cycle still.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dist_meanshift"

#: Top to bottom. A module imports modules of its own layer or below.
LAYERS = [
    ["__main__"],
    ["cli"],
    ["jobs"],  # the public Job: a job file that runs itself
    ["runner"],
    ["estimator"],
    ["_loop", "_seeds", "dask_cluster"],
    ["memory_plan"],
    ["_dask", "_checkpoint", "_centers", "_side_outputs", "demo"],
    ["_validation", "_inspect", "plot", "_job_file"],
    ["inputs", "_params"],  # the opener of every format; the parameter table
    ["formats", "results", "_exits"],  # the formats, storage
    ["_outputs", "_files", "_summary"],
    ["errors", "dist_meanshift"],  # the package's own __init__ imports lazily
    ["_blocks"],  # numpy maths of one block: imports nothing above it
]


def _name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(module):
    """The package's modules that ``module`` imports, at any depth of its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{a.name}" for a in node.names] + [stem]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    # An import of a name from a module also names its package: keep the module.
    return {t for t in found if not any(o.startswith(t + ".") for o in found)}


GRAPH = {m: _imports(m) for m in MODULES}


def _layer(module):
    short = module.removeprefix("dist_meanshift.")
    for i, layer in enumerate(LAYERS):
        for name in layer:
            if short == name or short.startswith(name + ".") or module == name:
                return i
    raise AssertionError(f"{module} is in no layer: place it in LAYERS")


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_module_imports_one_above_it():
    upwards = [
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        for t in targets
        if _layer(t) < _layer(m) and not m.startswith(t + ".")
    ]
    assert upwards == []


def test_there_is_no_import_cycle():
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if module.startswith(target + "."):
                continue  # a submodule runs inside its package's import
            if state.get(target) == "open":
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])


def test_the_block_functions_import_numpy_only():
    for module, path in MODULES.items():
        if not module.startswith("dist_meanshift._blocks"):
            continue
        assert all(t.startswith("dist_meanshift._blocks") for t in GRAPH[module])
        text = path.read_text()
        for heavy in ("dask", "zarr", "distributed", "sklearn"):
            assert f"import {heavy}" not in text and f"from {heavy}" not in text
