"""The ``flowtools`` command. One module per subcommand in this package, each defining

    NAME: str                     the subcommand
    HELP: str                     one line for ``flowtools --help``
    add_arguments(parser) -> None
    run(args) -> int              the exit code

Modules are discovered, so adding a subcommand is adding a file.

``main(argv)`` returns the exit status (it never raises ``SystemExit``): what ``run``
returns (0 success, 1 a failed status or claim); 0 after ``--help``; 2 for bad input (an
argparse usage error naming the option, or a ``FlowtoolsError``: one line on stderr, no
traceback); 130
when interrupted (Ctrl-C: one line "interrupted"; files are written atomically, so none is
left half-written). An exception raised because of a Ctrl-C (an ``ImportError`` of an
extension module whose initialization it stopped) counts as the interrupt.

The console script enters through ``_flowtools_launcher.main``, which imports this package
inside the same Ctrl-C rules: a Ctrl-C while ``import flowtools`` is still importing JAX
gives the same one line and 130.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def _subcommands():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowtools",
        description="Gradient-flow dynamics of two-layer networks under small "
        "initialization. `flowtools SUBCOMMAND --help` documents each subcommand.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for mod in _subcommands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    from _flowtools_launcher import caused_by_interrupt, interrupts_not_lost

    command = "flowtools"
    try:
        with interrupts_not_lost():
            from flowtools.errors import FlowtoolsError

            try:
                args = build_parser().parse_args(argv)
            except SystemExit as done:  # --help (0) or a usage error (2), already printed
                return done.code if isinstance(done.code, int) else int(done.code is not None)
            command = f"flowtools {args.command}"
            try:
                return int(args._run(args) or 0)
            except FlowtoolsError as err:  # bad input: the message says what to do
                print(f"{command}: error: {err}", file=sys.stderr)
                return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except BaseException as err:  # Ctrl-C: one line, the conventional 128 + SIGINT
        if not caused_by_interrupt(err):
            raise
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
