"""Issue 20, class 3 (with class 1's names and class 6's empty range step): sizes are
checked before anything is allocated or read.

The size of the work is computed from the declared sizes — a grid's cells as the product
of its axis lengths (a range's length by arithmetic, linspace's ``num``), one task's memory
(``Grid.work``), a problem's data and evaluation (``make_problem``), a run's trajectories,
h's flows (``flowtools.limiting.reference.check_memory``), a trajectory file's arrays from
its .npy headers — and refused over a limit with the numbers: ``flowtools._validate.memory``
(``FLOWTOOLS_MEMORY_LIMIT``, pinned here so that the tests mean the same on every machine)
and ``flowtools._validate.cells`` (``FLOWTOOLS_MAX_CELLS``). A grid file is read only if it
is a regular file of at most ``MAX_GRID_BYTES``; a sweep's name is a name, never a path.

Every case is refused at the validation layer: nothing is compiled, nothing is written.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import tracemalloc
import zipfile

import numpy as np
import pytest

from flowtools import _validate as V
from flowtools.cli import main
from flowtools.errors import FlowtoolsError
from flowtools.sweep import Grid, GridError
from flowtools.sweep.grid import MAX_GRID_BYTES
from flowtools.trajectory import Trajectory

LIMIT = "4G"  # the memory limit of every test: the same refusals on any machine


@pytest.fixture(autouse=True)
def pinned_limits(monkeypatch):
    monkeypatch.setenv(V.MEMORY_VARIABLE, LIMIT)
    monkeypatch.delenv(V.CELLS_VARIABLE, raising=False)


def _one_line(capsys) -> str:
    """The command's stderr: one line, no traceback."""
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def _cli(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 2
    return _one_line(capsys)


def _grid(tmp_path, text, name="g.toml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _files(folder: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ====================================================================== grid cells
BIG_GRIDS = [  # (axes, cells in the message)
    ("[problem]\nn = {range = [1, 1001]}\n[init]\nscale = {geomspace = [1e-8, 1e-2, 1000]}\n"
     "seed = {range = [0, 1000]}\n", "1,000,000,000"),  # the reproducer
    ("[problem]\nwidth = 2\n[init]\nscale = 1e-4\n"
     "c_tilde = {linspace = [0.01, 1, 1000000000]}\n", "1,000,000,000"),  # the reproducer
    ("[init]\nscale = {geomspace = [1e-8, 1e-2, 10000000]}\n", "10,000,000"),
    ("[init]\nscale = 1e-4\nseed = {range = [0, 1000000000000000000000]}\n",  # > ssize_t
     "1,000,000,000,000,000,000,000"),
    ("[init]\nscale = 1e-4\nseed = {range = [0, 2000000, 1]}\n", "2,000,000"),
    ("[init]\nscale = [1e-4, 1e-3, 1e-2]\nseed = {range = [1000000, 0, -2]}\n", "1,500,000"),
    ("[problem]\nn = [3, 4]\n[init]\nscale = {linspace = [1e-4, 1e-2, 1000]}\n"
     "seed = {range = [0, 1000]}\n", "2,000,000"),
]


@pytest.mark.parametrize("text, cells", BIG_GRIDS, ids=range(len(BIG_GRIDS)))
def test_cell_count_is_refused_before_any_axis_is_built(text, cells):
    tracemalloc.start()
    try:
        with pytest.raises(GridError) as info:
            Grid.from_text(text, source="big.toml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert f"has {cells} cells" in msg and "limit of 1,000,000" in msg, msg
    assert V.CELLS_VARIABLE in msg
    assert peak < 2**20, peak  # no axis materialized


def test_cell_limit_is_configurable(monkeypatch):
    text = "[init]\nscale = 1e-4\nseed = {range = [0, 12]}\n"
    monkeypatch.setenv(V.CELLS_VARIABLE, "10")
    with pytest.raises(GridError, match=r"has 12 cells, more than the limit of 10 \(set by"):
        Grid.from_text(text)
    monkeypatch.setenv(V.CELLS_VARIABLE, "12")
    assert Grid.from_text(text).size == 12
    monkeypatch.setenv(V.CELLS_VARIABLE, "lots")
    with pytest.raises(FlowtoolsError, match=V.CELLS_VARIABLE):
        Grid.from_text(text)


def test_check_refuses_a_huge_grid_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g = _grid(tmp_path, BIG_GRIDS[0][0])
    err = _cli(capsys, "sweep", g, "--check")
    assert "1,000,000,000 cells" in err and "n[1,000] × scale[1,000] × seed[1,000]" in err
    assert _files(tmp_path) == ["g.toml"]


@pytest.mark.parametrize("spacing", [
    "{linspace = [0.1, 1, inf]}", "{linspace = [0.1, 1, nan]}", "{geomspace = [0.1, inf, 3]}",
    "{range = [0, inf]}", "{linspace = [0.1, 1, 1e30]}"])
def test_non_finite_or_huge_spacing_arguments_are_refused(spacing):
    with pytest.raises(GridError, match="finite numbers|cells, more than"):
        Grid.from_text(f"[init]\nscale = {spacing}\n")


# ====================================================================== a task's memory
TASKS = [  # (grid text, words in the message)
    ("[init]\nscale = 1e-4\n[outputs]\ntrajectory_points = 1000000000\n",  # the reproducer
     ["trajectory_points = 1000000000", "one task"]),
    ("[init]\nscale = 1e-4\nseed = {range = [0, 16]}\n[outputs]\n"
     "trajectory_points = 3000000\n", ["8 cell(s)", "trajectory_points = 3000000"]),
    ("[problem]\nwidth = 10000000\n[init]\nscale = 1e-4\n",  # the reproducer
     ["p = 30000000", "evaluate the model"]),
    ("[problem]\nwidth = [2, 1000000]\n[init]\nscale = 1e-4\n", ["p = 3000000"]),
    ("[init]\nscale = 1e-4\n[outputs]\nn_test = 1000000000\n", ["evaluate the model"]),
    ("[problem]\nwidth = 100000\n[init]\nscale = 1e-4\nseed = {range = [0, 64]}\n"
     "[outputs]\ntrajectory_points = 200\n", ["8 cell(s)", "p = 300000"]),
]


@pytest.mark.parametrize("text, words", TASKS, ids=range(len(TASKS)))
def test_a_task_that_cannot_fit_is_refused_by_check(tmp_path, capsys, monkeypatch, text,
                                                     words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GridError) as info:
        Grid.from_text(text, source="t.toml")
    msg = str(info.value)
    assert msg.startswith("t.toml: ") and "needs about" in msg, msg
    assert "more than the limit of 4 GiB (set by FLOWTOOLS_MEMORY_LIMIT)" in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    err = _cli(capsys, "sweep", _grid(tmp_path, text), "--check")
    assert "needs about" in err
    assert _files(tmp_path) == ["g.toml"]


@pytest.mark.parametrize("problem", ["n = 1000000000", "n = [6, 1000000000]",
                                     'sampling = "gaussian"\ndim = 100000000'])
def test_a_problem_too_large_to_draw_is_refused(problem):
    with pytest.raises(GridError, match=r"cannot be built: a problem with n = .* needs about "
                                        r".* more than the limit of 4 GiB"):
        Grid.from_text(f"[problem]\n{problem}\n[init]\nscale = 1e-4\n")


def test_check_prints_the_size_of_the_work(tmp_path, capsys):
    g = _grid(tmp_path, "[init]\nscale = 1e-4\nseed = {range = [0, 20]}\n")
    assert main(["sweep", str(g), "--check"]) == 0
    out = capsys.readouterr().out
    assert "work: 20 cells, tasks of up to 8 cells" in out
    w = Grid.from_toml(g).work
    assert (w.cells, w.chunk_cells) == (20, 8) and w.results_bytes == 20 * w.cell_bytes


# ====================================================================== run and limit
RUNS = [  # (arguments, words)
    (["--width", "10000000"], ["p = 30,000,000"]),  # the reproducer
    (["--n", "1000000000"], ["n = 1,000,000,000"]),  # the reproducer
    (["--n", "100000000", "--width", "10"], ["n = 100,000,000", "width m = 10"]),
    (["--width", "1000000", "--method", "gd"], ["p = 3,000,000"]),
    (["--width", "1000", "--seed", *map(str, range(2000))], ["2000 trajectory(ies)"]),
    (["--sampling", "gaussian", "--dim", "100000000"], ["d = 100000000"]),
]


@pytest.mark.parametrize("args, words", RUNS, ids=range(len(RUNS)))
def test_run_refuses_what_cannot_fit(tmp_path, capsys, args, words):
    out = tmp_path / "out"
    err = _cli(capsys, "run", *args, "--out", out)
    assert "needs about" in err and "more than the limit of 4 GiB" in err, err
    for w in words:
        assert w in err, (w, err)
    assert not out.exists() or _files(out) == []


@pytest.mark.parametrize("n", ["1e12", "1000000000", "30000000"])
def test_limit_refuses_too_many_times(capsys, n):
    err = _cli(capsys, "limit", "--t-range", "0", "10", n)
    assert f"saved at {int(float(n)):,} times" in err and "limit of 4 GiB" in err, err


@pytest.mark.parametrize("method", ["extrapolate", "manifold"])
def test_limit_api_refuses_before_its_flows(monkeypatch, method):
    import flowtools as ft
    from flowtools.limiting import limit

    monkeypatch.setenv(V.MEMORY_VARIABLE, "100M")
    pb = ft.example1()
    with pytest.raises(FlowtoolsError, match=r"h\(θ, t\) from .* saved at .* more than the "
                                             r"limit of 0.0977 GiB"):
        limit(pb, pb.init_ratio(0.5, 1.0, seed=0), np.linspace(0.0, 10.0, 10**6),
              method=method)


# ====================================================================== grid files
def test_grid_file_must_be_a_small_regular_file(tmp_path, capsys):
    err = _cli(capsys, "sweep", "/dev/zero", "--check")  # the reproducer: read forever
    assert "'/dev/zero' is a device, FIFO or socket, not a regular file" in err
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # nobody writes: an open without O_NONBLOCK would hang
    assert "not a regular file" in _cli(capsys, "sweep", fifo, "--check")
    assert "is a folder" in _cli(capsys, "sweep", tmp_path, "--check")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_GRID_BYTES + 1))
    assert f"{MAX_GRID_BYTES + 1:,} bytes, more than the {MAX_GRID_BYTES:,}" in _cli(
        capsys, "sweep", big, "--check")
    link = tmp_path / "link.toml"
    link.symlink_to("/dev/zero")
    assert "not a regular file" in _cli(capsys, "sweep", link, "--check")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe" * 10)
    assert "cannot read the grid file" in _cli(capsys, "sweep", binary, "--check")


@pytest.mark.parametrize("value", ["[" * 100000, "{a = " * 100000, "[" * 5000 + "]" * 5000])
def test_deeply_nested_toml_is_refused(value):
    with pytest.raises(GridError, match="nested too deeply"):
        Grid.from_text(f"[init]\nscale = {value}\n", source="deep.toml")


# ====================================================================== names
BAD_NAMES = ["../../../escaped", "/tmp/x", "a/b", "..", ".", "nested\\\\back", "a\\u0000b",
             "a\\nb", "\\u202eevil", ".hidden", "-rf", "", "x" * 101]


@pytest.mark.parametrize("name", BAD_NAMES, ids=range(len(BAD_NAMES)))
def test_a_sweep_name_is_never_a_path(tmp_path, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    g = _grid(tmp_path, f'[sweep]\nname = "{name}"\n[init]\nscale = 1e-4\n[integrator]\n'
                        'dynamics = "gd"\nlr = 0.05\nmax_iter = 10\n')
    with pytest.raises(GridError, match=r"g.toml:2: sweep.name"):
        Grid.from_toml(g)
    err = _cli(capsys, "sweep", g, "--no-progress")  # not only --check: nothing runs
    assert "sweep.name" in err
    assert _files(tmp_path) == ["g.toml"]
    assert not (tmp_path.parent / "escaped.zarr").exists()


@pytest.mark.parametrize("name", ["fig4", "run 1", "c̃-sweep_2", "σ=1e-8", "x" * 100])
def test_names_are_accepted(name):
    g = Grid.from_text(f'[sweep]\nname = "{name}"\n[init]\nscale = 1e-4\n')
    assert g.name == name


def test_names_from_elsewhere_are_names_too(tmp_path):
    with pytest.raises(GridError, match="not a path"):
        Grid(axes=(), fixed={}, outputs={}, name="../x")
    hidden = _grid(tmp_path, "[init]\nscale = 1e-4\n", name=".hidden.toml")
    assert Grid.from_toml(hidden).name == ""  # the stem is not a name: unnamed ("sweep")


# ====================================================================== range steps
@pytest.mark.parametrize("spacing, words", [
    ("{range = [0, 10, 0]}", "range step must not be zero"),  # the reproducer
    ("{range = [5, 10, 0.0]}", "range step must not be zero"),
    ("{range = [0, 10, -1]}", "is empty"),
    ("{range = [0, 10, 2.5]}", "as integers"),
    ("{linspace = [0, 1, 0]}", "num ≥ 1"),
])
def test_bad_ranges_are_one_line(tmp_path, capsys, spacing, words):
    g = _grid(tmp_path, f"[init]\nscale = 1e-4\nseed = {spacing}\n")
    err = _cli(capsys, "sweep", g, "--check")
    assert "g.toml:3: init.seed" in err and words in err, err


def test_range_lengths_match_python():
    for args in ([0, 10], [0, 10, 3], [10, 0, -3], [9, -1, -1], [3, 4, 100], [7, 100, 7]):
        g = Grid.from_text(f"[init]\nscale = 1e-4\nseed = {{range = {args}}}\n")
        assert list(g.axis("seed").values) == list(range(*args))


# ====================================================================== trajectory files
def _traj(batch=(), S=3, p=2) -> Trajectory:
    z = np.zeros
    return Trajectory(ts=z(batch + (S,)), thetas=z(batch + (S, p)), losses=z(batch + (S,)),
                      t_final=z(batch), theta_final=z(batch + (p,)), loss_final=z(batch),
                      status=z(batch, np.int8), steps=z(batch, np.int64),
                      grad_evals=z(batch, np.int64), info={"note": "[" * 1000})


def _npy(array=None, *, header=None, data=b"") -> bytes:
    """.npy bytes: a real array, or a ``header`` dict followed by raw ``data``."""
    buf = io.BytesIO()
    if array is not None:
        np.save(buf, array)
    else:
        np.lib.format.write_array_header_1_0(buf, header)
        buf.write(data)
    return buf.getvalue()


def _rebuild(src, dst, members: dict, *, level=6):
    """``src``'s archive with ``members`` (name → .npy bytes) replaced or added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED,
                                                      compresslevel=level) as zout:
        for info in zin.infolist():
            if info.filename[:-4] not in members:
                zout.writestr(info.filename, zin.read(info.filename))
        for name, data in members.items():
            zout.writestr(name + ".npy", data)
    return dst


def _load_peak(path) -> tuple[str, int]:
    tracemalloc.start()
    try:
        with pytest.raises(FlowtoolsError) as info:
            Trajectory.load(path)
        return str(info.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("field, shape", [
    ("thetas", (2**23,)),  # the reproducer's kind: one member inflating far beyond the rest
    ("losses", (2**22, 2)),
    ("ts", (1, 2**23)),
    ("status", (2**23,)),
])
def test_a_compressed_bomb_is_refused_before_it_inflates(tmp_path, field, shape):
    good = _traj().save(tmp_path / "good.npz")
    dtype = np.int8 if field == "status" else np.float64
    bomb = _rebuild(good, tmp_path / "bomb.npz", {field: _npy(np.zeros(shape, dtype))})
    assert bomb.stat().st_size < 2**20 and np.prod(shape) * np.dtype(dtype).itemsize >= 2**23
    msg, peak = _load_peak(bomb)
    assert f"field {field} has shape {shape}" in msg, msg
    assert peak < 2**20, peak  # nothing inflated


@pytest.mark.parametrize("header", [
    {"descr": "<f8", "fortran_order": False, "shape": (2**40,)},  # claims 8 TiB
    {"descr": "<f8", "fortran_order": False, "shape": (2, 3, 10**6)},
    {"descr": "<f8", "fortran_order": False, "shape": (1,)},  # claims less than it holds
])
def test_a_header_that_disagrees_with_its_member_is_refused(tmp_path, header):
    good = _traj().save(tmp_path / "good.npz")
    bad = _rebuild(good, tmp_path / "bad.npz", {"thetas": _npy(header=header,
                                                                data=b"\0" * 48)})
    msg, peak = _load_peak(bad)
    assert f"field thetas declares shape {header['shape']}" in msg and "holds 48 bytes" in msg
    assert peak < 2**20, peak


def test_consistent_arrays_over_the_memory_limit_are_refused(tmp_path, monkeypatch):
    path = _traj(batch=(64,), S=100, p=50).save(tmp_path / "t.npz")  # ~2.7 MB declared
    monkeypatch.setenv(V.MEMORY_VARIABLE, "1M")
    msg, peak = _load_peak(path)
    assert "bytes, as its headers declare) needs about" in msg and "limit of 0.000977 GiB" in msg
    assert peak < 2**20
    monkeypatch.setenv(V.MEMORY_VARIABLE, "10M")
    assert Trajectory.load(path).thetas.shape == (64, 100, 50)


def _with_meta(tmp_path, text: str) -> pathlib.Path:
    good = _traj().save(tmp_path / "good.npz")
    return _rebuild(good, tmp_path / "meta.npz", {"meta": _npy(np.asarray(text))})


@pytest.mark.parametrize("depth", [100000, 5000, 65])
def test_deeply_nested_meta_is_refused(tmp_path, depth):
    info = "[" * depth + "]" * depth
    path = _with_meta(tmp_path, '{"format": "flowtools.Trajectory", "version": 1, "info": '
                                f'{{"x": {info}}}}}')
    with pytest.raises(FlowtoolsError, match=f"nests arrays/objects {depth + 2} levels deep, "
                                             "more than 64"):
        Trajectory.load(path)


def test_meta_at_the_depth_limit_and_brackets_in_strings_load(tmp_path):
    tr = _traj()
    back = Trajectory.load(tr.save(tmp_path / "t.npz"))
    assert back.info == {"note": "[" * 1000}  # brackets inside strings do not nest
    deep = "[" * 62 + "]" * 62  # + the header object and info's object: 64 levels
    path = _with_meta(tmp_path, '{"format": "flowtools.Trajectory", "version": 1, "info": '
                                f'{{"x": {deep}}}}}')
    assert Trajectory.load(path).info["x"] == json.loads(deep)


def test_meta_longer_than_its_limit_is_refused(tmp_path, monkeypatch):
    import flowtools.trajectory as T

    monkeypatch.setattr(T, "META_MAX_CHARS", 1000)
    path = _with_meta(tmp_path, json.dumps({"format": T.FORMAT, "version": 1,
                                            "info": {"x": "y" * 2000}}))
    with pytest.raises(FlowtoolsError, match="'meta' header has 2,"):
        Trajectory.load(path)


def test_a_trajectory_path_that_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo.npz")
    with pytest.raises(FlowtoolsError, match="no trajectory file"):
        Trajectory.load(tmp_path / "fifo.npz")
    (tmp_path / "dev.npz").symlink_to("/dev/zero")
    with pytest.raises(FlowtoolsError, match="no trajectory file"):
        Trajectory.load(tmp_path / "dev.npz")


# ====================================================================== the guards
@pytest.mark.parametrize("text, nbytes", [("8G", 8 * 2**30), ("512M", 512 * 2**20),
                                          ("1.5GiB", 1.5 * 2**30), ("123456", 123456)])
def test_memory_limit_from_the_environment(monkeypatch, text, nbytes):
    monkeypatch.setenv(V.MEMORY_VARIABLE, text)
    assert V.memory_limit()[0] == nbytes


@pytest.mark.parametrize("text", ["lots", "-1G", "0", "8X"])
def test_bad_memory_limit_is_one_line(monkeypatch, text):
    monkeypatch.setenv(V.MEMORY_VARIABLE, text)
    with pytest.raises(FlowtoolsError, match=V.MEMORY_VARIABLE):
        V.memory(1.0, "x", "y")


def test_default_memory_limit_is_half_of_what_is_available(monkeypatch):
    monkeypatch.delenv(V.MEMORY_VARIABLE)
    monkeypatch.setattr(V, "available_memory", lambda: 2.0**33)
    assert V.memory_limit()[0] == 2.0**32
    with pytest.raises(FlowtoolsError, match=r"needs about 5 GiB, more than the limit of "
                                             r"4 GiB \(half of the 8 GiB available"):
        V.memory(5 * 2**30, "a test", "ask for less")


def test_padding_is_sized_before_its_zero_rows():
    import flowtools as ft

    with pytest.raises(FlowtoolsError, match="n = 1,000,000,000,000 samples.*limit of 4 GiB"):
        ft.example1().padded(10**12)


def test_available_memory_respects_an_address_space_limit(monkeypatch):
    import resource

    real = resource.getrlimit
    monkeypatch.setattr(resource, "getrlimit", lambda what: (2**32, resource.RLIM_INFINITY)
                        if what == resource.RLIMIT_AS else real(what))
    assert V.available_memory() < 2**32  # less what this process already maps


@pytest.mark.parametrize("width", ["100000", "20000"])
def test_limit_refuses_a_linearization_that_cannot_fit(capsys, width):
    err = _cli(capsys, "limit", "--width", width)
    assert f"p = {3 * int(width):,} parameters (dense" in err and "limit of 4 GiB" in err, err


def test_dense_parts_of_the_limit_are_sized_first():
    import flowtools as ft
    from flowtools.limiting import FlowSystem

    with pytest.raises(FlowtoolsError, match=r"p = 1,000,000 parameters \(dense"):
        FlowSystem.from_field(lambda x: -x, 10**6)
    with pytest.raises(FlowtoolsError, match="top eigenvectors of a width-100,000 network"):
        ft.make_problem(width=100_000).top_eigvecs
