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


class UserError(ValueError):
    """Bad input from a user: the message names the problem and the fix (one line)."""


__all__ = ["UserError"]
