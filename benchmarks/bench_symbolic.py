"""Time to derive −∇²ℓ(0) and its top eigenspace symbolically, beside a naive baseline.

Block method (flowtools.symbolic.origin_hessian): differentiate a two-neuron, one-sample loss,
sum samples as moments, eigen-decompose two (d̃+1)×(d̃+1) blocks. Baseline, measured in the
same run: the naive route — build the whole loss ℓ(θ) in sympy, take sp.hessian over all
m(d̃+1) parameters, substitute θ = 0, then sympy's generic ``eigenvects`` and Gram–Schmidt of
the top eigenvectors. Each measurement runs in a fresh child process (cold caches, nothing
shared between runs); baselines are capped at --cap seconds (a capped run gives a lower
bound, printed with '>').

Cases (the issue's targets, < 2 s each):
  1. m = 2,    d = 1, bias, n = 6 numeric (Example 1's data, exact rationals)
  2. m = 2,    d = 3, bias, n = 10 symbolic samples
  3. m = 1000, d = 1, bias, n = 6 numeric (baseline at m = 1000 capped, and at m = 8)

    python benchmarks/bench_symbolic.py            # about 1–2 minutes with the default cap
    python benchmarks/bench_symbolic.py --cap 120
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import time

import numpy as np
import sympy as sp

import flowtools as ft
from flowtools import symbolic
from flowtools.activations import x as X_SYM
from flowtools.symbolic.exact import exact_number


def block_method(m, d, data):
    """Seconds for origin_hessian (blocks, spectrum, top block vectors) and for everything
    including the explicit sparse −∇²ℓ(0), the top basis and C(θ), and the spectrum as a
    sorted list of floats (None if symbolic). Run in a fresh process: cold caches."""
    t0 = time.perf_counter()
    oh = symbolic.origin_hessian("tanh", width=m, dim=d, bias=True, data=data)
    t1 = time.perf_counter()
    _ = oh.matrix, oh.top_basis, oh.imbalance
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, _spectrum(oh.eigenvalues)


def _spectrum(ev):
    """{λ: multiplicity} → the sorted eigenvalues as floats, or None if one is symbolic."""
    if not all(lam.is_number for lam in ev):
        return None
    return sorted(float(v) for v, k in ev.items() for _ in range(k))


def naive(m, d, data):
    """The naive full derivation; returns (seconds, eigenvalues {value: multiplicity})."""
    t0 = time.perf_counter()
    sig = sp.Lambda(X_SYM, sp.tanh(X_SYM))
    dt = d + 1
    theta = [[sp.Symbol(f"a_{k}", real=True)]
             + [sp.Symbol(f"w_{k}_{j}", real=True) for j in range(dt)] for k in range(m)]
    if isinstance(data, int):
        Xs = [[sp.Symbol(f"x_{i}_{j}", real=True) for j in range(d)] + [1] for i in range(data)]
        ys = [sp.Symbol(f"y_{i}", real=True) for i in range(data)]
    else:
        rows = np.asarray(data[0]).reshape(len(data[1]), -1)
        Xs = [[exact_number(v, "X") for v in row] + [1] for row in rows]
        ys = [exact_number(v, "y") for v in data[1]]
    loss = sum((sum(t[0] * sig(sum(t[j + 1] * xi[j] for j in range(dt))) for t in theta) - yi)
               ** 2 for xi, yi in zip(Xs, ys)) / 2
    flat = [v for t in theta for v in t]
    M = -sp.hessian(loss, flat).subs({v: 0 for v in flat})
    vects = M.eigenvects()
    ev = {lam: k for lam, k, _ in vects}
    if all(lam.is_number for lam in ev):
        top = max(vects, key=lambda e: float(e[0]))
        sp.GramSchmidt(top[2], orthonormal=True)
    return time.perf_counter() - t0, ev


def _child(q, fn, args):
    try:
        q.put(fn(*args))
    except BaseException as err:  # reported by the parent, which would wait otherwise
        q.put(err)


def in_child(fn, args, cap=None):
    """(fn(*args), wall seconds) in a fresh spawned process; (None, seconds) past ``cap``."""
    ctx = mp.get_context("spawn")  # JAX is multithreaded: no fork
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, fn, args))
    t0 = time.perf_counter()
    p.start()
    try:
        out = q.get(timeout=cap)  # before join: a large result would block the child's exit
    except queue.Empty:
        out = None
        p.terminate()
    p.join()
    if isinstance(out, BaseException):
        raise out
    return out, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cap", type=float, default=30.0, help="baseline time cap, s")
    args = ap.parse_args(argv)
    pb = ft.example1()
    ex1 = (np.asarray(pb.X)[:, 0], np.asarray(pb.y))
    cases = [
        ("m=2, d=1, bias, n=6 numeric", 2, 1, ex1, [(2, 1, ex1)]),
        ("m=2, d=3, bias, n=10 symbolic", 2, 3, 10, [(2, 3, 10)]),
        ("m=1000, d=1, bias, n=6 numeric", 1000, 1, ex1, [(1000, 1, ex1), (8, 1, ex1)]),
    ]
    print(f"{'case':34s} {'block: derive':>14s} {'+ matrix, basis, C':>19s}   baseline "
          "(naive full sympy Hessian + eigenvects)")
    for name, m, d, data, baselines in cases:
        (t_core, t_full, mine), _ = in_child(block_method, (m, d, data))
        line = f"{name:34s} {t_core:12.3f} s {t_full:17.3f} s"
        for bm, bd, bdata in baselines:
            out, wall = in_child(naive, (bm, bd, bdata), args.cap)
            if out is None:
                line += f"   m={bm}: > {wall:.0f} s (capped; ratio > {wall / t_core:.0f}×)"
                continue
            sec, ev = out
            line += f"   m={bm}: {sec:.2f} s (ratio {sec / t_core:.0f}×)"
            theirs = _spectrum(ev)
            if bm == m and mine is not None and theirs is not None:  # the methods must agree
                line += f" [spectra agree: {np.allclose(mine, theirs, atol=1e-12)}]"
        print(line, flush=True)


if __name__ == "__main__":
    main()
