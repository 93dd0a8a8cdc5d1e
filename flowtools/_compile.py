"""Ahead-of-time compilation with a cache, so compile time is measured apart from run time.

``compiled(fn, *args)`` lowers and compiles an ``equinox.filter_jit`` function once per
(static arguments, array shapes and dtypes) and returns ``(executable, compile_seconds)``;
``executable(*args)`` runs it. Later calls with the same structure get the cached
executable and 0.0.

Across processes two caches on disk take over (``flowtools._config`` names the folders and
the switches):

* the export cache: the traced and lowered program (StableHLO, ``jax.export``), one file
  per key, so a new process does not trace diffrax again. The key is a SHA-256 of the
  function's module and qualified name, of flowtools' source files (an edit invalidates
  every entry), of the versions of Python, jax, jaxlib, diffrax, equinox, optimistix,
  lineax, numpy and sympy, of the backend and the JAX settings that change a program, of
  the arguments' pytree structure with a stable description of every static leaf
  (functions by module and qualified name, dataclasses by their compared fields, sympy
  expressions by ``srepr``, floats exactly) and of the arrays' shapes and dtypes.
  Arguments that cannot be described so (a closure, a lambda, a function or class
  outside flowtools and the versioned packages, weak-typed arrays) skip the export cache:
  they are traced as before. An entry is written atomically with a checksum; an entry
  that cannot be read, fails its checksum or does not match the arguments is ignored
  (traced anew and rewritten), never used. What the key cannot see: a function that the
  traced program calls, replaced at run time (monkeypatching a flowtools module); switch
  the cache off (``FLOWTOOLS_EXPORT_CACHE=off``) for that.
* JAX's persistent compilation cache then holds the XLA executable of the same module.

Outputs come back with the same dtypes and values but without JAX's weak-type flag (the
serialization does not keep it; flowtools' callers convert them to NumPy at once). Both
processes run the deserialized program, so the first and every later process run
the same executable: results are bitwise identical to the traced program (checked in
``tests/test_compile.py``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import pathlib
import sys
import time

import equinox as eqx
import jax

_CACHE: dict = {}
_FAILED: set = set()  # functions whose export failed once in this process (warned once)
_LOG = logging.getLogger("flowtools.compile")
_MAGIC = b"flowtools-export-1\n"
_SUFFIX = ".jaxexport"
# modules whose functions and classes may be named in a key: flowtools' source is hashed
# into every key, the others by their versions
_TRUSTED = ("flowtools", "jax", "jaxlib", "numpy", "diffrax", "equinox", "optimistix",
            "lineax", "sympy", "builtins", "math", "operator")
_VERSIONED = ("jax", "jaxlib", "diffrax", "equinox", "optimistix", "lineax", "numpy", "sympy")
_CONFIG = ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion",
           "jax_numpy_dtype_promotion", "jax_default_prng_impl", "jax_threefry_partitionable")


def _key(fn, args):
    dyn, stat = eqx.partition(args, eqx.is_array)
    leaves, treedef = jax.tree_util.tree_flatten(stat)
    shapes = tuple((x.shape, str(x.dtype)) for x in jax.tree_util.tree_leaves(dyn))
    return (fn, treedef, tuple(map(repr, leaves)), shapes, jax.tree_util.tree_structure(dyn))


def compiled(fn, *args):
    key = _key(fn, args)
    if key in _CACHE:
        return _CACHE[key], 0.0
    t = time.perf_counter()
    times: dict = {}
    exe = None
    folder = _export_dir()
    if folder is not None:
        try:
            exe = _via_export(fn, args, folder, times)
        except Exception as err:  # never a crash or a wrong result: trace as before
            if _name(fn) not in _FAILED:
                _FAILED.add(_name(fn))
                _LOG.warning("export cache not used for %s: %s: %s", _name(fn),
                             type(err).__name__, err)
            exe = None
            times["source"] = "jit-after-export-failed"
    if exe is None:
        t0 = time.perf_counter()
        lowered = fn.lower(*args)
        t1 = time.perf_counter()
        exe = lowered.compile()
        times.update(source=times.get("source", "jit"), trace_lower=t1 - t0, load=0.0,
                     compile=time.perf_counter() - t1)
    _CACHE[key] = exe
    seconds = time.perf_counter() - t
    if os.environ.get("FLOWTOOLS_COMPILE_TIMES", "") not in ("", "0"):
        print(f"flowtools.compile: {_name(fn)} {times.get('source')}: "
              f"trace+lower {times.get('trace_lower', 0.0):.3f} s, "
              f"load {times.get('load', 0.0):.3f} s, "
              f"xla compile {times.get('compile', 0.0):.3f} s, total {seconds:.3f} s",
              file=sys.stderr, flush=True)
    return exe, seconds


# ------------------------------------------------------------------------- export cache
class _Unstable(Exception):
    """An argument has no description that is the same in every process."""


class _Loaded:
    """A deserialized program, compiled: called with the same arguments as ``fn``."""

    def __init__(self, exe, in_tree):
        self._exe, self._in_tree = exe, in_tree

    def __call__(self, *args):
        flat, tree = jax.tree_util.tree_flatten(eqx.filter(args, eqx.is_array))
        if tree != self._in_tree:
            raise TypeError(f"arguments of another structure: {tree} instead of "
                            f"{self._in_tree}")
        return self._exe(*flat)


def _export_dir() -> pathlib.Path | None:
    from flowtools._config import export_cache_dir

    folder = export_cache_dir()
    return None if folder is None else pathlib.Path(folder).expanduser()


def _name(fn) -> str:
    f = getattr(fn, "__wrapped__", fn)
    return getattr(f, "__qualname__", type(f).__name__)


def _via_export(fn, args, folder: pathlib.Path, times: dict):
    """The executable through the export cache, or None when ``args`` have no stable key."""
    t0 = time.perf_counter()
    target = getattr(fn, "__wrapped__", None)
    if target is None or not hasattr(fn, "lower"):
        return None
    if importlib.util.find_spec("flatbuffers") is None:  # jax.export's serialization
        _LOG.info("export cache off: the package flatbuffers is not installed")
        return None
    if os.environ.get("EQX_ON_ERROR", "raise") != "nan":
        # equinox's checks are then host callbacks, which jax.export cannot serialize
        # (nor JAX's cache keep): no use tracing twice
        _LOG.info("export cache off: EQX_ON_ERROR is not 'nan'")
        return None
    dyn, stat = eqx.partition(args, eqx.is_array)
    flat, in_tree = jax.tree_util.tree_flatten(dyn)
    if any(getattr(x, "weak_type", False) for x in flat):
        return None  # jax.export does not keep weak types: the program could differ
    sds = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in flat]
    try:
        digest = _digest(target, stat, in_tree, sds)
    except _Unstable as why:
        _LOG.info("export cache skipped for %s: %s", _name(fn), why)
        return None
    path = folder / f"{_name(fn)}-{digest}{_SUFFIX}"
    exported = _read(path, digest, sds)
    t1 = time.perf_counter()
    times.update(source="export-hit" if exported is not None else "export-miss",
                 load=t1 - t0)
    if exported is None:
        def flat_fn(*xs):
            return target(*eqx.combine(jax.tree_util.tree_unflatten(in_tree, xs), stat))

        fresh = jax.export.export(jax.jit(flat_fn))(*sds)
        blob = bytes(fresh.serialize())
        _write(path, digest, blob)
        # run what a later process will run: the deserialized program
        exported = jax.export.deserialize(bytearray(blob))
        times["trace_lower"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    lowered = jax.jit(exported.call).lower(*sds)
    t3 = time.perf_counter()
    exe = lowered.compile()
    times.update(load=times["load"] + t3 - t2, compile=time.perf_counter() - t3)
    return _Loaded(exe, in_tree)


def _read(path: pathlib.Path, digest: str, sds):
    """The entry at ``path`` if it is complete and matches; None otherwise (logged)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        _LOG.warning("export cache entry %s unreadable (%s): tracing instead", path, err)
        return None
    try:
        head = _MAGIC + digest.encode() + b"\n"
        if not data.startswith(head):
            raise ValueError("wrong header")
        check, blob = data[len(head):len(head) + 32], data[len(head) + 32:]
        if hashlib.sha256(blob).digest() != check:
            raise ValueError("checksum mismatch")
        exported = jax.export.deserialize(bytearray(blob))
        want = [(tuple(s.shape), s.dtype) for s in sds]
        got = [(tuple(a.shape), a.dtype) for a in exported.in_avals]
        if got != want:
            raise ValueError(f"inputs {got} instead of {want}")
        if jax.default_backend() not in exported.platforms:
            raise ValueError(f"lowered for {exported.platforms}")
        return exported
    except Exception as err:
        _LOG.warning("export cache entry %s ignored (%s: %s): tracing instead", path,
                     type(err).__name__, err)
        return None


def _write(path: pathlib.Path, digest: str, blob: bytes) -> None:
    from flowtools._io import atomic_open

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # no fsync: the checksum rejects an entry that a power cut left incomplete
        with atomic_open(path, "wb", fsync=False) as f:
            f.write(_MAGIC + digest.encode() + b"\n" + hashlib.sha256(blob).digest() + blob)
    except OSError as err:
        _LOG.warning("export cache entry %s not written: %s", path, err)


# -------------------------------------------------------------------------- the key
def _digest(target, stat, in_tree, sds) -> str:
    parts = (
        _environment(),
        _stable(target),
        _tree(jax.tree_util.tree_structure(stat)),
        tuple(_stable(leaf) for leaf in jax.tree_util.tree_leaves(stat)),
        _tree(in_tree),
        tuple((tuple(s.shape), str(s.dtype)) for s in sds),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:40]


@functools.cache
def _source_hash() -> str:
    root = pathlib.Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _environment() -> tuple:
    return (
        _source_hash(),
        sys.version,
        tuple(_version(d) for d in _VERSIONED),
        jax.default_backend(),
        tuple(sorted({d.device_kind for d in jax.devices()})),
        tuple(str(getattr(jax.config, name, None)) for name in _CONFIG),
        os.environ.get("EQX_ON_ERROR", ""),
    )


def _named(obj) -> str:
    """``module:qualname`` of a module-level function or class that resolves to ``obj``."""
    if obj is type(None):
        return "builtins:NoneType"
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(mod, str) or not isinstance(qual, str) or "<" in qual:
        raise _Unstable(f"{obj!r} is not a module-level name")
    if mod.split(".")[0] not in _TRUSTED:
        raise _Unstable(f"{mod}.{qual} is outside flowtools and the versioned packages")
    found = sys.modules.get(mod)
    for part in qual.split("."):
        found = getattr(found, part, None)
    if found is not obj and getattr(found, "__wrapped__", None) is not obj:  # decorated
        raise _Unstable(f"{mod}.{qual} does not name {obj!r}")
    return f"{mod}:{qual}"


def _tree(td) -> tuple | str:
    if td.num_nodes == 1 and td.num_leaves == 1:
        return "*"
    kind, aux = td.node_data()
    return (_named(kind), _stable(aux), tuple(_tree(c) for c in td.children()))


def _stable(obj):
    """A description of ``obj`` that is the same in every process for equal objects."""
    import numpy as np

    if isinstance(obj, enum.Enum):
        return (_named(type(obj)), obj.name)
    if obj is None or isinstance(obj, (bool, int, str)):
        return (type(obj).__name__, repr(obj))
    if isinstance(obj, float):
        return ("float", obj.hex())
    if isinstance(obj, complex):
        return ("complex", obj.real.hex(), obj.imag.hex())
    if isinstance(obj, bytes):
        return ("bytes", hashlib.sha256(obj).hexdigest())
    if isinstance(obj, (tuple, list)):
        return (_named(type(obj)), tuple(_stable(x) for x in obj))
    if isinstance(obj, dict):
        items = sorted((repr(_stable(k)), _stable(v)) for k, v in obj.items())
        return (_named(type(obj)), tuple(items))
    if isinstance(obj, (set, frozenset)):
        return (type(obj).__name__, tuple(sorted(repr(_stable(x)) for x in obj)))
    if isinstance(obj, (np.ndarray, np.generic)):
        a = np.ascontiguousarray(obj)
        return ("ndarray", a.dtype.str, a.shape, hashlib.sha256(a.tobytes()).hexdigest())
    if isinstance(obj, np.dtype):
        return ("dtype", obj.str)
    if isinstance(obj, type):
        return ("type", _named(obj))
    if "sympy" in sys.modules and isinstance(obj, sys.modules["sympy"].Basic):
        return ("sympy", sys.modules["sympy"].srepr(obj))
    if isinstance(obj, functools.partial):
        return ("partial", _stable(obj.func), _stable(obj.args), _stable(obj.keywords))
    if hasattr(obj, "__self__") and hasattr(obj, "__func__"):  # a bound method
        return ("method", _stable(obj.__self__), _named(obj.__func__))
    if dataclasses.is_dataclass(obj):
        # the compared fields: equal objects (as jit's static-argument cache sees them)
        # give one description; fields with compare=False are derived (e.g. a lambdified
        # function of a sympy expression)
        return (_named(type(obj)), tuple((f.name, _stable(getattr(obj, f.name)))
                                         for f in dataclasses.fields(obj) if f.compare))
    if callable(obj) and hasattr(obj, "__qualname__"):
        return ("function", _named(obj))
    if getattr(obj, "__dict__", None) == {} and not hasattr(type(obj), "__slots__"):
        return ("instance", _named(type(obj)))  # a stateless sentinel
    raise _Unstable(f"no stable description of {type(obj).__name__}")
