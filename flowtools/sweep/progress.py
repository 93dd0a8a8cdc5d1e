"""Progress of a sweep: cells done / failed / cached, rate and ETA.

On a terminal, a tqdm bar on stderr. Elsewhere — a cluster job's log, ``nohup``, a file, a
pipe — one line at a time: the first after ``FIRST_LINE`` seconds (or ``interval``, if
shorter), then one every ``interval`` seconds (``LINE_INTERVAL``, 30 s; ``--progress-
interval`` in the CLI), and a last one at the end if any was printed, so that a log shows
that the sweep is alive and when it will end without being flooded:

    fig4: 16/32 cells done (4 from the store), 1 failed; 0.8 cells/s, ETA 20 s, 15 s so far

Lines are written by a helper thread, so that they come also while one long task runs.
``enabled=True`` forces the bar, ``False`` shows nothing. "cached" cells were in the store
already, "failed" ones finished with a status that is not ``ok`` (or their task raised);
the rate counts the cells computed by this run.

    >>> with Progress(total=10, cached=4, enabled=False) as bar:
    ...     bar.advance(3, failed=1)
    >>> bar.done, bar.failed, bar.cached
    (3, 1, 4)
"""

from __future__ import annotations

import sys
import threading
import time

from flowtools import _validate as V

__all__ = ["FIRST_LINE", "LINE_INTERVAL", "Progress", "progress_line"]

#: seconds between two progress lines when stderr is not a terminal
LINE_INTERVAL = 30.0
#: seconds before the first line (at most ``interval``)
FIRST_LINE = 5.0


def _duration(seconds: float) -> str:
    """"42 s", "3 min 05 s", "2 h 07 min"."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def progress_line(desc: str, total: int, cached: int, done: int, failed: int,
                  elapsed: float) -> str:
    """One line on the state of a sweep (see the module docstring).

        >>> progress_line("fig4", 32, 4, 12, 1, 15.0)
        'fig4: 16/32 cells done (4 from the store), 1 failed; 0.8 cells/s, ETA 20 s, 15 s so far'
        >>> progress_line("g", 10, 0, 0, 0, 5.0)
        'g: 0/10 cells done, 0 failed; rate not known yet, 5 s so far'
    """
    line = f"{desc}: {cached + done}/{total} cells done"
    if cached:
        line += f" ({cached} from the store)"
    line += f", {failed} failed; "
    left = total - cached - done
    if done and elapsed > 0:
        rate = done / elapsed
        shown = f"{rate:.2g} cells/s" if rate >= 0.1 else f"{rate * 60:.2g} cells/min"
        line += f"{shown}, " + (f"ETA {_duration(left / rate)}, " if left else "")
    else:
        line += "rate not known yet, "
    return line + f"{_duration(elapsed)} so far"


class Progress:
    """Counts cells and shows them: a tqdm bar on a terminal, lines every ``interval``
    seconds elsewhere (``enabled=None``); the bar (``True``) or nothing (``False``)."""

    def __init__(self, total: int, cached: int = 0, *, enabled: bool | None = None,
                 desc: str = "sweep", stream=None, interval: float = LINE_INTERVAL):
        self.total, self.cached, self.done, self.failed = total, cached, 0, 0
        self.desc = desc
        self.interval = V.positive_float(interval, "the progress interval")
        self._stream = sys.stderr if stream is None else stream
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._bar = self._thread = None
        self._printed = False
        if enabled is None:
            enabled = bool(getattr(self._stream, "isatty", lambda: False)())
            if not enabled and total > cached:
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._lines, daemon=True,
                                                name="flowtools-sweep-progress")
                self._thread.start()
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=cached, desc=desc, unit="cell",
                             file=self._stream, dynamic_ncols=True, smoothing=0.05)
            self._postfix()

    def _postfix(self):
        self._bar.set_postfix_str(f"done {self.done}, failed {self.failed}, "
                                  f"cached {self.cached}", refresh=False)

    def _line(self) -> None:
        line = progress_line(self.desc, self.total, self.cached, self.done, self.failed,
                             time.monotonic() - self._start)
        with self._lock:
            print(line, file=self._stream, flush=True)
            self._printed = True

    def _lines(self) -> None:
        wait = min(FIRST_LINE, self.interval)
        while not self._stop.wait(wait):
            self._line()
            wait = self.interval

    def advance(self, cells: int, failed: int = 0) -> None:
        """``cells`` more cells finished, ``failed`` of them not ok."""
        self.done += cells
        self.failed += failed
        if self._bar is not None:
            self._postfix()
            self._bar.update(cells)

    def write(self, line: str) -> None:
        """Print a line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            with self._lock:
                print(line, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            if self._printed:  # the log ends with the totals
                self._line()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
