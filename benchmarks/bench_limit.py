"""h(θ, ·) on a 50-point grid t ∈ [−2, 10], Example 1 (n = 6 grid): the two methods of
``flowtools.limiting`` beside the naive alternative, a single flow from αθ read at the shifted
times t + log(1/α)/μ1 (α = 1e-8, 1e-12, 1e-16), all measured in this one run.

For each: wall time per h(θ, ·) (compilation excluded, median of --repeat calls, first
call's compile time printed separately), the ratio to the naive single flow's wall time,
the accuracy reached — the maximum over the grid of ‖ĥ − h‖/‖h‖, with h the manifold method
at rtol 1e-15 (at equal rtol the manifold method is not more accurate than the
extrapolation, so it cannot serve as the reference) — and, for the two methods, the
median and range over the grid (t ≥ 0) of their error estimate / that actual error.

Both methods measure the flows' global error by solving every flow a second time at
rtol/10 (``flowtools.limiting.REF_RATIO``), with extra steps in the longest save intervals:
the column "ref. share" is the fraction of the method's wall time spent on that reference
solve (~50 %: dopri8 takes rtol^−1/8 more steps at the tighter tolerance), so a call costs
about twice what it did with an assumed noise floor (measured here on the 50-point grid:
extrapolate 0.21–0.25 s → 0.50–0.59 s, 10–20× → 26–37× the naive single flow; manifold
0.06–0.10 s → 0.08–0.13 s). The estimate/actual column is at the round-off regime for the
default rtol 1e-13 (actual ~1e-15 relative, where a ratio says little); try --rtol 1e-9.

    python benchmarks/bench_limit.py [--c 0.5 1 2] [--repeat 3] [--rtol 1e-13]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import flowtools as ft
from flowtools.limiting import FlowSystem, limit


def _timed(fn, repeat):
    first_t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - first_t
    walls = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
    return out, float(np.median(walls)), first


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--c", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rtol", type=float, default=1e-13)
    args = ap.parse_args(argv)

    pb = ft.example1()
    sy = FlowSystem.from_problem(pb)
    ts = np.linspace(-2.0, 10.0, 50)
    print(f"Example 1, n = 6 grid; μ1 = {pb.mu1:.6f}, μ2 = {pb.mu2}; 50 times in [−2, 10]; "
          f"flows: dopri8, rtol {args.rtol:g}; wall = median of {args.repeat} calls after the "
          "first (compile) call; reference h: manifold method at rtol 1e-15")
    for c in args.c:
        theta = pb.init_ratio(c, 1.0, seed=3)
        theta = theta / np.linalg.norm(pb.imbalance(theta))
        rows = []
        ex, w_ex, f_ex = _timed(lambda: limit(pb, theta, ts, rtol=args.rtol), args.repeat)
        mf, w_mf, f_mf = _timed(lambda: limit(pb, theta, ts, method="manifold",
                                              rtol=args.rtol), args.repeat)
        ref = limit(pb, theta, ts, method="manifold", rtol=1e-15)
        nref = np.linalg.norm(ref.thetas, axis=-1)
        late = ts >= 0

        def acc(x, where=slice(None)):
            return float(np.max((np.linalg.norm(x - ref.thetas, axis=-1) / nref)[where]))

        def est_ratio(res):
            actual = np.linalg.norm(res.thetas - ref.thetas, axis=-1)
            floor = np.maximum(actual, ref.error)  # below the reference's error: its floor
            r = (res.error / floor)[late]
            return f"{np.median(r):.2f} [{r.min():.2f}, {r.max():.2f}]"

        def ref_share(res):
            return res.reference_wall_time / max(res.wall_time, 1e-300)

        naive = {}
        for alpha in (1e-8, 1e-12, 1e-16):
            shifted = ts + np.log(1 / alpha) / pb.mu1

            def run(alpha=alpha, shifted=shifted):
                return sy.flow(alpha * theta[None], shifted, rtol=args.rtol, solver="dopri8")[0]

            out, w, f = _timed(run, args.repeat)
            naive[alpha] = (acc(out[0]), acc(out[0], late), w, f)
        base = naive[1e-8][2]
        rows.append(("extrapolate", acc(ex.thetas), acc(ex.thetas, late), w_ex, f_ex,
                     f"{ref_share(ex):.2f}", est_ratio(ex)))
        rows.append(("manifold", acc(mf.thetas), acc(mf.thetas, late), w_mf, f_mf,
                     f"{ref_share(mf):.2f}", est_ratio(mf)))
        for alpha, (a, a2, w, f) in naive.items():
            rows.append((f"naive α={alpha:g}", a, a2, w, f, "-", "-"))
        print(f"\nc = {c:g}: observed rate {ex.observed_rate:.4f} (Theorem 3's bound "
              f"{ex.rate_bound:.3g}); extrapolate − manifold max rel. difference "
              f"{np.max(np.linalg.norm(ex.thetas - mf.thetas, axis=-1) / nref):.2e}, "
              f"extrapolation's estimate max {ex.rel_error.max():.2e}")
        print(f"  {'method':<18}{'wall [s]':>10}{'/ naive 1e-8':>14}{'max rel. err':>14}"
              f"{'(t ≥ 0)':>10}{'first call [s]':>16}{'ref. share':>12}"
              f"{'estimate/actual (t ≥ 0)':>28}")
        for name, a, a2, w, f, share, er in rows:
            print(f"  {name:<18}{w:>10.4f}{w / base:>14.2f}{a:>14.2e}{a2:>10.2e}{f:>16.2f}"
                  f"{share:>12}{er:>28}")


if __name__ == "__main__":
    main()
