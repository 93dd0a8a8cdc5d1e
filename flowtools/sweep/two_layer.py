"""The sweep family ``two_layer``: the paper's two-layer network with a single-neuron target
(``flowtools.make_problem``), the default of every grid.

A cell is a problem (``make_problem``), an initial state (``init_gaussian``, or
``init_ratio`` for a prescribed c = C1/C2 or c̃, or with ``start = "limit"`` the α → 0
limit's start on the manifold series for the cell's c̃: ``limit_start``), one integrator
run and the quantities derived from its end point:

=============  ======================================================================
theta0         the initial state θ0 (padded with NaN to the grid's largest p)
theta_final    the end point θ_final (same padding)
loss_final     ℓ(θ_final) (½Σ(f − y)², or ½·(1/n)Σ for loss_convention = mean)
t_final        the flow time at the end (GD: iterations × lr)
status         ``flowtools.Status`` code (−1: not computed)
steps          accepted solver steps (flow) or iterations (GD)
grad_evals     gradient evaluations (the flow's is an estimate, see ``solve_flow``)
branch         ``classify``: 0 Q1, 1 Q2, 2 other, −1 not classified (non-finite end)
dist_Q1/Q2     distances of θ_final to Q1 and Q2 (up to the network's symmetries)
gen_error      ``generalization_error`` of θ_final on the grid's test inputs
wall_time      seconds of integration for this cell (compilation excluded; GD: the
               cell's share of its task's one batched run)
ts, losses,    with ``trajectory_points = K``: K saved times (log-spaced, as the
thetas         integrators save them), losses and states
=============  ======================================================================
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError, GridError
from flowtools.sweep.family import (
    WALL_TIME,
    Family,
    Param,
    Variable,
    choice,
    exclusive,
    grid_values,
    register,
    run_columns,
    run_variables,
    signature_defaults,
    stage_columns,
    stage_variables,
)

__all__ = ["BRANCH_CODES", "FAMILY", "initial_state", "limit_start", "problem_from",
           "variables"]

BRANCH_CODES = {"Q1": 0, "Q2": 1, "other": 2}
STARTS = ("gaussian", "limit")
NOT_CLASSIFIED = -1


# ---------------------------------------------------------------------- parameters
def _activation(value, name):
    from flowtools.activations import available, get_activation

    if not isinstance(value, str):
        raise FlowtoolsError(f"{name} must be a string: a registered name "
                             f"({', '.join(available())}) or an expression in x, "
                             f"got {value!r}.")
    get_activation(value)  # raises FlowtoolsError naming the registered names
    return value


def _c_tilde(value, name):
    v = V.nonnegative_float(value, name)
    if v > 1:
        raise FlowtoolsError(f"{name} = min(|c|, 1/|c|) must lie in [0, 1], got {value!r}.")
    return v


def _nonzero(value, name):
    v = V.real(value, name)
    if v == 0:
        raise FlowtoolsError(f"{name} = C1/C2 must be finite and non-zero, got {value!r}.")
    return v


def _points(value, name):
    v = V.nonnegative_int(value, name)
    if v == 1:
        raise FlowtoolsError(f"{name} must be 0 (no trajectory) or ≥ 2 (the start and at "
                             "least one more point), got 1.")
    return v


def _levels(value, name):
    if not isinstance(value, (list, tuple)):
        raise FlowtoolsError(f"{name} must be a list of loss levels, e.g. [1e-15], got "
                             f"{value!r}.")
    out = [V.positive_float(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if any(b >= a for a, b in zip(out, out[1:])):
        raise FlowtoolsError(f"{name} must decrease (the flow reaches them in turn), got "
                             f"{value!r}.")
    return out


def _times(value, name):
    if not isinstance(value, (list, tuple)) or not value:
        raise FlowtoolsError(f"{name} must be a non-empty list of times, e.g. [0, 50, 500], "
                             f"got {value!r}.")
    out = [V.nonnegative_float(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if any(b <= a for a, b in zip(out, out[1:])):
        raise FlowtoolsError(f"{name} must increase, got {value!r}.")
    return out


TIES = ("none", "zero_first", "equal")


def _samplers():
    from flowtools.data import SAMPLERS

    return sorted(SAMPLERS)


def parameters() -> list[Param]:
    from flowtools.branches import classify
    from flowtools.models import make_problem
    from flowtools.models.two_layer import LOSS_CONVENTIONS

    mp, cl = signature_defaults(make_problem), signature_defaults(classify)
    P = Param
    return [
        P("n", "problem", V.positive_int, mp["n"], doc="sample size"),
        P("sampling", "problem", choice(_samplers), mp["sampling"], choices=_samplers,
          doc="inputs: evenly spaced on [-2, 2], standard Gaussian, or uniform"),
        P("data_seed", "problem", V.nonnegative_int, mp["seed"],
          doc="seed of random inputs (gaussian, uniform)"),
        P("activation", "problem", _activation, mp["activation"],
          doc="registered name or expression in x"),
        P("width", "problem", V.positive_int, mp["width"], doc="width m"),
        P("dim", "problem", V.positive_int, mp["dim"], doc="input dimension d"),
        P("bias", "problem", V.flag, mp["bias"], doc="a bias (augmented input (x, 1))"),
        P("loss_convention", "problem", choice(lambda: list(LOSS_CONVENTIONS)),
          mp["loss_convention"], choices=lambda: list(LOSS_CONVENTIONS),
          doc="loss: sum ½Σ(f − y)² (the paper's) or mean ½·(1/n)Σ"),
        P("pad_to", "problem", V.nonnegative_int, 0, axis=False,
          doc="integrate on the data padded with zero-weight rows to this many "
              "(Problem.padded: the same ℓ), so that every n ≤ pad_to shares one compiled "
              "program; 0: no padding"),
        P("scale", "init", V.positive_float, None,
          doc="Gaussian initialization scale (required unless start = 'limit')"),
        P("seed", "init", V.nonnegative_int, 0, doc="initialization seed"),
        P("c_tilde", "init", _c_tilde, None,
          doc="prescribed c = C1/C2 = c̃ in [0, 1] (init_c_tilde, width 2; c̃ = 0: the "
              "first neuron's top-eigenvector component removed, C1 = 0 to round-off)"),
        P("ratio", "init", _nonzero, None, doc="prescribed c = C1/C2 (init_ratio, width 2)"),
        P("tie", "init", choice(lambda: list(TIES)), "none", choices=lambda: list(TIES),
          doc="the Gaussian draw put on a set the flow keeps: none; zero_first (θ1 = 0: "
              "invariant when σ(0) = 0); equal (every neuron a copy of the first)"),
        P("start", "init", choice(lambda: list(STARTS)), "gaussian", axis=False,
          choices=lambda: list(STARTS),
          doc="gaussian (scale, seed; c_tilde/ratio rescale it) or limit: θ0 = the α → 0 "
              "limit's start point on the manifold series for the cell's c_tilde "
              "(limit_start; needs c_tilde, takes no scale or seed)"),
        P("trajectory_points", "outputs", _points, 0, axis=False,
          doc="saved points per cell (0: end point only)"),
        P("save_times", "outputs", _times, (), axis=False, listed=True,
          doc="exact save times, increasing, ≥ 0 (instead of trajectory_points, which "
              "becomes their number): the flow steps onto them (solve_flow's save_ts), GD "
              "records iteration t/lr (each t a multiple of lr, ≤ lr·max_iter); not with "
              "stages"),
        P("stages", "outputs", _levels, (), axis=False, listed=True, methods=("flow",),
          doc="loss levels above loss_threshold, decreasing (flow only): the cell's one flow "
              "is stopped where ℓ first reaches each and continued from there "
              "(solve_flow's t0), and its state, time and loss at each are stored "
              "(stage_*); e.g. [1e-15] for the paper's stop on a flow run on to 1e-24"),
        P("test_inputs", "outputs", choice(lambda: ["default", "gaussian"]), "default",
          axis=False, choices=lambda: ["default", "gaussian"],
          doc="generalization-error test set: default (evenly spaced for d = 1, uniform on "
              "[-2, 2]^d) or standard Gaussian"),
        P("n_test", "outputs", V.positive_int, 1000, axis=False, doc="test points"),
        P("test_seed", "outputs", V.nonnegative_int, 0, axis=False, doc="seed of the test set"),
        P("branch_tol", "outputs", V.positive_float, cl["tol"], axis=False,
          doc="classify's tolerance for Q1/Q2"),
    ]


def applies(name: str, params: Mapping) -> bool:
    """data_seed does not change evenly spaced inputs; c_tilde/ratio only when given;
    pad_to only when not 0 and start only when not gaussian (a grid without them keeps its
    definition); scale and seed not with start = "limit"."""
    if name == "data_seed":
        return params.get("sampling") != "grid"
    if name == "start":
        return params.get("start", "gaussian") != "gaussian"
    if name in ("scale", "seed"):
        return params.get("start") != "limit"
    if name in ("c_tilde", "ratio"):
        return params.get(name) is not None
    if name == "pad_to":
        return bool(params.get("pad_to"))
    if name == "tie":
        return params.get("tie", "none") != "none"
    return True


def check(axes: Mapping, fixed: Mapping, given: set, loc) -> None:
    exclusive(given, "c_tilde", "ratio", loc, "init.c_tilde or init.ratio, not both (both "
              "prescribe c = C1/C2).")
    for name in ("c_tilde", "ratio"):
        exclusive(given, name, "tie", loc, f"init.{name} or init.tie, not both.")
    if fixed.get("start") == "limit":
        for name in ("scale", "seed", "ratio", "tie"):
            if name in given:
                raise GridError(f"{loc(name)}init.{name} does not apply with init.start = "
                                "'limit' (θ0 is the α → 0 limit's start point for the cell's "
                                "c̃): remove it.")
        if "c_tilde" not in given:
            raise GridError(f"{loc('start')}init.start = 'limit' starts each flow on the "
                            "α → 0 limit for a prescribed c̃: give init.c_tilde.")
    elif "scale" not in given:
        raise GridError(f"{loc('scale')}[init] needs 'scale' (Gaussian initialization "
                        "scale), or start = 'limit'.")
    for name in ("c_tilde", "ratio"):
        if name in given:
            widths = grid_values("width", axes, fixed)
            if any(w != 2 for w in widths):
                raise GridError(f"{loc(name)}init.{name} prescribes C1/C2, defined for "
                                f"width 2; this grid has width {list(widths)}.")
    sampling = grid_values("sampling", axes, fixed)
    if "data_seed" in given and set(sampling) == {"grid"}:
        raise GridError(f"{loc('data_seed')}problem.data_seed has no effect with "
                        "sampling 'grid' (evenly spaced inputs): remove it, or use "
                        "sampling 'gaussian' or 'uniform'.")


def check_model(pb, grid, where, desc) -> None:
    """A prescribed c̃ or c needs C(θ), i.e. Theorem 1's assumptions; padding needs
    pad_to ≥ n (``Problem.padded``)."""
    if grid.fixed.get("pad_to"):
        try:
            pb.padded(grid.fixed["pad_to"])
        except FlowtoolsError as err:
            raise GridError(f"{where('problem', 'pad_to')}problem.pad_to does not work for "
                            f"the problem{' with ' + desc if desc else ''}: {err}") from None

    needs_theory = "c_tilde" in grid.dims or "ratio" in grid.dims or any(
        grid.fixed.get(k) is not None for k in ("c_tilde", "ratio"))
    if needs_theory and pb.assumption_failures():
        name = "c_tilde" if "c_tilde" in grid.dims or grid.fixed.get("c_tilde") else "ratio"
        raise GridError(f"{where('init', name)}init.{name} needs C(θ), which rests "
                        f"on Theorem 1's assumptions; they fail for the problem"
                        f"{' with ' + desc if desc else ''}: "
                        + " ".join(pb.assumption_failures()))


# ---------------------------------------------------------------------- a cell
def problem_from(params: Mapping):
    """The ``Problem`` of a cell's parameters (``make_problem``)."""
    from flowtools.models import make_problem

    return make_problem(params["n"], sampling=params["sampling"],
                        activation=params["activation"], width=params["width"],
                        dim=params["dim"], bias=params["bias"], seed=params["data_seed"],
                        loss_convention=params.get("loss_convention", "sum"))


def initial_state(problem, init: Mapping, params: Mapping | None = None) -> np.ndarray:
    """θ0 of one cell: ``limit_start`` with start = "limit", ``init_ratio`` if c̃ (c = c̃)
    or c is prescribed, else Gaussian (``params``, the cell's problem parameters, are not
    needed)."""
    if init.get("start") == "limit":
        return limit_start(problem, init["c_tilde"])
    if init.get("c_tilde") is not None:
        return problem.init_c_tilde([init["c_tilde"]], init["scale"], seed=init["seed"])[0]
    if init.get("ratio") is not None:
        return problem.init_ratio(init["ratio"], init["scale"], seed=init["seed"])
    th = problem.init_gaussian(init["scale"], seed=init["seed"])
    b = problem.block
    if init.get("tie") == "zero_first":
        th[:b] = 0.0
    elif init.get("tie") == "equal":
        th[b:] = np.tile(th[:b], problem.width - 1)
    return th


def limit_start(problem, c_tilde: float, *, order: int = 9, tol: float = 1e-17):
    """The start point of the α → 0 limiting trajectory for C1/C2 = c̃ (width 2, Theorem
    1): the manifold series' point P(τ0σ) (``flowtools.limiting.manifold``) on the ray
    θ = V1·(c̃, 1)/‖(c̃, 1)‖ of the top eigenspace, where its truncation error is ≤ ``tol``
    (as ``limit_endpoint`` starts; ``branch_maps.limit_start_points`` for several c̃)."""
    from flowtools.limiting.manifold import (
        evaluate,
        ray_coefficients,
        safe_radius,
        series_radius,
    )

    V1 = np.asarray(problem.top_eigvecs)
    sgn = np.sign(np.asarray(problem.imbalance(V1[:, 0]))[0])  # C(θ) ∝ (c̃, 1)
    s = np.array([c_tilde, 1.0]) / np.hypot(c_tilde, 1.0) * sgn
    Q = ray_coefficients(problem.field, V1 @ s, problem.mu1, order=order)
    return np.asarray(evaluate(Q, np.log(min(safe_radius(Q, tol), 0.5 * series_radius(Q),
                                            1e300))))


def variables(outputs: Mapping) -> dict[str, Variable]:
    """The stored variables of a grid (the trajectory ones only if requested)."""
    V_ = Variable
    run = run_variables("ℓ(θ_final) = ½Σ(f − y)²")
    out = [
        V_("theta0", ("param",), "float64", np.nan,
           {"description": "initial state θ0, layout (a_1, w_1, …, a_m, w_m), w_k with the "
                           "bias last; NaN beyond the cell's parameter count"}),
        V_("theta_final", ("param",), "float64", np.nan,
           {"description": "end point of the run (same layout as theta0)"}),
        *run.values(),
        V_("branch", (), "int8", NOT_CLASSIFIED,
           {"description": "flowtools.branches.classify of θ_final (label of the end point, "
                           "not of t → ∞ unless the loss reached its floor)",
            "flag_values": [NOT_CLASSIFIED, *BRANCH_CODES.values()],
            "flag_meanings": "not_classified " + " ".join(BRANCH_CODES)}),
        V_("dist_Q1", (), "float64", np.nan, {"description": "distance of θ_final to Q1"}),
        V_("dist_Q2", (), "float64", np.nan, {"description": "distance of θ_final to Q2"}),
        V_("gen_error", (), "float64", np.nan,
           {"description": "generalization error ‖f_θ − f*‖ (RMS on the test inputs)"}),
        WALL_TIME,
    ]
    if outputs.get("stages"):
        out += [*stage_variables(outputs["stages"]).values(),
                V_("stage_gen_error", ("stage",), "float64", np.nan,
                   {"description": "generalization error (as gen_error) of the state where "
                                   "the flow first reached each stage level; NaN if not "
                                   "reached", "stage_levels": list(outputs["stages"])})]
    if outputs.get("trajectory_points", 0):
        out += [
            V_("ts", ("save",), "float64", np.nan,
               {"description": "saved times (NaN after the end of the run)"}),
            V_("losses", ("save",), "float64", np.nan, {"description": "ℓ at the saved times"}),
            V_("thetas", ("save", "param"), "float64", np.nan,
               {"description": "states at the saved times"}),
        ]
    return {v.name: v for v in out}


def _test_inputs(problem, outputs):
    from flowtools.branches import test_inputs

    if outputs["test_inputs"] == "gaussian":
        rng = np.random.default_rng(outputs["test_seed"])
        return rng.standard_normal((outputs["n_test"], problem.dim))
    return test_inputs(problem, outputs["n_test"], seed=outputs["test_seed"])


def integrand(pb, params: Mapping):
    """The model the integrator runs: ``pb`` padded to ``pad_to`` rows if given."""
    return pb.padded(params["pad_to"]) if params.get("pad_to") else pb


def measure(pb, theta0: np.ndarray, runs: Mapping, spec: Mapping) -> dict:
    """End points, branches (``classify``) and generalization errors of a task's cells."""
    from flowtools.branches import classify, generalization_error

    outputs, p_max = spec["outputs"], spec["p_max"]
    B = len(theta0)
    X_test = _test_inputs(pb, outputs)
    branch = np.full(B, NOT_CLASSIFIED, dtype=np.int8)
    d1, d2, gen = np.full(B, np.nan), np.full(B, np.nan), np.full(B, np.nan)
    for i, th in enumerate(runs["theta_final"]):  # one cell at a time: bits independent of B
        # a diverging GD's huge (finite) end point: its distances and error overflow to inf
        with np.errstate(over="ignore", invalid="ignore"):
            if np.all(np.isfinite(th)):
                r = classify(pb, th, tol=outputs["branch_tol"])
                branch[i] = BRANCH_CODES[str(r.branch)]
                d1[i], d2[i] = float(r.dist_Q1), float(r.dist_Q2)
            gen[i] = float(generalization_error(pb, th, X_test=X_test))
    out = {"theta0": _pad(theta0, p_max), "theta_final": _pad(runs["theta_final"], p_max),
           **run_columns(runs), "branch": branch, "dist_Q1": d1, "dist_Q2": d2,
           "gen_error": gen}
    if outputs.get("stages"):
        out.update(stage_columns(runs, p_max))
        th = runs["stage_theta"]
        out["stage_gen_error"] = np.array(
            [[float(generalization_error(pb, t, X_test=X_test)) if np.all(np.isfinite(t))
              else np.nan for t in cell] for cell in th]).reshape(th.shape[:2])
    if outputs.get("trajectory_points", 0):
        out["ts"] = np.asarray(runs["ts"]).astype(np.float64)
        out["losses"] = np.asarray(runs["losses"]).astype(np.float64)
        out["thetas"] = _pad(runs["thetas"], p_max)
    return out


def work_bytes(problem: Mapping, outputs: Mapping) -> int:
    """A task's memory besides its results: the network evaluated on the larger of its n
    training inputs and the n_test test inputs of the generalization error."""
    from flowtools.models.two_layer import evaluation_bytes

    rows = max(problem["n"], problem.get("pad_to") or 0, outputs.get("n_test", 0))
    return evaluation_bytes(rows, problem["width"], problem["dim"], problem["bias"])


def _pad(a: np.ndarray, p_max: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape[-1] == p_max:
        return a
    pad = np.full(a.shape[:-1] + (p_max - a.shape[-1],), np.nan)
    return np.concatenate([a, pad], axis=-1)


FAMILY = register(Family(
    name="two_layer", parameters=parameters, build=problem_from, init=initial_state,
    variables=variables, measure=measure, applies=applies, check=check,
    check_model=check_model, work_bytes=work_bytes, integrand=integrand,
    static=("n", "activation", "width", "dim", "bias", "loss_convention"),
    summary=("branch", "gen_error"),
    doc="the two-layer network with a single-neuron target (make_problem)"))
