"""Every option is validated before any work, with a message that names it (issue 9, §3).

Each case below gave a silent wrong result or a raw NumPy/JAX/equinox error before; each
must now raise ``FlowtoolsError`` at once (no solve, no compilation: these tests are fast).
"""

import numpy as np
import pytest

import flowtools as ft
from flowtools import _validate as V
from flowtools.discretization import align, compare, stability_edge
from flowtools.experiments.branch_maps import branch_map


@pytest.fixture(scope="module")
def pb():
    return ft.example1()


@pytest.fixture(scope="module")
def th0(pb):
    return pb.init_gaussian(1e-8, seed=0)


NAN, INF = float("nan"), float("inf")

FLOW_OPTIONS = [
    ("atol_rel", NAN), ("atol_rel", -1.0), ("atol_rel", INF), ("atol_rel", 0.0),
    ("gtol", NAN), ("gtol", -1e-15), ("gtol", INF),
    ("max_steps", 0), ("max_steps", -5), ("max_steps", 2.5), ("max_steps", True),
    ("n_save", 2.5), ("n_save", 1), ("batch_size", -1), ("batch_size", 0),
    ("save_ts", []), ("save_ts", [0.0, NAN]), ("save_ts", [0.0, 2.0, 1.0]),
    ("save_ts", [0.0, 1e301]), ("save_ts", [[0.0, 1.0]]),  # beyond UNBOUNDED_T1
    ("t1", NAN), ("t1", -1.0), ("t1", INF), ("rtol", 0.0), ("rtol", 1.0), ("rtol", NAN),
    ("loss_threshold", NAN), ("loss_threshold", -1.0), ("loss_threshold", INF),
    ("solver", "bogus"), ("backend", "bogus"),
]


@pytest.mark.parametrize("name,value", FLOW_OPTIONS, ids=[f"{n}={v!r}" for n, v in FLOW_OPTIONS])
def test_flow_options(pb, th0, name, value):
    with pytest.raises(ft.FlowtoolsError, match=name.split("_")[0] if name != "t1" else "t1"):
        ft.solve_flow(pb, th0, **{name: value})


def test_scipy_solver_name_is_checked(pb, th0):
    """backend='scipy', solver='bogus' ran Radau silently; a diffrax name is not a scipy one."""
    for solver in ("bogus", "kvaerno5"):
        with pytest.raises(ft.FlowtoolsError, match="Radau, BDF, LSODA"):
            ft.solve_flow(pb, th0, backend="scipy", solver=solver)


GD_OPTIONS = [
    ("lr", NAN), ("lr", 0.0), ("lr", -0.1), ("lr", INF), ("lr", True),
    ("max_iter", NAN), ("max_iter", 0), ("max_iter", 2.5), ("loss_threshold", -1.0),
    ("n_save", 2.5), ("record_at", []), ("record_at", [0, 5, 3]), ("record_at", [0, 1.5]),
    ("record_at", [0, 10**7]),
]


@pytest.mark.parametrize("name,value", GD_OPTIONS, ids=[f"{n}={v!r}" for n, v in GD_OPTIONS])
def test_gd_options(pb, th0, name, value):
    kw = dict(lr=0.05, max_iter=1000)
    kw[name] = value
    with pytest.raises(ft.FlowtoolsError):
        ft.run_gd(pb, th0, **kw)


PROBLEM_OPTIONS = [
    dict(n=NAN), dict(n=0), dict(n=2.5), dict(width=NAN), dict(width=True), dict(width=0),
    dict(dim=0), dict(dim=-1, sampling="gaussian"), dict(bias="no"), dict(bias=1),
    dict(seed=1.5, sampling="gaussian"), dict(seed=-1, sampling="gaussian"),
    dict(sampling="bogus"), dict(interval=(2.0, -2.0)),
]


@pytest.mark.parametrize("kw", PROBLEM_OPTIONS, ids=[repr(k) for k in PROBLEM_OPTIONS])
def test_problem_options(kw):
    with pytest.raises(ft.FlowtoolsError):
        ft.make_problem(**kw)


def test_seeds_and_scales(pb):
    for seed in (1.5, -1, "0", [], [0, 1.5], True):
        with pytest.raises(ft.FlowtoolsError, match="seed"):
            pb.init_gaussian(1e-8, seed)
    for scale in (0.0, -1.0, NAN, INF, 1j):
        with pytest.raises(ft.FlowtoolsError, match="scale"):
            pb.init_gaussian(scale, 0)
    for c in (0.0, NAN, INF):
        with pytest.raises(ft.FlowtoolsError, match="ratio"):
            pb.init_ratio(c, 1e-8, 0)
    # an integral float seed is the same seed
    np.testing.assert_array_equal(pb.init_gaussian(1e-8, 3.0), pb.init_gaussian(1e-8, 3))


def test_complex_values_are_refused(pb, th0):
    """NumPy drops an imaginary part when casting to float; flowtools refuses instead."""
    with pytest.raises(ft.FlowtoolsError, match="complex"):
        ft.solve_flow(pb, th0 + 1e-9j)
    with pytest.raises(ft.FlowtoolsError, match="complex"):
        ft.run_gd(pb, th0.astype(complex), 0.05)
    X = np.linspace(-2, 2, 6)
    with pytest.raises(ft.FlowtoolsError, match="complex"):
        ft.Dataset(X + 0j, np.tanh(X + 1))
    with pytest.raises(ft.FlowtoolsError, match="complex"):
        ft.Dataset(X, np.tanh(X + 1) + 1j)
    with pytest.raises(ft.FlowtoolsError):
        ft.SingleNeuron("tanh", 1 + 1j, [1.0], 1.0)


def test_compare_options(pb, th0):
    for kw in (dict(radius=-1.0), dict(radius=NAN), dict(t1=0.0), dict(endpoint_t1=-1.0),
               dict(tol=0.0), dict(loss_threshold=-1.0)):
        with pytest.raises(ft.FlowtoolsError):
            compare(pb, th0, [0.01], **kw)
    for lrs in ([], [0.01, -0.01], [NAN]):
        with pytest.raises(ft.FlowtoolsError):
            compare(pb, th0, lrs)
    with pytest.raises(ft.FlowtoolsError):
        align(pb, th0, 0.01, n_rec=0)
    with pytest.raises(ft.FlowtoolsError):
        stability_edge(pb, th0, n_iter=2.5)
    with pytest.raises(ft.FlowtoolsError):
        branch_map(pb, [0.5], [0.05], seed=1.5)
    with pytest.raises(ft.FlowtoolsError):
        branch_map(pb, [0.5, 1.5], [0.05])


def test_validators_refuse_what_numpy_would_coerce():
    with pytest.raises(ft.FlowtoolsError):
        V.positive_int(np.float64(2.5), "k")
    with pytest.raises(ft.FlowtoolsError):
        V.flag("no", "bias")
    with pytest.raises(ft.FlowtoolsError):
        V.real(1 + 0j, "x")
    with pytest.raises(ft.FlowtoolsError):
        V.real_array(["1", "2"], "X")
    with pytest.raises(ft.FlowtoolsError, match="use one of a, b"):
        V.choice("c", "mode", ["a", "b"])
    assert V.positive_int(np.int64(4), "k") == 4 and V.positive_int(4.0, "k") == 4
    assert V.flag(np.bool_(True), "f") is True
