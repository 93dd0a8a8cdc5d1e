"""The ReLU CNN's gradient flow on sliding modes: the event-driven Filippov integrator
(``flowtools.integrate.sliding``) beside ``solve_flow(..., solver="dopri5")``, all
measured in this one run.

Instance (``flowtools.models.relu_cnn``'s "Kinks"): PatchData.draw(n=10, d=50, mu_norm=3,
seed=0), ReluCNN(width=4), init(σ0=0.01, v0=0.1, seed=0), t ≤ 2 — noise preactivations
slide along their kinks and dopri5 chatters there.

For each method: accepted steps, right-hand-side evaluations (dopri5: steps×stages;
sliding: field evaluations, each on a sliding segment with its equivalent-control solve,
plus the control solves of event location and settling), wall time (compilation excluded:
the sliding integrator is run once before it is timed; dopri5's wall_time), and the end
point's error max|θ − θ_ref|. θ_ref is the sliding integrator at rtol 1e-13; ``--gd``
checks it independently: GD's end points at η = 1e-5 and 1e-6 and their Richardson
extrapolation (GD → flow at order 1) against it, and against dopri5 at rtol 1e-8.
Ratios: steps / dopri5's steps at rtol 1e-6, error / dopri5's error at rtol 1e-8.

The phase diagram's network (flowtools' grid: n = 20, d = 1000, m = 10), in span
coordinates: ``--n 20 --d 1000 --m 10 --span`` (measured: sliding 173 steps, error 8e-10
at rtol 1e-6, 7 s; dopri5 538 steps and 3.6e-3 at rtol 1e-6, 36 713 steps and 4.2e-5 at
rtol 1e-8, 4 s).

    python benchmarks/bench_sliding.py [--t1 2] [--rtols 1e-6 1e-8 1e-10] [--gd]
        [--n 10 --d 50 --m 4] [--span]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import flowtools as ft
from flowtools.integrate.sliding import integrate_sliding, relu_cnn_switched
from flowtools.models.relu_cnn import PatchData, ReluCNN


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t1", type=float, default=2.0)
    ap.add_argument("--rtols", type=float, nargs="+", default=[1e-6, 1e-8, 1e-10])
    ap.add_argument("--dopri-rtols", type=float, nargs="+", default=[1e-6, 1e-7, 1e-8])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--span", action="store_true",
                    help="integrate in span coordinates (ReluCNN.span(): cost independent of d)")
    ap.add_argument("--gd", action="store_true", help="check θ_ref by GD, η → 0 (~1 min)")
    args = ap.parse_args(argv)

    data = PatchData.draw(n=args.n, d=args.d, mu_norm=3.0, sigma_p=1.0, seed=0, n_test=10)
    model = ReluCNN(data, width=args.m)
    theta0 = model.init(0.01, 0.1, seed=0)
    if args.span:
        model, theta0 = model.span(), model.reduce(theta0)
    sw = relu_cnn_switched(model)
    T = args.t1
    print(f"ReLU CNN n = {args.n}, d = {args.d}, m = {args.m}"
          f"{' (span coordinates)' if args.span else ''} ({model.n_params} parameters, "
          f"{sw.n_kinks} kinks), σ0 = 0.01, v0 = 0.1, ‖µ‖ = 3, seed 0, t ≤ {T:g}")
    tc = time.perf_counter()
    ref = integrate_sliding(sw, theta0, T, rtol=1e-13)
    print(f"reference: sliding integrator at rtol 1e-13 ({ref.steps} steps; first call, "
          f"compilation included: {time.perf_counter() - tc:.1f} s); events {ref.events}, "
          f"{ref.sliding.size} kinks sliding at t = {T:g}")

    rows = []
    for rtol in args.dopri_rtols:
        fl = ft.solve_flow(model, theta0, t1=T, loss_threshold=0.0, gtol=0.0,
                           solver="dopri5", rtol=rtol, n_save=2, max_steps=2_000_000)
        rows.append((f"dopri5 rtol {rtol:g}", int(fl.steps), int(fl.grad_evals), "",
                     float(fl.wall_time), np.max(np.abs(np.asarray(fl.theta_final) - ref.theta)),
                     np.asarray(fl.theta_final)))
    for rtol in args.rtols:
        r = integrate_sliding(sw, theta0, T, rtol=rtol)
        rows.append((f"sliding rtol {rtol:g}", r.steps, r.field_evals, r.control_evals,
                     r.wall_time, np.max(np.abs(r.theta - ref.theta)), r.theta))
    base = {name: row for name, *row in rows}
    d6 = base.get("dopri5 rtol 1e-06")
    d8 = base.get("dopri5 rtol 1e-08")
    print(f"\n{'method':<20}{'steps':>9}{'rhs evals':>11}{'+controls':>10}{'wall s':>9}"
          f"{'error':>10}{'steps/d5@1e-6':>15}{'err/d5@1e-8':>13}")
    for name, steps, evals, ctl, wall, err, _ in rows:
        s_ratio = f"{steps / d6[0]:.3g}" if d6 else "–"
        e_ratio = f"{err / d8[4]:.3g}" if d8 else "–"
        print(f"{name:<20}{steps:>9}{evals:>11}{ctl!s:>10}{wall:>9.3f}{err:>10.2e}"
              f"{s_ratio:>15}{e_ratio:>13}")

    if args.gd:
        print("\nGD (η → 0) against the reference (order 1: the gap falls 10× per η/10):")
        ends = {}
        for lr in (1e-5, 1e-6):
            gd = ft.run_gd(model, theta0, lr=lr, max_iter=int(round(T / lr)),
                           loss_threshold=0.0, record_at=[0])
            ends[lr] = np.asarray(gd.theta_final)
            print(f"  η = {lr:g}: max|θ_GD − θ_ref| = {np.max(np.abs(ends[lr] - ref.theta)):.2e}")
        rich = (10 * ends[1e-6] - ends[1e-5]) / 9
        print(f"  Richardson (10·θ(1e-6) − θ(1e-5))/9: to θ_ref "
              f"{np.max(np.abs(rich - ref.theta)):.2e}"
              + (f", to dopri5 rtol 1e-8 {np.max(np.abs(rich - d8[5])):.2e}" if d8 else ""))


if __name__ == "__main__":
    main()
