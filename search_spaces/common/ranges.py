"""The one grammar of integer lists a user types: ``0-7``, ``0,2,4``, ``3`` or a mix (``0-2,5``).

``--phis 0-3`` (``effnas family``, ``effnas view``), ``--set family.phis=0-3`` and every other
list of integers on the command line (seeds, baseline phis) go through :func:`int_ranges`, so a
list means the same wherever it is given.
"""

from __future__ import annotations

import re

from effnas.search_spaces.common.errors import UserError

#: A text that is written in this grammar (and not, e.g., a TOML array): digits, commas, dashes, spaces.
LOOKS_LIKE = re.compile(r"[\d\s,-]+")


def int_ranges(text: str, *, maximum: int, what: str = "value", why: str = "", max_count: int | None = None
               ) -> list[int]:
    """``"0-7"``, ``"0,2,4"``, ``"3"`` or ``"0-2,5"`` as a sorted list of distinct non-negative
    integers, each at most ``maximum`` and, with ``max_count``, at most that many (both checked
    before a range is expanded); a value given twice (``0,0``, ``0-2,1``) is an error. ``what``
    names the values in errors (``phi``, ``family.phis``), ``why`` says what the maximum protects.

    >>> int_ranges("0-3", maximum=20), int_ranges("1,4,2", maximum=20), int_ranges("0-1,5", maximum=20)
    ([0, 1, 2, 3], [1, 2, 4], [0, 1, 5])

    Raises:
        UserError: a token that is not ``N`` or ``LOW-HIGH``, an empty range, a value above
            ``maximum`` or more than ``max_count`` values; one line naming the token.
    """
    values: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            lo, hi = _bounded(m.group(1), text, maximum, what, why), _bounded(m.group(2), text, maximum, what, why)
            if hi < lo:
                raise UserError(f"empty {what} range {part!r}: write LOW-HIGH with LOW <= HIGH, e.g. 0-7")
            if max_count is not None and hi - lo + 1 > max_count:
                raise UserError(f"{what} range {part!r} holds {hi - lo + 1} values, more than {max_count}: give fewer")
            new = range(lo, hi + 1)
        elif re.fullmatch(r"\d+", part):
            new = range(v := _bounded(part, text, maximum, what, why), v + 1)
        else:
            raise UserError(f"bad {what} range {str(text)[:40]!r}: expected e.g. 0-7, 0,2,4 or 3 (non-negative "
                             "integers)")
        twice = next((v for v in new if v in values), None)
        if twice is not None:
            raise UserError(f"{what} {twice} is given twice in {str(text)[:40]!r}: give each once")
        values.update(new)
        if max_count is not None and len(values) > max_count:
            raise UserError(f"{what} {str(text)[:40]!r} holds more than {max_count} values: give fewer")
    return sorted(values)


def _bounded(digits: str, text: str, maximum: int, what: str, why: str) -> int:
    value = int(digits) if len(digits) <= len(str(maximum)) else maximum + 1  # a thousand digits: no int() of them
    if value > maximum:
        because = f" ({why})" if why else ""
        raise UserError(f"{what} {digits[:12]} in {str(text)[:40]!r} is above {maximum}{because}: give values in "
                         f"0-{maximum}")
    return value
