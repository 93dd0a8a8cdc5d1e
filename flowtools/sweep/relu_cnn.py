"""The sweep family ``relu_cnn``: the two-patch ReLU CNN of Shang, Meng, Cao & Zou (2024)
(``flowtools.models.relu_cnn``), both layers trainable.

[problem]: ``n``, ``dim`` (d), ``width`` (m), ``sigma_p``, ``mu_norm`` (‖µ‖, µ along e₁),
``data_seed`` and ``n_test`` — ``PatchData.draw(n, dim, mu_norm, sigma_p, data_seed,
n_test=n_test)``: one seed draws y, ξ and the test set, shared by every ‖µ‖.
[init]: ``sigma0``, ``v0`` and ``seed`` (default: data_seed + 2²⁰, an independent stream) —
``ReluCNN.init(sigma0, v0, seed)``. [integrator] takes, besides the shared settings,
``stable_v0`` (GD: η_v0 = min(lr, lr·(stable_v0/v0)²), below GD's stability edge, which
falls like 1/v0²) and ``max_time`` (GD: max_iter = ⌈max_time/η_v0⌉, the same flow time at
every v0). Cells with the same η_v0 run as one GD batch.

[integrator] ``coordinates`` = ``"span"`` (default) or ``"full"``: the coordinates the
integrator runs in. ``"span"`` integrates ``ReluCNN.span()`` — the filters' coordinates in
S = span{µ, ξ_1, …, ξ_n}, 2m(n+1) + 4m parameters whatever d — from ``reduce(θ0)`` and lifts
the end point back (W = W0 + Q(C − C0)) before anything is measured: the same GD run to
round-off (GD's updates lie in S; ``flowtools.models.relu_cnn``), the same flow to its
tolerance (the step control's error norm is not diluted by the ~2md fixed entries of W: at
one rtol the span run is more accurate and may take more steps), at a cost per step that
does not grow with d. ``"full"`` integrates θ itself (p = 2md + 4m), as before this
setting existed. It is an [integrator] setting, not a [problem] one: both integrate the
same model from the same θ0 and store results in θ; only the arithmetic differs. Grids
that do not give it run in span coordinates (their store keys changed with it).

Stored per cell (no θ: p = 2md + 4m is tens of thousands):

==================  ================================================================
test_error          fraction of the ``n_test`` test points with y·f(x) ≤ 0
train_error         the same on the n training points
loss_final          L(θ_final), the mean logistic loss
t_final, status,    the run's end time, ``flowtools.Status``, iterations/steps,
steps, grad_evals   gradient evaluations
dv, dW              ‖v − v(0)‖ and ‖W − W(0)‖ (Frobenius, all filters)
layer_change_ratio  dv/dW
balance_ratio       median over i, r of |⟨w_{y_i,r}, ξ_i⟩ / v_{y_i,r,2}| at θ_final
lr                  the cell's learning rate η_v0 (GD; NaN for the flow)
wall_time           seconds of integration (GD: share of its batch)
==================  ================================================================
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import numpy as np

from flowtools import _validate as V
from flowtools.errors import GridError
from flowtools.sweep.family import (
    REQUIRED,
    WALL_TIME,
    Family,
    Integrand,
    Param,
    Variable,
    choice,
    exclusive,
    grid_values,
    register,
    run_columns,
    run_variables,
)

__all__ = ["COORDINATES", "FAMILY", "INIT_SEED_OFFSET", "build", "cell_lr", "initial_state",
           "integrand"]

INIT_SEED_OFFSET = 1 << 20  # θ0's default seed = data seed + this (independent streams)
COORDINATES = ("span", "full")


def parameters() -> list[Param]:
    P = Param
    gd = ("gd",)
    return [
        P("n", "problem", V.positive_int, 20, doc="training samples"),
        P("dim", "problem", lambda v, n: V.integer(v, n, minimum=2), 1000,
          doc="patch dimension d"),
        P("width", "problem", V.positive_int, 10, doc="filters per class m"),
        P("sigma_p", "problem", V.positive_float, 1.0, doc="noise-patch scale σp"),
        P("mu_norm", "problem", V.positive_float, REQUIRED, doc="signal strength ‖µ‖"),
        P("data_seed", "problem", V.nonnegative_int, 0, doc="seed of y, ξ and the test set"),
        P("n_test", "problem", V.positive_int, 1000, doc="test examples"),
        P("sigma0", "init", V.positive_float, REQUIRED, doc="filter initialization scale σ0"),
        P("v0", "init", V.positive_float, REQUIRED, doc="output-layer initialization v0"),
        P("seed", "init", V.nonnegative_int, None,
          doc=f"filter seed (default data_seed + {INIT_SEED_OFFSET})"),
        P("stable_v0", "integrator", V.positive_float, None, methods=gd,
          doc="η_v0 = min(lr, lr·(stable_v0/v0)²) (default: lr at every v0)"),
        P("max_time", "integrator", V.positive_float, None, methods=gd,
          doc="max_iter = ⌈max_time/η_v0⌉ (instead of max_iter)"),
        P("coordinates", "integrator", choice(lambda: list(COORDINATES)), "span",
          choices=lambda: list(COORDINATES),
          doc="integrate in span{µ, ξ_i} coordinates (exact, cost independent of d) or in "
              "the full θ"),
    ]


def applies(name: str, params: Mapping) -> bool:
    """The optional settings apply only when given."""
    if name in ("seed", "stable_v0", "max_time"):
        return params.get(name) is not None
    return True


def check(axes: Mapping, fixed: Mapping, given: set, loc) -> None:
    exclusive(given, "max_iter", "max_time", loc, "integrator.max_time or "
              "integrator.max_iter, not both (max_time sets max_iter = ⌈max_time/η_v0⌉).")
    dims, ns = grid_values("dim", axes, fixed), grid_values("n", axes, fixed)
    if min(dims) <= max(ns):
        raise GridError(f"{loc('dim')}problem.dim must exceed n (the signal/noise "
                        f"decomposition and the paper's regime need d > n): dim "
                        f"{list(dims)}, n {list(ns)}.")


@functools.lru_cache(maxsize=4)
def _draw(n, d, sigma_p, seed, n_test):
    from flowtools.models.relu_cnn import PatchData

    return PatchData.draw(n=n, d=d, mu_norm=1.0, sigma_p=sigma_p, seed=seed, n_test=n_test)


def build(params: Mapping):
    """The ``ReluCNN`` of a cell's problem parameters (y, ξ and the test set depend on the
    seed only: one draw serves every ‖µ‖ of a seed)."""
    from flowtools.models.relu_cnn import ReluCNN

    base = _draw(params["n"], params["dim"], params["sigma_p"], params["data_seed"],
                 params["n_test"])
    return ReluCNN(base.with_mu_norm(params["mu_norm"]), width=params["width"])


def integrand(model, params: Mapping):
    """What the integrator runs: ``model.span()`` with ``reduce``/``lift`` (coordinates
    "span"), or the model itself ("full")."""
    if params.get("coordinates", "span") == "full":
        return model
    return Integrand(model.span(), reduce=model.reduce, lift=model.lift)


def init_seed(data_seed: int, seed=None) -> int:
    """The filters' seed: ``seed``, or data_seed + ``INIT_SEED_OFFSET``."""
    return data_seed + INIT_SEED_OFFSET if seed is None else seed


def initial_state(model, init: Mapping, problem: Mapping) -> np.ndarray:
    return model.init(init["sigma0"], init["v0"],
                      seed=init_seed(problem["data_seed"], init.get("seed")))


def cell_lr(lr: float, v0: float, stable_v0=None) -> float:
    """η_v0 = min(lr, lr·(stable_v0/v0)²) (lr when ``stable_v0`` is None)."""
    return lr if stable_v0 is None else min(lr, lr * (stable_v0 / v0) ** 2)


def settings(integrator: Mapping, init: Mapping) -> dict:
    """A cell's integrator settings: GD's η_v0 and, with max_time, its iteration limit."""
    it = dict(integrator)
    if it["dynamics"] != "gd":
        return it
    it["lr"] = cell_lr(it["lr"], init["v0"], it.pop("stable_v0", None))
    max_time = it.pop("max_time", None)
    if max_time is not None:
        it["max_iter"] = int(math.ceil(max_time / it["lr"]))
    return it


def variables(outputs: Mapping) -> dict[str, Variable]:
    def V_(name, description, dtype="float64", fill=np.nan):
        return Variable(name, (), dtype, fill, {"description": description})

    out = [
        V_("test_error", "fraction of test points with y·f(x) ≤ 0 at θ_final"),
        V_("train_error", "fraction of training points with y·f(x) ≤ 0 at θ_final"),
        *run_variables("L(θ_final), mean logistic loss over the n samples").values(),
        V_("dv", "‖v − v(0)‖ (output layer, Frobenius)"),
        V_("dW", "‖W − W(0)‖ (filters, Frobenius)"),
        V_("layer_change_ratio", "‖v − v(0)‖ / ‖W − W(0)‖"),
        V_("balance_ratio", "median over i, r of |⟨w_{y_i,r}, ξ_i⟩ / v_{y_i,r,2}| at θ_final"),
        V_("lr", "the cell's GD learning rate η_v0 (NaN for the flow)"),
        WALL_TIME,
    ]
    return {v.name: v for v in out}


def measure(model, theta0: np.ndarray, runs: Mapping, spec: Mapping) -> dict:
    thf = np.asarray(runs["theta_final"], float)
    W, Vv = (np.asarray(x) for x in model.split(thf))
    W0, V0 = (np.asarray(x) for x in model.split(theta0))
    dv = np.sqrt(np.sum((Vv - V0) ** 2, axis=(1, 2, 3)))
    dw = np.sqrt(np.sum((W - W0) ** 2, axis=(1, 2, 3)))
    with np.errstate(invalid="ignore", divide="ignore"):
        balance = np.median(np.abs(model.balance_ratio(thf)), axis=(1, 2))
        ratio = dv / dw
    lrs = [s.get("lr", np.nan) if s["dynamics"] == "gd" else np.nan
           for s in runs["settings"]]
    return {"test_error": np.asarray(model.test_error(thf), float),
            "train_error": np.asarray(model.train_error(thf), float),
            **run_columns(runs), "dv": dv, "dW": dw, "layer_change_ratio": ratio,
            "balance_ratio": balance, "lr": np.asarray(lrs, float)}


FAMILY = register(Family(
    name="relu_cnn", parameters=parameters, build=build, init=initial_state,
    variables=variables, measure=measure, applies=applies, check=check, settings=settings,
    integrand=integrand, n_params=lambda pb: 2 * pb["width"] * pb["dim"] + 4 * pb["width"],
    static=("n", "dim", "width", "n_test", "coordinates"),
    summary=("test_error", "train_error"),
    doc="the two-patch ReLU CNN of Shang et al. (ReluCNN on PatchData)"))
