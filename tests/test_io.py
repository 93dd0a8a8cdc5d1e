"""flowtools._io: atomic writes (a crash, Ctrl-C or SIGKILL never leaves a truncated file),
sets of outputs moved into place together, strict JSON, and output locations checked."""

from __future__ import annotations

import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from flowtools import _io
from flowtools.errors import FlowtoolsError


def _strict_loads(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------- atomic_write
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failed_writer_leaves_old_file_and_no_temporary(tmp_path, exc):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old complete content")

    def writer(fh):
        fh.write(b"new partial")
        fh.flush()
        raise exc("crash in the middle of writing")

    with pytest.raises(exc):
        _io.atomic_write(target, writer)
    assert target.read_bytes() == b"old complete content"
    assert _listing(tmp_path) == ["data.bin"]


def test_atomic_write_replaces_and_keeps_usual_permissions(tmp_path):
    target = tmp_path / "a.txt"
    _io.atomic_write(target, lambda fh: fh.write("héllo"), text=True)
    assert target.read_text(encoding="utf-8") == "héllo"
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives under the current umask
    assert (target.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)
    _io.write_text(target, "second")
    assert target.read_text() == "second" and _listing(tmp_path) == ["a.txt", "plain.txt"]


_KILL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from flowtools._io import atomic_write

    target, n = sys.argv[1], int(sys.argv[2])
    i = 0
    while True:
        arr = np.full(n, float(i))
        def writer(fh, arr=arr):
            np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(arr))
            data = arr.tobytes()
            for k in range(0, len(data), 1 << 16):  # many writes: a kill lands inside one
                fh.write(data[k:k + (1 << 16)])
        atomic_write(target, writer)
        print(i, flush=True)
        i += 1
""")


def test_sigkill_while_writing_never_leaves_a_truncated_file(tmp_path):
    """A writer looping over complete rewrites of an 8 MB .npy is SIGKILLed at random moments:
    the target is always absent (killed before the first rename) or a complete array."""
    script = tmp_path / "writer.py"
    script.write_text(_KILL_SCRIPT)
    n = 1 << 20
    rng = random.Random(1234)
    for trial in range(4):
        target = tmp_path / f"t{trial}.npy"
        proc = subprocess.Popen([sys.executable, str(script), str(target), str(n)],
                                stdout=subprocess.PIPE, text=True)
        try:
            if trial:  # trial 0: killed at once, usually before the first file exists
                proc.stdout.readline()  # one complete write done
                time.sleep(rng.uniform(0.0, 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()
        if target.exists():
            arr = np.load(target)
            assert arr.shape == (n,) and np.all(arr == arr[0]), trial
        else:
            assert trial == 0
        # only hidden temporaries may remain beside it, never a visible partial file
        visible = {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")}
        assert visible <= {"writer.py"} | {f"t{k}.npy" for k in range(4)}


# ---------------------------------------------------------------------- staged outputs
def _old_set(folder):
    (folder / "figures").mkdir()
    (folder / "figures" / "old.png").write_bytes(b"old figure")
    (folder / "results.json").write_text('{"old": true}')
    (folder / "report.md").write_text("old report")
    (folder / "keep.txt").write_text("not ours")


NAMES = ("figures", "results.json", "report.md")


def test_staged_outputs_moves_the_set_into_place(tmp_path):
    _old_set(tmp_path)
    with _io.staged_outputs(tmp_path, NAMES) as stage:
        assert stage.parent == tmp_path and stage.name.startswith(".")
        (stage / "figures").mkdir()
        (stage / "figures" / "new.png").write_bytes(b"new figure")
        _io.write_json(stage / "results.json", {"new": True})
        _io.write_text(stage / "report.md", "new report")
        assert (tmp_path / "report.md").read_text() == "old report"  # nothing moved yet
    assert _listing(tmp_path) == ["figures", "keep.txt", "report.md", "results.json"]
    assert _listing(tmp_path / "figures") == ["new.png"]  # no stale figure survives
    assert (tmp_path / "report.md").read_text() == "new report"
    assert json.loads((tmp_path / "results.json").read_text()) == {"new": True}


def test_staged_outputs_removes_names_the_run_did_not_write(tmp_path):
    _old_set(tmp_path)
    with _io.staged_outputs(tmp_path, NAMES) as stage:
        _io.write_text(stage / "report.md", "no figures this time")
    assert _listing(tmp_path) == ["keep.txt", "report.md"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_staged_outputs_leave_the_folder_as_it_was(tmp_path, exc):
    _old_set(tmp_path)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*")
              if p.is_file()}
    with pytest.raises(exc):
        with _io.staged_outputs(tmp_path, NAMES) as stage:
            (stage / "figures").mkdir()
            (stage / "figures" / "first.png").write_bytes(b"written before the interrupt")
            raise exc("interrupted after the first figure")
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*")
             if p.is_file()}
    assert after == before and _listing(tmp_path) == ["figures", "keep.txt", "report.md",
                                                      "results.json"]


def test_a_commit_that_dies_half_way_leaves_no_marker(tmp_path, monkeypatch):
    """The marker (last name) is removed first and renamed in last: a commit stopped after
    moving some files leaves no marker, so the mix of old and new is recognizable."""
    _old_set(tmp_path)
    real, calls = os.replace, []

    def dying_replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # marker aside, figures aside, then die
            raise OSError("simulated crash during the commit")
        real(src, dst)

    monkeypatch.setattr(_io.os, "replace", dying_replace)
    with pytest.raises(OSError, match="simulated"):
        with _io.staged_outputs(tmp_path, NAMES) as stage:
            (stage / "figures").mkdir()
            (stage / "results.json").write_text("{}")
            (stage / "report.md").write_text("new")
    assert not (tmp_path / "report.md").exists()


@pytest.mark.skipif(os.name != "posix", reason="sends itself SIGINT with os.kill")
def test_ctrl_c_during_the_commit_is_held_until_the_set_is_complete(tmp_path, monkeypatch):
    _old_set(tmp_path)
    real, sent = os.replace, []

    def replace_and_interrupt(src, dst):
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the renames
        real(src, dst)

    monkeypatch.setattr(_io.os, "replace", replace_and_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with _io.staged_outputs(tmp_path, NAMES) as stage:
            (stage / "figures").mkdir()
            (stage / "results.json").write_text("{}")
            (stage / "report.md").write_text("new")
    assert sent and (tmp_path / "report.md").read_text() == "new"
    assert _listing(tmp_path) == ["figures", "keep.txt", "report.md", "results.json"]


# ---------------------------------------------------------------------- strict JSON
def test_strict_json_maps_non_finite_numbers_to_null(tmp_path):
    obj = {"nan": float("nan"), "inf": float("inf"), "ninf": -np.inf,
           "f32": np.float32("nan"), "arr": np.array([1.0, np.nan, np.inf]),
           "ints": np.arange(3), "b": np.bool_(True), "t": (1, 2.5), 3: "key"}
    path = _io.write_json(tmp_path / "x.json", obj, null_means="not finite")
    text = path.read_text(encoding="utf-8")
    data = _strict_loads(text)
    assert data == {"null_means": "not finite", "nan": None, "inf": None, "ninf": None,
                    "f32": None, "arr": [1.0, None, None], "ints": [0, 1, 2], "b": True,
                    "t": [1, 2.5], "3": "key"}
    assert "NaN" not in text and "Infinity" not in text
    assert _listing(tmp_path) == ["x.json"]


def test_unwritable_objects_raise_and_leave_no_file(tmp_path):
    with pytest.raises(TypeError, match="object"):
        _io.write_json(tmp_path / "x.json", {"a": object()})
    assert not any(tmp_path.iterdir())
    text = _io.dumps_json({"a": object(), "z": 1j}, default=str)
    assert _strict_loads(text)["z"] == "1j"


# ---------------------------------------------------------------------- output checks
def test_check_output_dir(tmp_path):
    assert _io.check_output_dir(tmp_path / "a" / "b").is_dir()  # created with parents
    (tmp_path / "file").write_text("x")
    with pytest.raises(FlowtoolsError, match="--out .*exists and is not a folder"):
        _io.check_output_dir(tmp_path / "file", what="--out")
    with pytest.raises(FlowtoolsError, match="cannot create the folder"):
        _io.check_output_dir(tmp_path / "file" / "sub")  # NotADirectoryError
    assert _listing(tmp_path) == ["a", "file"]  # the probe file is gone


def test_check_output_file(tmp_path):
    assert _io.check_output_file(tmp_path / "new" / "x.json") == tmp_path / "new" / "x.json"
    assert (tmp_path / "new").is_dir() and not (tmp_path / "new" / "x.json").exists()
    with pytest.raises(FlowtoolsError, match="--json .* is a folder"):
        _io.check_output_file(tmp_path / "new", what="--json")
    (tmp_path / "f").write_text("x")
    with pytest.raises(FlowtoolsError, match="its folder"):
        _io.check_output_file(tmp_path / "f" / "x.json")


def test_unwritable_folder_is_refused(tmp_path, monkeypatch):
    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_io.tempfile, "mkstemp", denied)
    with pytest.raises(FlowtoolsError, match="cannot write in this folder.*Permission denied"):
        _io.check_output_dir(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores file permissions (covered by the monkeypatched test)")
def test_read_only_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(FlowtoolsError, match="cannot"):
            _io.check_output_dir(ro / "sub")
        with pytest.raises(FlowtoolsError, match="cannot write"):
            _io.check_output_file(ro / "x.png")
    finally:
        ro.chmod(0o700)


# ---------------------------------------------------------------------- one atomic writer
def test_atomic_write_takes_bytes_and_the_store_options(tmp_path):
    """``atomic_write`` writes bytes as well as through a writer; ``root`` creates the
    folders below it, ``replace=False`` never overwrites, ``remove_temporaries`` clears
    what a killed writer left."""
    root = tmp_path / "S"
    root.mkdir()
    out = _io.atomic_write(root / "a" / "b", b"xyz", fsync=False, suffix=".partial",
                           root=root)
    assert out.read_bytes() == b"xyz" and _listing(root / "a") == ["b"]
    with pytest.raises(FileExistsError):
        _io.atomic_write(root / "a" / "b", b"no", root=root, replace=False)
    assert out.read_bytes() == b"xyz" and _listing(root / "a") == ["b"]
    (root / "a" / ".b.deadbeef.partial").write_bytes(b"half")
    (root / "keep.tmp").write_bytes(b"")
    assert _io.remove_temporaries(root, ".partial") == 1
    assert _listing(root / "a") == ["b"] and (root / "keep.tmp").exists()


def test_the_store_writes_its_files_through_io_atomic_write(tmp_path, monkeypatch):
    """The sweep store has no atomic-write code of its own: each zarr file goes through
    ``_io.atomic_write`` (temporaries ``*.partial``), bit for bit."""
    from flowtools.sweep import store as S

    calls = []
    real = _io.atomic_write
    monkeypatch.setattr(S, "atomic_write", lambda *a, **k: (calls.append(k), real(*a, **k)))
    S.write_file_atomic(tmp_path / "x.bin", memoryview(b"\x00\x01data"), root=tmp_path)
    assert (tmp_path / "x.bin").read_bytes() == b"\x00\x01data" and _listing(tmp_path) == [
        "x.bin"]
    assert calls == [{"fsync": False, "suffix": ".partial", "root": tmp_path,
                      "replace": True}]


# ---------------------------------------------------------------------- one netCDF writer
def test_write_netcdf_makes_every_attribute_netcdf_safe(tmp_path):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset(
        {"a": (("x",), np.arange(3.0), {"flag": True, "none": None, "d": {"k": 1}}),
         "s": (("x",), np.array(["p", "qq", "r"], dtype=np.dtypes.StringDType()))},
        coords={"x": ["u", "v", "w"]},
        attrs={"mode": "m", "b": False, "ints": [1, 2], "floats": np.array([0.5, 1.5]),
               "names": ["a b", "c"], "n": None, "e": []})
    before = ds.copy(deep=True)
    out = _io.write_netcdf(ds, tmp_path / "d.nc")
    assert ds.identical(before)  # the caller's dataset is left as it was
    assert _listing(tmp_path) == ["d.nc"]
    with xr.open_dataset(out, engine="scipy") as back:
        back = back.load()
    a = back.attrs
    assert a["attr_mode"] == "m" and "mode" not in a  # scipy reserves "mode"
    assert a["b"] == 0 and list(a["ints"]) == [1, 2] and list(a["floats"]) == [0.5, 1.5]
    assert a["names"] == '["a b", "c"]' and a["n"] == "null" and a["e"] == "[]"
    assert back["a"].attrs == {"flag": 1, "none": "null", "d": '{"k": 1}'}
    assert [str(v) for v in back["s"].values] == ["p", "qq", "r"]
    assert [str(v) for v in back["x"].values] == ["u", "v", "w"]


def test_write_netcdf_refuses_what_netcdf3_cannot_hold_and_writes_nothing(tmp_path):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset({"seed": (("x",), np.array([2**40], dtype=np.int64))})
    with pytest.raises(FlowtoolsError, match=r"cannot write .*as netCDF-3: .*netCDF-4: "
                                             r"do this\.\)$"):
        _io.write_netcdf(ds, tmp_path / "d.nc", hint="do this")
    assert _listing(tmp_path) == []


def test_write_netcdf_replaces_a_planted_link_never_its_target(tmp_path):
    xr = pytest.importorskip("xarray")
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "d.nc").symlink_to(victim)
    _io.write_netcdf(xr.Dataset({"a": (("x",), np.arange(2.0))}), tmp_path / "d.nc")
    assert victim.read_bytes() == b"precious" and not (tmp_path / "d.nc").is_symlink()
    assert _listing(tmp_path) == ["d.nc", "victim"]


def test_figures_and_sweep_exports_share_the_one_netcdf_writer(tmp_path, monkeypatch):
    pytest.importorskip("xarray")
    from flowtools.experiments import reproduce
    from flowtools.sweep import store as S

    assert reproduce.write_netcdf is _io.write_netcdf
    package = pathlib.Path(_io.__file__).parent
    writers = [p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if re.search(r"\.to_netcdf\(\s*(engine|\))", p.read_text())]
    assert writers == ["_io.py"], writers
    source = pathlib.Path(S.__file__).read_text()
    assert not hasattr(S, "atomic_open") and ".to_netcdf(engine" not in source
