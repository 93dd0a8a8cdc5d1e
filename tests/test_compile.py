"""The export cache of ``flowtools._compile``: same results from disk, keys, fallbacks, switch."""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowtools as ft
from flowtools import _compile as C
from flowtools import _config
from flowtools.descent import _gd_batch
from flowtools.integrate.options import IntegratorOptions

pytestmark = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("flatbuffers") is None,
    reason="jax.export's serialization needs the package flatbuffers")

ROOT = pathlib.Path(__file__).resolve().parents[1]

# GD (cheap to compile) and a short explicit flow with the loss stop (diffrax, events)
SCRIPT = r"""
import json, sys
import numpy as np
import flowtools as ft
p = ft.example1()
th = p.init_gaussian(0.1, 0)
gd = ft.run_gd(p, th, 0.05, max_iter=2000, n_save=20)
fl = ft.solve_flow(p, th, solver="dopri5", t1=200.0, n_save=20, loss_threshold=1e-6)
np.savez(sys.argv[1], **{f"gd_{k}": np.asarray(getattr(gd, k)) for k in
         ("ts", "thetas", "losses", "theta_final", "loss_final", "steps")},
         **{f"fl_{k}": np.asarray(getattr(fl, k)) for k in
         ("ts", "thetas", "losses", "t_final", "theta_final", "loss_final", "steps")})
"""


def _process(tmp, name, env):
    out = tmp / f"{name}.npz"
    full = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTOOLS_")}
    full.update(FLOWTOOLS_COMPILE_TIMES="1", **env)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=full, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sources = [line.split()[2].rstrip(":") for line in proc.stderr.splitlines()
               if line.startswith("flowtools.compile:")]
    return dict(np.load(out)), sources


def _identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind in "fc"), k


def test_round_trip_in_new_processes_is_bitwise_identical(tmp_path):
    reference, src0 = _process(tmp_path, "traced", {"FLOWTOOLS_JAX_CACHE": "off"})
    assert src0 == ["jit", "jit"]
    cache = {"FLOWTOOLS_JAX_CACHE": str(tmp_path / "jax")}
    first, src1 = _process(tmp_path, "first", cache)
    assert src1 == ["export-miss", "export-miss"]
    entries = sorted((tmp_path / "jax" / "flowtools-export").glob("*" + C._SUFFIX))
    assert [e.name.split("-")[0] for e in entries] == ["_gd_batch", "_solve"]
    second, src2 = _process(tmp_path, "second", cache)
    assert src2 == ["export-hit", "export-hit"]
    _identical(reference, first)
    _identical(reference, second)


def _gd_args(n_batch=1, lr=0.05, problem=None):
    p = problem or ft.example1()
    th = np.atleast_2d(p.init_gaussian(0.1, list(range(n_batch))))
    return (p, jnp.asarray(th), jnp.float64(lr), jnp.float64(0.0),
            jnp.asarray(np.arange(0, 101, 10)), jnp.int64(100))


def _digest(fn, args):
    import equinox as eqx

    dyn, stat = eqx.partition(args, eqx.is_array)
    flat, tree = jax.tree_util.tree_flatten(dyn)
    sds = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in flat]
    return C._digest(getattr(fn, "__wrapped__", fn), stat, tree, sds)


def test_keys_follow_static_options_and_shapes():
    from flowtools.integrate.core import _solve

    base = _digest(_gd_batch, _gd_args())
    assert base == _digest(_gd_batch, _gd_args())  # the same call, a second time
    assert base == _digest(_gd_batch, _gd_args(lr=0.1))  # traced values are not in the key
    assert base != _digest(_gd_batch, _gd_args(n_batch=2))  # a shape
    other = ft.make_problem(activation="x/(1+x**2)")
    assert base != _digest(_gd_batch, _gd_args(problem=other))  # a static field (sympy)
    flow = ft.flow._model_field, ft.flow._model_loss
    p, th = ft.example1(), jnp.zeros((1, 6))
    ts, dyn = jnp.linspace(0.0, 1.0, 5), tuple(jnp.float64(v) for v in range(5))

    def key(opts, chunk=1, fields=flow):
        static = opts.static(True)
        return _digest(_solve, (*fields, p, th, ts, dyn, static, chunk))

    k0 = key(IntegratorOptions())
    assert k0 == key(IntegratorOptions(rtol=1e-6))  # traced
    assert k0 != key(IntegratorOptions(solver="dopri5"))
    assert k0 != key(IntegratorOptions(pcoeff=0.4 + 2 ** -40))  # floats exactly
    assert k0 != key(IntegratorOptions(max_steps=1234))
    assert k0 != key(IntegratorOptions(), chunk=2)
    assert k0 != key(IntegratorOptions(), fields=flow[::-1])  # functions by name
    with pytest.raises(C._Unstable):  # a lambda has no name that lasts: not cached
        key(IntegratorOptions(), fields=(lambda th, a: th, flow[1]))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "export"
    monkeypatch.setenv("FLOWTOOLS_EXPORT_CACHE", str(folder))
    monkeypatch.setattr(C, "_CACHE", {})
    return folder


def _gd(args):
    exe, _ = C.compiled(_gd_batch, *args)
    return [np.asarray(x) for x in exe(*args)]


def _traced(args):
    return [np.asarray(x) for x in _gd_batch.lower(*args).compile()(*args)]


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "header", "folder"])
def test_a_damaged_entry_falls_back(cache_dir, monkeypatch, caplog, damage):
    args = _gd_args()
    reference = _traced(args)
    _identical(dict(enumerate(_gd(args))), dict(enumerate(reference)))
    (entry,) = cache_dir.glob("*" + C._SUFFIX)
    data = entry.read_bytes()
    head = data.index(b"\n", len(C._MAGIC)) + 1
    if damage == "flip":
        entry.write_bytes(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
    elif damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":  # a valid HMAC (the user's key) of bytes that are no program
        junk = os.urandom(5000)
        key = (cache_dir / C._KEY_FILE).read_bytes()
        entry.write_bytes(data[:head] + C._mac(key, data[:head], junk) + junk)
    elif damage == "header":
        entry.write_bytes(b"something else\n" + data)
    else:
        entry.unlink()
        entry.mkdir()
    monkeypatch.setattr(C, "_CACHE", {})
    with caplog.at_level(logging.WARNING, logger="flowtools.compile"):
        again = _gd(args)
    _identical(dict(enumerate(again)), dict(enumerate(reference)))
    messages = [r.getMessage() for r in caplog.records]
    assert any("tracing instead" in m for m in messages)
    if damage == "flip":  # caught by the checksum, not left to the deserializer
        assert any("checksum" in m for m in messages)
    if damage != "folder":  # rewritten, and read back the next time
        monkeypatch.setattr(C, "_CACHE", {})
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="flowtools.compile"):
            _identical(dict(enumerate(_gd(args))), dict(enumerate(reference)))
        assert not caplog.records


def test_switch_off(cache_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWTOOLS_EXPORT_CACHE", "off")
    assert _config.export_cache_dir() is None
    args = _gd_args()
    _gd(args)
    assert not cache_dir.exists()
    monkeypatch.setenv("FLOWTOOLS_EXPORT_CACHE", str(cache_dir))
    monkeypatch.setattr(C, "_CACHE", {})
    _gd(args)
    assert len(list(cache_dir.glob("*" + C._SUFFIX))) == 1
    # without the variable, the export cache follows JAX's cache (off with it)
    monkeypatch.delenv("FLOWTOOLS_EXPORT_CACHE")
    monkeypatch.setattr(_config, "JAX_CACHE_DIR", None)
    assert _config.export_cache_dir() is None
    monkeypatch.setattr(_config, "JAX_CACHE_DIR", str(tmp_path / "jax"))
    assert _config.export_cache_dir() == str(tmp_path / "jax" / "flowtools-export")


def _maps() -> int:
    with open(f"/proc/{os.getpid()}/maps", "rb") as f:
        return sum(1 for _ in f)


def test_loaded_programs_are_bounded(cache_dir, monkeypatch):
    """At most FLOWTOOLS_LOADED_PROGRAMS executables stay loaded, the least recently used
    dropped first, fewer near the memory-map limit; a dropped one comes back with the same
    bits. (Unbounded, the test suite's process ran past vm.max_map_count and LLVM aborted it
    while loading a program.)"""
    monkeypatch.setenv("FLOWTOOLS_LOADED_PROGRAMS", "2")
    calls = [_gd_args(n_batch=b) for b in (1, 2, 3)]  # three shapes: three programs
    first = _gd(calls[0])
    _gd(calls[1])
    _gd(calls[0])  # the first is now the most recently used ...
    _gd(calls[2])  # ... so the second is dropped
    assert len(C._CACHE) == 2
    assert [k[3] for k in C._CACHE] == [C._key(_gd_batch, c)[3] for c in (calls[0], calls[2])]
    _, seconds = C.compiled(_gd_batch, *calls[0])
    assert seconds == 0.0  # still loaded
    _, seconds = C.compiled(_gd_batch, *calls[1])
    assert seconds > 0.0  # loaded again (from the export cache) ...
    assert [k[3] for k in C._CACHE] == [C._key(_gd_batch, c)[3] for c in (calls[0], calls[1])]
    C._CACHE.clear()
    _identical(dict(enumerate(_gd(calls[0]))), dict(enumerate(first)))  # ... same bits
    # near the map limit only the newest stays
    monkeypatch.setenv("FLOWTOOLS_LOADED_PROGRAMS", "32")
    _gd(calls[1])
    monkeypatch.setattr(C, "_map_count", lambda: (60_000, 65_530))
    _gd(calls[2])
    assert list(C._CACHE) == [C._key(_gd_batch, calls[2])]
    monkeypatch.setenv("FLOWTOOLS_LOADED_PROGRAMS", "0")
    with pytest.raises(ValueError, match="FLOWTOOLS_LOADED_PROGRAMS"):
        _gd(calls[0])


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="Linux's /proc")
def test_a_dropped_program_releases_its_memory_maps(monkeypatch):
    """What the bound is for: a flow program's executable holds hundreds of memory maps,
    and they go with it."""
    monkeypatch.setattr(C, "_CACHE", {})
    p = ft.make_problem(3, seed=0)
    before = _maps()
    ft.solve_flow(p, p.init_ratio(0.5, 1e-6, seed=0), solver="dopri5", t1=10.0)
    loaded = _maps()
    assert loaded - before > 50
    C._CACHE.clear()
    assert _maps() - before < (loaded - before) / 2
