"""``Trajectory``: the one result type of the gradient flow and of gradient descent.

Times are flow times for both (GD's iterate k sits at t = k·lr), so flow and GD compare
on one axis. A trajectory may be a batch: every array then has a leading batch axis.
Saved points after a trajectory's end are NaN; its end point is always in ``t_final``,
``theta_final``, ``loss_final``.

Status codes (``Status``, in ``flowtools.status``) are data, not exceptions: each comes with
a message saying what happened and what to do.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import zipfile
import zlib
from dataclasses import dataclass, field, fields

import numpy as np

from flowtools import _validate as V
from flowtools._io import open_regular
from flowtools.errors import FlowtoolsError
from flowtools.status import Status


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Saved points of one trajectory or of a batch (leading axis) of trajectories.

    Attributes:
        ts: (…, S) save times (NaN after the end).
        thetas: (…, S, p) states at ``ts``.
        losses: (…, S) ℓ at ``ts``.
        t_final, theta_final, loss_final: the end point (…,), (…, p), (…,).
        status: (…,) ``Status`` codes.
        steps: (…,) accepted steps (flow) or iterations (GD).
        grad_evals: (…,) evaluations of ∇ℓ (Jacobian evaluations count as p each).
        wall_time: seconds for the whole call (compilation excluded; see ``compile_time``).
        method: e.g. "diffrax:kvaerno5", "scipy:Radau", "gd".
        lr: learning rate for GD, None for the flow.
        info: free-form settings (tolerances, threshold, horizon, …).
    """

    ts: np.ndarray
    thetas: np.ndarray
    losses: np.ndarray
    t_final: np.ndarray
    theta_final: np.ndarray
    loss_final: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    grad_evals: np.ndarray
    wall_time: float = 0.0
    compile_time: float = 0.0
    method: str = ""
    lr: float | None = None
    info: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ batches
    @property
    def batched(self) -> bool:
        return np.ndim(self.t_final) > 0

    def __len__(self) -> int:
        if not self.batched:
            raise TypeError("a single trajectory has no length; use .ts")
        return len(self.t_final)

    def __getitem__(self, i) -> Trajectory:
        """One member (or a sub-batch) of a batched trajectory."""
        if not self.batched:
            raise TypeError("indexing needs a batched trajectory")
        arrays = {f.name: getattr(self, f.name)[i] for f in fields(self) if _is_array(f.name)}
        return Trajectory(**arrays, **self._scalars())

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _scalars(self):
        return {f.name: getattr(self, f.name) for f in fields(self) if not _is_array(f.name)}

    # ------------------------------------------------------------------ status
    @property
    def converged(self) -> np.ndarray:
        return self.status == Status.CONVERGED

    @property
    def messages(self):
        """Status message(s), one per member."""
        if self.batched:
            return [Status(int(s)).message for s in self.status]
        return Status(int(self.status)).message

    def summary(self) -> str:
        """One line per distinct status: how many, and what it means."""
        codes, counts = np.unique(np.atleast_1d(self.status), return_counts=True)
        lines = [f"{self.method}: {np.size(self.status)} trajectories, {self.wall_time:.3g} s"]
        for c, k in zip(codes, counts, strict=True):
            lines.append(f"  {k:6d}  {Status(int(c)).name.lower()}: {Status(int(c)).message}")
        return "\n".join(lines)

    def raise_on_failure(self) -> Trajectory:
        """Raise ``RuntimeError`` if any member's status is not ``ok`` (every failure code,
        ``NOT_MINIMUM`` included); return self otherwise."""
        st = np.atleast_1d(self.status).ravel()
        bad = np.flatnonzero([not Status(int(s)).ok for s in st])
        if bad.size:
            s = Status(int(st[bad[0]]))
            raise RuntimeError(f"{bad.size} trajectory(ies) failed; the first, #{bad[0]}, "
                               f"{s.name.lower()}: {s.message}")
        return self

    # ------------------------------------------------------------------ saving
    def valid(self):
        """(ts, thetas, losses) of a single trajectory with the NaN padding dropped and
        the end point appended if it is not already the last save."""
        if self.batched:
            raise TypeError("valid() is for a single trajectory; index the batch first")
        keep = np.isfinite(self.ts)
        ts, th, ls = self.ts[keep], self.thetas[keep], self.losses[keep]
        if not ts.size or ts[-1] < self.t_final:
            ts = np.append(ts, self.t_final)
            th = np.vstack([th, self.theta_final[None]])
            ls = np.append(ls, self.loss_final)
        return ts, th, ls

    def save(self, path) -> pathlib.Path:
        """Write to ``path`` (``.npz`` is appended when missing, as ``load`` does): the arrays
        and a JSON header with the format version and the scalar fields. The file is
        written atomically (a reader sees the old file or the new one, never half of it).
        Returns the path written.

        ``info`` must hold JSON values, NumPy scalars/arrays, tuples or non-finite floats
        (all read back as saved); anything else raises ``FlowtoolsError`` before writing."""
        from flowtools._io import atomic_write

        path = _npz_path(path)
        meta = {"format": FORMAT, "version": VERSION, **self._scalars()}
        try:
            header = json.dumps(_encode(meta, "meta"), allow_nan=False)
        except _Unstorable as err:
            raise FlowtoolsError(f"cannot save this Trajectory: {err}") from None
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)
                  if _is_array(f.name)}
        atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays,
                                                          meta=np.asarray(header)))
        return path

    @classmethod
    def load(cls, path) -> Trajectory:
        """Read a file written by ``save``. ``path`` may omit the ``.npz`` suffix. The file
        is checked: a flowtools header with a known format version, every field present,
        numeric dtypes, shapes consistent with one batch shape, save count S and parameter
        count p, and status codes of ``Status``; ``FlowtoolsError`` otherwise.

            >>> import tempfile, os
            >>> tmp = tempfile.TemporaryDirectory()
            >>> tr = Trajectory(ts=np.array([0.0, 1.0]), thetas=np.zeros((2, 3)),
            ...                 losses=np.array([1.0, 0.5]), t_final=np.float64(1.0),
            ...                 theta_final=np.zeros(3), loss_final=np.float64(0.5),
            ...                 status=np.int8(1), steps=np.int64(4), grad_evals=np.int64(9))
            >>> p = tr.save(os.path.join(tmp.name, "run"))
            >>> p.name
            'run.npz'
            >>> Status(Trajectory.load(p.with_suffix("")).status).name
            'HORIZON'
            >>> tmp.cleanup()
        """
        src = _find(path)
        arrays, meta = _read(src)
        return cls(**arrays, **meta)


def trajectory_bytes(members: int, saves: int, p: int) -> int:
    """The bytes of a ``Trajectory`` of ``members`` trajectories (1 for a single one) with
    ``saves`` saved points of p parameters (ts, thetas, losses, the end point, counters),
    from the declared sizes: what a computation that returns one must at least hold.

        >>> trajectory_bytes(1, 200, 6)
        12888
    """
    return V.nbytes(members, saves * (p + 2) + p + 5)


FORMAT = "flowtools.Trajectory"
VERSION = 1  # the format written by save; load reads 0 (no version field, before 0.1) and 1

_FLOAT_FIELDS = ("ts", "thetas", "losses", "t_final", "theta_final", "loss_final")
_INT_FIELDS = ("status", "steps", "grad_evals")


def _npz_path(path) -> pathlib.Path:
    path = pathlib.Path(path)
    return path if path.name.endswith(".npz") else path.with_name(path.name + ".npz")


def _find(path) -> pathlib.Path:
    """The file ``load(path)`` reads: ``path`` with ``.npz`` appended when missing (as
    ``save`` writes it), or ``path`` itself if only that exists."""
    path = pathlib.Path(path)
    for cand in (_npz_path(path), path):
        if cand.is_file():
            return cand
    if path.is_dir():
        raise FlowtoolsError(f"{str(path)!r} is a folder, not a trajectory file.")
    tried = " or ".join(dict.fromkeys(repr(str(c)) for c in (_npz_path(path), path)))
    raise FlowtoolsError(f"no trajectory file {tried}: check the path.")


def _bad(src, what: str) -> FlowtoolsError:
    return FlowtoolsError(f"{str(src)!r}: {what}")


#: the longest 'meta' header read, in characters of JSON (scalars and settings: a few KB)
META_MAX_CHARS = 2**24
_NPY = ".npy"


def _read(src: pathlib.Path):
    """Arrays and scalar fields of a trajectory file, every one checked — and every size
    before anything is inflated: the archive's members are read only after their .npy
    headers (shape, dtype) agree with each other and with the member's declared size, and
    their total fits in memory (``flowtools._validate.memory``)."""
    fh = open_regular(src, what="the trajectory file")
    try:
        with fh:
            size = os.fstat(fh.fileno()).st_size
            magic = fh.read(4)
            if size == 0:
                raise _bad(src, "the file is empty (0 bytes): truncated, e.g. by a crash while "
                           "it was written; write it again.")
            if not magic.startswith(b"PK"):
                raise _bad(src, "not a flowtools trajectory file (not an .npz archive).")
            fh.seek(0)
            with zipfile.ZipFile(fh) as zf:
                infos = {(i.filename[:-len(_NPY)] if i.filename.endswith(_NPY) else
                          i.filename): i for i in zf.infolist()}
                members = set(infos)
                if "meta" not in members:
                    raise _bad(src, "not a flowtools trajectory file: an .npz archive without "
                               f"the 'meta' header (it holds {sorted(members)}).")
                known = [n for n in ("meta", *_FLOAT_FIELDS, *_INT_FIELDS) if n in members]
                heads = {n: _npy_header(src, zf, infos[n], n) for n in known}
                shape, dtype = heads["meta"][:2]
                if shape != () or dtype.kind != "U":
                    raise _bad(src, "not a flowtools trajectory file: 'meta' is not a text "
                               "header.")
                if dtype.itemsize // 4 > META_MAX_CHARS:
                    raise _bad(src, f"the 'meta' header has {dtype.itemsize // 4:,} "
                               f"characters, more than the {META_MAX_CHARS:,} of a flowtools "
                               "trajectory file.")
                meta = _read_meta(src, _npy_data(zf, infos["meta"]))
                missing = [n for n in _FLOAT_FIELDS + _INT_FIELDS if n not in members]
                if missing:
                    raise _bad(src, f"field(s) {', '.join(missing)} missing: not a complete "
                               "flowtools trajectory file.")
                extra = sorted(members - set(_FLOAT_FIELDS + _INT_FIELDS) - {"meta"})
                if extra:
                    raise _bad(src, f"unexpected field(s) {', '.join(extra)} for format "
                               f"version {meta['_version']}: not a flowtools trajectory file.")
                _check_shapes(src, {n: h[:2] for n, h in heads.items() if n != "meta"})
                need = sum(infos[n].file_size for n in known)
                V.memory(need, f"{str(src)!r} (arrays of {need:,} bytes, as its headers "
                         "declare)", "load it on a machine with more memory")
                arrays = {n: _npy_data(zf, infos[n]) for n in known if n != "meta"}
    except FlowtoolsError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as err:
        raise _bad(src, f"truncated or corrupt .npz archive ({err}); write it again.") from None
    except ValueError as err:  # malformed .npy members
        raise _bad(src, f"not a flowtools trajectory file: {err}") from None
    del meta["_version"]
    _check_values(src, arrays)
    return arrays, meta


def _npy_header(src, zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str):
    """(shape, dtype, fortran_order) from a member's .npy header — a few hundred bytes
    inflated, no data — checked against the member's declared size: the data are then read
    only as far as the shape says (a header that claims less than the member holds, or
    more, is refused; object arrays are never unpickled)."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"member {name!r}: unsupported .npy version {version}")
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read(fh)
        offset = fh.tell()
    if dtype.hasobject:
        raise _bad(src, f"not a flowtools trajectory file: field {name} holds Python objects "
                   "(dtype object), which are never unpickled.")
    data = math.prod(shape) * dtype.itemsize
    if offset + data != info.file_size:
        raise _bad(src, f"field {name} declares shape {shape} of {dtype} ({data:,} bytes) but "
                   f"its archive member holds {info.file_size - offset:,} bytes: damaged, or "
                   "not a flowtools trajectory file.")
    return shape, dtype, fortran


def _npy_data(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """A member's array, once its header has been checked (``_npy_header``)."""
    with zf.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _read_meta(src, header) -> dict:
    if header.ndim != 0 or header.dtype.kind != "U":
        raise _bad(src, "not a flowtools trajectory file: 'meta' is not a text header.")
    text = str(header)
    try:
        V.json_depth(text, "the 'meta' header")
        meta = json.loads(text)
    except FlowtoolsError as err:
        raise _bad(src, f"not a flowtools trajectory file: {err}") from None
    except (ValueError, RecursionError):
        raise _bad(src, "not a flowtools trajectory file: 'meta' is not JSON.") from None
    if not isinstance(meta, dict):
        raise _bad(src, "not a flowtools trajectory file: 'meta' is not a JSON object.")
    try:
        meta = _decode(meta)
    except (KeyError, TypeError, ValueError) as err:
        raise _bad(src, f"malformed 'meta' header ({err}).") from None
    if "format" in meta or "version" in meta:
        if meta.pop("format", None) != FORMAT:
            raise _bad(src, f"not a flowtools trajectory file (format {meta.get('format')!r}, "
                       f"expected {FORMAT!r}).")
        version = meta.pop("version", None)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _bad(src, f"invalid format version {version!r}.")
        if version > VERSION:
            raise _bad(src, f"format version {version} is newer than this flowtools reads "
                       f"({VERSION}): upgrade flowtools.")
    else:
        version = 0
    unknown = sorted(set(meta) - _SCALAR_FIELDS)
    if unknown:
        raise _bad(src, f"unknown header field(s) {', '.join(unknown)}: not a flowtools "
                   "trajectory file.")
    for name in ("wall_time", "compile_time"):
        v = meta.get(name, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _bad(src, f"header field {name} must be a number, got {v!r}.")
    if not isinstance(meta.get("method", ""), str):
        raise _bad(src, f"header field method must be text, got {meta['method']!r}.")
    lr = meta.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))):
        raise _bad(src, f"header field lr must be a number or null, got {lr!r}.")
    if not isinstance(meta.get("info", {}), dict):
        raise _bad(src, f"header field info must be an object, got {meta['info']!r}.")
    meta["_version"] = version
    return meta


def _check_shapes(src, a: dict) -> None:
    """Dtypes and shapes ({field: (shape, dtype)}, from the .npy headers) consistent with
    one batch shape, save count S and parameter count p: before any data are read."""
    for name in _FLOAT_FIELDS + _INT_FIELDS:
        dtype = a[name][1]
        integral = name in _INT_FIELDS
        ok = np.issubdtype(dtype, np.integer) or (
            not integral and np.issubdtype(dtype, np.floating))
        if dtype.kind == "b" or not ok:
            want = "integer" if integral else "real (float or integer)"
            raise _bad(src, f"field {name} has dtype {dtype}; it must be {want}.")
    shape = {name: a[name][0] for name in a}
    batch = shape["t_final"]
    if len(shape["theta_final"]) != len(batch) + 1 or shape["theta_final"][:-1] != batch:
        raise _bad(src, f"field theta_final has shape {shape['theta_final']}; with t_final "
                   f"of shape {batch} it must be {batch} + (p,).")
    p = shape["theta_final"][-1]
    if p < 1:
        raise _bad(src, "field theta_final has no parameters (p = 0).")
    if len(shape["ts"]) != len(batch) + 1 or shape["ts"][:-1] != batch:
        raise _bad(src, f"field ts has shape {shape['ts']}; with t_final of shape {batch} "
                   f"it must be {batch} + (S,).")
    S = shape["ts"][-1]
    want = {"thetas": batch + (S, p), "losses": batch + (S,), "loss_final": batch,
            "status": batch, "steps": batch, "grad_evals": batch}
    for name, expected in want.items():
        if shape[name] != expected:
            raise _bad(src, f"field {name} has shape {shape[name]}, inconsistent with ts "
                       f"{shape['ts']} and theta_final {shape['theta_final']}: it must be "
                       f"{expected} (batch {batch}, S = {S} saves, p = {p}).")


def _check_values(src, a: dict) -> None:
    """Status codes of ``Status`` and counts ≥ 0 (once the arrays are read)."""
    codes = {int(s) for s in Status}
    bad = sorted({int(v) for v in np.ravel(a["status"])} - codes)
    if bad:
        raise _bad(src, f"field status holds code(s) {bad} that are not flowtools statuses "
                   f"({', '.join(f'{s.value} {s.name}' for s in Status)}).")
    for name in ("steps", "grad_evals"):
        if np.any(a[name] < 0):
            raise _bad(src, f"field {name} has negative counts.")


# The header's JSON keeps what the standard encoding loses: non-finite floats, NumPy arrays
# (dtype and shape) and scalars, and tuples are tagged objects {"__flowtools__": kind, ...}.
_TAG = "__flowtools__"


class _Unstorable(Exception):
    pass


def _hashable(key):
    if isinstance(key, (list, dict, np.ndarray)):
        raise ValueError(f"a dict key {key!r} is not hashable")
    return key


def _encode(x, where: str):
    if x is None or isinstance(x, (str, bool)):
        return x
    if isinstance(x, np.bool_):
        return {_TAG: "np.bool_", "value": bool(x)}
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return x if math.isfinite(x) else {_TAG: "float", "value": repr(x)}
    if isinstance(x, np.generic) and np.issubdtype(x.dtype, np.number) and \
            not np.iscomplexobj(x):
        return {_TAG: "np.scalar", "dtype": x.dtype.str, "value": _encode(x.item(), where)}
    if isinstance(x, np.ndarray) and (np.issubdtype(x.dtype, np.number) or x.dtype == bool) \
            and not np.iscomplexobj(x):
        return {_TAG: "np.ndarray", "dtype": x.dtype.str, "shape": list(x.shape),
                "data": [_encode(v, where) for v in x.ravel().tolist()]}
    if isinstance(x, tuple):
        return {_TAG: "tuple", "items": [_encode(v, f"{where}[{i}]") for i, v in enumerate(x)]}
    if isinstance(x, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, dict):
        if any(k == _TAG for k in x):
            raise _Unstorable(f"{where} uses the reserved key {_TAG!r}.")
        if all(isinstance(k, str) for k in x):
            return {k: _encode(v, f"{where}[{k!r}]") for k, v in x.items()}
        # other keys (e.g. member indices): a list of [key, value] pairs
        return {_TAG: "dict", "items": [[_encode(k, f"{where} key {k!r}"),
                                         _encode(v, f"{where}[{k!r}]")]
                                        for k, v in x.items()]}
    raise _Unstorable(f"{where} holds a {type(x).__name__} ({x!r:.60}), which would not be "
                      "read back as saved: store numbers, text, lists, dicts or arrays.")


def _decode(x):
    if isinstance(x, list):
        return [_decode(v) for v in x]
    if not isinstance(x, dict):
        return x
    kind = x.get(_TAG)
    if kind is None:
        return {k: _decode(v) for k, v in x.items()}
    if kind == "float":
        return float(x["value"])
    if kind == "np.bool_":
        return np.bool_(x["value"])
    if kind in ("np.scalar", "np.ndarray"):
        dtype = np.dtype(x["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError(f"dtype {dtype} is not numeric")
        if kind == "np.scalar":
            return dtype.type(_decode(x["value"]))
        return np.array([_decode(v) for v in x["data"]], dtype=dtype).reshape(x["shape"])
    if kind == "tuple":
        return tuple(_decode(v) for v in x["items"])
    if kind == "dict":
        return {_hashable(_decode(k)): _decode(v) for k, v in x["items"]}
    raise ValueError(f"unknown tag {kind!r}")


_SCALAR_FIELDS = {"wall_time", "compile_time", "method", "lr", "info"}


def _is_array(name: str) -> bool:
    return name not in _SCALAR_FIELDS
