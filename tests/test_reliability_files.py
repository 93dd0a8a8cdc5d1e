"""Issue 20, classes 1 and 7: files never follow a planted link; the compile cache is
trusted only as far as its folder, and bounded.

Class 1: every file flowtools creates or replaces — lock files, temporaries of atomic
writes, store chunks and metadata, compile-cache entries, ``--out`` contents — is opened by
``flowtools._io.safe_open`` (``O_NOFOLLOW``; ``O_EXCL`` on a new random name; for a lock a
regular file of the user). Each test plants a link (or another non-file) where flowtools
writes and checks that the link's target is left exactly as it was.

Class 7: a compile-cache entry is used only from a folder that only the user can write and
only if its HMAC (under the folder's private key) verifies; the cache is bounded by
``FLOWTOOLS_CACHE_MAX_BYTES`` with least-recently-used eviction. The programs compiled here
are tiny (``_ray_coefficients`` of ``sin`` or ``tanh`` at p = 1): about a second each.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import stat
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from flowtools import _compile as C
from flowtools import _io
from flowtools.cli import main
from flowtools.errors import FlowtoolsError
from flowtools.sweep import store as S

PRECIOUS = b"someone else's file\n"


def _victim(tmp_path, kind="file"):
    """A file (or folder) that a planted link points to, with its content to compare."""
    v = tmp_path / "victim"
    if kind == "file":
        v.write_bytes(PRECIOUS)
    elif kind == "folder":
        v.mkdir()
        (v / "inside").write_bytes(PRECIOUS)
    return v  # "absent": a dangling link's target


def _state(v: pathlib.Path):
    if v.is_symlink():
        return ("link", os.readlink(v))
    if v.is_dir():
        return ("folder", sorted((p.name, p.read_bytes()) for p in v.iterdir()))
    if v.exists():
        return ("file", v.read_bytes(), stat.S_IMODE(v.stat().st_mode))
    return ("absent",)


# ============================================================ class 1: the sweep's lock
TINY_GRID = """\
[sweep]
name = "tiny"
cells_per_task = 1
[problem]
n = 4
[init]
scale = 1e-4
seed = [0, 1]
[integrator]
dynamics = "gd"
lr = 0.05
max_iter = 200
loss_threshold = 0.0
"""


def test_reproducer_sweep_refuses_a_lock_link_and_leaves_its_target(tmp_path, capsys,
                                                                     monkeypatch):
    # ln -s ~/important .X.zarr.lock; flowtools sweep g.toml --store X.zarr
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.toml").write_text(TINY_GRID)
    important = _victim(tmp_path)
    os.symlink("victim", tmp_path / ".X.zarr.lock")
    assert main(["sweep", "g.toml", "--store", "X.zarr"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ".X.zarr.lock" in err and "symbolic link" in err
    assert important.read_bytes() == PRECIOUS
    assert (tmp_path / ".X.zarr.lock").is_symlink()  # left for its owner to look at
    assert not (tmp_path / "X.zarr").exists()


def test_a_store_path_that_is_a_dangling_link_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.toml").write_text(TINY_GRID)
    os.symlink("victim", tmp_path / "X.zarr")
    assert main(["sweep", "g.toml", "--store", "X.zarr"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "link to nothing" in err
    assert not (tmp_path / "victim").exists()


def _plant(tmp_path, lock: pathlib.Path, case: str):
    """Put a ``case`` where the lock file goes; return what must stay untouched."""
    if case == "link-to-file":
        v = _victim(tmp_path)
        os.symlink(v, lock)
    elif case == "dangling-link":
        v = _victim(tmp_path, "absent")
        os.symlink(v, lock)
    elif case == "link-to-folder":
        v = _victim(tmp_path, "folder")
        os.symlink(v, lock)
    elif case == "hard-link":
        v = _victim(tmp_path)
        os.link(v, lock)
    elif case == "folder":
        lock.mkdir()
        v = lock
    elif case == "fifo":
        os.mkfifo(lock)
        v = tmp_path / "victim"
    else:
        raise AssertionError(case)
    return v


LOCK_CASES = ["link-to-file", "dangling-link", "link-to-folder", "hard-link", "folder",
              "fifo"]
WHY = {"link-to-file": "symbolic link", "dangling-link": "symbolic link",
       "link-to-folder": "symbolic link", "hard-link": "hard link", "folder": "folder",
       "fifo": "FIFO"}


@pytest.mark.parametrize("flock", [True, False], ids=["flock", "o_excl-fallback"])
@pytest.mark.parametrize("case", LOCK_CASES)
def test_store_lock_refuses_what_is_not_its_own_file(tmp_path, monkeypatch, case, flock):
    if case == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    if not flock:  # a file system without flock: the O_EXCL lock file, read back
        monkeypatch.setattr(S, "_flock", lambda *a: None)
    lock = tmp_path / ".X.zarr.lock"
    v = _plant(tmp_path, lock, case)
    before = _state(v)
    with pytest.raises(FlowtoolsError) as info:
        with S.store_lock(tmp_path / "X.zarr"):
            raise AssertionError("the lock was taken")
    msg = str(info.value)
    assert "\n" not in msg and ".X.zarr.lock" in msg and WHY[case] in msg, msg
    assert _state(v) == before


def test_store_lock_refuses_another_users_lock_file(tmp_path, monkeypatch):
    lock = tmp_path / ".X.zarr.lock"
    lock.write_bytes(PRECIOUS)
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)  # the file is now someone else's
    with pytest.raises(FlowtoolsError, match="another user"):
        with S.store_lock(tmp_path / "X.zarr"):
            pass
    assert lock.read_bytes() == PRECIOUS


def test_store_lock_still_works_and_is_reentrant_after_release(tmp_path):
    for _ in range(2):  # the lock file of an earlier run (ours, regular) is reused
        with S.store_lock(tmp_path / "X.zarr"):
            lock = tmp_path / ".X.zarr.lock"
            assert lock.is_file() and not lock.is_symlink()
            with pytest.raises(S.StoreBusy):
                with S.store_lock(tmp_path / "X.zarr"):
                    pass
    lock.write_text("{}")  # left by a killed run: taken over
    with S.store_lock(tmp_path / "X.zarr"):
        pass


# ============================================================ class 1: temporaries
def test_a_link_at_the_temporary_name_is_never_followed(tmp_path, monkeypatch):
    # make the "random" part predictable: the first name tried is planted as a link
    names = iter(["deadbeef", "deadbeef", "0badf00d"])
    monkeypatch.setattr(_io.secrets, "token_hex", lambda n: next(names))
    v = _victim(tmp_path)
    os.symlink(v, tmp_path / ".out.json.deadbeef.tmp")
    dangling = tmp_path / "nowhere"
    _io.write_json(tmp_path / "out.json", {"a": 1})
    assert v.read_bytes() == PRECIOUS
    assert (tmp_path / ".out.json.deadbeef.tmp").is_symlink()
    assert (tmp_path / "out.json").read_text().strip() == '{\n "a": 1\n}'
    # the same with a dangling link: the kernel's O_EXCL never creates its target
    os.symlink(dangling, tmp_path / ".x.bin.deadbeef.partial")
    monkeypatch.setattr(_io.secrets, "token_hex",
                        lambda n, it=iter(["deadbeef", "12345678"]): next(it))
    S.write_file_atomic(tmp_path / "x.bin", b"data")
    assert not dangling.exists() and (tmp_path / "x.bin").read_bytes() == b"data"


@pytest.mark.parametrize("kind", ["file", "folder", "absent"])
def test_an_output_that_is_a_link_is_replaced_not_written_through(tmp_path, kind):
    v = _victim(tmp_path, kind)
    before = _state(v)
    out = tmp_path / "result.json"
    os.symlink(v, out)
    _io.write_json(out, {"b": 2})
    assert _state(v) == before
    assert out.is_file() and not out.is_symlink() and '"b": 2' in out.read_text()


@pytest.mark.parametrize("kind", ["file", "folder", "absent"])
def test_staged_outputs_replace_planted_links(tmp_path, kind):
    v = _victim(tmp_path, kind)
    before = _state(v)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.json", "figs", "done.json"):
        os.symlink(v, out / name)
    with _io.staged_outputs(out, ["a.json", "figs", "done.json"]) as stage:
        _io.write_json(stage / "a.json", {"a": 1})
        (stage / "figs").mkdir()
        _io.write_text(stage / "figs" / "f.txt", "f")
        _io.write_json(stage / "done.json", {"done": True})
    assert _state(v) == before
    assert (out / "a.json").is_file() and not (out / "a.json").is_symlink()
    assert (out / "figs" / "f.txt").read_text() == "f" and not (out / "figs").is_symlink()
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "done.json", "figs"]


def test_run_out_contents_that_are_links_leave_their_targets(tmp_path, capsys):
    file_v, folder_v = _victim(tmp_path), tmp_path / "victim_dir"
    folder_v.mkdir()
    (folder_v / "inside").write_bytes(PRECIOUS)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(file_v, out / "summary.json")
    os.symlink(folder_v, out / "trajectory.npz")
    os.symlink(tmp_path / "nowhere", out / "trajectory.png")
    assert main(["run", "--method", "gd", "--lr", "0.05", "--max-iter", "50", "--out",
                 str(out)]) == 0
    assert file_v.read_bytes() == PRECIOUS
    assert [p.name for p in folder_v.iterdir()] == ["inside"]
    assert not (tmp_path / "nowhere").exists()
    for name in ("summary.json", "trajectory.npz", "trajectory.png"):
        assert (out / name).is_file() and not (out / name).is_symlink(), name


# ============================================================ class 1: store chunks
def _zarr_store(tmp_path):
    import zarr

    root = tmp_path / "X.zarr"
    group = zarr.open_group(store=S._atomic_store_class()(root), mode="w-", zarr_format=3)
    arr = group.create_array("a", shape=(4,), chunks=(2,), dtype="f8", fill_value=0.0)
    return root, arr


@pytest.mark.parametrize("where", ["chunk-folder", "array-folder-of-new-array"])
def test_a_folder_link_inside_a_store_is_refused(tmp_path, where):
    root, arr = _zarr_store(tmp_path)
    v = _victim(tmp_path, "folder")
    before = _state(v)
    if where == "chunk-folder":
        os.symlink(v, root / "a" / "c")
        with pytest.raises(FlowtoolsError, match="symbolic link, not a folder"):
            arr[0:2] = np.ones(2)
    else:
        import zarr

        os.symlink(v, root / "b")
        group = zarr.open_group(store=S._atomic_store_class()(root), mode="r+")
        with pytest.raises(FlowtoolsError, match="symbolic link, not a folder"):
            group.create_array("b", shape=(2,), dtype="f8")
    assert _state(v) == before


@pytest.mark.parametrize("name", ["a/c/0", "a/zarr.json"])
def test_a_chunk_or_metadata_link_in_a_store_is_replaced(tmp_path, name):
    root, arr = _zarr_store(tmp_path)
    if name == "a/c/0":
        arr[0:2] = np.ones(2)
    v = _victim(tmp_path)
    (root / name).unlink()
    os.symlink(v, root / name)
    if name == "a/c/0":
        arr[0:2] = np.full(2, 3.0)
        assert np.array_equal(arr[:], [3.0, 3.0, 0.0, 0.0])
    else:
        arr.attrs["note"] = "x"
    assert v.read_bytes() == PRECIOUS
    assert (root / name).is_file() and not (root / name).is_symlink()


def test_every_zarr_write_goes_through_write_file_atomic(tmp_path, monkeypatch):
    """zarr's set, set_if_not_exists and set_sync all take the no-link path."""
    from zarr.core.buffer import default_buffer_prototype

    calls = []
    real = S.write_file_atomic
    monkeypatch.setattr(S, "write_file_atomic", lambda *a, **k: (calls.append(k),
                                                                 real(*a, **k)))
    store = S._atomic_store_class()(tmp_path / "X.zarr")
    buf = default_buffer_prototype().buffer.from_bytes(b"xyz")
    store.set_sync("k/1", buf)
    from zarr.core.sync import sync

    sync(store.set("k/2", buf))
    sync(store.set_if_not_exists("k/2", default_buffer_prototype().buffer.from_bytes(b"no")))
    assert [c["root"] for c in calls] == [tmp_path / "X.zarr"] * 3
    assert (tmp_path / "X.zarr" / "k" / "2").read_bytes() == b"xyz"  # not overwritten


# ============================================================ class 7: compile cache
pytestmark_export = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("flatbuffers") is None,
    reason="jax.export's serialization needs the package flatbuffers")

Q1, J, MU = jnp.ones(1), jnp.zeros((1, 1)), jnp.float64(1.0)
# the last Taylor coefficient of the ray at order 3: -1/18 for sin, -1/9 for tanh
EXPECTED = {"sin": -1 / 18, "tanh": -1 / 9}


def _coefficients(name: str, order: int = 3) -> float:
    from flowtools.limiting.manifold import _ray_coefficients

    f = getattr(jnp, name)
    exe, _ = C.compiled(_ray_coefficients, f, Q1, J, MU, order)
    return float(np.asarray(exe(f, Q1, J, MU, order)).ravel()[-1])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh export-cache folder, an empty in-process cache and fresh warnings."""
    folder = tmp_path / "export"
    monkeypatch.setenv("FLOWTOOLS_EXPORT_CACHE", str(folder))
    monkeypatch.delenv("FLOWTOOLS_CACHE_MAX_BYTES", raising=False)
    monkeypatch.setattr(C, "_WARNED", set())
    monkeypatch.setattr(C, "_CACHE", {})  # a dict of this test's: cleared for a new process
    return folder


def _entries(folder):
    return sorted(folder.glob("*" + C._SUFFIX))


def _header_len(data: bytes) -> int:
    return data.index(b"\n", len(C._MAGIC)) + 1


@pytestmark_export
@pytest.mark.parametrize("forgery", ["sha256-recomputed", "other-key", "genuine-of-other"])
def test_a_swapped_program_is_not_loaded(cache, monkeypatch, forgery, caplog):
    assert _coefficients("tanh") == pytest.approx(EXPECTED["tanh"])
    (tanh_entry,) = _entries(cache)
    tanh_data = tanh_entry.read_bytes()
    tanh_entry.unlink()
    C._CACHE.clear()  # as in a new process
    assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    (sin_entry,) = _entries(cache)
    sin_data = sin_entry.read_bytes()
    sin_head = sin_data[:_header_len(sin_data)]
    tanh_blob = tanh_data[_header_len(tanh_data) + 32:]
    if forgery == "sha256-recomputed":  # the attack of the issue: checksum recomputed
        forged = sin_head + hashlib.sha256(tanh_blob).digest() + tanh_blob
    elif forgery == "other-key":  # a well-formed entry under someone else's key
        forged = sin_head + C._mac(os.urandom(32), sin_head, tanh_blob) + tanh_blob
    else:  # a valid entry of the tanh program, renamed: its HMAC binds it to its key
        forged = sin_head + tanh_data[_header_len(tanh_data):]
    sin_entry.write_bytes(forged)
    C._CACHE.clear()  # as in a new process
    with caplog.at_level(logging.WARNING, logger="flowtools.compile"):
        assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])  # sin, not tanh
    assert any("HMAC" in r.getMessage() for r in caplog.records)
    # overwritten with the right program, used from now on
    assert sin_entry.read_bytes() != forged
    C._CACHE.clear()  # as in a new process
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="flowtools.compile"):
        assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    assert not caplog.records


@pytestmark_export
@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777], ids=["770", "707", "777"])
def test_a_folder_others_can_write_is_not_used(cache, mode):
    cache.mkdir()
    os.chmod(cache, mode)
    with pytest.warns(C.CacheNotUsed, match="others can write in it"):
        assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    assert list(cache.iterdir()) == []  # nothing read, nothing written
    C._CACHE.clear()  # as in a new process
    assert _coefficients("tanh") == pytest.approx(EXPECTED["tanh"])  # warned once only
    os.chmod(cache, 0o700)


@pytestmark_export
def test_a_folder_of_another_user_is_not_used(cache, monkeypatch):
    cache.mkdir(mode=0o700)
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    with pytest.warns(C.CacheNotUsed, match="another user"):
        assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    assert list(cache.iterdir()) == []


@pytestmark_export
@pytest.mark.parametrize("damage", ["mode-0644", "link", "short"])
def test_a_key_file_that_is_not_private_disables_the_cache(cache, tmp_path, damage):
    assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    key = cache / C._KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_size == 32
    if damage == "mode-0644":
        os.chmod(key, 0o644)
        why = "can be read or written by others"
    elif damage == "link":  # someone's key of their own, linked in
        (tmp_path / "their.key").write_bytes(os.urandom(32))
        os.chmod(tmp_path / "their.key", 0o600)
        key.unlink()
        os.symlink(tmp_path / "their.key", key)
        why = "symbolic link"
    else:
        key.write_bytes(b"short")
        why = "damaged"
    entry_before = {p.name: p.read_bytes() for p in _entries(cache)}
    C._CACHE.clear()  # as in a new process
    with pytest.warns(C.CacheNotUsed, match=why):
        assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    assert {p.name: p.read_bytes() for p in _entries(cache)} == entry_before


@pytestmark_export
def test_a_new_key_is_private_and_made_without_following_a_link(cache, tmp_path):
    cache.mkdir(mode=0o700)
    v = _victim(tmp_path, "absent")
    os.symlink(v, cache / C._KEY_FILE)  # dangling: must not be created through
    with pytest.warns(C.CacheNotUsed, match="symbolic link"):
        assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    assert not v.exists()
    (cache / C._KEY_FILE).unlink()
    C._CACHE.clear()  # as in a new process
    assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    st = (cache / C._KEY_FILE).lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


@pytestmark_export
def test_an_entry_name_planted_as_a_link_is_replaced(cache, tmp_path):
    assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    (entry,) = _entries(cache)
    entry.unlink()
    v = _victim(tmp_path)
    os.symlink(v, entry)
    C._CACHE.clear()  # as in a new process
    assert _coefficients("sin") == pytest.approx(EXPECTED["sin"])
    assert v.read_bytes() == PRECIOUS
    assert entry.is_file() and not entry.is_symlink()


@pytestmark_export
def test_least_recently_used_entries_are_evicted_under_the_limit(cache, monkeypatch):
    by_order = {}
    for order in (2, 3, 4):  # three programs, one entry each
        C._CACHE.clear()  # as in a new process
        before = set(_entries(cache))
        _coefficients("sin", order)
        (by_order[order],) = set(_entries(cache)) - before
    for age, order in enumerate((2, 3, 4)):
        os.utime(by_order[order], ns=(10**18 + age * 10**9,) * 2)
    # order 2 is used again (a hit): it becomes the newest
    C._CACHE.clear()  # as in a new process
    _coefficients("sin", 2)
    assert by_order[2].stat().st_mtime_ns > by_order[4].stat().st_mtime_ns
    # room for three entries, a fourth program: the least recently used (order 3) goes
    sizes = {o: p.stat().st_size for o, p in by_order.items()}
    limit = sizes[2] + 2 * sizes[4] + sizes[3] // 2  # 2, 4 and the new one (~ 4's size)
    monkeypatch.setenv("FLOWTOOLS_CACHE_MAX_BYTES", str(limit))
    C._CACHE.clear()  # as in a new process
    _coefficients("sin", 5)
    left = _entries(cache)
    assert by_order[3] not in left and by_order[2] in left and by_order[4] in left
    assert len(left) == 3 and sum(p.stat().st_size for p in left) <= limit
    assert (cache / C._KEY_FILE).exists()  # the key is not an entry
    # a limit below every entry keeps none; results are unchanged
    monkeypatch.setenv("FLOWTOOLS_CACHE_MAX_BYTES", "0")
    C._CACHE.clear()  # as in a new process
    assert _coefficients("tanh") == pytest.approx(EXPECTED["tanh"])
    assert C.evict(cache) == 3 and _entries(cache) == []


def test_evict_removes_stale_temporaries_and_reads_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "_WARNED", set())
    for i, size in enumerate((100, 200, 300)):
        p = tmp_path / f"f-{i}{C._SUFFIX}"
        p.write_bytes(b"x" * size)
        os.utime(p, ns=(10**18 + i * 10**9,) * 2)
    stale = tmp_path / f".f-9{C._SUFFIX}.abcd1234.tmp"
    fresh = tmp_path / f".f-8{C._SUFFIX}.abcd1234.tmp"
    stale.write_bytes(b"t")
    fresh.write_bytes(b"t")
    os.utime(stale, (1, 1))
    os.symlink(tmp_path / "nowhere", tmp_path / f"link{C._SUFFIX}")  # not an entry
    assert C.evict(tmp_path, 500) == 2  # the oldest entry and the stale temporary
    assert sorted(p.name for p in tmp_path.glob(f"f-*{C._SUFFIX}")) == [
        f"f-1{C._SUFFIX}", f"f-2{C._SUFFIX}"]
    assert fresh.exists() and not stale.exists()
    monkeypatch.setenv("FLOWTOOLS_CACHE_MAX_BYTES", "1e6")
    assert C.max_bytes() == 10**6
    monkeypatch.delenv("FLOWTOOLS_CACHE_MAX_BYTES")
    assert C.max_bytes() == 256 * 2**20
    monkeypatch.setenv("FLOWTOOLS_CACHE_MAX_BYTES", "lots")
    with pytest.warns(C.CacheNotUsed, match="FLOWTOOLS_CACHE_MAX_BYTES"):
        assert C.max_bytes() == 256 * 2**20


@pytest.mark.parametrize("mode", [0o775, 0o757], ids=["group", "world"])
def test_private_folder_names_what_is_wrong(tmp_path, mode, monkeypatch):
    new = tmp_path / "a" / "cache"
    assert _io.private_folder(new) is None  # created, private
    assert stat.S_IMODE(new.stat().st_mode) == 0o700
    os.chmod(new, mode)
    assert "others can write in it" in _io.private_folder(new)
    os.chmod(new, 0o700)
    (tmp_path / "f").write_text("")
    assert _io.private_folder(tmp_path / "f") == "it is not a folder"
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    assert "another user" in _io.private_folder(new)


def test_a_jax_cache_folder_others_can_write_is_not_used(tmp_path):
    folder = tmp_path / "jax"
    folder.mkdir()
    os.chmod(folder, 0o777)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTOOLS_")}
    env["FLOWTOOLS_JAX_CACHE"] = str(folder)
    code = ("import jax, flowtools\n"
            "from flowtools import _config\n"
            "print(_config.JAX_CACHE_DIR, _config.export_cache_dir(),"
            " jax.config.jax_compilation_cache_dir)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "CacheNotUsed" in proc.stderr and "others can write in it" in proc.stderr
    assert proc.stdout.split() == ["None", "None", "None"]
    assert list(folder.iterdir()) == []
    os.chmod(folder, 0o700)
