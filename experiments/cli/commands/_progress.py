"""The console of the commands that train many runs (``family --train``, ``grid``,
``scale-backbone --train``, ``run``): the estimate said before training, the question when it is
long, and the board of progress lines. Not a command itself.

The question: an estimate past :data:`effnas.experiments.pipeline.estimate.ASK_ABOVE` (30 min)
is asked about (``continue? [y/N]``) only when stdin is a terminal and ``--yes`` is not given.
Anything else goes ahead with the estimate printed: a script, a scheduler's job or CI has nobody
to answer, and must neither hang nor fail for want of a flag. Everything goes to stderr, so
``--json`` output on stdout stays clean.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from effnas.experiments.pipeline.estimate import Estimate
from effnas.experiments.pipeline.resolved import Runtime
from effnas.search_spaces.common.progress import Console, RunBoard


def add_args(p: argparse.ArgumentParser) -> None:
    """``--yes`` (``--quiet`` and ``--verbose`` are on every command: ``_common.add_console_args``)."""
    p.add_argument_group("estimate").add_argument(
        "--yes", "-y", action="store_true",
        help="train without asking, however long the estimate (asked only on a terminal, past 30 min)")


def board(args: argparse.Namespace, runtime: Runtime, *, stream: TextIO | None = None) -> RunBoard | None:
    """The progress board of the command's runs (None with ``--quiet``): a line per finished run,
    and each run's epochs (a status line on a terminal, plain lines elsewhere)."""
    if getattr(args, "quiet", False):
        return None
    return RunBoard(Console(stream if stream is not None else sys.stderr), workers=runtime.workers)


def asker(args: argparse.Namespace, measure: Callable[[], Estimate], *, shrink: str) -> Callable[[], bool]:
    """What the stages ask once their checks passed (``go_ahead``): the estimate ``measure`` makes,
    said and, when long, asked about (:func:`go_ahead`)."""
    return lambda: go_ahead(measure(), args, shrink=shrink)


def go_ahead(est: Estimate, args: argparse.Namespace, *, shrink: str, stdin: Any = None,
             stream: TextIO | None = None) -> bool:
    """Say ``est`` (unless ``--quiet``) and, when it is long, stdin is a terminal and ``--yes`` is
    not given, ask; False when the answer is not yes (the stage then stops with
    :class:`effnas.experiments.pipeline.stages.Declined`: exit 1, nothing trained). ``shrink``
    names what makes it shorter."""
    stdin = stdin if stdin is not None else sys.stdin
    out = stream if stream is not None else sys.stderr
    if est.runs == 0:
        return True
    text = est.text()
    ask = est.long and not args.yes and _isatty(stdin)
    if ask:
        out.write(f"{text} — continue with --yes or shrink with {shrink}\ncontinue? [y/N] ")
        out.flush()
        return stdin.readline().strip().lower() in ("y", "yes")
    if not getattr(args, "quiet", False):
        if est.long and not args.yes:
            text += f" (not asking: stdin is not a terminal; shrink with {shrink})"
        out.write(text + "\n")
        out.flush()
    return True


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
