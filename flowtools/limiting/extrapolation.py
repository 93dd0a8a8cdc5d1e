"""The extrapolation method: flows from α_k θ, extrapolated to α = 0 (generalized Richardson).

``method="extrapolate"``: flows from α_k θ, α_k = α_0 q^k, saved at the shifted times
t + log(1/α_k)/μ1 (one batched solve), then a Richardson-type extrapolation to α = 0
whose exponents are *estimated from the sequence itself* at each level (generalized
Richardson / E-algorithm with observed orders). Each time t uses its own window of α_k,
chosen so that the effective scale α‖θ‖/min(1, e^{μ1 t}‖s‖) runs from ``eps`` down by
q^levels. Returns the estimate, an error estimate (``flowtools.limiting.reference``), and
the observed rate beside the theorem's bound α^{(μ1−μ2)/(2μ1−μ2)} (Theorem 3).

The admissible exponents come from the spectrum of DF(0) (``exponent_candidates``); the
stopping threshold of the Richardson recursion is the measured noise of the sequence (the
variation over α_k of result − reference), not an assumed multiple of rtol.

    >>> import flowtools as ft
    >>> from flowtools.limiting import FlowSystem
    >>> exponent_candidates(FlowSystem.from_model(ft.example1()), max_exponent=3).tolist()
    [1.0, 2.0, 3.0]
"""

from __future__ import annotations

import time

import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError
from flowtools.limiting.reference import EPS, REF_GAIN, REF_RATIO, check_memory, reference_flow
from flowtools.limiting.results import ErrorParts, LimitResult
from flowtools.limiting.system import FlowSystem, prepare

OPTIONS = ("eps", "q", "levels", "rtol", "solver", "max_steps")


def exponent_candidates(system: FlowSystem, max_exponent: float = 8.0) -> np.ndarray:
    """The exponents an α-expansion of φ(αθ, t + log(1/α)/μ1) − h(θ, t) can contain:
    sums i + Σ_j n_j (1 − μ_j/μ1) of integers (the nonlinear terms) and the gaps of the
    lower eigenvalues μ_j of DF(0) (the off-manifold components). For a network with
    σ'(0) ≠ 0 the spectrum is {μ1, 0, −μ1}, so these are the integers."""
    w = np.unique(np.round(np.linalg.eigvals(system.J0).real / system.mu1, 10))
    gaps = [1.0] + [1.0 - x for x in w if x < 1 - 1e-8]
    cands = {0.0}
    frontier = {0.0}
    while frontier:
        new = {round(c + g, 10) for c in frontier for g in gaps if c + g <= max_exponent}
        frontier = new - cands
        cands |= new
    return np.array(sorted(cands - {0.0}))


def generalized_richardson(A, q, noise, candidates, snap=0.15, carry=()):
    """Extrapolate A_0, A_1, … (errors ~ Σ c_j α^{r_j}, α_k = α_0 q^k) to α = 0.

    At each level the exponent r is *observed* from the two smallest-α differences of the
    current column, then snapped to the nearest admissible exponent if within ``snap``·r
    (an inexact exponent would leave a residual proportional to its error) and eliminated:
    T' = (T_{k+1} − q^r T_k)/(1 − q^r). Admissible: ``candidates`` above the last exponent
    used, or that exponent once more — a resonance (e.g. 2 = 1 − (−μ1)/μ1 = 1 + 1) brings
    α^r log α terms, i.e. (a + b k) q^{rk}, which a repeated elimination removes. Stops
    when the last difference is at the noise floor (``noise``: the measured noise of one
    entry, amplified by the levels so far), keeping two entries for the error estimate.
    The same eliminations are applied to each sequence in ``carry`` (a reference solve,
    or the identity for the weights of the linear combination).

    Returns (value, truncation error estimate, observed first rate or NaN, exponents used,
    the carried sequences' values)."""
    col = np.asarray(A)
    carry = [np.asarray(c) for c in carry]
    used, lq, amp = [], np.log(1.0 / q), 1.0
    r_obs0 = np.nan

    def admissible():
        if not used:
            return candidates
        last = used[-1]
        again = [last] if used.count(last) < 2 else []
        return np.concatenate([again, candidates[candidates > last + 1e-9]])

    while len(col) >= 3:
        d = np.linalg.norm(np.diff(col, axis=0), axis=-1)
        if d[-1] <= 4 * noise * amp:
            break
        r_hat = np.log(d[-2] / d[-1]) / lq if d[-2] > 4 * noise * amp else np.nan
        if not used:
            r_obs0 = r_hat
        c = admissible()
        # Observed rates that fall along the column (towards small α), well above the
        # noise, betray a lower exponent not yet dominant — typically a resonance's
        # α^r log α beside a larger α^{r'} term: eliminate the largest admissible exponent
        # at or below the last observed rate, not the nearest one.
        falling = (len(d) >= 3 and np.isfinite(r_hat) and d[-1] > 100 * noise * amp
                   and np.log(d[-3] / d[-2]) / lq - r_hat > 0.03
                   and np.any(c <= r_hat))
        if falling:
            r = float(np.max(c[c <= r_hat]))
        elif np.isfinite(r_hat) and c.size and np.min(np.abs(c - r_hat)) <= snap * abs(r_hat):
            r = float(c[np.argmin(np.abs(c - r_hat))])
        elif np.isfinite(r_hat) and r_hat > (used[-1] if used else 0.0):
            r = float(r_hat)
        elif c.size:
            r = float(c[0])
        else:
            break
        rho = q**r
        col = (col[1:] - rho * col[:-1]) / (1 - rho)
        carry = [(x[1:] - rho * x[:-1]) / (1 - rho) for x in carry]
        amp *= (1 + rho) / (1 - rho)
        used.append(r)
    d_last = float(np.linalg.norm(col[-1] - col[-2]))
    if carry and np.shape(carry[0]) == np.shape(col):
        # the reference sequence (carry[0]) has the same truncation but less flow noise:
        # its last difference, if smaller, is the better measure of the truncation
        d_last = min(d_last, float(np.linalg.norm(carry[0][-1] - carry[0][-2])))
    c = admissible()
    r_next = float(c[0]) if c.size else (used[-1] if used else 0.0) + 1.0
    if used and len(col) >= 3:
        # the next exponent lies between the last one repeated (a resonance, α^r log α: the
        # conservative choice) and the next new candidate; the final column's observed
        # decay (the reference's, less noisy) decides where, if it is above the noise
        ref_col = carry[0] if carry and np.shape(carry[0]) == np.shape(col) else col
        dd = np.linalg.norm(np.diff(ref_col, axis=0), axis=-1)
        new = c[c > used[-1] + 1e-9]
        if new.size and dd[-1] > 0 and dd[-2] > 4 * noise * amp:
            r_seen = np.log(dd[-2] / dd[-1]) / lq
            r_next = float(min(max(r_seen, r_next), new[0]))
    rho = q**r_next
    # The last difference is dominated by the next term of the expansion (or, at the noise
    # floor, bounds it), q^{r_next}/(1 − q^{r_next}) of it remaining in the value. The
    # flows' errors (noise and the part common to all α_k, invisible in the differences)
    # are measured separately, by the reference solve carried along.
    err = d_last * rho / (1 - rho)
    return col[-1], err, r_obs0, used, [x[-1] for x in carry]


def solve(system: FlowSystem, theta, ts, *, eps=1e-3, q=0.25, levels=5, rtol=1e-13,
          solver="dopri8", max_steps=100_000) -> LimitResult:
    """h(θ, ts) by the extrapolation method (options: see ``flowtools.limiting.limit``)."""
    eps = V.in_open_interval(eps, "eps", 0.0, 1.0)
    q = V.in_open_interval(q, "q", 0.0, 1.0)
    levels = V.integer(levels, "levels", minimum=2)
    rtol, max_steps = system.check_flow_options(rtol, solver, max_steps)
    theta, ts, s, ns, nth, log_tau = prepare(system, theta, ts)
    mu1, lq = system.mu1, np.log(1.0 / q)
    # Window of each time: effective scale α‖θ‖/min(1, τ) from eps down by q^levels.
    la_top = np.log(eps) + np.minimum(0.0, log_tau) - np.log(nth)
    la_max = la_top.max()
    j0 = np.ceil((la_max - la_top) / lq - 1e-9).astype(int)
    K = int(j0.max()) + levels + 1
    K = -(-K // 4) * 4  # pad the batch to a multiple of 4: fewer recompilations
    check_memory(K, max(len(ts) * (levels + 1), 128), system.p)  # before the (T, L+1) arrays
    log_alpha = la_max - lq * np.arange(K)
    idx = j0[:, None] + np.arange(levels + 1)[None, :]  # (T, L+1) flow index per entry
    T_shift = ts[:, None] - log_alpha[idx] / mu1  # shifted flow times
    if np.any(T_shift < 0):
        raise FlowtoolsError("a shifted time t + log(1/α)/μ1 is negative: lower eps.")
    uniq, inv = np.unique(T_shift.ravel(), return_inverse=True)
    save_ts = uniq
    theta0 = np.exp(log_alpha)[:, None] * theta[None, :]
    # (≥ 128 saves: room for the reference's midpoints of up to 64 save intervals — 8 times
    # × 8 levels, theory's sweeps — in one compiled shape per batch size)
    out, ref, wall, wall_ref, comp = reference_flow(system, theta0, save_ts, rtol=rtol,
                                                    solver=solver, max_steps=max_steps,
                                                    min_saves=128)
    sel = (idx, inv.reshape(idx.shape))
    A, B = out[sel], ref[sel]  # (T, L+1, p): result and reference sequences
    tw = time.perf_counter()
    # Round-off that both solves share (so that their difference cannot show it): the save
    # times t + log(1/α_k)/μ1 and the α_k are rounded once, which moves each entry by
    # ~eps·(‖x‖ + |T|·‖F(x)‖).
    floor = EPS * (np.linalg.norm(A, axis=-1)
                   + np.abs(T_shift) * np.linalg.norm(system.field_values(A[:, -1]),
                                                    axis=-1)[:, None])
    values, errors, rates, all_rates, parts = [], [], [], [], []
    cands = exponent_candidates(system)
    eye = np.eye(levels + 1)
    for a, b, f in zip(A, B, floor, strict=True):
        # the noise of one entry, measured: half the largest difference of consecutive
        # (result − reference) errors (the part of the flow error that varies with α_k)
        noise = max(0.5 * float(np.max(np.linalg.norm(np.diff(a - b, axis=0), axis=-1))),
                    float(np.max(f)))
        v, e_seq, r, rs, (vb, w) = generalized_richardson(a, q, noise, cands, carry=(b, eye))
        e_flow = REF_GAIN * float(np.linalg.norm(v - vb))
        e_round = float(np.sqrt(np.sum((w * f) ** 2)))
        values.append(v), rates.append(r), all_rates.append(tuple(rs))
        errors.append(e_seq + e_flow + e_round)
        parts.append((e_seq, e_flow, e_round))
    wall += wall_ref + time.perf_counter() - tw
    parts = np.array(parts)
    values = np.array(values)
    return LimitResult(
        ts=ts, thetas=values, error=np.array(errors), rate=np.array(rates),
        rate_bound=system.rate_bound, method="extrapolate", mu1=system.mu1, mu2=system.mu2,
        dh_dt=system.field_values(values),
        error_parts=ErrorParts(truncation=parts[:, 0], flow=parts[:, 1], round_off=parts[:, 2]),
        sequence=A, reference_sequence=B, alphas=np.exp(log_alpha)[idx],
        exponents=tuple(all_rates), wall_time=wall, compile_time=comp,
        reference_wall_time=wall_ref,
        info=dict(eps=eps, q=q, levels=levels, rtol=rtol, solver=solver, n_flows=K,
                  reference_rtol=rtol / REF_RATIO))
