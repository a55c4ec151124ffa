"""Rendering the report's blocks: ``report.md`` (Markdown, images linked by relative path) and
``report.html`` (one page, images embedded as base64 data URIs). User text (a ``plain`` block) is
escaped in both (:mod:`effnas.experiments.report.escape`)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from effnas.experiments.report.escape import md_cell, md_fence, md_text


@dataclass(frozen=True)
class Block:
    """One piece of the report, rendered to both Markdown and HTML.

    ``kind`` is ``h2``/``h3`` (text), ``p`` (text), ``table`` (frame), ``img`` (path, text is the
    caption), ``code`` (text), ``ul`` (items: a bulleted list of plain text, escaped) or ``html`` (text:
    raw HTML for ``report.html`` only). A ``plain`` heading or paragraph is user text, escaped (no
    Markdown or HTML in it takes effect)."""

    kind: str
    text: str = ""
    frame: pd.DataFrame | None = None
    path: Path | None = None
    plain: bool = False
    items: tuple[str, ...] = ()


def render_markdown(blocks: list[Block], run: Path) -> str:
    """Markdown with images as paths relative to ``run`` (where ``report.md`` is written)."""
    parts = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append("#" * int(b.kind[1]) + " " + (md_text(b.text) if b.plain else b.text))
        elif b.kind == "p":
            parts.append(md_text(b.text) if b.plain else b.text)
        elif b.kind == "table" and b.frame is not None:
            # A table of text only (formatted numbers such as "+6.0") is shown as written.
            text_only = all(not pd.api.types.is_numeric_dtype(t) for t in b.frame.dtypes)
            parts.append(_escape_pipes(b.frame).to_markdown(index=False, floatfmt=".4g", disable_numparse=text_only))
        elif b.kind == "img" and b.path is not None:
            rel = b.path.resolve().relative_to(run.resolve()).as_posix()
            parts.append(f"![{md_text(b.text)}]({rel})\n\n*{md_text(b.text)}*")
        elif b.kind == "code":
            parts.append(md_fence(b.text))
        elif b.kind == "ul":
            parts.append("\n".join(f"- {md_text(item)}" for item in b.items))
    return "\n\n".join(parts) + "\n"


def _escape_pipes(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells and headers escape ``|`` (which would split a Markdown table cell) and
    ``&<>`` (which would be raw HTML)."""
    out = df.rename(columns=lambda c: md_cell(str(c)))
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(md_cell)
    return out


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#f0f0f0}td{text-align:right}td:first-child{text-align:left}img{max-width:100%}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}figcaption{color:#555;font-size:.9em}"""


def render_html(blocks: list[Block], *, title: str) -> str:
    """A single HTML page; images are embedded as ``data:image/png;base64`` URIs."""
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}>{html.escape(b.text) if b.plain else _inline(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{html.escape(b.text) if b.plain else _inline(b.text)}</p>")
        elif b.kind == "table" and b.frame is not None:
            parts.append(b.frame.to_html(index=False, border=0, na_rep="", float_format=lambda x: f"{x:.4g}"))
        elif b.kind == "img" and b.path is not None:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(b.text, quote=True)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(b.text)}</figcaption></figure>")
        elif b.kind == "code":
            parts.append(f"<pre>{html.escape(b.text)}</pre>")
        elif b.kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in b.items) + "</ul>")
        elif b.kind == "html":
            parts.append(b.text)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _inline(text: str) -> str:
    """The two Markdown inline forms the report uses, ``*em*`` and ```code```, as HTML."""
    out, code = [], False
    for i, chunk in enumerate(html.escape(text).split("`")):
        if i:
            code = not code
        if code:
            out.append(f"<code>{chunk}</code>")
        else:
            em = chunk.split("*")
            out.append("".join(f"<em>{s}</em>" if j % 2 else s for j, s in enumerate(em)))
    return "".join(out)
