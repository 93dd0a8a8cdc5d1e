"""Files written so that a reader never sees half of one, and output locations checked first.

Every file flowtools writes (trajectories, JSON, CSV, figures) goes through this module:

* ``atomic_write(path, writer)`` / ``atomic_open(path)``: the data go to a temporary file in
  the same folder (a hidden ``.NAME.XXXXXXXX.tmp``), which is flushed, ``fsync``-ed and
  renamed over ``path`` with ``os.replace``. A reader — or a later run after a crash, even
  SIGKILL — sees either the old complete file or the new complete one, never a truncated
  one. If the writer raises (Ctrl-C included) the temporary is removed and the old file is
  untouched; only a SIGKILL or a power cut can leave a hidden ``.tmp`` file behind.
* ``staged_outputs(folder, names)``: several files (and folders) of one run, written into a
  hidden staging folder inside ``folder`` and moved into place together at the end; the
  file named last is the "complete" marker (see its docstring for what a reader may see).
* ``to_strict_json`` / ``dumps_json`` / ``write_json``: strict JSON (RFC 8259): NaN and
  ±infinity become ``null`` (a ``"null_means"`` key says what that means in the file),
  NumPy scalars and arrays become numbers and lists, and ``allow_nan=False`` makes any
  leak an error instead of a file that strict parsers reject.
* ``check_output_dir`` / ``check_output_file``: called *before* any computation, they create
  the folder (or a file's parent folder), make sure it is a folder and writable (by creating
  and removing a probe file) and that a file path is not a folder; a ``FlowtoolsError``
  otherwise, so the command line exits 2 with a message instead of failing after the work.

    >>> dumps_json({"loss": float("inf"), "c": np.float32(0.5), "xs": np.arange(2)},
    ...            null_means="a non-finite number", indent=None)
    '{"null_means": "a non-finite number", "loss": null, "c": 0.5, "xs": [0, 1]}'
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import pathlib
import secrets
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable

import numpy as np

from flowtools.errors import FlowtoolsError

__all__ = ["atomic_open", "atomic_write", "check_output_dir", "check_output_file",
           "dumps_json", "savefig", "staged_outputs", "to_strict_json", "write_json",
           "write_text"]


# ---------------------------------------------------------------------- atomic files
def _temp_name(path: pathlib.Path, suffix: str = ".tmp") -> pathlib.Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")


def _fsync_dir(folder: pathlib.Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", *, encoding: str | None = None,
                newline: str | None = None, fsync: bool = True, suffix: str = ".tmp"):
    """Open a temporary file beside ``path`` for writing; on a normal exit it is flushed,
    fsync-ed and renamed onto ``path``; on an exception it is removed and ``path`` is left as
    it was. ``mode`` is "wb" (default) or "w" (text, UTF-8 unless ``encoding``).
    ``fsync=False`` skips the flushes to disk: the rename still makes the write atomic for
    readers and after a killed process, but not across a power loss (many small files).
    The temporary is ``.NAME.XXXXXXXX`` + ``suffix`` (a killed process leaves it behind).

        >>> import tempfile, pathlib
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = pathlib.Path(tmp.name) / "a.txt"
        >>> with atomic_open(p, "w") as fh:
        ...     _ = fh.write("new")
        >>> p.read_text()
        'new'
        >>> tmp.cleanup()
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode 'wb' or 'w', got {mode!r}")
    path = pathlib.Path(path)
    while True:  # exclusive creation ("x") of a random name: the usual umask permissions
        tmp = _temp_name(path, suffix)
        try:
            if mode == "w":
                fh = open(tmp, "x", encoding=encoding or "utf-8", newline=newline)
            else:
                fh = open(tmp, "xb")
            break
        except FileExistsError:
            continue
    try:
        with fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(path.parent)


def atomic_write(path, writer: Callable, *, text: bool = False, encoding: str | None = None,
                 newline: str | None = None) -> pathlib.Path:
    """Call ``writer(fh)`` on a temporary file beside ``path`` and rename it onto ``path``
    (see ``atomic_open``); return ``path``. ``text=True`` gives ``writer`` a text file."""
    with atomic_open(path, "w" if text else "wb", encoding=encoding, newline=newline) as fh:
        writer(fh)
    return pathlib.Path(path)


def write_text(path, text: str) -> pathlib.Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text), text=True)


def savefig(fig, path, **kwargs) -> pathlib.Path:
    """``fig.savefig(path, **kwargs)`` atomically; the format comes from ``path``'s suffix
    (as matplotlib does) unless ``format`` is given, PNG without a suffix."""
    path = pathlib.Path(path)
    fmt = kwargs.pop("format", None) or (path.suffix[1:].lower() or "png")
    return atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **kwargs))


# ---------------------------------------------------------------------- strict JSON
def named(value):
    """``value`` with enum members (``Status``, ``Regime``) replaced by their names, arrays
    and tuples by lists (object arrays element-wise): ready for ``to_strict_json``.

        >>> from flowtools.trajectory import Regime
        >>> named(np.array([Regime.FOLLOWS, Regime.DIVERGED], dtype=object))
        ['FOLLOWS', 'DIVERGED']
    """
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, np.ndarray):
        return named(value.tolist()) if value.dtype == object else value.tolist()
    if isinstance(value, list | tuple):
        return [named(v) for v in value]
    return value


def to_strict_json(obj, *, default: Callable | None = None):
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts: NaN and ±inf →
    None, NumPy scalars → Python numbers, arrays and tuples → lists, dict keys → str.
    Other objects go through ``default`` (e.g. ``str``) if given, else ``TypeError``.

        >>> to_strict_json({"a": [1.0, float("nan")], 2: np.array([np.inf, 3])})
        {'a': [1.0, None], '2': [None, 3.0]}
    """
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, dict):
        return {str(k): to_strict_json(v, default=default) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_strict_json(v, default=default) for v in obj]
    if isinstance(obj, np.ndarray):
        if np.iscomplexobj(obj) or not (np.issubdtype(obj.dtype, np.number)
                                        or obj.dtype == bool):
            if default is None:
                raise TypeError(f"cannot write an array of dtype {obj.dtype} as JSON")
            return to_strict_json(default(obj), default=default)
        return to_strict_json(obj.tolist(), default=default)
    if default is None:
        raise TypeError(f"cannot write {type(obj).__name__} {obj!r} as JSON")
    return to_strict_json(default(obj), default=default)


def dumps_json(obj, *, null_means: str | None = None, indent: int | None = 1,
               default: Callable | None = None) -> str:
    """Strict JSON text of ``obj`` (``to_strict_json``). With ``null_means``, a dict gets a
    first key ``"null_means"`` saying what ``null`` stands for in this document."""
    data = to_strict_json(obj, default=default)
    if null_means is not None and isinstance(data, dict):
        data = {"null_means": null_means, **{k: v for k, v in data.items()
                                             if k != "null_means"}}
    return json.dumps(data, indent=indent, allow_nan=False, ensure_ascii=False)


def write_json(path, obj, *, null_means: str | None = None, indent: int | None = 1,
               default: Callable | None = None) -> pathlib.Path:
    """Write ``dumps_json(obj, ...)`` (plus a final newline) to ``path`` atomically. The
    text is built first, so an object that cannot be written leaves no file."""
    text = dumps_json(obj, null_means=null_means, indent=indent, default=default) + "\n"
    return write_text(path, text)


# ---------------------------------------------------------------------- output locations
def _probe(folder: pathlib.Path) -> None:
    """Create and remove a file in ``folder`` (os.access is not enough: root, ACLs,
    read-only file systems)."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=".flowtools-probe-")
    os.close(fd)
    os.unlink(name)


def _describe(err: OSError) -> str:
    return err.strerror or type(err).__name__


def check_output_dir(path, *, what: str = "the output folder") -> pathlib.Path:
    """Create the folder ``path`` (and its parents) if needed and check that it is a folder
    one can write in; return it as a ``Path``. ``what`` names it in the message
    (e.g. "--out")."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise FlowtoolsError(f"{what} {str(path)!r} exists and is not a folder: give a folder "
                             "path (it is created if missing).")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FlowtoolsError(f"{what} {str(path)!r}: cannot create the folder "
                             f"({_describe(err)}): give a folder you can write in.") from None
    try:
        _probe(path)
    except OSError as err:
        raise FlowtoolsError(f"{what} {str(path)!r}: cannot write in this folder "
                             f"({_describe(err)}): give a folder you can write in.") from None
    return path


def check_output_file(path, *, what: str = "the output file") -> pathlib.Path:
    """Check that a file can be written at ``path``: it is not a folder, and its parent
    folder exists (it is created if missing) and is writable. Return it as a ``Path``."""
    path = pathlib.Path(path)
    if not path.name or path.is_dir():
        raise FlowtoolsError(f"{what} {str(path)!r} is a folder: give a file name.")
    if path.exists() and not path.is_file():
        raise FlowtoolsError(f"{what} {str(path)!r} exists and is not a regular file.")
    check_output_dir(path.parent, what=f"{what} {str(path)!r}: its folder")
    return path


# ---------------------------------------------------------------------- sets of files
@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT/SIGTERM back for a few renames, so Ctrl-C cannot stop a commit half-way:
    their Python handlers are swapped for one that only records the signal, and a recorded
    signal is handed to the original handler right after (KeyboardInterrupt for Ctrl-C).
    (A signal mask would not do: another thread may take the signal.) A no-op off the main
    thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    received = []
    old = {}
    for s in sigs:
        handler = signal.getsignal(s)
        if handler is None or handler is signal.SIG_IGN:
            continue  # installed outside Python, or ignored: leave it alone
        old[s] = signal.signal(s, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(received):
            handler = old[s]
            if callable(handler):
                handler(s, None)
            else:  # SIG_DFL: deliver it again now that the default action is back
                os.kill(os.getpid(), s)


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def staged_outputs(folder, names: Iterable[str]):
    """Write one run's outputs ``names`` (files or folders, in ``folder``) as one set.

    Yields a hidden staging folder ``folder/.flowtools-staging-XXXX``: write every output
    there under its name. On a normal exit the outputs are moved into ``folder`` in the
    order of ``names``, each by a rename: first the existing ``names[-1]`` (the marker) is
    removed, then each staged name replaces the existing one (a folder is swapped whole, so
    no stale file of an earlier run survives in it), and a name not staged is removed; the
    marker comes last. Ctrl-C is held back during these renames. On an exception (Ctrl-C
    included) the staging folder is removed and ``folder`` is left exactly as it was.

    What a reader may see: while the run computes, the previous complete set. During the
    commit (milliseconds), or after a SIGKILL / power cut in it: no marker — then the
    other files may be a mix of the two runs and must not be trusted as a set. Whenever
    the marker exists, every file of ``names`` beside it comes from the same run as the
    marker. A SIGKILL may leave the hidden staging folder behind (safe to delete).
    """
    folder = pathlib.Path(folder)
    names = list(names)
    if not names:
        raise ValueError("staged_outputs needs at least one name")
    stage = pathlib.Path(tempfile.mkdtemp(dir=folder, prefix=".flowtools-staging-"))
    try:
        yield stage
        with _signals_deferred():
            old = stage / ".old"
            old.mkdir()
            marker = folder / names[-1]
            if marker.exists() or marker.is_symlink():
                os.replace(marker, old / names[-1])
                _fsync_dir(folder)
            for name in names:
                src, dst = stage / name, folder / name
                if dst.exists() or dst.is_symlink():
                    if dst.is_dir() and not dst.is_symlink():
                        os.replace(dst, old / name)  # a folder cannot be renamed onto one
                    elif not (src.exists() and src.is_file()):
                        os.replace(dst, old / name)
                if src.exists():
                    if name == names[-1]:
                        _fsync_dir(folder)  # the others are durable before the marker
                    os.replace(src, dst)
            _fsync_dir(folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# ---------------------------------------------------------------------- reading inputs
def read_regular(path, limit: int, *, what: str = "the file") -> bytes:
    """The bytes of the regular file ``path``, of at most ``limit`` bytes: a folder, a
    device (``/dev/zero`` never ends), a FIFO or a socket is refused, and so is a larger
    file — both checked on the opened descriptor before anything is read (opened
    non-blocking, so a FIFO cannot hang the open); ``FlowtoolsError`` naming ``what``."""
    path = pathlib.Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FlowtoolsError(f"{what} {str(path)!r} not found.") from None
    except OSError as err:
        raise FlowtoolsError(f"cannot read {what} {str(path)!r} ({_describe(err)}).") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, FIFO or socket"
        raise FlowtoolsError(f"{what} {str(path)!r} is {kind}, not a regular file: give "
                             "a file.")
    with os.fdopen(fd, "rb") as fh:
        if st.st_size > limit:
            raise FlowtoolsError(f"{what} {str(path)!r} has {st.st_size:,} bytes, more than "
                                 f"the {limit:,} allowed: give a smaller file.")
        try:
            data = fh.read(limit + 1)  # a file that grew since fstat is still bounded
        except OSError as err:
            raise FlowtoolsError(f"cannot read {what} {str(path)!r} ({_describe(err)}).") \
                from None
    if len(data) > limit:
        raise FlowtoolsError(f"{what} {str(path)!r} has more than the {limit:,} bytes "
                             "allowed: give a smaller file.")
    return data
