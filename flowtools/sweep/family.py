"""Model families of the sweep engine: what a grid's cells are made of.

A *family* says, for one kind of model, which parameters a grid may set ([problem], [init],
[outputs]; [integrator] is shared, since ``solve_flow`` and ``run_gd`` take any
``flowtools.models.AbstractModel``), how to build the model of a cell's problem
parameters, how to initialize it, and which per-cell results are stored and how they are
measured from the runs. A grid names its family in ``[sweep] family = "NAME"`` (default
``"two_layer"``, so every earlier grid and store means what it meant).

Built in: ``two_layer`` (``flowtools.sweep.two_layer``: ``make_problem``, the Q1/Q2
branches and the generalization error) and ``relu_cnn`` (``flowtools.sweep.relu_cnn``: the
two-patch ReLU CNN of Shang et al., train/test error and the layer diagnostics).

Registering one (at import time of the module that defines it)::

    from flowtools.sweep.family import Family, register

    register(Family(name="mine", parameters=..., build=..., init=..., variables=...,
                    measure=...))

``parameters()`` returns the family's ``Param`` objects (problem, init, outputs, and any
integrator settings of its own); ``build(problem)`` → model; ``init(model, init,
problem)`` → θ0 (p,); ``variables(outputs)`` → the stored ``Variable`` objects in order;
``measure(model, theta0, runs, spec)`` → one array per variable with a leading cell axis
(``runs``: the integrator's per-cell end points, counters and settings, see
``flowtools.sweep.cells``). ``Family`` is an abstract base class with these abstract
methods: a subclass (with a class attribute ``name``) defines them; ``Family(...)`` with
functions, as above, returns a ``FunctionFamily`` that calls them.

The optional ``integrand(model, params)`` hook says what the integrator runs: the model
itself (the default), another model in the same coordinates (the two-layer family's
padded data), or an ``Integrand`` — a model in other coordinates with the exact change of
coordinates to the measured model's θ (``reduce`` the start points, ``lift`` the end points
and saved states back before ``measure``; the ReLU CNN's span coordinates, whose cost does
not grow with d).

    >>> fam = get_family("two_layer")
    >>> isinstance(fam, Family), type(fam).__name__, sorted(Family.__abstractmethods__)
    (True, 'FunctionFamily', ['build', 'init', 'measure', 'parameters', 'variables'])

Data flow one way: the family modules define families (and import only this module); the
grid (``flowtools.sweep.grid``) parses and validates against them, asking the registry by
name; the cells build and measure; the store receives a plain layout.
"""

from __future__ import annotations

import abc
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError, GridError

__all__ = ["DEFAULT_FAMILY", "Family", "FunctionFamily", "Integrand", "Param", "Variable",
           "available", "get_family", "register"]

DEFAULT_FAMILY = "two_layer"
_BUILTIN = {"two_layer": "flowtools.sweep.two_layer", "relu_cnn": "flowtools.sweep.relu_cnn"}
_REGISTRY: dict[str, Family] = {}
REQUIRED = object()


# ---------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Param:
    """One grid parameter: its section, a check (value, label) → normalized value, the
    default (``REQUIRED`` if none), whether it may be an axis, which integrator methods it
    applies to (None: all), and the choices to list in messages. ``listed``: a setting
    whose one value is a list (never an axis), such as the loss levels of ``stages``."""

    name: str
    section: str
    check: Callable
    default: object = None
    axis: bool = True
    listed: bool = False
    methods: tuple | None = None
    choices: Callable | None = None
    doc: str = ""


@dataclass(frozen=True)
class Variable:
    """A stored per-cell quantity: extra dims after the grid's axes, dtype, the value of
    cells not computed yet, and its attributes."""

    name: str
    extra: tuple
    dtype: str
    fill: object
    attrs: dict


def string(value, name):
    if not isinstance(value, str):
        raise FlowtoolsError(f"{name} must be a string, got {value!r}.")
    return value


def choice(options: Callable):
    return lambda v, name: V.choice(v, name, options())


def signature_defaults(fn) -> dict:
    """The keyword defaults of ``fn`` (a grid's defaults mean what the library's do)."""
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _solvers():
    from flowtools.integrate import SOLVERS

    return ["auto", *SOLVERS]


def sweep_parameters() -> list[Param]:
    """The [sweep] table (every family)."""
    P = Param
    return [
        P("name", "sweep", V.name, "", axis=False,
          doc="a name for the results (a name, not a path: the store is out/sweep/NAME.zarr "
              "unless --store places it)"),
        P("description", "sweep", string, "", axis=False, doc="free text"),
        P("family", "sweep", choice(available), DEFAULT_FAMILY, axis=False,
          choices=available, doc="the model family of the cells"),
        P("cells_per_task", "sweep", V.positive_int, 8, axis=False,
          doc="cells of one problem computed by one task and stored as one chunk"),
    ]


def gd_loss_threshold() -> float:
    """``run_gd``'s default loss threshold (a GD grid's default, not the flow's)."""
    from flowtools.descent import run_gd

    return signature_defaults(run_gd)["loss_threshold"]


def integrator_parameters() -> list[Param]:
    """The [integrator] table shared by every family (defaults from the signatures of
    ``solve_flow`` and ``run_gd``)."""
    from flowtools.descent import run_gd
    from flowtools.flow import solve_flow

    sf, gd = signature_defaults(solve_flow), signature_defaults(run_gd)
    P = Param
    flow, gdm = ("flow",), ("gd",)
    return [
        P("dynamics", "integrator", choice(lambda: ["flow", "gd"]), "flow",
          choices=lambda: ["flow", "gd"],
          # not named `method`: xarray's Dataset.sel(method=...) is the fill-method keyword
          doc="gradient flow or gradient descent"),
        P("t1", "integrator", V.positive_float, sf["t1"], methods=flow, doc="flow horizon"),
        P("loss_threshold", "integrator", lambda v, n: V.loss_threshold(v),
          sf["loss_threshold"], doc="stop at loss ≤ this (0 disables)"),
        P("gtol", "integrator", lambda v, n: V.nonnegative_float(v, n), sf["gtol"],
          methods=flow, doc="stationarity stop ‖∇ℓ‖ ≤ gtol·‖θ‖ (0 disables)"),
        P("rtol", "integrator", lambda v, n: V.in_open_interval(v, n, 0.0, 1.0), sf["rtol"],
          methods=flow, doc="relative tolerance"),
        P("atol_rel", "integrator", V.positive_float, sf["atol_rel"], methods=flow,
          doc="absolute tolerance relative to rtol"),
        P("solver", "integrator", choice(_solvers), sf["solver"], methods=flow,
          choices=_solvers, doc="diffrax solver"),
        P("max_steps", "integrator", V.positive_int, sf["max_steps"], methods=flow,
          doc="solver step budget per cell"),
        P("lockstep", "integrator", V.flag, None, axis=False, methods=flow,
          doc="true: a task's flow cells integrated as one lockstep batch (solve_flow on "
              "(B, p): about 4× less per member-step than cells alone, which is the default; "
              "like GD's, its bits then depend on cells_per_task)"),
        P("batch_size", "integrator", V.positive_int, None, axis=False, methods=flow,
          doc="with lockstep: members per lockstep chunk within a task (solve_flow's "
              "batch_size; default its own) — a large task in small chunks, so that a slow "
              "member holds back only its chunk"),
        P("lr", "integrator", lambda v, n: V.learning_rate(v), REQUIRED, methods=gdm,
          doc="GD learning rate"),
        P("max_iter", "integrator", V.positive_int, gd["max_iter"], methods=gdm,
          doc="GD iteration limit"),
    ]


@dataclass(frozen=True)
class Integrand:
    """What the integrator runs for a task: ``model`` in coordinates φ, with the exact change
    of coordinates from the measured model's θ (the return value of a family's
    ``integrand`` hook; a bare model means φ = θ).

    ``reduce(theta0)``: the start points, (B, p) → (B, q). ``lift(phi, theta0)``: states
    back, (…, q) with θ0 broadcast against the leading axes — (B, q) with θ0 (B, p) for the
    end points, (B, S, q) with θ0 (B, 1, p) for saved states. The change must carry the
    dynamics exactly (the run in φ, lifted, is the run in θ: GD to round-off, the flow to
    its tolerance), and keep the loss: the counters, losses and times the integrator reports
    in φ are stored as they are. Only the states are lifted, before ``measure``.

        >>> import numpy as np
        >>> tw = Integrand("model", reduce=lambda th: th[:, :1],
        ...                lift=lambda phi, th0: np.concatenate(
        ...                    [phi, np.broadcast_to(th0[..., 1:], phi.shape[:-1] + (1,))], -1))
        >>> th0 = np.array([[1.0, 5.0]])
        >>> tw.start(th0).tolist(), tw.lift_runs({"theta_final": np.array([[2.0]])}, th0)
        ([[1.0]], {'theta_final': array([[2., 5.]])})
    """

    model: object
    reduce: Callable | None = None
    lift: Callable | None = None

    @classmethod
    def of(cls, target) -> Integrand:
        """``target`` as an ``Integrand`` (a bare model: the same coordinates)."""
        return target if isinstance(target, cls) else cls(target)

    def start(self, theta0: np.ndarray) -> np.ndarray:
        """The start points in φ (θ0 itself without a change of coordinates)."""
        return theta0 if self.reduce is None else np.asarray(self.reduce(theta0))

    def lift_runs(self, runs: Mapping, theta0: np.ndarray) -> dict:
        """``runs`` with its states (``theta_final`` (B, q), ``thetas`` (B, S, q) if
        saved, ``stage_theta`` (B, K, q) with stages) lifted to θ; the rest as it is."""
        out = dict(runs)
        if self.lift is None:
            return out
        out["theta_final"] = np.asarray(self.lift(runs["theta_final"], theta0))
        for name in ("thetas", "stage_theta"):
            if name in runs:
                out[name] = np.asarray(self.lift(runs[name], theta0[:, None, :]))
        return out


# ---------------------------------------------------------------------- families
def grid_values(name: str, axes: Mapping, fixed: Mapping) -> tuple:
    """The values a parameter takes in a grid (its axis, or its one fixed value): for a
    family's ``check``."""
    return axes[name].values if name in axes else (fixed[name],)


def exclusive(given: set, first: str, second: str, loc, why: str) -> None:
    """Refuse a grid that gives both of two settings that prescribe the same thing (the
    message points at the second): for a family's ``check``."""
    if first in given and second in given:
        raise GridError(f"{loc(second)}give {why}")


class Family(abc.ABC):
    """A model family of the sweep engine (see the module docstring): an abstract base class.

    A family defines ``parameters()`` → its ``Param`` objects, ``build(problem)`` → model,
    ``init(model, init, problem)`` → θ0 (p,), ``variables(outputs)`` → the stored
    ``Variable`` objects by name, in order, and ``measure(model, theta0, runs, spec)`` → one
    array per variable with a leading cell axis. Either subclass it (with a class attribute
    ``name``) or call ``Family(name=..., parameters=..., build=..., init=..., variables=...,
    measure=..., <optional hooks>)`` with functions: that returns a ``FunctionFamily``, a
    subclass that calls them (the two built-in families are made so).

    Optional hooks (methods with defaults, or the attribute None): ``applies(name,
    params)`` — whether a parameter changes a cell with these parameters (beyond the
    integrator method; e.g. a seed of evenly spaced data); ``check(axes, fixed, given,
    loc)`` — cross-parameter checks, raising ``GridError`` (``loc(name)`` is the "file:line: "
    prefix of a parameter); ``check_model(model, grid, where, desc)`` — checks of one built
    model; ``settings(integrator, init)`` — a cell's integrator settings (e.g. a learning
    rate that depends on the initialization; cells with equal settings run as one GD
    batch); ``n_params(problem)`` — the parameter count without building the model (a grid
    is then checked without building its problems: the CNN's data are large);
    ``work_bytes(problem, outputs)`` — the memory a task needs beyond its stored results and
    the integrator's state vectors (e.g. the model evaluated on its data and test inputs),
    estimated from the declared sizes so that a grid that cannot fit is refused before it
    runs (``flowtools.sweep.grid.Work``); ``integrand(model, params)`` — what the
    integrator runs, when it differs from the model the results are measured on (``params``:
    the task's [problem] and [integrator] parameters in one mapping; their names are unique
    across sections): another model in the same coordinates (the two-layer family's data
    padded to a fixed row count, so that every n shares one compiled program), or an
    ``Integrand``, a model in other coordinates with the exact change of coordinates (the
    ReLU CNN's span coordinates); ``static`` — the parameters ([problem] or [integrator])
    that fix the compiled program's shapes (tasks sharing them share a worker); ``summary`` —
    the variables ``flowtools sweep show --cells`` prints per cell.
    """

    name: str
    static: tuple = ()
    summary: tuple = ()
    doc: str = ""
    check_model: Callable | None = None
    n_params: Callable | None = None
    work_bytes: Callable | None = None

    def __new__(cls, *args, **kwargs):
        # Family(name=..., build=..., ...) with functions, as documented: a FunctionFamily
        return object.__new__(FunctionFamily if cls is Family else cls)

    @abc.abstractmethod
    def parameters(self) -> list[Param]:
        """The family's own ``Param`` objects (problem, init, outputs, any integrator
        settings of its own)."""

    @abc.abstractmethod
    def build(self, problem: Mapping):
        """The model of a cell's problem parameters."""

    @abc.abstractmethod
    def init(self, model, init: Mapping, problem: Mapping) -> np.ndarray:
        """The initial state θ0 (p,) of one cell."""

    @abc.abstractmethod
    def variables(self, outputs: Mapping) -> dict[str, Variable]:
        """The stored per-cell variables, by name, in order."""

    @abc.abstractmethod
    def measure(self, model, theta0, runs: Mapping, spec: Mapping) -> dict:
        """One array per variable, with a leading cell axis."""

    def applies(self, name: str, params: Mapping) -> bool:
        return True

    def check(self, axes: Mapping, fixed: Mapping, given: set, loc) -> None:
        return None

    def settings(self, integrator, init):
        return integrator

    def integrand(self, model, params):
        return model

    @functools.cached_property
    def table(self) -> dict[str, Param]:
        """Every parameter of a grid of this family, by name ([sweep] and [integrator]
        included; built once, on first use)."""
        items = [*sweep_parameters(), *self.parameters()]
        names = {p.name for p in items}
        items += [p for p in integrator_parameters() if p.name not in names]
        order = {"sweep": 0, "problem": 1, "init": 2, "integrator": 3, "outputs": 4}
        items.sort(key=lambda p: order[p.section])  # stable: each section's own order
        return {p.name: p for p in items}

    @property
    def sections(self) -> dict[str, list[str]]:
        out = {s: [] for s in ("sweep", "problem", "init", "integrator", "outputs")}
        for p in self.table.values():
            out[p.section].append(p.name)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


_HOOKS = ("applies", "check", "check_model", "settings", "integrand", "n_params",
          "work_bytes")


class FunctionFamily(Family):
    """A family made of functions (what ``Family(name=..., build=..., ...)`` returns); the
    arguments, positional or by keyword, are those of ``Family``'s docstring in the order
    name, parameters, build, init, variables, measure, applies, check, check_model,
    settings, integrand, n_params, work_bytes, static, summary, doc."""

    def __init__(self, name: str, parameters: Callable[[], list[Param]], build: Callable,
                 init: Callable, variables: Callable[[Mapping], dict[str, Variable]],
                 measure: Callable, applies: Callable | None = None,
                 check: Callable | None = None, check_model: Callable | None = None,
                 settings: Callable | None = None, integrand: Callable | None = None,
                 n_params: Callable | None = None, work_bytes: Callable | None = None,
                 static: tuple = (), summary: tuple = (), doc: str = ""):
        self.name, self.static, self.summary, self.doc = name, tuple(static), \
            tuple(summary), doc
        self._functions = (parameters, build, init, variables, measure)
        given = dict(applies=applies, check=check, check_model=check_model,
                     settings=settings, integrand=integrand, n_params=n_params,
                     work_bytes=work_bytes)
        for hook in _HOOKS:  # a given hook replaces the default method (None keeps it)
            if given[hook] is not None:
                setattr(self, hook, given[hook])

    def parameters(self):
        return self._functions[0]()

    def build(self, problem):
        return self._functions[1](problem)

    def init(self, model, init, problem):
        return self._functions[2](model, init, problem)

    def variables(self, outputs):
        return self._functions[3](outputs)

    def measure(self, model, theta0, runs, spec):
        return self._functions[4](model, theta0, runs, spec)


def register(family: Family) -> Family:
    """Add ``family`` to the registry (a name already taken by another family is refused)."""
    old = _REGISTRY.get(family.name)
    if old is not None and old is not family:
        raise FlowtoolsError(f"a sweep family named {family.name!r} is already registered.")
    _REGISTRY[family.name] = family
    return family


def available() -> list[str]:
    """The names of the registered families (the built-in ones included)."""
    return sorted(set(_REGISTRY) | set(_BUILTIN))


def get_family(name: str) -> Family:
    """The family called ``name`` (built-in ones are imported on first use)."""
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        raise FlowtoolsError(f"unknown sweep family {name!r}: use one of "
                             f"{', '.join(available())}.")
    return _REGISTRY[name]


# ---------------------------------------------------------------------- shared variables
def run_variables(loss_description: str) -> dict[str, Variable]:
    """The integrator's per-cell results every family stores (``loss_final`` … ``grad_evals``;
    ``wall_time`` comes from ``wall_time_variable``)."""
    from flowtools.status import Status

    status = {"description": "flowtools.Status code of the integrator run",
              **Status.flags("not_computed")}
    out = [
        Variable("loss_final", (), "float64", np.nan, {"description": loss_description}),
        Variable("t_final", (), "float64", np.nan,
                 {"description": "flow time at the end (GD: iterations × lr)"}),
        Variable("status", (), "int8", -1, status),
        Variable("steps", (), "int64", -1, {"description": "accepted solver steps (flow) or "
                                                         "iterations (GD); −1 not computed"}),
        Variable("grad_evals", (), "int64", -1, {"description": "gradient evaluations (flow: "
                                                              "steps × stages estimate)"}),
    ]
    return {v.name: v for v in out}


WALL_TIME = Variable("wall_time", (), "float64", np.nan,
                     {"description": "seconds of integration for this cell, compilation "
                                     "excluded (GD: share of its task's batched run)",
                      "units": "s"})


def run_columns(runs: Mapping) -> dict:
    """The ``run_variables`` and ``wall_time`` of the per-cell ``runs`` columns, typed."""
    out = {k: np.asarray(runs[k]).astype(np.float64) for k in ("loss_final", "t_final")}
    out["status"] = np.asarray(runs["status"]).astype(np.int8)
    out["steps"] = np.asarray(runs["steps"]).astype(np.int64)
    out["grad_evals"] = np.asarray(runs["grad_evals"]).astype(np.int64)
    out["wall_time"] = np.asarray(runs["wall_time"]).astype(np.float64)
    return out


def stage_variables(levels) -> dict[str, Variable]:
    """The stored variables of a flow's stages (``outputs.stages``: the loss levels at which
    the cell's one flow was stopped and continued), one entry per level along ``stage``."""
    attrs = {"stage_levels": list(levels)}
    V_ = Variable
    out = [
        V_("stage_t", ("stage",), "float64", np.nan,
           dict(attrs, description="flow time where ℓ first reached the stage level (NaN: "
                                   "not reached; the flow ended before)")),
        V_("stage_loss", ("stage",), "float64", np.nan,
           dict(attrs, description="ℓ there (≤ the level)")),
        V_("stage_steps", ("stage",), "int64", -1,
           dict(attrs, description="accepted steps up to there (−1: not reached)")),
        V_("stage_theta", ("stage", "param"), "float64", np.nan,
           dict(attrs, description="the state there (as theta_final; NaN: not reached)")),
    ]
    return {v.name: v for v in out}


def stage_columns(runs: Mapping, p_max: int) -> dict:
    """The stage variables of a task's cells from the integrator's ``runs`` (θ padded with
    NaN to ``p_max``)."""
    th = np.asarray(runs["stage_theta"], dtype=np.float64)
    pad = np.full(th.shape[:-1] + (p_max - th.shape[-1],), np.nan)
    return {"stage_t": np.asarray(runs["stage_t"], dtype=np.float64),
            "stage_loss": np.asarray(runs["stage_loss"], dtype=np.float64),
            "stage_steps": np.asarray(runs["stage_steps"], dtype=np.int64),
            "stage_theta": np.concatenate([th, pad], axis=-1)}
