"""The import structure of ``flowtools.sweep``: no circle among its modules, and the store
does not know the grid (it receives a plain layout).

The walk reads the source (``ast``), so it sees imports inside functions too, which an
import-time check would miss.
"""

from __future__ import annotations

import ast
import pathlib

import flowtools.sweep

PACKAGE = "flowtools.sweep"
FOLDER = pathlib.Path(flowtools.sweep.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
    """The ``flowtools.sweep`` modules that ``path`` imports anywhere (module or function
    level; ``from flowtools.sweep import x`` counts as importing ``flowtools.sweep.x`` when
    that is a module, else the package)."""
    modules = {p.stem for p in FOLDER.glob("*.py") if p.stem != "__init__"}
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == PACKAGE:
                names = [f"{PACKAGE}.{a.name}" if a.name in modules else PACKAGE
                         for a in node.names]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                out.add(".".join(name.split(".")[:3]))
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the sweep modules it imports (the package ``__init__`` as ``flowtools.sweep``)."""
    graph = {}
    for path in sorted(FOLDER.glob("*.py")):
        name = PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"
        graph[name] = _imports(path) - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` (as a path that starts and ends at the same module), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_walk_sees_function_level_imports():
    graph = import_graph()
    assert f"{PACKAGE}.family" in graph[f"{PACKAGE}.grid"]
    assert f"{PACKAGE}.store" in graph[f"{PACKAGE}.executors"]  # imported inside a function
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_among_the_sweep_modules():
    graph = import_graph()
    # the package __init__ gathers the public names: no module may import it back
    importers = sorted(m for m, deps in graph.items() if PACKAGE in deps)
    assert importers == [], f"modules importing the package {PACKAGE}: {importers}"
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " → ".join(cycle)


#: The layers of the package, lowest first: data flow one way, from the family definitions
#: through the grid (parsing, validation) and the cells to the store and the run.
LAYERS = [("family", "layout", "progress"), ("two_layer", "relu_cnn"), ("grid",), ("cells",),
          ("store",), ("executors",), ("run",), ("refine",), ("__init__",)]


def test_every_import_goes_down_the_layers():
    rank = {(PACKAGE if m == "__init__" else f"{PACKAGE}.{m}"): i
            for i, layer in enumerate(LAYERS) for m in layer}
    graph = import_graph()
    assert set(graph) == set(rank), "a sweep module not placed in LAYERS"
    upward = [f"{m} → {d}" for m, deps in graph.items() for d in deps if rank[d] >= rank[m]]
    assert upward == []


def test_the_store_does_not_import_the_grid():
    graph = import_graph()
    assert f"{PACKAGE}.grid" not in graph[f"{PACKAGE}.store"]


def test_no_module_reexports_a_name_it_does_not_define():
    """Only the package ``__init__`` re-exports: a name a module imports from a sweep module
    and never uses is a re-export (``noqa: F401``)."""
    offenders = []
    for path in sorted(FOLDER.glob("*.py")):
        if path.stem == "__init__":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        used |= {n.value.id for n in ast.walk(tree)
                 if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                for alias in node.names:
                    if (alias.asname or alias.name) not in used:
                        offenders.append(f"{path.name}: {alias.name}")
    assert offenders == []


def test_a_family_is_an_abstract_base_class():
    import pytest

    from flowtools.sweep.family import Family, FunctionFamily, get_family

    class Half(Family):
        name = "half"

        def parameters(self):
            return []

        def build(self, problem):
            return problem

    with pytest.raises(TypeError, match="abstract"):
        Half()

    class Whole(Half):
        def init(self, model, init, problem):
            return None

        def variables(self, outputs):
            return {}

        def measure(self, model, theta0, runs, spec):
            return {}

    whole = Whole()
    assert whole.applies("x", {}) and whole.settings("s", {}) == "s"
    assert whole.n_params is None and whole.table["dynamics"].section == "integrator"
    # the documented construction from functions still works, positionally or by keyword
    made = Family("made", lambda: [], lambda pb: ("model", pb), lambda m, i, p: 0,
                  lambda o: {}, lambda *a: {}, n_params=lambda pb: 3)
    assert isinstance(made, FunctionFamily) and isinstance(made, Family)
    assert made.build({"n": 1}) == ("model", {"n": 1}) and made.n_params({}) == 3
    assert made.check_model is None and made.integrand("m", {}) == "m"
    for name in ("two_layer", "relu_cnn"):
        assert isinstance(get_family(name), Family)
