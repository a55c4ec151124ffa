"""User text (a config's name and description, a spec's name) in the pages effnas writes.

A hostile or careless name must not end or open an element of ``report.html`` or a page of
``effnas view``, nor turn into Markdown or raw HTML in ``report.md``:

* :func:`json_for_html`: JSON for an inline ``<script type='application/json'>`` element, with
  ``<``, ``>`` and ``&`` written as ``\\u003c``, ``\\u003e``, ``\\u0026`` (still valid JSON that
  parses back to the same data; no ``</script>`` or ``<!--`` can appear in it).
* :func:`md_text`: plain text for a Markdown paragraph or heading (HTML-special characters as
  entities, Markdown punctuation backslash-escaped, one line).
* :func:`md_cell`: a Markdown table cell (``|`` escaped, HTML-special characters as entities).
* :func:`md_fence`: a fenced code block whose fence no backtick run inside the text can close.
"""

from __future__ import annotations

import json
import re
from typing import Any

_HTML_IN_JSON = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: Markdown's inline punctuation (CommonMark backslash escapes).
_MD_PUNCT = re.compile(r"([\\`*\[\]|~#]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")  # intraword _ is literal


def json_for_html(data: Any) -> str:
    """``data`` as compact JSON safe inside an HTML ``<script>`` element.

    >>> json_for_html({"name": "</script><!--"})
    '{"name":"\\\\u003c/script\\\\u003e\\\\u003c!--"}'
    >>> json.loads(json_for_html({"name": "a<b&c"}))["name"]
    'a<b&c'
    """
    return html_safe_json(json.dumps(data, separators=(",", ":")))


def html_safe_json(text: str) -> str:
    """JSON text with ``<``, ``>``, ``&`` (and U+2028/9) as ``\\u`` escapes: they only occur inside strings."""
    return re.sub("[<>&\u2028\u2029]", lambda m: _HTML_IN_JSON[m.group()], text)


def _entities(text: str) -> str:
    return re.sub("[&<>]", lambda m: _ENTITIES[m.group()], text)


def md_text(text: str) -> str:
    """``text`` as literal Markdown inline text on one line.

    >>> md_text("<script>alert(1)</script> *bold* `x`")
    '&lt;script&gt;alert(1)&lt;/script&gt; \\\\*bold\\\\* \\\\`x\\\\`'
    >>> md_text("- item\\n# heading"), md_text("1. one")
    ('\\\\- item \\\\# heading', '1\\\\. one')
    """
    out = _MD_PUNCT.sub(lambda m: "\\" + m.group(), _entities(" ".join(str(text).split())))
    out = re.sub(r"^(\d+)([.)])", r"\1\\\2", out)  # no ordered list item at the start
    return re.sub(r"^([+\-=])", r"\\\1", out)  # nor a bullet or a setext underline


def md_cell(value: Any) -> Any:
    """A table cell's text with ``|`` escaped and ``&``, ``<``, ``>`` as entities (other values unchanged)."""
    return _entities(value).replace("|", "\\|") if isinstance(value, str) else value


def md_fence(text: str) -> str:
    """``text`` in a fenced code block longer than any run of backticks in it."""
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall("`+", text)), default=0))
    return f"{fence}\n{text}\n{fence}"
