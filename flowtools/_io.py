"""Files written so that a reader never sees half of one, and output locations checked first.

Every file flowtools writes (trajectories, JSON, CSV, figures, store chunks, lock files,
compile-cache entries) goes through this module:

* ``safe_open(path, flags)``: the one way a file is opened for creating, replacing or
  locking. It never follows a link: ``O_NOFOLLOW`` always; a new name is created with
  ``O_CREAT | O_EXCL`` (the kernel refuses any existing path there, a dangling link
  included); a file opened without ``O_EXCL`` (a lock) must be a regular file of the user
  with no other hard link, checked with ``fstat`` on the file actually opened. Anything
  else — a link, a folder, a FIFO, another user's file — is refused with a
  ``FlowtoolsError`` (one line). ``open_folder(path, root=ROOT)`` walks the folders below
  ``ROOT`` one name at a time the same way, so that a link planted as a folder inside a
  store cannot send a write elsewhere.
* ``atomic_write(path, writer)`` / ``atomic_open(path)``: the data go to a temporary file in
  the same folder (a hidden ``.NAME.XXXXXXXX.tmp``), which is flushed, ``fsync``-ed and
  renamed over ``path`` with ``os.replace``. A reader — or a later run after a crash, even
  SIGKILL — sees either the old complete file or the new complete one, never a truncated
  one. If the writer raises (Ctrl-C included) the temporary is removed and the old file is
  untouched; only a SIGKILL or a power cut can leave a hidden ``.tmp`` file behind. The
  temporary is created with ``safe_open`` (a new random name, ``O_EXCL | O_NOFOLLOW``) and
  renamed relative to its folder's descriptor. If ``path`` is itself a link, the rename
  replaces the link, never its target: an output is always flowtools' own file, and
  whatever a planted link pointed to is left as it was.
  ``atomic_write(path, data)`` writes bytes; ``remove_temporaries(folder, suffix)`` clears
  what killed writers left (a store does it under its lock).
* ``write_netcdf(ds, path)``: the one netCDF writer (figures, sweep exports): an
  ``xarray.Dataset`` as netCDF-3, atomically, every attribute made netCDF-safe.
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
import errno
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
           "dumps_json", "netcdf_attr", "open_folder", "open_regular", "private_folder",
           "read_regular", "remove_temporaries", "safe_open", "savefig", "signals_deferred",
           "staged_outputs", "to_strict_json", "write_json", "write_netcdf", "write_text"]


# ---------------------------------------------------------------------- no planted links
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# files are created and renamed relative to an open folder (openat, renameat): POSIX
_AT = os.open in os.supports_dir_fd and os.rename in os.supports_dir_fd


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a regular file"


def _refused(path, what: str, why: str) -> FlowtoolsError:
    err = FlowtoolsError(
        f"{what} {str(path)!r} {why}: flowtools does not write through links or into files "
        "it did not make (someone may have planted it). Remove it if it is yours, or give "
        "another place.")
    err.why = why  # the reason alone, for callers that word their own message
    return err


def safe_open(path, flags: int, mode: int = 0o666, *, dir_fd: int | None = None,
              what: str = "the file", private: bool = False) -> int:
    """``os.open(path, flags, mode)`` that cannot be led elsewhere by a planted link;
    return the descriptor. ``O_NOFOLLOW`` and ``O_CLOEXEC`` are always added.

    * With ``O_CREAT | O_EXCL`` (a new name — a temporary, a new key): any existing path,
      a link (even a dangling one) included, raises ``FileExistsError``; the caller picks
      another random name or gives up.
    * Otherwise (a lock file, a file read back): the file opened must be a regular file
      owned by this user with no other hard link (``fstat`` of the descriptor, so nothing
      can be swapped in between), and with ``private`` readable by nobody else; a link, a
      folder, a FIFO (opened non-blocking, so it cannot hang) or another user's file is
      refused with a one-line ``FlowtoolsError`` that names it as ``what``.

    ``path`` is relative to ``dir_fd`` when given (see ``open_folder``); only its last
    name is protected here, the folders above it are the caller's.
    """
    exclusive = bool(flags & os.O_CREAT and flags & os.O_EXCL)
    unblock = not exclusive and not flags & _NONBLOCK  # a FIFO must not hang the open
    flags |= _NOFOLLOW | _CLOEXEC | (_NONBLOCK if unblock else 0)
    shown = path if dir_fd is None else f"{path} (in its folder)"
    try:
        fd = os.open(path, flags, mode, dir_fd=dir_fd)
    except FileExistsError:
        raise
    except OSError as err:
        try:
            st = os.lstat(path, dir_fd=dir_fd) if dir_fd is not None else os.lstat(path)
        except OSError:
            raise err from None
        if stat.S_ISLNK(st.st_mode) or err.errno in (errno.EISDIR, errno.ENXIO):
            raise _refused(shown, what, f"is {_kind(st.st_mode)}") from None
        raise
    if exclusive:
        return fd
    try:
        st = os.fstat(fd)
        why = None
        if not stat.S_ISREG(st.st_mode):
            why = f"is {_kind(st.st_mode)}"
        elif hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            why = f"belongs to another user (uid {st.st_uid})"
        elif st.st_nlink != 1:
            why = f"has {st.st_nlink - 1} other hard link(s)"
        elif private and st.st_mode & 0o077:
            why = f"can be read or written by others (mode {stat.S_IMODE(st.st_mode):o})"
        if why is not None:
            raise _refused(shown, what, why)
        if unblock and _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_folder(path, *, root=None, create: bool = False, what: str = "the path") -> int:
    """A descriptor of the folder ``path`` (close it yourself).

    Without ``root`` the path is opened as given (a link the user named is the user's
    choice). With ``root`` — a folder that holds only flowtools' own files, such as a
    sweep store — ``root`` is opened as given and every name below it is opened one at a
    time with ``O_NOFOLLOW | O_DIRECTORY`` (created first with ``create``): a link planted
    in place of one of those folders is refused (``FlowtoolsError``), never followed.
    """
    path = pathlib.Path(path)
    flags = os.O_RDONLY | _DIRECTORY | _CLOEXEC
    if root is None or not _AT:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags)
    root = pathlib.Path(root)
    parts = path.relative_to(root).parts
    if ".." in parts:
        raise ValueError(f"{str(path)!r} leaves {str(root)!r}")
    if create:
        root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, flags)
    try:
        for i, name in enumerate(parts):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fd)
            try:
                sub = os.open(name, flags | _NOFOLLOW, dir_fd=fd)
            except OSError as err:
                if err.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                st = os.lstat(name, dir_fd=fd)
                raise _refused(root.joinpath(*parts[:i + 1]), what,
                               f"is {_kind(st.st_mode)}, not a folder") from None
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_folder(path, *, create: bool = True) -> str | None:
    """None if ``path`` is a folder of this user that nobody else can write (no group or
    world write bit), created with mode 0700 if missing and ``create``; otherwise the
    reason in words. For caches whose contents are run as programs: only the user may be
    able to put files there."""
    path = pathlib.Path(path)
    try:
        if create:
            with contextlib.suppress(FileExistsError):  # a file there: said below
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(path)
    except OSError as err:
        return f"cannot use it ({_describe(err)})"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder"
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return f"it belongs to another user (uid {st.st_uid}); give a folder of your own"
    if st.st_mode & 0o022:
        return (f"others can write in it (mode {stat.S_IMODE(st.st_mode):o}); make it "
                f"private (chmod 700 {str(path)!r})")
    return None


# ---------------------------------------------------------------------- atomic files
def _temp_name(path: pathlib.Path, suffix: str = ".tmp") -> pathlib.Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")


def _fsync_dir(folder: pathlib.Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
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
                newline: str | None = None, fsync: bool = True, suffix: str = ".tmp",
                root=None, replace: bool = True, permissions: int = 0o666):
    """Open a temporary file beside ``path`` for writing; on a normal exit it is flushed,
    fsync-ed and renamed onto ``path``; on an exception it is removed and ``path`` is left as
    it was. ``mode`` is "wb" (default) or "w" (text, UTF-8 unless ``encoding``).
    ``fsync=False`` skips the flushes to disk: the rename still makes the write atomic for
    readers and after a killed process, but not across a power loss (many small files).
    The temporary is ``.NAME.XXXXXXXX`` + ``suffix`` (a killed process leaves it behind),
    created by ``safe_open`` with ``permissions`` (less the umask; 0o600 for a secret).
    ``root``: ``path`` lies in a folder tree of flowtools' own below ``root`` (a store):
    its folders are created if missing and never followed if links (``open_folder``).
    ``replace=False`` never overwrites: ``FileExistsError`` if ``path`` exists (a hard link
    to the finished temporary, so ``path`` appears complete or not at all).

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
    if _AT:
        dfd = open_folder(path.parent, root=root, create=root is not None)
        final = path.name
    else:  # pragma: no cover - no openat (Windows): the same steps on full paths
        dfd, final = None, str(path)
    try:
        while True:  # exclusive creation of a random name, never through a link
            tmp = _temp_name(path, suffix)
            tmp_name = tmp.name if dfd is not None else str(tmp)

            def opener(_, __, tmp_name=tmp_name):  # the file object is named by its path
                return safe_open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                 permissions, dir_fd=dfd)
            try:
                if mode == "w":
                    fh = open(tmp, "x", encoding=encoding or "utf-8", newline=newline,
                              opener=opener)
                else:
                    fh = open(tmp, "xb", opener=opener)
                break
            except FileExistsError:
                continue
        try:
            with fh:
                yield fh
                if fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            if replace:  # a link at ``path`` is replaced itself, its target untouched
                os.replace(tmp_name, final, src_dir_fd=dfd, dst_dir_fd=dfd)
            else:
                os.link(tmp_name, final, src_dir_fd=dfd, dst_dir_fd=dfd)
                os.unlink(tmp_name, dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name, dir_fd=dfd)
            raise
        if fsync:
            if dfd is None:  # pragma: no cover
                _fsync_dir(path.parent)
            else:
                with contextlib.suppress(OSError):
                    os.fsync(dfd)
    finally:
        if dfd is not None:
            os.close(dfd)


def atomic_write(path, writer, *, text: bool = False, encoding: str | None = None,
                 newline: str | None = None, fsync: bool = True, suffix: str = ".tmp",
                 root=None, replace: bool = True) -> pathlib.Path:
    """Call ``writer(fh)`` on a temporary file beside ``path`` and rename it onto ``path``
    (see ``atomic_open``, which also explains ``fsync``, ``suffix``, ``root`` and
    ``replace``); return ``path``. ``writer`` may also be the bytes (or a buffer) to
    write. ``text=True`` gives ``writer`` a text file.

        >>> import tempfile, pathlib
        >>> tmp = tempfile.TemporaryDirectory()
        >>> atomic_write(pathlib.Path(tmp.name) / "a.bin", b"new").read_bytes()
        b'new'
        >>> tmp.cleanup()
    """
    if not callable(writer):
        data = writer

        def writer(fh):
            fh.write(data)
    with atomic_open(path, "w" if text else "wb", encoding=encoding, newline=newline,
                     fsync=fsync, suffix=suffix, root=root, replace=replace) as fh:
        writer(fh)
    return pathlib.Path(path)


def remove_temporaries(folder, suffix: str) -> int:
    """Remove the temporary files (names ending in ``suffix``) that killed writers of
    ``atomic_open(..., suffix=suffix)`` left anywhere below ``folder``; return how many.
    Call it only where no other writer can be at work (a store, with its lock held)."""
    count = 0
    for tmp in pathlib.Path(folder).rglob(f"*{suffix}"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            count += 1
    return count


def write_text(path, text: str) -> pathlib.Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text), text=True)


def savefig(fig, path, **kwargs) -> pathlib.Path:
    """``fig.savefig(path, **kwargs)`` atomically; the format comes from ``path``'s suffix
    (as matplotlib does) unless ``format`` is given, PNG without a suffix."""
    path = pathlib.Path(path)
    fmt = kwargs.pop("format", None) or (path.suffix[1:].lower() or "png")
    return atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **kwargs))


# ---------------------------------------------------------------------- netCDF
# names that scipy's netcdf_file keeps as its own attributes: a global attribute of that
# name would overwrite them (an attribute "mode" breaks the write)
_NC_RESERVED = {"fp", "filename", "mode", "use_mmap", "version_byte", "maskandscale",
                "dimensions", "variables", "_dims", "_recs", "_recsize", "_mm", "_mm_buf",
                "_attributes"}


def netcdf_attr(v):
    """A netCDF attribute value: numbers and strings as they are, bools as 0/1, a non-empty
    1-D array (or list) of numbers as an array, anything else (None, dicts, lists of
    strings) as strict JSON (``dumps_json``).

        >>> [netcdf_attr(v) for v in (True, 2, "s", None, ["a", "b"], {"k": 1.5})]
        [1, 2, 's', 'null', '["a", "b"]', '{"k": 1.5}']
    """
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float, str)):
        return v
    try:
        arr = np.asarray(v)
        if arr.dtype.kind in "if" and arr.ndim == 1 and arr.size:
            return arr
    except Exception:  # noqa: BLE001 - fall through to JSON
        pass
    return dumps_json(v, indent=None, default=str)


def write_netcdf(ds, path, *, hint: str = "ds.to_netcdf(OUT, engine='h5netcdf')"
                 ) -> pathlib.Path:
    """Write the ``xarray.Dataset`` ``ds`` to ``path`` as netCDF-3 (xarray's scipy engine,
    no extra dependency) atomically (``atomic_write``); return ``path``. ``ds`` is left as
    it was.

    * every attribute is made netCDF-safe (``netcdf_attr``); a global attribute whose
      name scipy's writer reserves, such as "mode", gets the prefix "attr_";
    * string variables (NumPy's ``StringDType`` included, as zarr stores read back) are
      written as variable-length strings;
    * int64 values are stored as int32 where they fit; values netCDF-3 cannot hold
      (integers ≥ 2**31) raise a one-line ``FlowtoolsError`` that ends with ``hint``
      (what to do instead), and no file is written.
    """
    ds = ds.copy()
    for name in list(ds.variables):
        var = ds[name]
        if var.dtype.kind in "TU" or var.dtype == object:  # numpy StringDType → object
            ds[name] = var.astype(object)
    ds.attrs = {(f"attr_{k}" if k in _NC_RESERVED else k): netcdf_attr(v)
                for k, v in ds.attrs.items()}
    for var in ds.variables.values():
        var.attrs = {k: netcdf_attr(v) for k, v in var.attrs.items()}
    try:
        data = bytes(ds.to_netcdf(engine="scipy"))
    except (ValueError, OverflowError) as err:
        raise FlowtoolsError(f"cannot write {str(path)!r} as netCDF-3: {err}. (Values such "
                             f"as integers ≥ 2**31 need netCDF-4: {hint}.)") from None
    return atomic_write(pathlib.Path(path), data)


# ---------------------------------------------------------------------- strict JSON
def named(value):
    """``value`` with enum members (``Status``, ``Regime``) replaced by their names, arrays
    and tuples by lists (object arrays element-wise): ready for ``to_strict_json``.

        >>> from flowtools.status import Regime
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
def signals_deferred():
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
        with signals_deferred():
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
def open_regular(path, *, what: str = "the file"):
    """``path`` opened for reading ("rb") if it is a regular file, checked on the opened
    descriptor (opened non-blocking, so that a FIFO put in its place cannot hang the open);
    a folder, device, FIFO or socket is refused with a ``FlowtoolsError`` naming ``what``."""
    path = pathlib.Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC)
    except FileNotFoundError:
        raise FlowtoolsError(f"{what} {str(path)!r} not found.") from None
    except OSError as err:
        raise FlowtoolsError(f"cannot read {what} {str(path)!r} ({_describe(err)}).") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise FlowtoolsError(f"{what} {str(path)!r} is {kind}, not a regular file: give "
                             "a file.")
    return os.fdopen(fd, "rb")


def read_regular(path, limit: int, *, what: str = "the file") -> bytes:
    """The bytes of the regular file ``path``, of at most ``limit`` bytes: a folder, a
    device (``/dev/zero`` never ends), a FIFO or a socket is refused, and so is a larger
    file — both checked on the opened descriptor before anything is read (opened
    non-blocking, so a FIFO cannot hang the open); ``FlowtoolsError`` naming ``what``."""
    path = pathlib.Path(path)
    fh = open_regular(path, what=what)
    st = os.fstat(fh.fileno())
    with fh:
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
