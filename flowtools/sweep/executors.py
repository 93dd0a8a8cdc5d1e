"""Where a sweep's tasks run: in this process, on a Dask ``LocalCluster``, or on an
existing Dask cluster. Workers only compute; the driver process writes the store.

The contract (``AbstractExecutor``): ``run(fn, tasks)`` yields ``(task, result)`` pairs as
tasks finish, in any order, where ``result`` is ``fn(task.spec)`` or the exception it
raised; ``n_workers`` and ``describe()`` say what runs them; executors are context
managers (``close`` releases what they started).

* ``InProcessExecutor``: one task after the other, in the calling process.
* ``ThreadExecutor(n)``: the tasks on ``n`` threads of the calling process (default one per
  core). JAX releases the GIL while a compiled program runs, so n cells integrate at once
  without starting processes; the first task of each problem shape runs alone, so that its
  program is compiled once, then the rest of that shape on every thread.
* ``DaskExecutor()``: starts ``distributed.LocalCluster(n_workers=N, threads_per_worker=1,
  processes=True)`` — one single-threaded worker process per core, nothing to install or
  start by hand — and closes it at the end.
* ``DaskExecutor(address="tcp://host:8786")``: the workers of a running scheduler
  (``dask scheduler`` + ``dask worker``, dask-jobqueue on SLURM/PBS, Kubernetes, …).

**A scheduler that cannot be reached is said so within seconds.** The address is checked
before anything starts (``check_address``: a scheme Dask knows, a host, a port in
1–65535), then one plain connection is tried with ``connect_timeout`` (default
``CONNECT_TIMEOUT``, 10 s; ``--connect-timeout`` in the CLI): an unknown host, a refused
connection or no answer is reported at once with the address and how to start a
scheduler, instead of Dask's silent retries for two minutes.

**One compilation per problem shape, per worker at most.** A task's solver is compiled
once per worker process and problem shape (``Task.compile_key``). JAX's persistent cache
and flowtools' export cache (``flowtools._config``, ``flowtools._compile``; every worker
applies them when it imports flowtools) keep compiled programs on disk, so a worker that
switches to a shape some process has already compiled loads it (a 4-cell grid's two
programs: 1.7 s against 52.3 s compiling, 2026-12-07); but workers that start on a shape
nobody has compiled yet each compile it, and a program in memory is faster still.
``DaskExecutor`` therefore hands tasks out itself: each worker stays on
one shape while that shape has tasks left, and moves to the shape with the most pending
cells that no other worker is on (only then to one that is shared), with at most
``depth`` tasks queued per worker so that none idles while the driver reacts.
"""

from __future__ import annotations

import abc
import collections
import logging
import os
import time
from collections.abc import Callable, Iterator

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError
from flowtools.sweep.cells import Task

__all__ = ["CONNECT_TIMEOUT", "AbstractExecutor", "DaskExecutor", "InProcessExecutor",
           "ThreadExecutor", "check_address", "make_executor", "resolve_executor"]

#: seconds to wait for a Dask scheduler to answer (``connect_timeout``, --connect-timeout)
CONNECT_TIMEOUT = 10.0
# schemes whose transport is TCP: a plain connection tells whether something listens
_TCP_SCHEMES = ("tcp", "tls", "ws", "wss")


class AbstractExecutor(abc.ABC):
    """Runs tasks and yields their results as they finish (see the module docstring)."""

    @abc.abstractmethod
    def run(self, fn: Callable, tasks: list[Task]) -> Iterator[tuple[Task, object]]:
        """Yield ``(task, fn(task.spec) or the exception raised)`` for every task."""

    @property
    @abc.abstractmethod
    def n_workers(self) -> int:
        """How many tasks may run at once."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for the log, e.g. "Dask LocalCluster, 2 worker processes"."""

    def close(self) -> None:
        """Release what the executor started."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _by_compile_key(tasks):
    groups = collections.OrderedDict()
    for t in tasks:
        groups.setdefault(t.compile_key, []).append(t)
    return [t for g in groups.values() for t in g]


class InProcessExecutor(AbstractExecutor):
    """Runs the tasks one after the other in this process, grouped by problem shape."""

    def run(self, fn, tasks):
        for task in _by_compile_key(tasks):
            try:
                result = fn(task.spec)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:  # failure as data: the driver reports it
                result = err
            yield task, result

    @property
    def n_workers(self) -> int:
        return 1

    def describe(self) -> str:
        return "in-process (1 worker: this process)"


class ThreadExecutor(AbstractExecutor):
    """Runs the tasks on ``n_threads`` threads of this process (default one per core),
    grouped by problem shape: the first task of a shape alone (its program compiles once),
    then the others of that shape on every thread. Results are yielded as tasks finish;
    the caller writes them. A Ctrl-C stops handing out tasks; the running ones finish."""

    def __init__(self, n_threads: int | None = None):
        from flowtools.integrate.options import available_cores

        self._n = available_cores() if n_threads is None else V.positive_int(
            n_threads, "threads")

    def run(self, fn, tasks):
        from concurrent.futures import ThreadPoolExecutor, as_completed

        def call(task):
            try:
                return fn(task.spec)
            except Exception as err:  # failure as data: the driver reports it
                return err

        groups = collections.OrderedDict()
        for t in tasks:
            groups.setdefault(t.compile_key, []).append(t)
        pool = ThreadPoolExecutor(self._n, thread_name_prefix="flowtools-task")
        try:
            for group in groups.values():
                yield group[0], pool.submit(call, group[0]).result()
                futures = {pool.submit(call, t): t for t in group[1:]}
                for fut in as_completed(futures):
                    yield futures[fut], fut.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    @property
    def n_workers(self) -> int:
        return self._n

    def describe(self) -> str:
        return f"this process, {self._n} thread(s)"


def _worker_info():
    """Runs on a worker: import flowtools there (float64, compilation cache) and report."""
    import os
    import socket

    import jax

    import flowtools  # noqa: F401
    from flowtools.sweep.store import library_versions

    return {"pid": os.getpid(), "host": socket.gethostname(),
            "versions": library_versions(),
            "jax_cache": str(jax.config.jax_compilation_cache_dir or "")}


def check_address(address: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a Dask scheduler address ("tcp://HOST:PORT", or
    "HOST:PORT" for tcp), or a ``FlowtoolsError`` saying what is wrong with it; nothing is
    contacted."""
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import backends

    example = "tcp://HOST:8786 (e.g. tcp://127.0.0.1:8786)"
    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as err:
        raise FlowtoolsError(f"{address!r} is not a Dask scheduler address ({err}): give "
                             f"{example}.") from None
    if scheme not in backends or scheme == "inproc":
        known = ", ".join(sorted(b for b in backends if b != "inproc"))
        raise FlowtoolsError(f"{address!r}: unknown scheme {scheme!r} (Dask knows {known}): "
                             f"give {example}.")
    if not host or not isinstance(port, int) or not 1 <= port <= 65535:
        raise FlowtoolsError(f"{address!r} is not a Dask scheduler address (it needs a host "
                             f"and a port in 1-65535): give {example}.")
    return scheme, host, port


def _unreachable(address: str, reason: str, timeout: float) -> FlowtoolsError:
    port = address.rsplit(":", 1)[-1]
    return FlowtoolsError(
        f"cannot reach the Dask scheduler at {address!r}: {reason}. Start one on that "
        f"machine with `dask scheduler --port {port}` (older Dask: `dask-scheduler`) and "
        f"workers with `dask worker {address}`; or use --executor dask for a local cluster "
        f"(--connect-timeout sets how long to wait for an answer, now {timeout:g} s).")


def _within(timeout: float, fn: Callable) -> tuple[bool, object]:
    """``fn()`` in a helper thread, waited for at most ``timeout`` seconds: ``(True, its
    result or the exception it raised)``, or ``(False, None)`` if it did not return in
    time (the thread is then left behind, as a daemon: name resolution and Dask's
    connection attempts cannot be cancelled)."""
    import threading

    outcome: list = []

    def attempt():
        try:
            outcome.append(fn())
        except BaseException as err:  # handed to the caller
            outcome.append(err)

    thread = threading.Thread(target=attempt, name="flowtools-scheduler-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return (True, outcome[0]) if outcome else (False, None)


def _reach(address: str, timeout: float) -> None:
    """Make sure a Dask scheduler answers at ``address`` within ``timeout`` seconds, or
    raise a ``FlowtoolsError`` saying why not: the host is not known, nothing listens
    (refused), no answer, or something answers that is not a scheduler. Without it, Dask
    retries a refused connection silently until its timeout, and waits without bound for
    a peer that accepts and says nothing."""
    import asyncio
    import socket

    from distributed.comm import connect
    from distributed.security import Security

    scheme, host, port = check_address(address)
    deadline = time.monotonic() + timeout
    if scheme in _TCP_SCHEMES:  # a plain connection first: why it fails, at once
        done, err = _within(timeout, lambda: socket.create_connection(
            (host, port), timeout=timeout).close())
        if not done or isinstance(err, TimeoutError):
            raise _unreachable(address, f"no answer within {timeout:g} s", timeout)
        if isinstance(err, socket.gaierror):
            raise _unreachable(address, f"the host {host!r} is not known "
                               f"({err.strerror or err})", timeout)
        if isinstance(err, ConnectionRefusedError):
            raise _unreachable(address, f"nothing listens on port {port} of {host} "
                               "(connection refused)", timeout)
        if isinstance(err, OSError):
            raise _unreachable(address, err.strerror or str(err), timeout)

    # the client's connection settings (TLS from the Dask configuration, as Client uses)
    settings = Security().get_connection_args("client")

    async def identity():
        comm = await connect(address, timeout=max(deadline - time.monotonic(), 0.1),
                             **settings)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    left = max(deadline - time.monotonic(), 0.1)
    done, reply = _within(left, lambda: asyncio.run(asyncio.wait_for(identity(), left)))
    if not done or isinstance(reply, (TimeoutError, asyncio.TimeoutError)):
        raise _unreachable(address, f"something accepts connections there but does not "
                           f"answer as a Dask scheduler within {timeout:g} s", timeout)
    if isinstance(reply, BaseException):
        raise _unreachable(address, "something answers there, but not as a Dask scheduler "
                           f"({type(reply).__name__}: {reply})", timeout)
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise _unreachable(address, f"what answers there is a Dask {kind}, not a scheduler"
                           if isinstance(kind, str) else "what answers there is not a Dask "
                           "scheduler", timeout)


class DaskExecutor(AbstractExecutor):
    """Tasks on Dask workers: a new ``LocalCluster`` of ``n_workers`` single-threaded
    processes (default: one per core), or the scheduler at ``address``.

    Args:
        address: a running scheduler ("tcp://host:8786"); None starts a LocalCluster.
        n_workers: LocalCluster size (ignored with ``address``).
        depth: tasks queued per worker (2: one running, one ready).
        timeout: seconds to wait for the first worker (and for any worker when all left).
        connect_timeout: seconds to wait for the scheduler at ``address`` to answer
            (``CONNECT_TIMEOUT``, 10 s).
    """

    def __init__(self, address: str | None = None, n_workers: int | None = None, *,
                 depth: int = 2, timeout: float = 120.0,
                 connect_timeout: float = CONNECT_TIMEOUT):
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - a dependency of flowtools
            raise FlowtoolsError("the dask executor needs dask[distributed]: pip install "
                                 "'dask[distributed]'.") from None
        self.address = address
        self.depth = V.positive_int(depth, "depth")
        self.timeout = V.positive_float(timeout, "timeout")
        self.connect_timeout = V.positive_float(connect_timeout, "the connect timeout")
        self.cluster = None
        if address is None:
            n = (os.cpu_count() or 1) if n_workers is None else V.positive_int(n_workers,
                                                                             "workers")
            import dask

            # the driver places every task itself (one compilation per shape and worker
            # where possible): no stealing
            with dask.config.set({"distributed.scheduler.work-stealing": False}):
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=1,
                                            processes=True, dashboard_address=None,
                                            silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            _reach(address, self.connect_timeout)
            try:
                self.client = Client(address, timeout=self.connect_timeout)
            except (OSError, TimeoutError) as err:  # it answered a moment ago
                raise _unreachable(address, str(err), self.connect_timeout) from None
        try:  # a LocalCluster: all of them, so that the first tasks spread at once
            self.client.wait_for_workers(1 if address else n, timeout=self.timeout)
        except TimeoutError:
            self.close()
            raise FlowtoolsError(f"no Dask worker joined the scheduler {address!r} within "
                                 f"{self.timeout:g} s: start some with `dask worker "
                                 f"{address}`.") from None
        self.worker_info = self.client.run(_worker_info)
        self._check_versions()

    def _check_versions(self):
        from flowtools.sweep.store import library_versions

        mine = library_versions()
        bad = {w: i["versions"] for w, i in self.worker_info.items() if i["versions"] != mine}
        if bad:
            w, v = next(iter(bad.items()))
            self.close()
            raise FlowtoolsError(f"{len(bad)} Dask worker(s) run other library versions than "
                                 f"this process ({w}: {v}; here: {mine}): results would not "
                                 "match the store's key. Install the same versions on the "
                                 "workers.")

    @property
    def n_workers(self) -> int:
        return len(self._workers())

    def _workers(self) -> list[str]:
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def describe(self) -> str:
        n = len(self._workers())
        if self.cluster is not None:
            return f"Dask LocalCluster, {n} single-threaded worker process(es)"
        return f"Dask scheduler {self.address}, {n} worker(s)"

    def run(self, fn, tasks):
        from distributed import wait

        queues: dict[str, collections.deque] = collections.OrderedDict()
        for t in tasks:
            queues.setdefault(t.compile_key, collections.deque()).append(t)
        inflight: dict = {}  # future -> (task, worker)
        assigned: dict[str, str] = {}  # worker -> the compile key it works on
        compiled = collections.defaultdict(set)  # worker -> keys it has compiled
        stats = collections.defaultdict(lambda: {"cells": 0, "seconds": 0.0, "compile": 0.0})
        lonely_since = None
        try:
            while queues or inflight:
                workers = self._workers()
                self._requeue_lost(workers, inflight, queues, assigned)
                load = collections.Counter(w for _, w in inflight.values())
                for w in workers:
                    while load[w] < self.depth and queues:
                        key = assigned.get(w)
                        if key not in queues:
                            key = self._pick(queues, assigned, w, compiled, stats)
                            if key is None:
                                break  # every shape left is in hand: wait (see _pick)
                            assigned[w] = key
                        task = queues[key].popleft()
                        if not queues[key]:
                            del queues[key]
                        # strict placement (stealing would make another worker compile);
                        # a worker that leaves gets its tasks requeued (_requeue_lost)
                        fut = self.client.submit(fn, task.spec, workers=[w],
                                                 allow_other_workers=False, pure=False,
                                                 key=f"flowtools-sweep-task-{task.number}-"
                                                     f"{os.urandom(4).hex()}")
                        inflight[fut] = (task, w)
                        load[w] += 1
                if not inflight:
                    if lonely_since is None:
                        lonely_since = time.monotonic()
                    elif time.monotonic() - lonely_since > self.timeout:
                        raise FlowtoolsError(f"no Dask worker left for {self.timeout:g} s; "
                                             f"{sum(map(len, queues.values()))} task(s) not "
                                             "run (they stay missing in the store).")
                    time.sleep(0.5)
                    continue
                lonely_since = None
                try:
                    finished, _ = wait(list(inflight), timeout=5.0,
                                       return_when="FIRST_COMPLETED")
                except TimeoutError:  # nothing finished yet: look at the workers again
                    continue
                for fut in finished:
                    task, w = inflight.pop(fut)
                    if fut.status == "finished":
                        out = fut.result()
                        meta = out.get("_meta", {}) if isinstance(out, dict) else {}
                        st = stats[task.compile_key]
                        st["cells"] += task.n_cells
                        st["seconds"] += max(meta.get("seconds", 0.0)
                                             - meta.get("compile_time", 0.0), 0.0)
                        st["compile"] = max(st["compile"], meta.get("compile_time", 0.0))
                        compiled[w].add(task.compile_key)
                        yield task, out
                    else:
                        err = fut.exception()
                        yield task, err if isinstance(err, BaseException) else RuntimeError(
                            f"task {task.number} {fut.status}")
                    fut.release()
        finally:
            if inflight:
                self.client.cancel(list(inflight))

    def _requeue_lost(self, workers, inflight, queues, assigned):
        """Tasks placed on a worker that has left go back to the front of their queue."""
        alive = set(workers)
        for w in [w for w in assigned if w not in alive]:
            del assigned[w]
        lost = [(f, t) for f, (t, w) in inflight.items() if w not in alive]
        for fut, task in lost:
            del inflight[fut]
            fut.cancel()
            queues.setdefault(task.compile_key, collections.deque()).appendleft(task)

    @staticmethod
    def _pick(queues, assigned, worker, compiled, stats):
        """The compile key ``worker`` should take next, or None to wait.

        A shape no other worker is on (most pending cells first; one this worker compiled
        before first of all). A shape in another worker's hands is joined only when its
        remaining work, split among its workers, is longer than a compilation here (zero
        if this worker compiled it already): so a worker does not compile for seconds to
        take two short tasks another worker would finish before it is ready."""
        others = collections.Counter(k for w, k in assigned.items() if w != worker)
        pending = {k: sum(t.n_cells for t in q) for k, q in queues.items()}
        free = [k for k in queues if k not in others]
        if free:
            return max(free, key=lambda k: (k in compiled[worker], pending[k]))
        best, gain = None, 0.0
        compile_any = max((s["compile"] for s in stats.values()), default=0.0)
        for k in queues:
            s = stats.get(k)
            if not s or not s["cells"]:
                continue  # no timing yet (its worker may still be compiling): wait
            remaining = pending[k] * s["seconds"] / s["cells"] / others[k]
            cost = 0.0 if k in compiled[worker] else (s["compile"] or compile_any)
            if remaining - cost > gain:
                best, gain = k, remaining - cost
        return best

    def close(self) -> None:
        client, cluster = getattr(self, "client", None), getattr(self, "cluster", None)
        self.client = self.cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def make_executor(executor="local", workers: int | None = None, *,
                  connect_timeout: float = CONNECT_TIMEOUT) -> AbstractExecutor:
    """An executor from a name: "local" (in this process), "dask" (a LocalCluster of
    ``workers`` processes, default one per core), a scheduler address ("tcp://host:port"
    or "host:port"; ``connect_timeout``: seconds to wait for it to answer), "auto" (dask
    if ``workers`` > 1, else local), or an ``AbstractExecutor`` (returned as is)."""
    return resolve_executor(executor, workers, connect_timeout=connect_timeout)()


def resolve_executor(executor="local", workers: int | None = None, *,
                     connect_timeout: float = CONNECT_TIMEOUT
                     ) -> Callable[[], AbstractExecutor]:
    """Check the arguments of ``make_executor`` without starting anything (a scheduler
    address is checked by ``check_address``, not contacted); return the function that
    starts the executor."""
    if isinstance(executor, AbstractExecutor):
        return lambda: executor
    connect_timeout = V.positive_float(connect_timeout, "the connect timeout")
    if workers is not None:
        workers = V.positive_int(workers, "workers")
    if executor in (None, "auto"):
        executor = "dask" if workers and workers > 1 else "local"
    if not isinstance(executor, str):
        raise FlowtoolsError(f"executor must be 'local', 'threads', 'dask' or a scheduler "
                             f"address, got {executor!r}.")
    if executor == "local":
        if workers not in (None, 1):
            raise FlowtoolsError(f"the local (in-process) executor runs one task at a time; "
                                 f"for --workers {workers} use --executor dask.")
        return InProcessExecutor
    if executor == "threads":
        return lambda: ThreadExecutor(workers)
    if executor == "dask":
        return lambda: DaskExecutor(n_workers=workers)
    if "://" in executor or ":" in executor:
        check_address(executor)
        return lambda: DaskExecutor(address=executor, connect_timeout=connect_timeout)
    raise FlowtoolsError(f"unknown executor {executor!r}: use local, threads, dask, or a "
                         "Dask scheduler address such as tcp://127.0.0.1:8786.")
