"""A results store that notices damage (issue 20, class 4).

A chunk file truncated, garbled, emptied, deleted or swapped after its cells were marked
done makes those cells *damaged*: `flowtools sweep show` lists them (exit 1, no
traceback), `--resume` computes exactly those cells again — bit for bit what an
uninterrupted run stores — and `open_results` / `export` refuse, naming the variables and
cells. Damaged metadata written at creation is restored by `--resume`; an unreadable root
`zarr.json` is one line (exit 2). A store from before checksums is accepted (only chunks
that no longer decode are found). A read-only store is one line, before any work.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import flowtools.sweep.store as S
from flowtools.cli import main
from flowtools.errors import FlowtoolsError
from flowtools.sweep import export_netcdf, open_results, run_sweep
from flowtools.sweep.store import StoreDamaged, check_store

ROOT = pathlib.Path(__file__).resolve().parents[1]

# GD on one problem, three seeds in chunks of two: chunk 0 = seeds 0 and 1 (two cells),
# chunk 1 = seed 2 (an edge chunk of one cell). Cheap to compile, ~0.1 s per task.
TINY = """\
[sweep]
name = "tiny"
cells_per_task = 2

[problem]
n = 4

[init]
scale = 1e-4
seed = [0, 1, 2]

[integrator]
dynamics = "gd"
lr = 0.05
max_iter = 100
"""
CELLS = {0: 2, 1: 1}  # cells per chunk
WHERE = {0: "seed = 0…1", 1: "seed = 2"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """TINY computed without interruption (never modified by the tests)."""
    folder = tmp_path_factory.mktemp("ref")
    grid = folder / "tiny.toml"
    grid.write_text(TINY)
    res = run_sweep(grid, folder / "ref.zarr")
    assert res.ok and res.computed == 3
    return folder / "ref.zarr"


@pytest.fixture
def store(reference, tmp_path):
    """A copy of the reference store, with the grid file beside it."""
    (tmp_path / "tiny.toml").write_text(TINY)
    shutil.copytree(reference, tmp_path / "s.zarr")
    return tmp_path / "s.zarr"


def _assert_same(a, b):
    """Every stored value equal, bit for bit (wall times differ between runs)."""
    a, b = open_results(a).load(), open_results(b).load()
    assert set(a.data_vars) == set(b.data_vars)
    for name in b.data_vars:
        if name != "wall_time":
            assert a[name].dtype == b[name].dtype, name
            assert np.array_equal(a[name].values, b[name].values, equal_nan=True), name


def _chunk(store, name, k):
    """The chunk file of chunk k (along seed) of array ``name``."""
    extra = "/0" if name in ("theta0", "theta_final", "checksums") else ""
    return store / name / "c" / f"{k}{extra}"


def _inodes(store, k):
    """The inode of every chunk file of chunk k (a rewrite renames a new file there)."""
    return {p: p.stat().st_ino for p in store.glob(f"*/c/{k}*") if p.is_file()}


def _cli(capsys, *argv):
    rc = main(["sweep", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


# ---------------------------------------------------------------------- damaged chunks
def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(40))


def empty(path):
    path.write_bytes(b"")


def delete(path):
    path.unlink()


def flip_a_byte(path):  # same length; may still decode, to other values
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def swap_with_other_chunk(path):  # a valid chunk, of other cells: decodes fine
    other = path.parent / ("1" if path.name == "0" else "0")
    path.write_bytes(other.read_bytes())


def link_to_a_device(path):  # never read: it would never end
    path.unlink()
    path.symlink_to("/dev/zero")


CASES = [  # (damage, array, chunk, what show/open_results must name)
    (truncate, "loss_final", 0, "loss_final"),       # the reproducer of the issue
    (random_bytes, "status", 0, "status"),
    (empty, "done", 0, "done"),
    (delete, "theta_final", 0, "theta_final"),
    (flip_a_byte, "theta0", 0, "theta0"),
    (swap_with_other_chunk, "steps", 0, "steps"),
    (empty, "checksums", 0, "checksums"),
    (link_to_a_device, "wall_time", 0, "wall_time"),
    (truncate, "grad_evals", 1, "grad_evals"),        # the edge chunk (one cell)
]


@pytest.mark.parametrize("damage, array, k, name", CASES,
                         ids=[f"{c[0].__name__}-{c[1]}-{c[2]}" for c in CASES])
def test_damaged_chunk_is_reported_refused_and_recomputed(store, reference, capsys,
                                                          damage, array, k, name):
    damage(_chunk(store, array, k))
    other = _inodes(store, 1 - k)

    # show: the damage, its cells and the repair command; exit 1, no traceback
    rc, out, err = _cli(capsys, "show", store)
    assert rc == 1
    line = next(ln for ln in out.splitlines() if ln.startswith("damaged:"))
    assert f"{name} at {WHERE[k]}" in line and "--resume" in line
    assert f"done {3 - CELLS[k]}, missing {CELLS[k]} (of which {CELLS[k]} damaged)" in out

    # open_results and export refuse, naming the variable and the cells; nothing written
    with pytest.raises(StoreDamaged, match=f"{name} at {WHERE[k]}"):
        open_results(store)
    rc, out, err = _cli(capsys, "export", store, store.parent / "out.nc")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"{name} at {WHERE[k]}" in err and not (store.parent / "out.nc").exists()

    # --resume computes exactly the damaged cells; the result is the uninterrupted one
    res = run_sweep(store.parent / "tiny.toml", store, resume=True)
    assert res.ok and res.computed == CELLS[k] and res.cached == 3 - CELLS[k]
    assert _inodes(store, 1 - k) == other  # the intact chunk's files were not rewritten
    _assert_same(store, reference)
    assert check_store(store).ok
    assert _cli(capsys, "show", store)[0] == 0


def test_resume_on_the_command_line_says_what_it_repairs(store, reference, capsys):
    truncate(_chunk(store, "loss_final", 0))
    rc, out, err = _cli(capsys, store.parent / "tiny.toml", "--store", store, "--resume",
                        "--no-progress")
    assert rc == 0, err
    assert "damaged, computed or restored again: loss_final at seed = 0…1" in out
    assert "2 cell(s) computed, 1 cached" in out
    _assert_same(store, reference)


def test_damaged_leftover_of_an_unfinished_chunk(store, reference, capsys):
    """Cells not marked done whose leftover files no longer decode: named too (they would
    break a lazy read), and rewritten by --resume."""
    delete(_chunk(store, "done", 1))  # as if killed before the done mark
    random_bytes(_chunk(store, "status", 1))
    check = check_store(store)
    assert check.unfinished == {(1,)} and check.damaged == {(1,): ["status"]}
    with pytest.raises(StoreDamaged, match=r"status at seed = 2 \(not marked done\)"):
        open_results(store)
    res = run_sweep(store.parent / "tiny.toml", store, resume=True)
    assert res.ok and res.computed == 1
    _assert_same(store, reference)


def test_several_damaged_chunks_are_all_named(store):
    truncate(_chunk(store, "loss_final", 0))
    delete(_chunk(store, "status", 1))
    random_bytes(_chunk(store, "t_final", 1))
    check = check_store(store)
    assert check.damaged == {(0,): ["loss_final"], (1,): ["status", "t_final"]}
    assert check.damaged_cells == 3 and not check.done.any()
    msg = check.message()
    assert "loss_final at seed = 0…1" in msg and "status, t_final at seed = 2" in msg


# ---------------------------------------------------------------------- metadata
def _garble(path, at=10):
    data = bytearray(path.read_bytes())
    data[at:at + 20] = b"\xff" * 20
    path.write_bytes(bytes(data))


ROOT_DAMAGE = [
    ("garbled", lambda p: _garble(p), "not valid JSON"),
    ("truncated", truncate, "not valid JSON"),
    ("empty", empty, "not valid JSON"),
    ("not a group", lambda p: p.write_text("[]"), "not the metadata of a zarr group"),
    ("no consolidated metadata",
     lambda p: p.write_text(json.dumps({**json.loads(p.read_text()),
                                        "consolidated_metadata": None})),
     "not the metadata of a zarr group"),
]


@pytest.mark.parametrize("how, damage, words", ROOT_DAMAGE, ids=[d[0] for d in ROOT_DAMAGE])
def test_unreadable_root_metadata_is_one_line(store, capsys, how, damage, words):
    damage(store / "zarr.json")
    before = sorted((p, p.stat().st_mtime_ns) for p in store.rglob("*"))
    for argv in (("show", store), ("export", store, store.parent / "o.nc"),
                 (store.parent / "tiny.toml", "--store", store, "--resume", "--no-progress")):
        rc, out, err = _cli(capsys, *argv)
        assert rc == 2, (argv, out, err)
        assert len(err.strip().splitlines()) == 1
        assert "root metadata file zarr.json" in err and words in err
        assert "delete it" in err and "another --store" in err
    with pytest.raises(StoreDamaged):
        open_results(store)
    assert sorted((p, p.stat().st_mtime_ns) for p in store.rglob("*")) == before
    assert not (store.parent / "o.nc").exists()


@pytest.mark.parametrize("damage", [_garble, truncate, empty, delete],
                         ids=["garbled", "truncated", "empty", "deleted"])
def test_damaged_array_metadata_is_restored_by_resume(store, reference, capsys, damage):
    damage(store / "status" / "zarr.json")
    rc, out, err = _cli(capsys, "show", store)
    assert rc == 1 and "damaged: status/zarr.json" in out
    with pytest.raises(StoreDamaged, match="status/zarr.json"):
        open_results(store)
    res = run_sweep(store.parent / "tiny.toml", store, resume=True)
    assert res.ok and res.computed == 0 and res.cached == 3
    assert (store / "status" / "zarr.json").read_bytes() == \
        (reference / "status" / "zarr.json").read_bytes()
    _assert_same(store, reference)


@pytest.mark.parametrize("damage", [random_bytes, truncate, swap_with_other_chunk],
                         ids=["random", "truncated", "other-values"])
def test_damaged_axis_values_are_restored_by_resume(store, reference, capsys, damage):
    axis = store / "seed" / "c" / "0"
    if damage is swap_with_other_chunk:  # valid bytes, other values: seeds 0, 1, 3
        import zarr

        arr = zarr.open_array(str(store / "seed"), mode="r+")
        arr[...] = np.array([0, 1, 3])
    else:
        damage(axis)
    rc, out, err = _cli(capsys, "show", store)
    assert rc == 1 and "the values of the axis seed" in out
    with pytest.raises(StoreDamaged, match="the values of the axis seed"):
        open_results(store)
    res = run_sweep(store.parent / "tiny.toml", store, resume=True)
    assert res.ok and res.computed == 0
    assert axis.read_bytes() == (reference / "seed" / "c" / "0").read_bytes()
    _assert_same(store, reference)


# ---------------------------------------------------------------------- older stores
def _without_checksums(store):
    """Make ``store`` what flowtools wrote before checksums (no ``checksums`` array)."""
    shutil.rmtree(store / "checksums")
    root = json.loads((store / "zarr.json").read_text())
    del root["consolidated_metadata"]["metadata"]["checksums"]
    (store / "zarr.json").write_text(json.dumps(root, indent=2))


def test_store_without_checksums_is_accepted_and_checked_by_decoding(store, reference,
                                                                     capsys):
    _without_checksums(store)
    check = check_store(store)
    assert check.ok and not check.checksums and check.done.all()
    rc, out, err = _cli(capsys, "show", store)
    assert rc == 0 and "checksums: none" in out
    assert run_sweep(store.parent / "tiny.toml", store, resume=True).computed == 0
    export_netcdf(store, store.parent / "o.nc")
    # a chunk that no longer decodes is found, and recomputed
    truncate(_chunk(store, "loss_final", 0))
    rc, out, err = _cli(capsys, "show", store)
    assert rc == 1 and "loss_final at seed = 0…1" in out
    with pytest.raises(StoreDamaged, match="loss_final at seed = 0…1"):
        export_netcdf(store, store.parent / "o2.nc")
    res = run_sweep(store.parent / "tiny.toml", store, resume=True)
    assert res.ok and res.computed == 2
    assert not (store / "checksums").exists()  # an old store stays as it was made
    _assert_same(store, reference)


# ---------------------------------------------------------------------- read-only
def _one_missing_cell(store):
    delete(_chunk(store, "done", 1))  # seed 2 not done: one task to compute


def test_unwritable_store_is_refused_before_any_work(store, monkeypatch):
    """A folder where no file can be made: one line, nothing computed (simulated: the
    probe's temporary file fails as it does in a read-only folder)."""
    import flowtools.sweep.run as R

    _one_missing_cell(store)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def never(spec):
        raise AssertionError("computed in a read-only store")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(R, "compute_task", never)
    with pytest.raises(FlowtoolsError, match="cannot write to the store .*Permission denied"
                                             ".*chmod -R u\\+w"):
        run_sweep(store.parent / "tiny.toml", store, resume=True)


def test_a_write_that_fails_is_one_line_and_keeps_the_stored_cells(store, monkeypatch):
    _one_missing_cell(store)

    def refuse(path, data, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(S, "write_file_atomic", refuse)
    with pytest.raises(FlowtoolsError, match="cannot write to the store .*Permission denied"):
        run_sweep(store.parent / "tiny.toml", store, resume=True)
    monkeypatch.undo()
    check = check_store(store)
    assert check.ok and check.done.tolist() == [True, True, False]


READ_ONLY = """
import sys
from flowtools.cli import main
rc = main(["sweep", sys.argv[1], "--store", sys.argv[2], "--resume", "--no-progress"])
print("RC", rc, main(["sweep", "show", sys.argv[2]]))
"""


def test_read_only_store_folder_is_one_line(store, capsys):
    """The real thing: the store's files made read-only (as root, the process runs
    without the capability that ignores file modes)."""
    _one_missing_cell(store)
    for p in [store, *store.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        if os.geteuid() != 0:
            with pytest.raises(FlowtoolsError, match="cannot write to the store"):
                run_sweep(store.parent / "tiny.toml", store, resume=True)
            assert _cli(capsys, "show", store)[0] == 0
            return
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root without setpriv: permissions cannot be enforced")
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep
                   + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run(
            [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner",
             sys.executable, "-c", textwrap.dedent(READ_ONLY), str(store.parent / "tiny.toml"),
             str(store)], capture_output=True, text=True, env=env, timeout=120)
        if "Operation not permitted" in proc.stderr and "setpriv" in proc.stderr:
            pytest.skip("setpriv cannot drop capabilities here")
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "RC 2 0" in proc.stdout, (proc.stdout, proc.stderr)
        errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
        assert len(errors) == 1 and "cannot write to the store" in errors[0]
        assert "chmod -R u+w" in errors[0]
    finally:
        for p in [store, *store.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    assert check_store(store).done.tolist() == [True, True, False]
