"""The layers of the whole project (design notes §3): data flow one way, from the
expressions and activations through the models, the one integrator, the flow and GD, to the
library's analyses, the experiments, and on top the theory checks and the CLI.

The walk reads the source (``ast``) of every module under ``flowtools/`` and ``theory/``,
module-level imports and separately those inside functions (which an import-time check
would miss), and builds the graph between *units*: a subpackage (``flowtools.models``), a
top-level module (``flowtools.flow``), the private plumbing (``flowtools._config``,
``_compile``, ``_io``, ``_validate``: one unit), the public API (``flowtools/__init__``)
and ``theory``. ``import flowtools`` must load none of the plotting and storage libraries.
"""

from __future__ import annotations

import ast
import graphlib
import pathlib
import subprocess
import sys

import flowtools

ROOT = pathlib.Path(flowtools.__file__).parent.parent
PLUMBING = "flowtools._private"

#: The layers, lowest first. A unit may import units of its own layer (no circle) and of
#: the layers below it, never above. ``flowtools.trajectory`` (the result type) and
#: ``flowtools.curvature`` (λ_max of a model's Hessian) sit below the integrator, which
#: returns trajectories; ``flowtools.certify`` (the flow's end-point certification) sits
#: with the flow. The public API (``flowtools/__init__``) belongs to the library:
#: it may not import the experiments, the sweeps, plotting, the theory or the CLI.
LAYERS = [
    (PLUMBING, "flowtools.errors", "flowtools.status", "flowtools.expressions",
     "flowtools.activations", "flowtools.data", "flowtools.fitting"),
    ("flowtools.models",),
    ("flowtools.trajectory", "flowtools.curvature"),
    ("flowtools.integrate",),
    ("flowtools.flow", "flowtools.certify", "flowtools.descent"),
    ("flowtools.symbolic", "flowtools.limiting", "flowtools.discretization",
     "flowtools.branches", "flowtools.thresholds", "flowtools.separation"),
    ("flowtools",),
    ("flowtools.experiments", "flowtools.sweep", "flowtools.plotting"),
    ("theory",),
    ("flowtools.cli",),
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}

#: Imports against the layers made on purpose, inside a function (at call time), each with
#: its reason. They count in the circle check.
LAZY_UPWARD = {
    # Problem.assumption_failures asks the one Theorem 1 check (sympy) when called: the
    # models do not load the symbolic layer, which builds on them
    ("flowtools.models", "flowtools.symbolic"),
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str | None:
    """The unit of a dotted module name (None outside flowtools and theory)."""
    parts = module.split(".")
    if parts[0] == "theory":
        return "theory"
    if parts[0] != "flowtools":
        return None
    if len(parts) == 1:
        return "flowtools"
    if parts[1] in ("_config", "_compile", "_io", "_validate"):
        return PLUMBING
    if (ROOT / "flowtools" / parts[1]).is_dir() or (ROOT / "flowtools" / f"{parts[1]}.py").exists():
        return f"flowtools.{parts[1]}"
    return "flowtools"  # a name of the public API (``from flowtools import __version__``)


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The dotted modules an import statement loads (``from flowtools import x`` counts as
    ``flowtools.x``: a submodule when there is one, else a name of the package)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        pkg = module.split(".")[: len(module.split(".")) - node.level + is_package]
        base = ".".join(pkg + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" for a in node.names]


def import_graph() -> tuple[dict, dict]:
    """(module-level graph, function-level graph): unit → {unit it imports: [importing
    modules]}. Imports under ``if TYPE_CHECKING:`` are not counted (they never run)."""
    top: dict = {}
    inner: dict = {}
    paths = sorted((ROOT / "flowtools").rglob("*.py")) + sorted((ROOT / "theory").rglob("*.py"))
    for path in paths:
        module = _module_name(path)
        unit = _unit(module)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_level = set()
        stack = list(tree.body)
        while stack:  # statements that run on import: the body, its if/try blocks
            node = stack.pop()
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                stack.extend(node.orelse)
                continue
            module_level.add(node)
            if isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    stack.extend(getattr(node, field, []))
            elif isinstance(node, ast.ExceptHandler):
                stack.extend(node.body)
        for node in ast.walk(tree):
            graph = top if node in module_level else inner
            for target in _targets(node, module, path.name == "__init__.py"):
                dep = _unit(target)
                if dep is not None and dep != unit:
                    graph.setdefault(unit, {}).setdefault(dep, []).append(module)
    return top, inner


def _merge(*graphs) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for g in graphs:
        for u, deps in g.items():
            out.setdefault(u, set()).update(deps)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` (a path through units that closes on itself), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        return list(err.args[1])
    return None


def _upward(graph: dict, allowed=frozenset()) -> list[str]:
    return sorted(f"{u} → {d} ({', '.join(sorted(set(graph[u][d])))})"
                  for u in graph for d in graph[u]
                  if RANK[d] > RANK[u] and (u, d) not in allowed)


def test_the_walk_sees_both_kinds_of_import():
    top, inner = import_graph()
    assert "flowtools.models" in top["flowtools.descent"]
    assert "flowtools.sweep" in inner["flowtools.cli"]  # cli/sweep imports it in run()
    assert sorted(set(_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}))) == ["a", "b", "c"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_unit_is_placed_in_a_layer():
    top, inner = import_graph()
    units = set(top) | set(inner) | {d for g in (top, inner) for u in g for d in g[u]}
    assert units <= set(RANK), f"units not in LAYERS: {sorted(units - set(RANK))}"


def test_module_level_imports_go_down_the_layers():
    top, _ = import_graph()
    assert _upward(top) == []


def test_function_level_imports_go_down_the_layers():
    _, inner = import_graph()
    assert _upward(inner, LAZY_UPWARD) == []


def test_no_circle_between_packages():
    top, inner = import_graph()
    cycle = _cycle(_merge(top))
    assert cycle is None, "module-level import circle: " + " → ".join(cycle)
    cycle = _cycle(_merge(top, inner))
    assert cycle is None, "import circle (with function-level imports): " + " → ".join(cycle)


def test_import_flowtools_loads_no_plotting_or_storage_library():
    code = ("import flowtools, sys; print(sorted(m for m in ('matplotlib', 'xarray', 'zarr', "
            "'dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
