"""The one error type of effnas's user errors.

Anything effnas refuses because of what a user gave it (a flag, a config key, a file, a spec) raises
:class:`UserError`, with a message that names the value and the fix. The command line turns it, and
only it, into the one line ``effnas: error: ...`` and exit code 2; every other exception (a bug,
including a ``ValueError`` from a library) shows its traceback. It subclasses ``ValueError`` so
code that catches bad values keeps working.

>>> issubclass(UserError, ValueError)
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class UserError(ValueError):
    """Bad input from a user: the message names the problem and the fix (one line)."""


def first_line(exc: BaseException, *, typed: bool = False) -> str:
    """The first line of ``exc``'s message, or its type's name when the message is empty: how
    effnas shows a library's (often multi-line) error in one line of a table or a message.
    ``typed`` puts the type's name in front (``OSError: ...``).

    >>> first_line(ValueError("bad value\\nsecond line"))
    'bad value'
    >>> first_line(KeyError()), first_line(OSError(28, "No space left on device"), typed=True)
    ('KeyError', 'OSError: [Errno 28] No space left on device')
    """
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return f"{type(exc).__name__}: {lines[0]}" if typed else lines[0]


def last_line(exc: BaseException) -> str:
    """The last non-empty line of ``exc``'s message (stripped), or its type's name: the
    exception's own message where a wrapper (Ray) puts worker details and a traceback before it.

    >>> last_line(RuntimeError("Traceback ...\\n  File x\\nValueError: bad value\\n"))
    'ValueError: bad value'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


@contextmanager
def user_file(path: object, what: str, fix: str) -> Iterator[None]:
    """Read a file the user named: a missing or unreadable file (``OSError``) or one that does not
    parse (JSON, TOML, pickle, text decoding: ``ValueError``) becomes a :class:`UserError` naming
    the file and ``fix``, chained to its cause.

    >>> try:
    ...     with user_file("x.json", "spec file", "give a spec JSON"):
    ...         raise FileNotFoundError(2, "No such file or directory")
    ... except UserError as e:
    ...     print(e)
    cannot read spec file 'x.json' (FileNotFoundError: No such file or directory): give a spec JSON
    """
    try:
        yield
    except UserError:
        raise
    except RecursionError as exc:  # JSON / TOML nested deeper than Python's stack
        raise UserError(f"cannot read {what} {str(path)!r} (nested too deeply to parse): {fix}") from exc
    except (OSError, ValueError, EOFError) as exc:  # EOFError: a truncated pickle
        why = f"{type(exc).__name__}: {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else \
            first_line(exc, typed=True)
        raise UserError(f"cannot read {what} {str(path)!r} ({why}): {fix}") from exc


def absent(path: object) -> str:
    """Why a path the user gave as a file cannot be read as one: it ``does not exist``, ``is a
    directory``, or ``is not a regular file`` (a FIFO, a socket, a device).

    >>> absent("/"), absent("/no/such/file")
    ('is a directory', 'does not exist')
    """
    p = Path(str(path))
    if p.is_dir():
        return "is a directory"
    return "is not a regular file" if p.exists() else "does not exist"


__all__ = ["UserError", "absent", "first_line", "last_line", "user_file"]
