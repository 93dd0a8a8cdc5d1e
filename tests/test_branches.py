"""Branches of Example 1's target set Q* = Q1 ∪ Q2 and the generalization error."""

import numpy as np
import pytest

import flowtools as ft
from flowtools.branches import classify, generalization_error
from flowtools.errors import FlowtoolsError
from flowtools.models.network import SingleNeuron


@pytest.fixture(scope="module")
def pb():
    return ft.example1()


def _flip(theta, k, block=3):
    th = np.array(theta, float)
    th[k * block:(k + 1) * block] *= -1
    return th


def test_exact_points_and_symmetries(pb):
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.uniform(-1, 2)
        q1 = np.array([s, 1, 1, 1 - s, 1, 1])
        q2 = np.array([1, 1, 1, 0, *rng.normal(size=2)])
        for th, name in ((q1, "Q1"), (q2, "Q2")):
            # every symmetric copy: per-neuron sign flips and the neuron swap
            for th2 in (th, _flip(th, 0), _flip(th, 1), _flip(_flip(th, 0), 1),
                        np.concatenate([th[3:], th[:3]])):
                r = classify(pb, th2)
                assert r.branch == name
                assert min(r.dist_Q1, r.dist_Q2) < 1e-15
                assert generalization_error(pb, th2) < 1e-15
                assert r.loss < 1e-28


def test_distances_are_euclidean(pb):
    # a point displaced from Q1 by δ orthogonally to Q1 (a1 + a2 = 1 line: normal (1,1)/√2)
    s, d = 0.3, np.array([0.01, -0.02, 0.03, 0.01, -0.02, 0.005])
    base = np.array([s, 1, 1, 1 - s, 1, 1])
    d[[0, 3]] = 0.004  # along the normal (1, 1) of the a-line
    r = classify(pb, base + d)
    assert r.dist_Q1 == pytest.approx(np.linalg.norm(d), rel=1e-12)
    # Q2 distance: neuron 1 active, neuron 2 silent with free w: only a2 and neuron 1 count
    th = np.array([1.02, 0.99, 1.01, 0.05, 3.0, -2.0])
    r = classify(pb, th)
    assert r.dist_Q2 == pytest.approx(np.sqrt(0.02**2 + 0.01**2 + 0.01**2 + 0.05**2), 1e-12)
    assert r.branch == "Q2"
    np.testing.assert_array_equal(r.neuron_match, [True, False])


def test_batch_other_and_neuron_report(pb):
    th = np.array([[0.3, 1, 1, 0.7, 1, 1], [0.5, 2, 0, 0.5, -1, 3], [-0.4, -1, -1, 0, 0, 0]])
    r = classify(pb, th)
    assert list(r.branch) == ["Q1", "other", "other"]
    np.testing.assert_array_equal(r.neuron_sign[2], [-1.0, 1.0])
    assert r.a_eff[2, 0] == pytest.approx(0.4)
    assert generalization_error(pb, th).shape == (3,)


def test_generalization_error_closed_form(pb):
    # f_θ = 0 → ‖f*‖ on the test grid: RMS of tanh(x + 1) on 1000 points of [-2, 2]
    x = np.linspace(-2, 2, 1000)
    expect = np.sqrt(np.mean(np.tanh(x + 1) ** 2))
    assert generalization_error(pb, np.zeros(6)) == pytest.approx(expect, rel=1e-14)


def test_general_width_and_target():
    target = SingleNeuron("tanh", 2.0, [0.5, -1.0], None)
    pb = ft.make_problem(8, sampling="gaussian", dim=2, bias=False, width=3, target=target)
    th = np.array([0.5, 0.5, -1.0, 1.0, 0.5, -1.0, -0.5, -0.5, 1.0])  # third flipped
    r = classify(pb, th, target=target)
    assert r.branch == "Q1" and r.dist_Q1 < 1e-15
    # two of three neurons active: neither Q1 nor Q2 ("other")
    th = np.array([0.5, 0.5, -1.0, 1.5, 0.5, -1.0, 0.0, 3.0, 1.0])
    assert classify(pb, th, target=target).branch == "other"
    th = np.array([-2.0, -0.5, 1.0, 0.0, 7.0, 1.0, 0.0, 3.0, 1.0])
    r = classify(pb, th, target=target)
    assert r.branch == "Q2" and r.dist_Q2 < 1e-15
    assert generalization_error(pb, th, target=target) < 1e-15
    assert pb.target.dim == 2 and classify(pb, th).branch == "Q2"  # the stored target
    # a non-odd activation: the sign symmetry is not used
    pb2 = ft.make_problem(6, activation="x + x**2")
    r = classify(pb2, np.array([-0.3, -1, -1, -0.7, -1, -1]))
    assert r.branch == "other"


def test_bad_input(pb):
    with pytest.raises(FlowtoolsError, match="shape"):
        classify(pb, np.zeros(5))
    with pytest.raises(FlowtoolsError, match="tol"):
        classify(pb, np.zeros(6), tol=0)
    with pytest.raises(FlowtoolsError, match="dimension"):
        classify(pb, np.zeros(6), target=SingleNeuron("tanh", 1.0, [1.0, 1.0], 1.0))


def test_problem_without_target_needs_target_argument(pb):
    bare = ft.Problem.create((np.asarray(pb.X), np.asarray(pb.y)))  # data as arrays
    assert bare.target is None
    th = np.array([0.3, 1, 1, 0.7, 1, 1])
    for call in (lambda: classify(bare, th), lambda: generalization_error(bare, th)):
        with pytest.raises(FlowtoolsError, match="target="):
            call()
    assert classify(bare, th, target=pb.target).branch == "Q1"
    model = ft.LossModel(lambda t, d: (t**2).sum(), n_params=6)
    with pytest.raises(FlowtoolsError, match="two-layer"):
        classify(model, th)


def test_generalization_error_of_diverged_states_is_inf_without_warnings():
    import warnings

    pb = ft.example1()
    th = np.array([[0.3, 1, 1, 0.7, 1, 1], [1e200, 1e200, 1, 1, 1, 1],
                   [np.nan, 1, 1, 1, 1, 1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        err = ft.generalization_error(pb, th)
    assert err[0] < 1e-15 and np.isinf(err[1]) and np.isinf(err[2])
