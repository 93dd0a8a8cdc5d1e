"""Theorem 2 (paper, section 5.2; general form Theorem 4, Appendix A.3), σ analytic:

  (i)   h(θ, t) exists (here checked at late times, in the convergence phase);
  (ii)  if {h(θ, t) : t ≥ 0} is bounded, lim_{t→∞} h(θ, t) exists and is determined by
        C(θ)/‖C(θ)‖;
  (iii) if that limit is not a saddle, lim_{t→∞} h(θ0, t) = lim_{α→0} lim_{t→∞}
        φ(αθ0, t + log(1/α)/μ1), and lim_{t→∞} h(θ, t) is continuous at θ0.

Theorem 4 states the same for any analytic ℓ ≥ 0 with a strict saddle at 0 and u_α ⊥ V1;
its hypotheses are checked symbolically (A.T4) and its conclusions through these clauses
(θ has an off-eigenspace part, i.e. u_α ≠ 0).

Measured:
  T2.i      Cauchy exponent at late times (as T1.i).
  T2.ii·∃   the flow from h(θ, 0.5) reaches ℓ ≤ 1e-15 (a global minimum: stationary, so
            the limit exists), with sup_t ‖h‖ reported (the boundedness hypothesis).
  T2.ii     θ2 = 5θ + k (same C/‖C‖): ‖E(θ) − E(θ2)‖/‖E‖ for the end points E ≤ 10 × their
            error estimates (‖E_{rtol=1e-10} − E_{rtol=1e-12}‖ each).
  T2.iii    D(α) = ‖lim_t φ(αθ0, ·) − E(θ0)‖ for α = 1e-2 … 1e-6 falls as α^r, r > 0 by 3
            standard errors (points above 10 × the end-point error); figure D against α.
  T2.iii·c  D(δ) = ‖E(θ0 + δu) − E(θ0)‖ for δ = 1e-1 … 1e-4 falls as δ^r, r > 0 by 3
            standard errors; figure (Example 1): end points against c̃.
"""

from __future__ import annotations

import numpy as np

from flowtools.fitting import fit_slope
from theory import assumptions
from theory import measure as M
from theory.report import check, new_figure, not_applicable, save_figure

STATEMENTS = {
    "T2.i": "h(θ,t) exists (late times t, convergence phase)",
    "T2.ii·∃": "{h(θ,t): t ≥ 0} bounded ⇒ lim_{t→∞} h(θ,t) exists",
    "T2.ii": "lim_{t→∞} h(θ,t) is determined by C(θ)/‖C(θ)‖",
    "T2.iii": "lim_{t→∞} h(θ0,t) = lim_{α→0} lim_{t→∞} φ(αθ0, t + log(1/α)/μ1)",
    "T2.iii·c": "lim_{t→∞} h(θ,t) is continuous at θ0",
}
LATE = np.array([10.0, 30.0, 100.0, 300.0])  # units of 1/μ1


def clause_i(ctx, case, theta):
    from theory.theorem1 import clause_i as t1

    ts = M.earliest_time(case, theta) + LATE / case.system.mu1
    c = t1(ctx, case, theta, ts)
    from dataclasses import replace

    return replace(c, id="T2.i", statement=STATEMENTS["T2.i"])


def clause_ii(ctx, case, theta, theta2):
    E1, e1, ep1 = M.endpoint_with_error(case, theta)
    E2, e2, ep2 = M.endpoint_with_error(case, theta2)
    ctx.cache[("endpoint", case.name)] = (E1, e1, ep1)
    claims = []
    sup = float(np.nanmax(np.linalg.norm(ep1.trajectory.thetas, axis=-1)))
    if not ep1.converged:
        claims.append(not_applicable("T2.ii·∃", STATEMENTS["T2.ii·∃"], case.name,
                                     f"the flow did not reach ℓ ≤ 1e-15: {ep1.message}"))
    else:
        claims.append(check("T2.ii·∃", STATEMENTS["T2.ii·∃"], case.name,
                            "ℓ at the end of the flow from h(θ, 0.5)", ep1.loss, "<=",
                            1e-15, "the flow's stopping rule ℓ ≤ 1e-15 (zero "
                            "loss: a global minimum, so a stationary limit)",
                            reason=f"sup_t ‖h(θ,t)‖ = {sup:.4g} (bounded), reached at "
                            f"t = {ep1.t:.4g}", details=dict(sup_norm=sup, t_end=ep1.t)))
    nE = np.linalg.norm(E1)
    claims.append(check("T2.ii", STATEMENTS["T2.ii"], case.name,
                        "‖E(θ) − E(5θ + k)‖/‖E(θ)‖, k ∈ ker C", np.linalg.norm(E1 - E2) / nE,
                        "<=", M.SAFETY * (e1 + e2) / nE,
                        "10 × the end points' error estimates (rtol 1e-10 vs 1e-12)",
                        reason=f"end-point errors {e1:.1e}, {e2:.1e}",
                        details=dict(E1=E1, E2=E2, status=[ep1.status.name, ep2.status.name])))
    return claims


def _fit(xs, ds, floor):
    """(exponent, its standard error) of ds ≈ c·xs^r over the points above ``floor``."""
    fit = fit_slope(xs, np.where(ds > floor, ds, np.nan))
    return fit.slope, fit.stderr


def clause_iii(ctx, case, theta, fig_name=None):
    from flowtools.flow import solve_flow

    E, eE, ep = ctx.cache.get(("endpoint", case.name)) or M.endpoint_with_error(case, theta)
    pb = case.problem
    if not ep.converged:
        return not_applicable("T2.iii", STATEMENTS["T2.iii"], case.name,
                              "lim_{t→∞} h not reached (hypothesis)")
    alphas = np.array([1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    ends, errs = [], []
    for a in alphas:
        tr = [solve_flow(pb, a * theta, rtol=r) for r in (1e-10, 1e-12)]
        ends.append(tr[1].theta_final)
        errs.append(np.linalg.norm(tr[0].theta_final - tr[1].theta_final))
    ends = np.array(ends)
    D = np.linalg.norm(ends - E, axis=-1)
    floor = M.SAFETY * (max(errs) + eE)
    r, se = _fit(alphas, D, floor)
    fig = ""
    if fig_name:
        f, ax = new_figure(figsize=(6, 4.2))
        ax.loglog(alphas, D, "o-", label="D(α) = ‖lim_t φ(αθ0,·) − lim_t h(θ0,·)‖")
        ax.axhline(floor, color="grey", ls="-.", lw=0.8, label="10 × end-point error")
        if np.isfinite(r):
            k = int(np.argmax(D))
            ax.loglog(alphas, D[k] * (alphas / alphas[k]) ** r, "k--", lw=1,
                      label=f"fitted slope {r:.3f}")
        ax.set_xlabel("α (initial scale)")
        ax.set_ylabel("distance of end points")
        ax.set_title(f"{case.name}: end points of finite-α flows → end point of h", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig = save_figure(f, ctx.out, fig_name)
    return check("T2.iii", STATEMENTS["T2.iii"], case.name,
                 "fitted exponent r of D(α) (end-point distance) in α", r, ">=", 3 * se,
                 "r > 0 by 3 standard errors (points above 10 × the end-point errors)",
                 figure=fig, reason=f"D(α=1e-6) = {D[-1]:.2e}; ℓ(E) = {ep.loss:.1e} "
                 "(a global minimum, not a saddle)",
                 details=dict(alphas=alphas, D=D, se=se, floor=floor))


def clause_continuity(ctx, case, theta, fig_name=None):
    E, eE, ep = ctx.cache.get(("endpoint", case.name)) or M.endpoint_with_error(case, theta)
    u = np.random.default_rng(7).standard_normal(theta.shape)
    u /= np.linalg.norm(u)
    deltas = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    D, errs = [], []
    for d in deltas:
        Ed, ed, _ = M.endpoint_with_error(case, theta + d * u)
        D.append(np.linalg.norm(Ed - E))
        errs.append(ed)
    D = np.array(D)
    floor = M.SAFETY * (max(errs) + eE)
    r, se = _fit(deltas, D, floor)
    fig = ""
    if fig_name:
        fig = _figure_ctilde(ctx, case, fig_name)
    return check("T2.iii·c", STATEMENTS["T2.iii·c"], case.name,
                 "fitted exponent r of ‖E(θ0+δu) − E(θ0)‖ in δ", r, ">=", 3 * se,
                 "r > 0 by 3 standard errors (points above 10 × the end-point errors)",
                 figure=fig, reason=f"D(δ=1e-4) = {D[-1]:.2e}",
                 details=dict(deltas=deltas, D=D, se=se, floor=floor))


def _figure_ctilde(ctx, case, fig_name):
    """End points lim_t h against c̃ (Example 1; the paper's Figure 3)."""
    from flowtools.branches import classify

    pb = case.problem
    cts = (np.array([0.1, 0.4, 0.6, 0.8, 1.0]) if ctx.quick
           else np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.72, 0.76, 0.8,
                          0.9, 1.0]))
    rows, labels, losses = [], [], []
    for c in cts:
        th = pb.init_ratio(c, 1.0, seed=0)
        th /= np.linalg.norm(case.system.coords(th))
        ep = M.endpoint(case, th)
        x = ep.theta * np.sign(ep.theta[1] if ep.theta[1] != 0 else 1)  # w1 > 0
        rows.append(x)
        labels.append(str(classify(pb, ep.theta).branch))
        losses.append(ep.loss)
    rows = np.array(rows)
    f, ax = new_figure(figsize=(6.6, 4.4))
    names = pb.param_names
    for i, nm in enumerate(names):
        ax.plot(cts, rows[:, i], "o-", ms=3, lw=1, label=nm)
    for c, lab in zip(cts, labels, strict=True):
        ax.annotate(lab, (c, 1.08), fontsize=6, ha="center",
                    color="C0" if lab == "Q1" else "C3")
    ax.axvline(0.74, color="grey", ls=":", lw=1, label="paper's Q1/Q2 edge c̃ = 0.74 (GD)")
    ax.set_ylim(-0.1, 1.15)
    ax.set_xlabel("c̃ = min(|c|, |1/c|),  c = C1/C2")
    ax.set_ylabel("end point lim_{t→∞} h(θ, t)")
    ax.set_title(f"{case.name}: end points against c̃ (label: Q1/Q2 at ℓ ≤ 1e-15)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="center left")
    return save_figure(f, ctx.out, fig_name)


def run(ctx):
    claims = []
    for case in ctx.pick(["example1"], ["example1", "d3", "wide"]):
        claims += assumptions.claim(ctx, case, "T2")
        claims += assumptions.claim(ctx, case, "T4")
        why = assumptions.gate(ctx, case, "T2") or assumptions.gate(ctx, case, "T4")
        if why:
            claims += [not_applicable(k, s, case.name, why) for k, s in STATEMENTS.items()]
            continue
        theta = case.direction()
        claims.append(clause_i(ctx, case, theta))
        claims += clause_ii(ctx, case, theta, 5.0 * theta + case.kernel_vector(2))
        claims.append(clause_iii(ctx, case, theta, fig_name=f"T2_alpha_{case.name}"))
        claims.append(clause_continuity(
            ctx, case, theta, fig_name=f"T2_ctilde_{case.name}" if case.name == "example1"
            else None))
    return claims
