"""Ahead-of-time compilation with a cache, so compile time is measured apart from run time.

``compiled(fn, *args)`` lowers and compiles an ``equinox.filter_jit`` function once per
(static arguments, array shapes and dtypes) and returns ``(executable, compile_seconds)``;
``executable(*args)`` runs it. Later calls with the same structure get the cached
executable and 0.0.

**Loaded programs are bounded.** Every loaded XLA CPU executable holds hundreds of memory
maps (about 700 for a flow program: its kernels' code and data, mapped one by one), and
Linux refuses new maps past ``vm.max_map_count`` (65 530 by default): LLVM then aborts the
process while it loads the next program, in the middle of a run. A long session that meets
many problem shapes (a test suite, a notebook going through every figure) reached that
limit after about a hundred programs. So at most ``FLOWTOOLS_LOADED_PROGRAMS`` executables
(default 32) stay loaded, fewer while the process holds more than half of
``vm.max_map_count`` maps; the least recently used is dropped first (its maps go with it).
A dropped program that is needed again comes back from the disk caches below (a fraction of
a second), or is compiled anew where they are off.

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
  they are traced as before. An entry is written atomically (``flowtools._io``, never
  through a link); an entry that cannot be read, fails its check or does not match the
  arguments is ignored (traced anew and rewritten), never used. What the key cannot see:
  a function that the traced program calls, replaced at run time (monkeypatching a
  flowtools module); switch the cache off (``FLOWTOOLS_EXPORT_CACHE=off``) for that.
* JAX's persistent compilation cache then holds the XLA executable of the same module.

**What the export cache trusts.** A program loaded from disk is run as if flowtools had
traced it, so an entry is used only if this user wrote it:

* the folder must belong to the user and be writable by nobody else (no group or world
  write bit); flowtools creates it with mode 0700. Another folder is not used at all
  (one ``CacheNotUsed`` warning per process, saying why and what to do): every program is
  traced as without the cache.
* every entry carries an HMAC-SHA256 of its key (the file name's digest) and program,
  under a secret of 32 random bytes in ``FOLDER/flowtools-export.key``, created with
  ``O_EXCL | O_NOFOLLOW`` and mode 0600. A key file that is a link, belongs to another
  user or is readable by others makes the folder unused (a warning). An entry whose HMAC
  does not verify — damaged, written by another key, or a valid entry of another program
  copied under this name — is ignored, traced anew and overwritten. A checksum alone
  (SHA-256 of the program) proves that the file is whole, not who wrote it: whoever
  can write in the folder could recompute it for a program of their own.

So the cache trusts the user's own account and the folder's permissions, nothing in the
files themselves. It does not protect against a process of the same user (that can read
the key), nor against a folder above it that others can rename.

**Size.** After each write, the least recently used entries are removed until the
entries (``*.jaxexport``) total at most ``FLOWTOOLS_CACHE_MAX_BYTES`` bytes (default
256 MiB, about 2000 programs; 0 keeps none); a hit sets the entry's modification time, so
"recently used" does not depend on access times (often off: ``noatime``). Temporaries that
a killed process left behind are removed after an hour.

JAX's own cache (XLA executables, ``FLOWTOOLS_JAX_CACHE``, the folder above by default) is
used only under the same folder rule (``flowtools._config``: a folder of the user's that
nobody else can write, else not used, with a warning); its entries are JAX's, not
authenticated by flowtools, and its size is not bounded by flowtools.

Outputs come back with the same dtypes and values but without JAX's weak-type flag (the
serialization does not keep it; flowtools' callers convert them to NumPy at once). Both
processes run the deserialized program, so the first and every later process run
the same executable: results are bitwise identical to the traced program (checked in
``tests/test_compile.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import hmac
import importlib.metadata
import importlib.util
import logging
import os
import pathlib
import secrets
import stat
import sys
import threading
import time
import warnings

import equinox as eqx
import jax

_CACHE: dict = {}  # key -> executable, the most recently used last (bounded: _keep_bounded)
_LOADED_ENV = "FLOWTOOLS_LOADED_PROGRAMS"
_DEFAULT_LOADED = 32
_LOCK = threading.Lock()  # _CACHE's order and bound, for callers on threads (not compiles)
_FAILED: set = set()  # functions whose export failed once in this process (warned once)
_LOG = logging.getLogger("flowtools.compile")
_MAGIC = b"flowtools-export-2\n"  # -1: a plain SHA-256, not an HMAC (ignored, rewritten)
_SUFFIX = ".jaxexport"
_KEY_FILE = "flowtools-export.key"
_KEY_BYTES = 32
_MAX_BYTES_ENV = "FLOWTOOLS_CACHE_MAX_BYTES"
_DEFAULT_MAX_BYTES = 256 * 2**20
_STALE_TEMP_SECONDS = 3600
_WARNED: set = set()  # (folder, reason) warned once per process


class CacheNotUsed(UserWarning):
    """The export cache's folder (or its key) is not private to this user: not used."""
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
    with _LOCK:
        if key in _CACHE:
            _CACHE[key] = exe = _CACHE.pop(key)  # now the most recently used
            return exe, 0.0
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
    with _LOCK:
        _CACHE[key] = exe
        _keep_bounded()
    seconds = time.perf_counter() - t
    if os.environ.get("FLOWTOOLS_COMPILE_TIMES", "") not in ("", "0"):
        print(f"flowtools.compile: {_name(fn)} {times.get('source')}: "
              f"trace+lower {times.get('trace_lower', 0.0):.3f} s, "
              f"load {times.get('load', 0.0):.3f} s, "
              f"xla compile {times.get('compile', 0.0):.3f} s, total {seconds:.3f} s",
              file=sys.stderr, flush=True)
    return exe, seconds


def _loaded_limit() -> int:
    value = os.environ.get(_LOADED_ENV, "")
    if not value:
        return _DEFAULT_LOADED
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{_LOADED_ENV}={value!r}: give a whole number of programs, at "
                         f"least 1 (default {_DEFAULT_LOADED})")
    return int(value)


def _map_count() -> tuple[int, int] | None:
    """(memory maps of this process, vm.max_map_count), or None where /proc does not say."""
    try:
        with open("/proc/sys/vm/max_map_count", "rb") as f:
            limit = int(f.read())
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f), limit
    except (OSError, ValueError):
        return None


def _keep_bounded() -> None:
    """Drop the least recently used executables beyond the limit, then while the process's
    memory maps exceed half of vm.max_map_count (the newest one always stays)."""
    limit = _loaded_limit()
    while len(_CACHE) > limit:
        del _CACHE[next(iter(_CACHE))]
    while len(_CACHE) > 1 and (maps := _map_count()) is not None and maps[0] > maps[1] // 2:
        del _CACHE[next(iter(_CACHE))]


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
    secret = _secret(folder)
    if secret is None:
        return None
    path = folder / f"{_name(fn)}-{digest}{_SUFFIX}"
    exported = _read(path, digest, sds, secret)
    t1 = time.perf_counter()
    times.update(source="export-hit" if exported is not None else "export-miss",
                 load=t1 - t0)
    if exported is None:
        def flat_fn(*xs):
            return target(*eqx.combine(jax.tree_util.tree_unflatten(in_tree, xs), stat))

        fresh = jax.export.export(jax.jit(flat_fn))(*sds)
        blob = bytes(fresh.serialize())
        _write(path, digest, blob, secret)
        # run what a later process will run: the deserialized program
        exported = jax.export.deserialize(bytearray(blob))
        times["trace_lower"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    lowered = jax.jit(exported.call).lower(*sds)
    t3 = time.perf_counter()
    exe = lowered.compile()
    times.update(load=times["load"] + t3 - t2, compile=time.perf_counter() - t3)
    return _Loaded(exe, in_tree)


# ------------------------------------------------------------------ trust and entries
class _Untrusted(Exception):
    """The cache folder or its key is not private to this user."""


def _warn_once(folder: pathlib.Path, why: str) -> None:
    if (str(folder), why) not in _WARNED:
        _WARNED.add((str(folder), why))
        warnings.warn(f"the compile cache {str(folder)!r} is not used: {why}. Programs are "
                      "traced as without it (FLOWTOOLS_EXPORT_CACHE names another folder; "
                      "'off' switches it off).", CacheNotUsed, stacklevel=2)


def _secret(folder: pathlib.Path) -> bytes | None:
    """The HMAC key of ``folder`` (created with the folder if missing), or None — with one
    warning — when the folder or the key file could be written or read by someone else."""
    from flowtools._io import atomic_open, private_folder, safe_open
    from flowtools.errors import FlowtoolsError

    why = private_folder(folder)
    if why is not None:
        _warn_once(folder, why)
        return None
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as err:
        _LOG.warning("export cache off: cannot use the folder %s (%s)", folder, err)
        return None
    try:
        for _ in range(3):
            try:
                kfd = safe_open(_KEY_FILE, os.O_RDONLY, dir_fd=fd, private=True)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):  # another process made one
                    with atomic_open(folder / _KEY_FILE, "wb", permissions=0o600,
                                     replace=False) as fh:
                        fh.write(secrets.token_bytes(_KEY_BYTES))
                continue
            except FlowtoolsError as err:  # a link, not a file, not ours, not 0600
                why = getattr(err, "why", "is not a private file of this user")
                raise _Untrusted(f"its key file {_KEY_FILE} {why}; delete it (a new one "
                                 "is made)") from None
            try:
                key = os.read(kfd, _KEY_BYTES + 1)
            finally:
                os.close(kfd)
            if len(key) != _KEY_BYTES:
                raise _Untrusted(f"its key file {_KEY_FILE} is damaged ({len(key)} bytes); "
                                 "delete it (the entries are then written anew)")
            return key
        raise _Untrusted(f"its key file {_KEY_FILE} could not be created")
    except _Untrusted as why:
        _warn_once(folder, str(why))
        return None
    except OSError as err:
        _LOG.warning("export cache off: cannot use the folder %s (%s)", folder, err)
        return None
    finally:
        os.close(fd)


def _mac(secret: bytes, head: bytes, blob: bytes) -> bytes:
    return hmac.new(secret, head + blob, hashlib.sha256).digest()


def max_bytes() -> int:
    """The size bound of the export cache: ``FLOWTOOLS_CACHE_MAX_BYTES`` (bytes, e.g.
    ``268435456`` or ``256e6``; read each call), 256 MiB by default."""
    raw = os.environ.get(_MAX_BYTES_ENV, "").strip()
    if not raw:
        return _DEFAULT_MAX_BYTES
    try:
        value = float(raw.replace("_", ""))
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        if ("env", raw) not in _WARNED:
            _WARNED.add(("env", raw))
            warnings.warn(f"{_MAX_BYTES_ENV}={raw!r} is not a number of bytes (>= 0): the "
                          f"default {_DEFAULT_MAX_BYTES} is used", CacheNotUsed, stacklevel=2)
        return _DEFAULT_MAX_BYTES
    return int(value)


def _read(path: pathlib.Path, digest: str, sds, secret: bytes):
    """The entry at ``path`` if its HMAC verifies and it matches; None otherwise (logged).
    A hit sets the entry's modification time (least recently used goes first)."""
    from flowtools._io import safe_open

    try:
        fd = safe_open(path, os.O_RDONLY, what="the export cache entry")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        _LOG.warning("export cache entry %s unreadable (%s): tracing instead", path, err)
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read()
            head = _MAGIC + digest.encode() + b"\n"
            if not data.startswith(head):
                raise ValueError("wrong header")
            check, blob = data[len(head):len(head) + 32], data[len(head) + 32:]
            if not hmac.compare_digest(_mac(secret, head, blob), check):
                raise ValueError("checksum (HMAC) mismatch: damaged, or not written by this "
                                 "user's flowtools for this program")
            exported = jax.export.deserialize(bytearray(blob))
            want = [(tuple(s.shape), s.dtype) for s in sds]
            got = [(tuple(a.shape), a.dtype) for a in exported.in_avals]
            if got != want:
                raise ValueError(f"inputs {got} instead of {want}")
            if jax.default_backend() not in exported.platforms:
                raise ValueError(f"lowered for {exported.platforms}")
            with contextlib.suppress(OSError):
                os.utime(fh.fileno())  # used now: the newest for eviction
        return exported
    except Exception as err:
        _LOG.warning("export cache entry %s ignored (%s: %s): tracing instead", path,
                     type(err).__name__, err)
        return None


def _write(path: pathlib.Path, digest: str, blob: bytes, secret: bytes) -> None:
    from flowtools._io import atomic_open

    head = _MAGIC + digest.encode() + b"\n"
    limit = max_bytes()
    if len(head) + 32 + len(blob) > limit:
        _LOG.info("export cache entry %s not written: larger than %s=%d", path,
                  _MAX_BYTES_ENV, limit)
        return
    try:
        # no fsync: the HMAC rejects an entry that a power cut left incomplete
        with atomic_open(path, "wb", fsync=False) as f:
            f.write(head + _mac(secret, head, blob) + blob)
    except (OSError, ValueError) as err:
        _LOG.warning("export cache entry %s not written: %s", path, err)
        return
    evict(path.parent, limit)


def evict(folder, limit: int | None = None) -> int:
    """Remove the least recently used entries of the export cache ``folder`` (oldest
    modification time first) until they total at most ``limit`` bytes (``max_bytes()``
    by default), and temporaries a killed writer left more than an hour ago; return the
    number of files removed. Safe while other processes use the folder."""
    limit = max_bytes() if limit is None else limit
    entries, removed, now = [], 0, time.time()
    with contextlib.suppress(OSError), os.scandir(folder) as it:
        for e in it:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if e.name.endswith(_SUFFIX):
                entries.append((st.st_mtime_ns, e.name, st.st_size))
            elif (e.name.startswith(".") and _SUFFIX + "." in e.name
                  and now - st.st_mtime > _STALE_TEMP_SECONDS):
                with contextlib.suppress(OSError):
                    os.unlink(e.path)
                    removed += 1
    total = sum(size for _, _, size in entries)
    for _, name, size in sorted(entries):
        if total <= limit:
            break
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, name))
            removed += 1
        total -= size
    return removed


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
