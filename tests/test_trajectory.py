"""Trajectory files: save/load round trip, and every malformed file refused on load with a
FlowtoolsError saying what is wrong (no solve: trajectories are built by hand)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from flowtools.errors import FlowtoolsError
from flowtools.status import Status
from flowtools.trajectory import Trajectory


def _traj(batch=None, S=4, p=3, status=Status.HORIZON):
    rng = np.random.default_rng(0)
    bshape = () if batch is None else (batch,)
    ts = np.broadcast_to(np.linspace(0, 1, S), bshape + (S,)).copy()
    ts[..., -1] = np.nan  # padding after the end
    return Trajectory(
        ts=ts, thetas=rng.standard_normal(bshape + (S, p)), losses=rng.random(bshape + (S,)),
        t_final=np.full(bshape, 0.9), theta_final=rng.standard_normal(bshape + (p,)),
        loss_final=np.full(bshape, 1e-3), status=np.full(bshape, int(status), np.int8),
        steps=np.full(bshape, 7), grad_evals=np.full(bshape, 70), wall_time=1.5,
        compile_time=0.25, method="diffrax:kvaerno5", lr=None,
        info=dict(t1=1.0, rtol=1e-10, inf=float("inf"), nan=float("nan"),
                  arr=np.array([1.0, np.nan]), ints=np.arange(3, dtype=np.int32),
                  scalar=np.float32(0.5), pair=(1, "a"), nested={"rejected": [0, 1]},
                  flag=True, none=None, by_member={0: {"minimum": np.bool_(False),
                                                        "lambda_min": -1.15}, 3: "x"},
                  mixed_keys={1.5: 1, (1, 2): 2, "s": 3}))


def _same(a: Trajectory, b: Trajectory):
    for name in ("ts", "thetas", "losses", "t_final", "theta_final", "loss_final", "status",
                 "steps", "grad_evals"):
        x, y = getattr(a, name), getattr(b, name)
        np.testing.assert_array_equal(x, y, err_msg=name)
        assert np.asarray(x).dtype == np.asarray(y).dtype, name
    assert (a.wall_time, a.compile_time, a.method, a.lr) == (b.wall_time, b.compile_time,
                                                             b.method, b.lr)
    ia, ib = a.info, b.info
    assert set(ia) == set(ib)
    assert ib["inf"] == float("inf") and np.isnan(ib["nan"])
    np.testing.assert_array_equal(ib["arr"], ia["arr"])
    assert ib["arr"].dtype == np.float64 and ib["ints"].dtype == np.int32
    assert type(ib["scalar"]) is np.float32 and ib["pair"] == (1, "a")
    assert ib["nested"] == {"rejected": [0, 1]} and ib["flag"] is True and ib["none"] is None
    assert ib["by_member"] == {0: {"minimum": False, "lambda_min": -1.15}, 3: "x"}
    assert type(ib["by_member"][0]["minimum"]) is np.bool_
    assert ib["mixed_keys"] == {1.5: 1, (1, 2): 2, "s": 3}


@pytest.mark.parametrize("batch", [None, 3])
def test_round_trip_single_and_batch(tmp_path, batch):
    tr = _traj(batch)
    written = tr.save(tmp_path / "t.npz")
    assert written == tmp_path / "t.npz"
    back = Trajectory.load(tmp_path / "t.npz")
    _same(tr, back)
    assert back.batched == (batch is not None)
    if batch:
        assert back[1].t_final == tr[1].t_final


def test_save_and_load_agree_on_the_suffix(tmp_path):
    tr = _traj()
    assert tr.save(tmp_path / "x") == tmp_path / "x.npz"
    assert (tmp_path / "x.npz").is_file() and not (tmp_path / "x").exists()
    _same(tr, Trajectory.load(tmp_path / "x"))
    _same(tr, Trajectory.load(str(tmp_path / "x.npz")))
    # a file renamed without its suffix still loads by its own name
    (tmp_path / "x.npz").rename(tmp_path / "renamed")
    _same(tr, Trajectory.load(tmp_path / "renamed"))
    with pytest.raises(FlowtoolsError, match="no trajectory file"):
        Trajectory.load(tmp_path / "missing")


def test_save_writes_atomically_and_leaves_no_temporary(tmp_path):
    tr = _traj(2)
    tr.save(tmp_path / "t")
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def test_save_refuses_info_that_would_not_round_trip(tmp_path):
    tr = _traj()
    bad = Trajectory(**{**tr.__dict__, "info": {"obj": object()}})
    with pytest.raises(FlowtoolsError, match=r"info.*obj.*object"):
        bad.save(tmp_path / "t")
    assert not any(tmp_path.iterdir())


def test_old_files_without_a_version_still_load(tmp_path):
    tr = _traj()
    arrays = {k: getattr(tr, k) for k in ("ts", "thetas", "losses", "t_final", "theta_final",
                                           "loss_final", "status", "steps", "grad_evals")}
    meta = dict(wall_time=1.0, compile_time=0.0, method="gd", lr=0.05, info={"max_iter": 9})
    np.savez_compressed(tmp_path / "old.npz", **arrays, meta=np.asarray(json.dumps(meta)))
    back = Trajectory.load(tmp_path / "old.npz")
    assert back.method == "gd" and back.lr == 0.05 and back.info == {"max_iter": 9}


# ---------------------------------------------------------------------- malformed files
def _rewrite(src, dst, *, drop=(), replace=None, meta=None):
    """Copy the npz ``src`` to ``dst`` with members dropped/replaced or the header changed."""
    with np.load(src) as z:
        members = {k: z[k] for k in z.files if k not in drop}
    members.update(replace or {})
    if meta is not None:
        header = json.loads(str(members["meta"]))
        header.update(meta)
        members["meta"] = np.asarray(json.dumps(header))
    np.savez(dst, **members)
    return dst


@pytest.fixture
def saved(tmp_path):
    return _traj(3).save(tmp_path / "good.npz")


def test_truncated_files(tmp_path, saved):
    data = saved.read_bytes()
    for n in (0, 10, len(data) // 2, len(data) - 5):
        bad = tmp_path / f"cut{n}.npz"
        bad.write_bytes(data[:n])
        with pytest.raises(FlowtoolsError, match="truncated|empty") as exc:
            Trajectory.load(bad)
        assert str(bad) in str(exc.value)


def test_foreign_files(tmp_path):
    np.savez(tmp_path / "foreign.npz", x=np.arange(3))
    with pytest.raises(FlowtoolsError, match="not a flowtools trajectory file.*'meta'"):
        Trajectory.load(tmp_path / "foreign.npz")
    with zipfile.ZipFile(tmp_path / "zip.npz", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(FlowtoolsError, match="not a flowtools trajectory file"):
        Trajectory.load(tmp_path / "zip.npz")
    (tmp_path / "text.npz").write_text("just text, not an archive")
    with pytest.raises(FlowtoolsError, match="not a flowtools trajectory file"):
        Trajectory.load(tmp_path / "text.npz")
    np.save(tmp_path / "array.npy", np.arange(3))
    with pytest.raises(FlowtoolsError, match="not a flowtools trajectory file"):
        Trajectory.load(tmp_path / "array.npy")
    with pytest.raises(FlowtoolsError, match="is a folder"):
        Trajectory.load(tmp_path)


@pytest.mark.parametrize("change, words", [
    (dict(replace={"thetas": np.zeros((3, 5, 3))}), r"thetas has shape \(3, 5, 3\).*\(3, 4, 3\)"),
    (dict(replace={"losses": np.zeros((2, 4))}), r"losses has shape \(2, 4\)"),
    (dict(replace={"theta_final": np.zeros((3, 2))}), r"thetas has shape.*p = 2"),
    (dict(replace={"status": np.zeros(2, np.int8)}), r"status has shape \(2,\)"),
    (dict(replace={"ts": np.zeros(4)}), r"ts has shape \(4,\)"),
    (dict(replace={"status": np.array([0, 9, 1], np.int8)}), r"status holds code\(s\) \[9\]"),
    (dict(replace={"status": np.array([0.0, 1.0, 1.0])}), "status has dtype float64"),
    (dict(replace={"ts": np.array([["a"] * 4] * 3)}), "ts has dtype <U1"),
    (dict(replace={"steps": np.array([1, -1, 2])}), "steps has negative counts"),
    (dict(drop=("loss_final",)), r"field\(s\) loss_final missing"),
    (dict(replace={"extra": np.zeros(1)}), "unexpected field"),
    (dict(meta={"version": 99}), "format version 99 is newer"),
    (dict(meta={"version": "1"}), "invalid format version '1'"),
    (dict(meta={"format": "something.else"}), "not a flowtools trajectory file"),
    (dict(meta={"surprise": 1}), "unknown header field"),
    (dict(meta={"method": 3}), "method must be text"),
    (dict(meta={"info": {"x": {"__flowtools__": "np.ndarray", "dtype": "O", "shape": [0],
                               "data": []}}}), "malformed 'meta' header"),
    (dict(replace={"meta": np.asarray("{not json")}), "'meta' is not JSON"),
])
def test_inconsistent_files_are_refused(tmp_path, saved, change, words):
    bad = _rewrite(saved, tmp_path / "bad.npz", **change)
    with pytest.raises(FlowtoolsError, match=words):
        Trajectory.load(bad)


def test_object_arrays_are_refused_without_unpickling(tmp_path, saved):
    bad = _rewrite(saved, tmp_path / "bad.npz",
                   replace={"steps": np.array([1, None, 2], dtype=object)})
    with pytest.raises(FlowtoolsError, match="not a flowtools trajectory file"):
        Trajectory.load(bad)


# ---------------------------------------------------------------------- statuses
def test_raise_on_failure_treats_every_non_ok_status_as_failure():
    assert _traj(status=Status.HORIZON).raise_on_failure() is not None
    failing = [s for s in Status if not s.ok]
    assert Status.NOT_MINIMUM in failing
    for s in failing:
        with pytest.raises(RuntimeError, match=s.name.lower()):
            _traj(3, status=s).raise_on_failure()
    mixed = _traj(3)
    st = mixed.status.copy()
    st[2] = Status.NOT_MINIMUM
    with pytest.raises(RuntimeError, match="#2"):
        Trajectory(**{**mixed.__dict__, "status": st}).raise_on_failure()
