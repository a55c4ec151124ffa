"""The ``effnas`` command line. Each sub-command lives in ``experiments/cli/commands/<name>.py``
and registers itself; bad input ends with a one-line ``effnas: error: ...`` and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
import typing
from collections.abc import Iterator, Sequence
from typing import Any

import optuna

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.pipeline.stages import Declined
from effnas.experiments.report.provenance import git_revision, versions
from effnas.nas.search import SearchFailed
from effnas.scaling.runner import RunsFailed, RunsStopped
from effnas.search_spaces.common.atomic import FULL
from effnas.search_spaces.common.errors import UserError, first_line

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ["models", "train", "search", "export", "grid", "family", "scale_backbone", "curves", "compare", "view",
            "run", "weights", "finetune", "bench_search", "bench_build", "data", "supernet"]


#: Runs that did not complete: their results and errors are on disk (exit code 1); or none started
#: (the estimate was declined).
RUN_FAILURES: tuple[type[BaseException], ...] = (SearchFailed, RunsFailed, RunsStopped, Declined)


class Parser(argparse.ArgumentParser):
    """argparse with the project's one-line errors: ``effnas: error: ...`` (and the command's
    ``--help`` named), exit code 2, and help that keeps the examples as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", c.HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        print(f"effnas: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


class Version(argparse.Action):
    """``--version``: effnas's and torch's versions and, in a git checkout, the commit (``+dirty``
    with uncommitted changes); read when asked, not on every start."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(version_line())
        parser.exit()


def version_line() -> str:
    """``effnas 0.1.0 (torch 2.13.0, commit 31b854f0a2c4)``; the commit only in a git checkout."""
    v = versions(("effnas", "torch"))
    rev = git_revision()
    commit = f", commit {rev[:12]}{'+dirty' if rev.endswith('+dirty') else ''}" if rev else ""
    return f"effnas {v['effnas'] or 'unknown'} (torch {v['torch'] or 'not installed'}{commit})"


EXAMPLES = c.examples(
    ("effnas models list", "the registered architectures"),
    ("effnas train --model tiny --dataset digits --out runs/tiny", "train one model (a few minutes on a CPU)"),
    ("effnas run demo --out runs/demo", "a whole experiment from a config: search, grid, family, curves, report"),
    ("effnas run demo --plan", "what every run of it would train with, before anything trains"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="effnas",
        description="Neural architecture search and compound-scaling experiments "
        "(MnasNet / EfficientNet style). Run 'effnas COMMAND --help' for each command.",
        epilog=EXAMPLES,
    )
    parser.add_argument("--version", action=Version, help="print effnas's and torch's versions and the commit, "
                        "and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"effnas.experiments.cli.commands.{name}").register(sub)
    for _, leaf in commands(parser):
        c.add_console_args(leaf)
    return parser


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
             ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command that runs (``("models", "show")``, ``("train",)``, ...) with its parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, p in subs[0].choices.items():
        yield from commands(p, (*path, name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version (0) or a usage error (2, already printed)
        return int(e.code or 0)
    try:
        with _libraries_quiet(getattr(args, "quiet", False)):
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:  # the reader went away (effnas models list | head -1): stop quietly
        _drop_stdout()
        return 1
    except UserError as e:  # bad input: the message names the problem and the fix; anything else is a bug
        return _fail(args, e, first_line(e), 2)
    except RUN_FAILURES as e:  # runs that did not complete: their results and errors are on disk
        return _fail(args, e, first_line(e), 1)
    except OSError as e:
        if e.errno not in FULL:
            raise  # anything else is a bug or a path error a command should have named
        where = f": {e.filename}" if e.filename else ""
        return _fail(args, e, f"No space left on device{where} (free some space and run again; finished results "
                     "are kept)", 1)
    except KeyboardInterrupt:
        print("effnas: interrupted; finished results are kept (re-run with --resume)", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _libraries_quiet(quiet: bool) -> Iterator[None]:
    """With ``--quiet``, Optuna's informational lines ("A new study created ...") are dropped too."""
    if not quiet:
        yield
        return
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _fail(args: argparse.Namespace, e: BaseException, line: str, code: int) -> int:
    """The one-line error (and, with ``--verbose``, the traceback behind it) on stderr; ``code``."""
    print(f"effnas: error: {line}", file=sys.stderr)
    if getattr(args, "verbose", False):
        traceback.print_exception(e, file=sys.stderr)
    return code


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
