"""A progress bar for sweeps: cells done / failed / cached, rate and ETA (tqdm).

Drawn on stderr when it is a terminal, silent otherwise (logs, pipes, tests), unless
forced with ``enabled=True`` / ``False``. "cached" cells were in the store already,
"failed" ones finished with a status that is not ``ok`` (or their task raised).

    >>> with Progress(total=10, cached=4, enabled=False) as bar:
    ...     bar.advance(3, failed=1)
    >>> bar.done, bar.failed, bar.cached
    (3, 1, 4)
"""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    """Counts cells and draws a tqdm bar (``enabled=None``: only on a terminal)."""

    def __init__(self, total: int, cached: int = 0, *, enabled: bool | None = None,
                 desc: str = "sweep", stream=None):
        self.total, self.cached, self.done, self.failed = total, cached, 0, 0
        stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = bool(getattr(stream, "isatty", lambda: False)())
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=cached, desc=desc, unit="cell",
                             file=stream, dynamic_ncols=True, smoothing=0.05)
            self._postfix()

    def _postfix(self):
        self._bar.set_postfix_str(f"done {self.done}, failed {self.failed}, "
                                  f"cached {self.cached}", refresh=False)

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
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
