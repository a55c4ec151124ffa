"""The ``effnas`` command line. Each sub-command lives in ``experiments/cli/commands/<name>.py``
and registers itself; bad input ends with a one-line ``effnas: error: ...`` and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import typing
from collections.abc import Sequence

from effnas.experiments.pipeline.stages import Declined
from effnas.nas.search import SearchFailed
from effnas.scaling.runner import RunsFailed, RunsStopped
from effnas.search_spaces.common.atomic import FULL
from effnas.search_spaces.common.errors import UserError, first_line

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ["models", "train", "search", "export", "grid", "family", "scale_backbone", "curves", "compare", "view",
            "run", "weights", "finetune", "bench_search", "data", "supernet"]


#: Runs that did not complete: their results and errors are on disk (exit code 1); or none started
#: (the estimate was declined).
RUN_FAILURES: tuple[type[BaseException], ...] = (SearchFailed, RunsFailed, RunsStopped, Declined)


class Parser(argparse.ArgumentParser):
    """argparse with the project's one-line errors: ``effnas: error: ...`` (and the command's
    ``--help`` named), exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        print(f"effnas: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="effnas",
        description="Neural architecture search and compound-scaling experiments "
        "(MnasNet / EfficientNet style). Run 'effnas COMMAND --help' for each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"effnas.experiments.cli.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, already printed)
        return int(e.code or 0)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:  # the reader went away (effnas models list | head -1): stop quietly
        _drop_stdout()
        return 1
    except UserError as e:  # bad input: the message names the problem and the fix; anything else is a bug
        print(f"effnas: error: {first_line(e)}", file=sys.stderr)
        return 2
    except RUN_FAILURES as e:  # runs that did not complete: their results and errors are on disk
        print(f"effnas: error: {first_line(e)}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno not in FULL:
            raise  # anything else is a bug or a path error a command should have named
        where = f": {e.filename}" if e.filename else ""
        print(f"effnas: error: No space left on device{where} (free some space and run again; finished results "
              "are kept)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("effnas: interrupted; finished results are kept (re-run with --resume)", file=sys.stderr)
        return 130


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a captured stdout)
        pass


if __name__ == "__main__":
    sys.exit(main())
