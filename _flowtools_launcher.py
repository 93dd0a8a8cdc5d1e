"""The process entry of the ``flowtools`` command (``[project.scripts]`` in pyproject.toml;
``python -m flowtools.cli`` enters here too).

Why a module of its own, outside the ``flowtools`` package: importing anything inside the
package runs ``flowtools/__init__.py`` first, and that imports JAX, NumPy, SciPy and SymPy
(seconds). A Ctrl-C in those seconds lands before any ``try`` of the command could catch
it: Python prints a traceback; or an extension module that was initializing prints the
interrupt and raises an ``ImportError`` instead; or the interrupt lands in a callback whose
exceptions Python only reports ("Exception ignored in ...") and the command goes on. This
module imports the standard library only, so its own import is instantaneous, and sets up
the Ctrl-C rules before it imports flowtools:

1. While flowtools and its subcommands are imported, nothing has been written yet: Ctrl-C
   prints "flowtools: interrupted" and the process exits at once with status 130.
2. Afterwards Ctrl-C raises ``KeyboardInterrupt`` as usual (so that files being written are
   cleaned up), and the process remembers that it came: an exception that ends the command
   after a Ctrl-C — the interrupt itself, one caused by it, or the ``ImportError`` of an
   extension module whose initialization it stopped — gives one line and 130. An
   interrupt that lands in a callback whose exceptions are only reported is raised again
   in the main thread (``interrupts_not_lost``), and it is not printed as a traceback.

Only ``python -m flowtools.cli`` leaves a gap: Python imports the ``flowtools`` package
before any code of the command runs (the console script has none).
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import time

__all__ = ["caused_by_interrupt", "interrupts_not_lost", "main"]

_MESSAGE = "flowtools: interrupted\n"
_seen = {"sigint": False}  # set by the SIGINT handler of the running command


def caused_by_interrupt(err: BaseException | None) -> bool:
    """Whether ``err`` is a ``KeyboardInterrupt``, was raised because of one (its
    ``__cause__``/``__context__`` chain holds one), or ended a command after a Ctrl-C
    (an extension module interrupted while initializing reports the interrupt itself and
    raises an ``ImportError`` without it)."""
    if err is not None and _seen["sigint"]:
        return True
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _interrupt_later() -> None:
    time.sleep(0.005)
    _thread.interrupt_main()


@contextlib.contextmanager
def interrupts_not_lost():
    """Make Ctrl-C reach the command even when it lands in a callback whose exceptions
    Python only reports (JAX runs one at every garbage collection: the KeyboardInterrupt
    would be printed as "Exception ignored in ..." and the command would go on). Such an
    interrupt is raised again in the main thread a few milliseconds later, once it has
    left the callback (from a new thread: raised at once it would be swallowed again; the
    thread is started without waiting for it, so that the hook returns at once)."""
    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            _thread.start_new_thread(_interrupt_later, ())
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _exit_at_once(signum, frame):
    """Rule 1: nothing is written while flowtools is imported; leave at once."""
    os.write(2, _MESSAGE.encode())
    os._exit(130)


def _remember_and_raise(signum, frame):
    """Rule 2: the usual KeyboardInterrupt, remembered."""
    _seen["sigint"] = True
    raise KeyboardInterrupt


def _quiet_interrupts(previous):
    def hook(kind, value, tb):  # an extension module reporting the interrupt it got
        if issubclass(kind, KeyboardInterrupt):
            _seen["sigint"] = True
            return
        previous(kind, value, tb)

    return hook


def main(argv=None) -> int:
    """Run the ``flowtools`` command (``flowtools.cli.main(argv)``) under the Ctrl-C rules
    of the module docstring; return the exit status."""
    import threading

    _seen["sigint"] = False
    previous_handler = signal.getsignal(signal.SIGINT)
    # only where Python's own handler is in place (not where a caller took Ctrl-C for
    # itself, nor where it is ignored, as for a job started with `&`)
    ours = (previous_handler is signal.default_int_handler
            and threading.current_thread() is threading.main_thread())
    previous_excepthook = sys.excepthook
    try:
        if ours:
            signal.signal(signal.SIGINT, _exit_at_once)
        from flowtools import cli

        cli.build_parser()  # imports every subcommand (main builds it again: milliseconds)
        sys.excepthook = _quiet_interrupts(previous_excepthook)
        with interrupts_not_lost():
            if ours:
                signal.signal(signal.SIGINT, _remember_and_raise)
            return cli.main(argv)
    except BaseException as err:
        if not caused_by_interrupt(err):
            raise
        sys.stderr.write(_MESSAGE)
        return 130
    finally:
        sys.excepthook = previous_excepthook
        _seen["sigint"] = False
        if ours:
            signal.signal(signal.SIGINT, previous_handler)


if __name__ == "__main__":
    sys.exit(main())
