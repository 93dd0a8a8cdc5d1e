"""Input validation in one place (as scipy's ``integrate/_ivp/common.py``).

Every public entry point checks its options here *before any work*, and every failure is a
``FlowtoolsError`` whose message names the option, the value received and what is allowed.
Booleans are never accepted as numbers, non-integral floats never as integers, complex
values never as reals, and NaN never passes a comparison.

    >>> from flowtools._validate import positive_int, positive_float
    >>> positive_int(3, "max_steps")
    3
    >>> positive_int(2.5, "max_steps")
    Traceback (most recent call last):
    ...
    flowtools.errors.FlowtoolsError: max_steps must be a positive integer, got 2.5.
    >>> positive_float(float("nan"), "rtol")
    Traceback (most recent call last):
    ...
    flowtools.errors.FlowtoolsError: rtol must be a positive finite number, got nan.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import unicodedata
from collections.abc import Iterable

import numpy as np

from flowtools.errors import FlowtoolsError


def _real_scalar(value, name: str, kind: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise FlowtoolsError(f"{name} must be {kind}, got {value!r}.")
    if isinstance(value, np.ndarray):
        if value.ndim != 0 or not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
            raise FlowtoolsError(f"{name} must be {kind}, got {value!r}.")
        value = value.item()
    return float(value)


def integer(value, name: str, *, minimum: int | None = None, kind: str | None = None) -> int:
    """An integer (ints, or floats/arrays with an integral value), ≥ ``minimum`` if given."""
    kind = kind or ("an integer" if minimum is None else f"an integer ≥ {minimum}")
    v = _real_scalar(value, name, kind)
    if not np.isfinite(v) or v != int(v) or (minimum is not None and v < minimum):
        raise FlowtoolsError(f"{name} must be {kind}, got {value!r}.")
    return int(v)


def positive_int(value, name: str) -> int:
    """An integer ≥ 1."""
    return integer(value, name, minimum=1, kind="a positive integer")


def nonnegative_int(value, name: str) -> int:
    """An integer ≥ 0 (seeds, counts)."""
    return integer(value, name, minimum=0, kind="a non-negative integer")


def seeds(value, name: str = "seed"):
    """A seed (int ≥ 0) or a non-empty sequence of seeds; returns an int or a list of ints."""
    if isinstance(value, (str, bytes)):
        raise FlowtoolsError(f"{name} must be a non-negative integer or a sequence of them, "
                             f"got {value!r}.")
    if np.ndim(value) == 0:
        return nonnegative_int(value, name)
    vals = list(value)
    if not vals:
        raise FlowtoolsError(f"{name} is an empty sequence: give at least one seed.")
    return [nonnegative_int(v, f"{name}[{i}]") for i, v in enumerate(vals)]


def real(value, name: str, *, finite: bool = True) -> float:
    """A real number (finite unless ``finite=False``; NaN is never accepted)."""
    kind = "a finite real number" if finite else "a real number"
    v = _real_scalar(value, name, kind)
    if np.isnan(v) or (finite and not np.isfinite(v)):
        raise FlowtoolsError(f"{name} must be {kind}, got {value!r}.")
    return v


def positive_float(value, name: str, *, allow_inf: bool = False) -> float:
    """A number > 0 (finite unless ``allow_inf``)."""
    kind = "a positive number" if allow_inf else "a positive finite number"
    v = _real_scalar(value, name, kind)
    if not v > 0 or (not allow_inf and not np.isfinite(v)):
        raise FlowtoolsError(f"{name} must be {kind}, got {value!r}.")
    return v


def nonnegative_float(value, name: str, *, hint: str = "") -> float:
    """A finite number ≥ 0 (0 typically disables a stop)."""
    v = _real_scalar(value, name, "a finite number ≥ 0")
    if not (v >= 0 and np.isfinite(v)):
        raise FlowtoolsError(f"{name} must be a finite number ≥ 0{hint}, got {value!r}.")
    return v


def in_open_interval(value, name: str, lo: float, hi: float) -> float:
    """A number in (lo, hi)."""
    v = _real_scalar(value, name, f"a number in ({lo:g}, {hi:g})")
    if not lo < v < hi:
        raise FlowtoolsError(f"{name} must lie in ({lo:g}, {hi:g}), got {value!r}.")
    return v


def flag(value, name: str) -> bool:
    """A boolean (True/False, or numpy's); strings such as 'no' are refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise FlowtoolsError(f"{name} must be True or False, got {value!r}.")


def choice(value, name: str, options: Iterable[str]) -> str:
    """One of ``options`` (exact match); the message lists them."""
    options = list(options)
    if not isinstance(value, str) or value not in options:
        raise FlowtoolsError(f"unknown {name} {value!r}: use one of {', '.join(options)}.")
    return value


def real_array(value, name: str, *, ndim: Iterable[int] | None = None,
               finite: bool = True) -> np.ndarray:
    """A float64 array from real data: complex, boolean, object or string input is refused
    (NumPy would drop an imaginary part or parse strings); NaN/inf refused if ``finite``."""
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        raise FlowtoolsError(f"{name} is complex: flowtools works with real float64 values; "
                             "pass the real part explicitly if that is what you mean.")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number) or arr.size == 0):
        raise FlowtoolsError(f"{name} must be an array of real numbers, got dtype {arr.dtype}.")
    arr = arr.astype(float)
    if ndim is not None and arr.ndim not in tuple(ndim):
        raise FlowtoolsError(f"{name} must have {' or '.join(map(str, ndim))} dimension(s), "
                             f"got shape {arr.shape}.")
    if finite and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise FlowtoolsError(f"{name} contains {int((~np.isfinite(arr)).sum())} NaN or infinite "
                             f"value(s), the first at index {bad}: remove or replace them.")
    return arr


def increasing_times(value, name: str, lo: float, hi: float, *, strict: bool = False
                     ) -> np.ndarray:
    """A non-empty 1-d array of finite times in [lo, hi], non-decreasing (increasing if
    ``strict``)."""
    arr = real_array(value, name, ndim=(1,))
    if arr.size == 0:
        raise FlowtoolsError(f"{name} is empty: give at least one time (or None for the "
                             "default).")
    d = np.diff(arr)
    if np.any(d <= 0 if strict else d < 0) or arr[0] < lo or arr[-1] > hi:
        order = "increasing" if strict else "non-decreasing"
        raise FlowtoolsError(f"{name} must be {order} inside [{lo:g}, {hi:g}], got "
                             f"[{arr[0]:g}, …, {arr[-1]:g}].")
    return arr


def samples(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs X (n, d) — a 1-d X is one input per sample — and labels y (n,), n ≥ 1; any
    dtype (numeric checks are the caller's). Returns X as 2-d."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise FlowtoolsError(f"X must have shape (n, d), got shape {X.shape}.")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise FlowtoolsError(f"y must have shape (n,) = ({X.shape[0]},) to match X {X.shape}, "
                             f"got {y.shape}.")
    if X.shape[0] == 0:
        raise FlowtoolsError("the dataset is empty (n = 0): give at least one sample.")
    return X, y


def loss_threshold(value) -> float:
    """The loss threshold of the stopping rule: ≥ 0 (0 disables the stop)."""
    return nonnegative_float(value, "loss_threshold", hint=" (0 disables the stop)")


def learning_rate(value) -> float:
    """A GD learning rate η > 0."""
    return positive_float(value, "the learning rate lr")


def learning_rates(values) -> np.ndarray:
    """A non-empty 1-d array of learning rates, each positive and finite."""
    lrs = real_array(values, "lrs", finite=False).ravel()
    if lrs.size == 0:
        raise FlowtoolsError("give at least one learning rate.")
    return np.array([learning_rate(lr) for lr in lrs])


def width(value) -> int:
    """The width m ≥ 1 of the network."""
    return positive_int(value, "the width m")


def dim(value) -> int:
    """The input dimension d ≥ 1."""
    return positive_int(value, "the input dimension d")


# ---------------------------------------------------------------------- sizes of work
# Sizes are estimated from the *declared* sizes (axis lengths, sample counts, widths, saved
# points, archive headers) and checked here before anything is allocated or read: an
# allocation that does not fit makes XLA abort the interpreter, or NumPy raise MemoryError
# after minutes of work. ``memory`` is the one guard of bytes, ``cells`` of sweep cells.

#: the most cells one sweep may have (the environment variable FLOWTOOLS_MAX_CELLS sets
#: another limit): planning a grid costs about 1.5 KB and 50 µs per cell before any cell
#: runs (measured: 100 000 cells, 5 s), and a million cells are days of computation on one
#: machine.
MAX_CELLS = 1_000_000
CELLS_VARIABLE = "FLOWTOOLS_MAX_CELLS"
#: the environment variable that sets the memory limit of ``memory`` (bytes, or with a
#: suffix K, M, G, T: powers of 1024); default half of the memory available.
MEMORY_VARIABLE = "FLOWTOOLS_MEMORY_LIMIT"


def nbytes(*counts: int, itemsize: int = 8) -> int:
    """The bytes of an array of shape ``counts`` (exact: Python integers never overflow).

        >>> nbytes(1000, 1000, 1000)
        8000000000
    """
    return math.prod(int(c) for c in counts) * int(itemsize)


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def memory_limit() -> tuple[float, str]:
    """The most bytes one piece of work may allocate, and where that limit comes from:
    ``FLOWTOOLS_MEMORY_LIMIT`` if set, else half of the memory available now."""
    text = os.environ.get(MEMORY_VARIABLE, "").strip()
    if text:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, re.IGNORECASE)
        if not m or float(m.group(1)) <= 0:
            raise FlowtoolsError(f"{MEMORY_VARIABLE}={text!r}: give a number of bytes > 0, "
                                 "optionally with a suffix K, M, G or T (e.g. 8G).")
        scale = 1024 ** " KMGT".index(m.group(2).upper() or " ")
        return float(m.group(1)) * scale, f"set by {MEMORY_VARIABLE}"
    avail = available_memory()
    return 0.5 * avail, (f"half of the {_gib(avail)} available; {MEMORY_VARIABLE} sets "
                         "another limit")


def memory(need_bytes: float, what: str, advice: str) -> None:
    """Refuse work whose arrays would not fit in memory (XLA would abort the interpreter
    instead of raising): more than ``memory_limit()`` — half of the memory available now,
    unless ``FLOWTOOLS_MEMORY_LIMIT`` says otherwise. The message gives both numbers.

        >>> memory(1e18, "a test", "ask for less")
        Traceback (most recent call last):
        ...
        flowtools.errors.FlowtoolsError: a test needs about 9.31e+08 GiB, more than the ...
    """
    limit, source = memory_limit()
    if need_bytes > limit:
        raise FlowtoolsError(f"{what} needs about {_gib(need_bytes)}, more than the limit of "
                             f"{_gib(limit)} ({source}): {advice}.")


def max_cells() -> int:
    """The cell-count limit of a sweep: ``FLOWTOOLS_MAX_CELLS`` if set, else ``MAX_CELLS``."""
    text = os.environ.get(CELLS_VARIABLE, "").strip()
    if not text:
        return MAX_CELLS
    try:
        return positive_int(int(text), CELLS_VARIABLE)
    except ValueError:
        raise FlowtoolsError(f"{CELLS_VARIABLE} must be a positive integer, got "
                             f"{text!r}.") from None


def cells(count: int, what: str, advice: str) -> int:
    """Refuse more than ``max_cells()`` cells (``count`` computed from the declared axis
    lengths, before any axis is built); returns ``count``."""
    limit = max_cells()
    if count > limit:
        source = f"set by {CELLS_VARIABLE}" if os.environ.get(CELLS_VARIABLE, "").strip() \
            else f"{CELLS_VARIABLE} sets another"
        raise FlowtoolsError(f"{what} has {count:,} cells, more than the limit of {limit:,} "
                             f"({source}): {advice}.")
    return count


def available_memory() -> float:
    """Bytes of memory available now: Linux MemAvailable (physical pages elsewhere), less
    where this process is held to less — a container's memory limit (cgroup) or an
    address-space limit (``ulimit -v``) minus what the process already maps."""
    avail = _meminfo_available()
    for limit in (_cgroup_headroom(), _address_space_headroom()):
        if limit is not None:
            avail = min(avail, max(limit, 0.0))
    return avail


def _meminfo_available() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8.0 * 2**30


def _read_number(path: str) -> float | None:
    try:
        with open(path) as fh:
            text = fh.read(64).strip()
        return float(text) if text.isdigit() else None  # "max": no limit
    except OSError:
        return None


def _cgroup_headroom() -> float | None:
    """limit − working set of this process's memory cgroup (v2, else v1), None if
    unlimited. The working set is the usage less the inactive page cache (what
    ``docker stats`` and Kubernetes count): the cgroup's usage includes cached files,
    which the kernel reclaims before it kills anything, so limit − usage alone would
    refuse work on a machine that has merely read many files (a pip install)."""
    for limit_file, usage_file, stat_file, key in (
            ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current",
             "/sys/fs/cgroup/memory.stat", "inactive_file"),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
             "/sys/fs/cgroup/memory/memory.usage_in_bytes",
             "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file")):
        limit, usage = _read_number(limit_file), _read_number(usage_file)
        if limit is not None and usage is not None and limit < 2**60:
            return limit - max(usage - _stat_value(stat_file, key), 0.0)
    return None


def _stat_value(path: str, key: str) -> float:
    """The value of ``key`` in a cgroup ``memory.stat`` file (0 if absent)."""
    try:
        with open(path) as fh:
            for line in fh:
                name, _, value = line.partition(" ")
                if name == key and value.strip().isdigit():
                    return float(value)
    except OSError:
        pass
    return 0.0


def _address_space_headroom() -> float | None:
    """RLIMIT_AS − the process's mapped size (VmSize), None if unlimited."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    mapped = 0.0
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    mapped = float(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return float(soft) - mapped


# ---------------------------------------------------------------------- names and texts
#: the longest name accepted (a sweep's name becomes the file name NAME.zarr)
MAX_NAME_LENGTH = 100


def name(value, what: str) -> str:
    """A name given by a user — never a path: 1 to ``MAX_NAME_LENGTH`` characters, no path
    separator (/ or \\), no control or other non-printing character, not starting with a
    dot (hidden files, ".", "..") or a hyphen (it would read as an option on a command
    line). Only an explicit path option (e.g. ``--store``) places a file.

        >>> name("fig4", "sweep.name")
        'fig4'
        >>> name("../x", "sweep.name")
        Traceback (most recent call last):
        ...
        flowtools.errors.FlowtoolsError: sweep.name must be a name, not a path: '../x' ...
    """
    if not isinstance(value, str):
        raise FlowtoolsError(f"{what} must be a string, got {value!r}.")
    rule = ("letters, digits and punctuation without / or \\, not starting with . or -; "
            "give the place of the results with --store")
    if not value:
        raise FlowtoolsError(f"{what} is empty: give a name ({rule}), or leave it out.")
    if len(value) > MAX_NAME_LENGTH:
        raise FlowtoolsError(f"{what} has {len(value)} characters, more than "
                             f"{MAX_NAME_LENGTH}: give a shorter name.")
    bad = [c for c in value if c in "/\\" or unicodedata.category(c).startswith("C")]
    if bad or value.startswith((".", "-")):
        why = (f"it contains {bad[0]!r}" if bad else f"it starts with {value[0]!r}")
        raise FlowtoolsError(f"{what} must be a name, not a path: {value!r} ({why}); use "
                             f"{rule}.")
    return value


#: the deepest nesting of JSON arrays and objects read from a file
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str, what: str, limit: int = MAX_JSON_DEPTH) -> str:
    """Refuse JSON text that nests arrays and objects more than ``limit`` levels deep
    (Python's parser would raise RecursionError, or a recursive reader overflow the
    stack); a cheap scan, before parsing. Returns ``text``.

        >>> json_depth("[[1]]", "x")
        '[[1]]'
        >>> json_depth("[" * 100 + "]" * 100, "x")
        Traceback (most recent call last):
        ...
        flowtools.errors.FlowtoolsError: x nests arrays/objects 100 levels deep, more than 64.
    """
    stripped = _JSON_STRING.sub('""', text)  # brackets inside strings do not count
    codes = np.frombuffer(stripped.encode("utf-8", "replace"), dtype=np.uint8)
    step = (np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
            - np.isin(codes, (ord("]"), ord("}"))))
    depth = int(np.cumsum(step).max()) if step.size else 0
    if depth > limit:
        raise FlowtoolsError(f"{what} nests arrays/objects {depth} levels deep, more than "
                             f"{limit}.")
    return text
