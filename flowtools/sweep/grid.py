"""A sweep's grid: named axes over problem, initialization and integrator parameters.

A grid is a Cartesian product. Every parameter is either *fixed* (a scalar) or an *axis*
(a list of distinct values, or ``{linspace = [a, b, num]}``, ``{geomspace = [a, b, num]}``,
``{range = [start, stop]}`` / ``{range = [start, stop, step]}``); the axes, in the order
they appear, are the dimensions of the results (``xarray`` dims). A grid file is TOML:

.. code-block:: toml

    [sweep]                     # optional: name, description, family, cells_per_task
    name = "fig4"

    [problem]                   # the family's model (two_layer: flowtools.make_problem)
    n = [3, 4, 5, 6]
    sampling = "gaussian"
    data_seed = {range = [0, 5]}

    [init]                      # Problem.init_gaussian / init_ratio
    scale = 1e-20
    c_tilde = {linspace = [0.02, 1.0, 50]}

    [integrator]                # flowtools.solve_flow (dynamics "flow") or run_gd ("gd")
    dynamics = "flow"
    loss_threshold = 1e-20
    max_steps = 20000

    [outputs]                   # what is stored per cell besides the end point
    trajectory_points = 0

Every value is checked before anything runs (``flowtools._validate``); a bad grid raises
``GridError`` (``flowtools.errors``) naming the file, the LINE, the parameter and the valid
choices. Sizes come first: the file is read only if it is a regular file of at most
``MAX_GRID_BYTES``; the number of cells is the product of the axis lengths, each computed
from its declaration
(a list's length, ``num``, a range's arithmetic length) before any axis is built, and is
refused above ``flowtools._validate.max_cells()`` (``FLOWTOOLS_MAX_CELLS``); the memory of
one task (``Grid.work``) is refused above ``flowtools._validate.memory_limit()``. A grid's
``[sweep] name`` is a name, never a path (``flowtools._validate.name``): the store goes to
``out/sweep/NAME.zarr`` unless ``--store`` places it. Defaults come
from the signatures of ``make_problem``, ``solve_flow``, ``run_gd`` and ``classify``, so a
grid means what those functions mean. ``[sweep] family`` selects the model family
(``flowtools.sweep.family``: ``two_layer``, the default, or ``relu_cnn``), which decides
the [problem], [init] and [outputs] keys; [integrator] is shared. The *definition* (axes,
every fixed parameter that applies, outputs, layout, a family other than the default) is
what a results store is keyed by.

    >>> g = Grid.from_text('''
    ... [problem]
    ... n = [3, 4]
    ... [init]
    ... scale = 1e-4
    ... seed = {range = [0, 3]}
    ... ''')
    >>> g.dims, g.shape, g.size
    (('n', 'seed'), (2, 3), 6)
    >>> g.cell((1, 2))["n"], g.cell((1, 2))["seed"], g.cell((1, 2))["dynamics"]
    (4, 2, 'flow')
    >>> Grid.from_text('[init]\\nscale = 1e-4\\nc_tlide = 0.5\\n', source="g.toml")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flowtools.errors.GridError: g.toml:3: unknown key 'c_tlide' in [init] (did you ...
"""

from __future__ import annotations

import difflib
import itertools
import math
import pathlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError, GridError
from flowtools.sweep.family import DEFAULT_FAMILY, REQUIRED, Family, Param, get_family
from flowtools.sweep.layout import FORMAT_VERSION, Coordinate, Layout, definition_key

__all__ = ["Axis", "Grid", "PARAMETERS", "SECTIONS", "Work", "load_grid"]

#: the largest grid file read (bytes): a grid is a few lines; checked before reading
MAX_GRID_BYTES = 2**20
#: a task's memory estimate: copies of its stored results while they are computed
#: (the integrator's buffers, their host copies, the padded measured arrays) and
#: state-sized vectors per cell in flight (a dopri8 / kvaerno5 step holds ~13-16)
RESULT_COPIES = 3
SOLVER_VECTORS = 16


# ---------------------------------------------------------------------- parameters
#: The default family's parameters (``flowtools.sweep.two_layer``); a grid's own are
#: ``Grid.model_family.table``.
PARAMETERS: dict[str, Param] = get_family(DEFAULT_FAMILY).table
SECTIONS: dict[str, list[str]] = get_family(DEFAULT_FAMILY).sections
#: Sections whose parameters are part of a cell's computation (and may be axes).
AXIS_SECTIONS = ("problem", "init", "integrator")
INIT_AXES = tuple(SECTIONS["init"])
_SPACINGS = ("linspace", "geomspace", "range")


def relevant(name: str, params: Mapping, family: Family | None = None) -> bool:
    """Whether parameter ``name`` changes a cell with these parameters (flow settings do
    not for GD and vice versa; the family says the rest, e.g. data_seed does not with
    evenly spaced inputs)."""
    family = family or get_family(DEFAULT_FAMILY)
    p = family.table[name]
    if p.methods is not None and params.get("dynamics") not in p.methods:
        return False
    return family.applies(name, params)


# ---------------------------------------------------------------------- line numbers
class _Locator:
    """Line numbers of tables and keys in TOML text (tomllib gives none for values).

    A small scanner that skips strings, comments and the continuation lines of multi-line
    arrays and inline tables, so only real ``key =`` lines are found."""

    def __init__(self, text: str | None):
        self.tables: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        if text:
            self._scan(text)

    def _scan(self, text):
        section, depth, in_ml = "", 0, None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw
            if in_ml is not None:  # inside a multi-line string
                end = line.find(in_ml)
                if end < 0:
                    continue
                line, in_ml = line[end + 3:], None
                starts_key = False
            else:
                starts_key = depth == 0
            stripped = line.strip()
            if starts_key and stripped.startswith("["):
                name = stripped.lstrip("[").split("]")[0].strip()
                if not stripped.startswith("[["):
                    section = name.replace('"', "").replace("'", "").replace(" ", "")
                    self.tables.setdefault(section, lineno)
                continue
            if starts_key and "=" in stripped and not stripped.startswith("#"):
                key = stripped.split("=", 1)[0].strip()
                parts = [k.strip().strip('"').strip("'") for k in key.split(".")]
                if len(parts) == 1:
                    self.keys.setdefault((section, parts[0]), lineno)
                else:
                    sec = ".".join(filter(None, [section] + parts[:-1]))
                    self.keys.setdefault((sec, parts[-1]), lineno)
                    self.tables.setdefault(sec, lineno)
                line = line.split("=", 1)[1]
            depth, in_ml = self._brackets(line, depth)

    @staticmethod
    def _brackets(line, depth):
        """Bracket depth after ``line`` (strings and comments skipped) and the delimiter
        of a multi-line string left open, if any."""
        i, n = 0, len(line)
        while i < n:
            ch = line[i]
            if ch == "#":
                break
            if line.startswith('"""', i) or line.startswith("'''", i):
                q = line[i:i + 3]
                end = line.find(q, i + 3)
                if end < 0:
                    return depth, q
                i = end + 3
                continue
            if ch in "\"'":
                j = i + 1
                while j < n and line[j] != ch:
                    j += 2 if (ch == '"' and line[j] == "\\") else 1
                i = j + 1
                continue
            if ch in "[{":
                depth += 1
            elif ch in "]}":
                depth = max(depth - 1, 0)
            i += 1
        return depth, None


class _Where:
    """Formats the location of an error: ``source:line: `` (line if known)."""

    def __init__(self, source, locator):
        self.source = source or "<grid>"
        self.loc = locator

    def __call__(self, section=None, key=None) -> str:
        line = None
        if section is not None and key is not None:
            line = self.loc.keys.get((section, key))
        if line is None and section is not None:
            line = self.loc.tables.get(section)
        return f"{self.source}:{line}: " if line else f"{self.source}: "


# ---------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Axis:
    """A dimension of the grid: a parameter name, its section and its distinct values."""

    name: str
    section: str
    values: tuple

    def __len__(self):
        return len(self.values)


@dataclass(frozen=True)
class Work:
    """The size of a grid's work, computed from its declared sizes before anything runs.

    Attributes:
        cells: the product of the axis lengths.
        chunk_cells: cells per task (the product of ``Grid.chunks``).
        cell_bytes: bytes stored per cell (Σ over the stored variables of their extra
            sizes — p parameters, K saved points — times the item size).
        task_bytes: the estimated peak memory of one task: ``chunk_cells`` ×
            (``RESULT_COPIES`` × cell_bytes + ``SOLVER_VECTORS`` × 8p) + the family's own
            working memory (the two-layer network evaluated on n or n_test inputs).
        results_bytes: cells × cell_bytes, the whole store (what an export loads).
    """

    cells: int
    chunk_cells: int
    cell_bytes: int
    task_bytes: int
    results_bytes: int

    def describe(self) -> str:
        return (f"work: {self.cells:,} cells, tasks of up to {self.chunk_cells} cells of about "
                f"{_size(self.task_bytes)} of memory each; results {_size(self.results_bytes)} "
                f"in all")


@dataclass(frozen=True, eq=False)
class Grid:
    """A validated grid. Build it with ``Grid.from_toml(path)``, ``Grid.from_text`` or
    ``Grid.from_dict`` (the same nested tables as the TOML file).

    Attributes:
        axes: the axes in order (the dims of the results).
        fixed: every parameter that is not an axis (defaults filled in; ``c_tilde`` /
            ``ratio`` None when not used).
        outputs: the [outputs] settings.
        name, description: from [sweep].
        cells_per_task: cells per task and per stored chunk (along the init axes).
        source: the file read (informational; not part of the definition).
        family: the model family's name ([sweep] family; ``model_family`` is the object).
    """

    axes: tuple[Axis, ...]
    fixed: Mapping
    outputs: Mapping
    name: str = ""
    description: str = ""
    cells_per_task: int = 8
    source: str | None = None
    family: str = DEFAULT_FAMILY
    _p_max: int = field(default=0, repr=False)
    _eval_max: int = field(default=0, repr=False)

    def __post_init__(self):
        if self.name:  # a name, never a path: default_store puts it in out/sweep/NAME.zarr
            try:
                V.name(self.name, "sweep.name")
            except FlowtoolsError as err:
                raise GridError(str(err)) from None

    @property
    def model_family(self) -> Family:
        """The ``flowtools.sweep.family.Family`` of the cells."""
        return get_family(self.family)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_toml(cls, path) -> Grid:
        """Read and validate a TOML grid file."""
        from flowtools._io import read_regular

        path = pathlib.Path(path)
        try:  # a regular file of bounded size (not /dev/zero, a FIFO, a folder)
            data = read_regular(path, MAX_GRID_BYTES, what="grid file")
        except FlowtoolsError as err:
            raise GridError(str(err)) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise GridError(f"cannot read the grid file {str(path)!r}: {err}.") from None
        return cls.from_text(text, source=str(path))

    @classmethod
    def from_text(cls, text: str, *, source: str | None = None) -> Grid:
        """Parse and validate TOML text (``source`` names it in messages)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            m = re.search(r"\(at line (\d+), column (\d+)\)", str(err))
            where = f"{source or '<grid>'}:{m.group(1)}:" if m else f"{source or '<grid>'}:"
            raise GridError(f"{where} not valid TOML: {err}.") from None
        except RecursionError:  # tomllib parses nested arrays and tables recursively
            raise GridError(f"{source or '<grid>'}: arrays or tables nested too deeply: a "
                            "grid's values are numbers, strings and flat lists.") from None
        return cls.from_dict(data, source=source, _text=text)

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str | None = None, _text=None) -> Grid:
        """Validate a grid given as nested tables {section: {parameter: value or axis}}."""
        where = _Where(source, _Locator(_text))
        if not isinstance(data, Mapping):
            raise GridError(f"{where()}a grid is a table of sections, got {type(data).__name__}.")
        family = _family_of(data, where)
        PARAMETERS, SECTIONS = family.table, family.sections
        values: dict[str, object] = {}
        declared = []  # axes: (name, section, param, label, where, count, make)
        for section, table in data.items():
            if section not in SECTIONS:
                if section in PARAMETERS:
                    raise GridError(
                        f"{where('', section)}{section!r} must be inside a table: put it under "
                        f"[{PARAMETERS[section].section}].")
                raise GridError(f"{where(section)}unknown table [{section}]"
                                f"{_suggest(section, SECTIONS)}: use one of "
                                f"{', '.join(f'[{s}]' for s in SECTIONS)}.")
            if not isinstance(table, Mapping):
                raise GridError(f"{where(section)}[{section}] must be a table of "
                                f"parameters, got {table!r}.")
            for key, raw in table.items():
                if key not in SECTIONS[section]:
                    other = PARAMETERS.get(key)
                    hint = (f" ({key!r} belongs in [{other.section}])" if other else
                            _other_family(key, section, family) or
                            _suggest(key, SECTIONS[section]))
                    raise GridError(f"{where(section, key)}unknown key {key!r} in "
                                    f"[{section}]{hint}: use one of "
                                    f"{', '.join(SECTIONS[section])}.")
                p = PARAMETERS[key]
                label = f"{section}.{key}"
                decl = _axis_declared(raw, p, label, where(section, key))
                if decl is None:
                    values[key] = _checked(p, raw, label, where(section, key))
                else:
                    declared.append((key, section, p, label, where(section, key), *decl))
        # the size first, from the declared lengths: no axis is built for a grid refused
        count = math.prod(d[5] for d in declared)
        try:
            V.cells(count, "the grid " + " × ".join(f"{d[0]}[{d[5]:,}]" for d in declared),
                    "split it into several grids or use fewer values per axis")
        except FlowtoolsError as err:
            raise GridError(f"{where()}{err}") from None
        axes = [Axis(name, section, _axis_values(make(), p, label, loc))
                for name, section, p, label, loc, _, make in declared]
        return cls._finish(axes, values, where, source, family)

    @classmethod
    def _finish(cls, axes, values, where, source, family):
        PARAMETERS, SECTIONS = family.table, family.sections
        on_axis = {a.name: a for a in axes}
        given = set(values) | set(on_axis)

        def loc(name):
            return where(PARAMETERS[name].section, name)

        methods = on_axis["dynamics"].values if "dynamics" in on_axis else (
            values.get("dynamics", "flow"),)
        # parameters of one method only, given for a grid that never runs it
        for name in sorted(given):
            p = PARAMETERS[name]
            if p.methods is not None and not set(p.methods) & set(methods):
                raise GridError(f"{loc(name)}integrator.{name} applies to dynamics "
                                f"{' or '.join(map(repr, p.methods))} only, but this grid "
                                f"runs {', '.join(map(repr, methods))}: remove it or set "
                                "dynamics.")
        fixed = {}
        for name, p in PARAMETERS.items():
            if p.section in ("sweep", "outputs") or name in on_axis:
                continue
            if name in values:
                fixed[name] = values[name]
            elif p.default is REQUIRED:
                if p.methods is not None and not set(p.methods) & set(methods):
                    fixed[name] = None
                    continue
                raise GridError(f"{where(p.section)}[{p.section}] needs {name!r} ({p.doc}).")
            else:
                fixed[name] = p.default
        if "gd" in methods and "loss_threshold" not in given:
            from flowtools.sweep.family import gd_loss_threshold

            fixed["loss_threshold"] = gd_loss_threshold()
        family.check(on_axis, fixed, given, loc)
        outputs = {n: values.get(n, PARAMETERS[n].default) for n in SECTIONS["outputs"]}
        for name in ("stages", "save_times"):  # not given: the definition stays as it was
            if name in outputs and not outputs[name]:
                del outputs[name]
        if outputs.get("stages"):
            lowest = min(outputs["stages"])
            ends = on_axis["loss_threshold"].values if "loss_threshold" in on_axis else (
                fixed["loss_threshold"],)
            if any(e >= lowest for e in ends):
                raise GridError(f"{loc('stages')}outputs.stages are loss levels the flow "
                                "passes on its way to its stop, so each must lie above "
                                f"integrator.loss_threshold ({', '.join(map(str, ends))}); "
                                f"got {outputs['stages']}.")
        if "save_times" in outputs:
            cls._check_save_times(outputs, values, on_axis, fixed, methods, loc)
        sweep = {n: values.get(n, PARAMETERS[n].default) for n in SECTIONS["sweep"]}
        grid = cls(axes=tuple(axes), fixed=fixed, outputs=outputs,
                   name=sweep["name"] or _name_of(source), description=sweep["description"],
                   cells_per_task=sweep["cells_per_task"], source=source, family=family.name)
        p_max, eval_max = grid._check_problems(where)
        object.__setattr__(grid, "_p_max", p_max)
        object.__setattr__(grid, "_eval_max", eval_max)
        grid._check_work(where)
        return grid

    @staticmethod
    def _check_save_times(outputs, values, on_axis, fixed, methods, loc) -> None:
        """``save_times`` sets ``trajectory_points`` (their number); each must be a flow
        time ≤ t1 and, for GD, lr·k with k ≤ max_iter (a multiple of lr to 1e-9)."""
        ts = np.asarray(outputs["save_times"])

        def refuse(why):
            raise GridError(f"{loc('save_times')}outputs.save_times {why}; got "
                            f"{outputs['save_times']}.")

        if values.get("trajectory_points") or outputs.get("stages"):
            refuse("replaces trajectory_points (the saves are its number) and does not go "
                   "with stages: give one of them")
        outputs["trajectory_points"] = len(ts)

        def each(name):
            return on_axis[name].values if name in on_axis else (fixed.get(name),)

        if "flow" in methods and any(t1 is not None and ts[-1] > t1 for t1 in each("t1")):
            refuse(f"must lie within the flow's horizon t1 ({', '.join(map(str, each('t1')))})")
        if "gd" in methods:
            for lr in each("lr"):
                k = ts / lr
                if np.any(np.abs(k - np.round(k)) > 1e-9 * np.maximum(k, 1)):
                    refuse(f"must be multiples of GD's lr = {lr} (t = lr·k, to 1e-9)")
                if any(np.round(k[-1]) > m for m in each("max_iter")):
                    refuse(f"must lie within GD's lr·max_iter (lr = {lr}, max_iter "
                           f"{', '.join(map(str, each('max_iter')))})")

    def _check_work(self, where) -> None:
        """Refuse a grid whose tasks would not fit in memory (``flowtools._validate.memory``),
        from the declared sizes: before anything runs."""
        w = self.work
        try:
            V.memory(w.task_bytes, f"one task of this grid ({w.chunk_cells} cell(s), each "
                     f"storing {_size(w.cell_bytes)}: p = {self.p_max} parameters, "
                     f"trajectory_points = {self.outputs.get('trajectory_points', 0)}; and "
                     f"{_size(self._eval_max)} to evaluate the model)",
                     "use fewer trajectory_points, a smaller model (width, n, n_test) or "
                     "fewer cells_per_task")
        except FlowtoolsError as err:
            raise GridError(f"{where()}{err}") from None

    def _check_problems(self, where) -> int:
        """Build every distinct problem once (cheap: data only) so that combinations that
        cannot work (grid sampling with d > 1, an activation without σ'(0) for c̃, …) are
        refused before anything runs (a family with ``n_params`` only counts). Returns the
        largest parameter count p and the largest working memory of the family's
        ``work_bytes``."""
        family = self.model_family
        names = family.sections["problem"]
        p_axes = [a for a in self.axes if a.section == "problem"]
        p_max, eval_max, seen = 0, 0, set()
        for combo in itertools.product(*(a.values for a in p_axes)):
            params = dict({k: self.fixed[k] for k in names if k in self.fixed},
                          **dict(zip((a.name for a in p_axes), combo, strict=True)))
            key = tuple(sorted((k, v) for k, v in params.items()
                               if relevant(k, params, family)))
            if key in seen:
                continue
            seen.add(key)
            desc = ", ".join(f"{a.name} = {v!r}" for a, v in zip(p_axes, combo, strict=True))
            if family.work_bytes is not None:
                eval_max = max(eval_max, family.work_bytes(params, self.outputs))
            if family.n_params is not None:
                p_max = max(p_max, family.n_params(params))
                continue
            try:
                pb = family.build(params)
            except FlowtoolsError as err:
                raise GridError(f"{where('problem')}the problem"
                                f"{' with ' + desc if desc else ''} cannot be built: {err}"
                                ) from None
            if family.check_model is not None:
                family.check_model(pb, self, where, desc)
            p_max = max(p_max, pb.n_params)
        return p_max, eval_max

    # ------------------------------------------------------------------ shape
    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def p_max(self) -> int:
        """The largest parameter count p over the grid (θ arrays are padded to it)."""
        return self._p_max

    @property
    def work(self) -> Work:
        """The size of the work (``Work``), from the declared sizes."""
        sizes = self.layout().extra_sizes
        cell_bytes = sum(V.nbytes(*(sizes[e] for e in v.extra),
                                  itemsize=np.dtype(v.dtype).itemsize)
                         for v in self.model_family.variables(self.outputs).values())
        chunk = math.prod(self.chunks)
        task = chunk * (RESULT_COPIES * cell_bytes + V.nbytes(SOLVER_VECTORS, self.p_max)) \
            + self._eval_max
        return Work(cells=self.size, chunk_cells=chunk, cell_bytes=cell_bytes,
                    task_bytes=task, results_bytes=self.size * cell_bytes)

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(name)

    def cell(self, index) -> dict:
        """All parameters of the cell at ``index`` (one integer per axis)."""
        index = tuple(index)
        if len(index) != len(self.axes):
            raise FlowtoolsError(f"a cell index has one entry per axis {self.dims}, got "
                                 f"{index}.")
        out = dict(self.fixed)
        for a, i in zip(self.axes, index, strict=True):
            out[a.name] = a.values[i]
        return out

    @property
    def chunks(self) -> tuple[int, ...]:
        """Cells per stored chunk along each axis: 1 along problem and integrator axes;
        along the init axes (innermost first) up to ``cells_per_task`` cells in all. One
        chunk = one task: cells that share a problem and a compiled solver."""
        out = [1] * len(self.axes)
        budget = self.cells_per_task
        for i in reversed(range(len(self.axes))):
            if self.axes[i].section == "init" and budget >= 1:
                out[i] = min(len(self.axes[i]), budget)
                budget //= out[i]
        return tuple(out)

    def blocks(self):
        """The chunks as tuples of slices (one per axis), in C order."""
        ranges = [range(0, n, c) for n, c in zip(self.shape, self.chunks, strict=True)]
        for starts in itertools.product(*ranges):
            yield tuple(slice(s, min(s + c, n)) for s, c, n in
                        zip(starts, self.chunks, self.shape, strict=True))

    # ------------------------------------------------------------------ identity
    def definition(self) -> dict:
        """Everything that determines the results, as plain JSON values: the axes, the
        fixed parameters that apply, outputs and the chunk layout (not the name or the
        source file). Stores are keyed by this and the library versions."""
        methods = set(self.axis("dynamics").values) if "dynamics" in self.dims else {
            self.fixed["dynamics"]}
        family = self.model_family
        fixed = {}
        for k, v in self.fixed.items():
            p = family.table[k]
            if p.methods is not None and not set(p.methods) & methods:
                continue
            if v is None or not family.applies(k, self.fixed):  # axes are not in fixed
                continue
            fixed[k] = v
        out = {"format_version": FORMAT_VERSION,
               "axes": [[a.name, list(a.values)] for a in self.axes],
               "fixed": fixed, "outputs": dict(self.outputs),
               "cells_per_task": self.cells_per_task}
        if self.family != DEFAULT_FAMILY:  # the default's definitions stay as they were
            out["family"] = self.family
        return out

    def key(self, versions: Mapping | None = None) -> str:
        """SHA-256 of the canonical JSON of ``definition()`` and ``versions``."""
        return definition_key(self.definition(), versions)

    def layout(self) -> Layout:
        """What a results store is made of (``flowtools.sweep.layout``), computed once: the
        definition, the coordinates, the stored variables and the chunks."""
        return Layout(
            name=self.name, description=self.description, source=str(self.source or ""),
            family=self.family, definition=self.definition(),
            coordinates=tuple(Coordinate(a.name, a.section, tuple(a.values))
                              for a in self.axes),
            variables=dict(self.model_family.variables(self.outputs)),
            extra_sizes={"param": self.p_max,
                         "save": max(self.outputs.get("trajectory_points", 0), 1),
                         "stage": max(len(self.outputs.get("stages") or ()), 1)},
            chunks=tuple(self.chunks))

    def describe(self) -> str:
        """A few lines: the axes with their sizes, and the fixed parameters."""
        lines = [f"grid {self.name or '(unnamed)'}: {self.size} cells = "
                 + " × ".join(f"{a.name}[{len(a)}]" for a in self.axes) if self.axes else
                 f"grid {self.name or '(unnamed)'}: 1 cell"]
        for a in self.axes:
            lines.append(f"  {a.name:16s} {_short(a.values)}")
        fixed = self.definition()["fixed"]
        lines.append("  fixed: " + ", ".join(f"{k} = {v!r}" for k, v in fixed.items()))
        lines.append("  " + self.work.describe())
        return "\n".join(lines)


def load_grid(grid) -> Grid:
    """A ``Grid`` from a ``Grid``, a path to a TOML file, or a dict of tables."""
    if isinstance(grid, Grid):
        return grid
    if isinstance(grid, Mapping):
        return Grid.from_dict(grid)
    if isinstance(grid, (str, pathlib.Path)):
        return Grid.from_toml(grid)
    raise GridError(f"a grid is a Grid, a TOML file path or a dict of tables, got "
                    f"{type(grid).__name__}.")


def _family_of(data: Mapping, where) -> Family:
    """The family named in ``[sweep] family`` (default ``two_layer``)."""
    from flowtools.sweep.family import available

    sweep = data.get("sweep", {})
    name = sweep.get("family", DEFAULT_FAMILY) if isinstance(sweep, Mapping) else \
        DEFAULT_FAMILY
    if not isinstance(name, str) or name not in available():
        raise GridError(f"{where('sweep', 'family')}sweep.family must be one of "
                        f"{', '.join(available())}, got {name!r}"
                        f"{_suggest(str(name), available())}.")
    return get_family(name)


def _other_family(key: str, section: str, family: Family) -> str:
    """A hint when ``key`` is a parameter of another family's [section]."""
    from flowtools.sweep.family import available

    for name in available():
        if name != family.name and key in get_family(name).sections[section]:
            return (f" ({key!r} is a parameter of the family {name!r}; this grid's family is "
                    f"{family.name!r}, set in [sweep] family)")
    return ""


# ---------------------------------------------------------------------- values
def _checked(p: Param, value, label, where):
    if isinstance(value, (list, dict)) and not p.axis and not (p.listed and
                                                                isinstance(value, list)):
        raise GridError(f"{where}{label} is a setting, not an axis: give one value, got "
                        f"{value!r}.")
    try:
        out = p.check(value, label)
    except FlowtoolsError as err:
        raise GridError(f"{where}{err}" + _choices_hint(p, str(err))) from None
    return out


def _choices_hint(p: Param, message: str) -> str:
    if p.choices is not None and "use one of" not in message:
        return f" (choices: {', '.join(p.choices())})"
    return ""


def _axis_declared(raw, p: Param, label, where):
    """(count, make) if ``raw`` declares an axis, None for a scalar: the number of values,
    computed from the declaration alone, and a function that makes them (called only once
    the grid's size is accepted)."""
    if isinstance(raw, dict):
        if not p.axis:
            _checked(p, raw, label, where)
        keys = list(raw)
        if len(keys) != 1 or keys[0] not in _SPACINGS:
            raise GridError(f"{where}{label}: an axis table has one key, one of "
                            f"{', '.join(_SPACINGS)} (e.g. {{linspace = [0.1, 1.0, 10]}}), "
                            f"got {raw!r}.")
        return _spacing(keys[0], raw[keys[0]], label, where)
    if isinstance(raw, list):
        if p.listed:  # one value, a list
            return None
        if not p.axis:
            _checked(p, raw, label, where)
        if not raw:
            raise GridError(f"{where}{label} is an empty axis: give at least one value.")
        return len(raw), lambda: raw
    return None


def _axis_values(vals, p: Param, label, where) -> tuple:
    """The checked, distinct values of an axis."""
    out = []
    for i, v in enumerate(vals):
        if isinstance(v, (list, dict)):
            raise GridError(f"{where}{label}[{i}] must be a single value, got {v!r}.")
        out.append(_checked(p, v, f"{label}[{i}]", where))
    seen = {}
    for i, v in enumerate(out):
        if v in seen:
            raise GridError(f"{where}{label} lists {v!r} twice (entries {seen[v]} and {i}): "
                            "the values along an axis must be distinct.")
        seen[v] = i
    return tuple(out)


def _spacing(kind, args, label, where):
    """(count, make) of ``{kind = args}``: the count by arithmetic (a range's length as
    Python's ``len(range(...))``, linspace's and geomspace's ``num``), nothing built."""
    if not isinstance(args, list) or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise GridError(f"{where}{label}: {kind} takes a list of numbers, got {args!r}.")
    if not all(math.isfinite(a) for a in args):
        raise GridError(f"{where}{label}: {kind} takes finite numbers, got {args!r}.")
    if kind == "range":
        if len(args) not in (2, 3) or any(a != int(a) for a in args):
            raise GridError(f"{where}{label}: range takes [start, stop] or [start, stop, "
                            f"step] as integers (stop excluded, as Python's range), got "
                            f"{args!r}.")
        start, stop, step = (int(a) for a in [*args, 1][:3])
        if step == 0:
            raise GridError(f"{where}{label}: range step must not be zero, got {args!r}: "
                            "give [start, stop] or a step ≠ 0.")
        count = max(0, -((start - stop) // step))  # ⌈(stop − start)/step⌉ = len(range)
        if count == 0:
            raise GridError(f"{where}{label}: range{tuple(args)} is empty.")
        return count, lambda: range(start, stop, step)
    if len(args) != 3 or args[2] != int(args[2]) or args[2] < 1:
        raise GridError(f"{where}{label}: {kind} takes [start, stop, num] with an integer "
                        f"num ≥ 1, got {args!r}.")
    a, b, num = float(args[0]), float(args[1]), int(args[2])
    if kind == "geomspace" and not (a > 0 and b > 0):
        raise GridError(f"{where}{label}: geomspace needs start and stop > 0, got {args!r}.")
    fn = np.linspace if kind == "linspace" else np.geomspace
    return num, lambda: [float(v) for v in fn(a, b, num)]


def _name_of(source) -> str:
    """A grid file's stem as its default name, if it is a name (else unnamed: "sweep")."""
    stem = pathlib.Path(source).stem if source else ""
    try:
        return V.name(stem, "the grid's name") if stem else ""
    except FlowtoolsError:
        return ""


def _size(b: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{int(b)} B"


def _suggest(word, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(values) -> str:
    vals = list(values)
    if len(vals) <= 6:
        return f"{len(vals)}: " + ", ".join(map(_fmt, vals))
    return f"{len(vals)}: " + ", ".join(map(_fmt, vals[:3])) + ", …, " + _fmt(vals[-1])


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else repr(v)
