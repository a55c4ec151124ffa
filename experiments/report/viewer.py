"""The compound-coefficient architecture viewer: one self-contained HTML page per network.

:func:`viewer_data` computes, for every phi of a family (0...8 from coefficients, or the official
B0...B8 table), the members with :func:`effnas.scaling.family` (what ``effnas family`` prints) and their
per-stage and per-block parameters, MACs and output shapes with
:func:`effnas.search_spaces.counts.breakdown` (equal to what ``effnas models show`` prints, which
``tests/search_spaces/test_counts.py`` checks). The page embeds those numbers as JSON; its script
(``viewer_assets/viewer.js``) only renders them: a phi slider, the width/depth/resolution
factors, a card per stage and a details panel for the clicked block. Nothing is fetched: the
script, the styles and the data are inline, so the file works from ``file://`` and by mail.

:func:`viewer_section` returns the same viewer as a fragment for other pages (``report.html``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from effnas.experiments.report.diagram import block_detail, op_name
from effnas.experiments.report.escape import json_for_html
from effnas.scaling import PAPER, Coefficients, Member, family
from effnas.search_spaces import OFFICIAL, BlockSpec, NetworkSpec, encode_block
from effnas.search_spaces.common.atomic import atomic_text
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import PartCounts, breakdown

#: Where the page's script and style sheets live (package data).
ASSETS = Path(__file__).parent / "viewer_assets"
#: The stand-alone page's own style (``report.html`` has its own).
PAGE_CSS = "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}"
#: The slider's range: phi = 0...8 (B0...B8 with ``official``).
PHIS = tuple(range(9))


def asset(name: str) -> str:
    """The text of a script or style sheet of :data:`ASSETS`, to inline into a page."""
    return (ASSETS / name).read_text()


def _f(v: float, digits: int = 3) -> str:
    """Floats are formatted here, once, so the page shows what ``effnas family`` prints."""
    return f"{v:.{digits}f}"


def _block_view(b: BlockSpec, part: PartCounts, index: int, drop_rate: float) -> dict[str, Any]:
    return {"name": part.name, "index": index, "op": op_name(b), "kernel": b.kernel, "stride": b.stride,
            "expansion": b.expansion, "se_ratio": b.se_ratio, "in_channels": b.in_channels,
            "out_channels": part.out_channels, "out_resolution": part.out_resolution,
            "shortcut": b.shortcut, "drop_rate": _f(drop_rate, 4), "params": part.params, "macs": part.macs}


def _part_view(spec: NetworkSpec, part: PartCounts, rates: Iterable[float], first_index: int) -> dict[str, Any]:
    common = {"name": part.name, "out_channels": part.out_channels, "out_resolution": part.out_resolution,
              "params": part.params, "macs": part.macs}
    if part.name == "stem":
        pool = " + max-pool" if spec.stem_pool else ""
        return {**common, "kind": "stem", "op": f"Conv{pool}", "kernel": spec.stem_kernel,
                "stride": spec.stem_stride, "repeats": 1, "detail": spec.activation, "blocks": []}
    if part.name == "head":
        return {**common, "kind": "head", "op": "Conv 1x1", "kernel": 1, "stride": 1, "repeats": 1,
                "detail": spec.activation, "blocks": []}
    if part.name == "classifier":
        return {**common, "kind": "classifier", "op": "Pool + FC", "kernel": None, "stride": None, "repeats": 1,
                "detail": f"dropout {spec.dropout:.3f} · {spec.feature_channels} → {spec.num_classes}",
                "blocks": []}
    stage = spec.stages[int(part.name.split(".")[1])]
    blocks = [_block_view(b, p, first_index + j, r)
              for j, (b, p, r) in enumerate(zip(stage.layers(), part.blocks, rates, strict=False))]
    return {**common, "kind": "stage", "op": op_name(stage), "kernel": stage.kernel, "stride": stage.stride,
            "repeats": stage.repeats, "block_string": encode_block(stage), "detail": block_detail(stage),
            "blocks": blocks}


def member_view(m: Member, label: str) -> dict[str, Any]:
    """The numbers the page shows for one family member (numbers, and floats as text)."""
    spec = m.spec
    rates = iter(spec.drop_rates())
    parts, index = [], 0
    for p in breakdown(spec):
        parts.append(_part_view(spec, p, rates, index))
        index += len(p.blocks)
    return {"phi": m.phi, "label": label, "name": spec.name, "depth": _f(m.multipliers.depth),
            "width": _f(m.multipliers.width), "resolution_mult": _f(m.multipliers.resolution),
            "resolution": spec.resolution, "num_classes": spec.num_classes, "dropout": _f(spec.dropout),
            "blocks": spec.num_blocks, "params": m.params, "macs": m.macs, "macs_ratio": _f(m.macs_ratio),
            "nominal_macs_ratio": _f(m.multipliers.nominal_macs_ratio), "parts": parts}


def viewer_data(base: NetworkSpec, *, coefficients: Coefficients | None = None, official: bool = False,
                depth_rounding: str = "round", phis: Iterable[int] = PHIS, source: str = "") -> dict[str, Any]:
    """Every member's numbers, computed as ``effnas family`` does (same arguments, same code).

    Args:
        base: the network at phi = 0 (its resolution and classes are the family's).
        coefficients: alpha, beta, gamma (default: the paper's 1.2, 1.1, 1.15); ignored with ``official``.
        official: the published B0...B8 table instead (TF ceil rounding of repeats).
        depth_rounding: ``round`` (default) or ``ceil`` for coefficient families.
        phis: the members (default 0...8).
        source: where the base came from, shown on the page.
    """
    phis = list(phis)
    if official and any(f"b{p}" not in OFFICIAL for p in phis):
        raise UserError(f"the official table has B0...B8: phi {max(phis)} goes beyond 8; give --phis within 0-8")
    coeffs = coefficients or PAPER
    members = family(base, phis, coefficients=coeffs, official=official, depth_rounding=depth_rounding)
    label = "B{}" if official else "phi = {}"
    return {
        "base": base.name, "source": source, "official": official, "depth_rounding": depth_rounding,
        "coefficients": None if official else {"alpha": coeffs.alpha, "beta": coeffs.beta, "gamma": coeffs.gamma,
                                               "product": _f(coeffs.product)},
        "members": [member_view(m, label.format(m.phi)) for m in members],
    }


def json_script(data: Any, element_id: str) -> str:
    """``data`` as an inline JSON script element; ``<``, ``>``, ``&`` are ``\\u`` escapes, so no text
    (``</script>``, ``<!--``) ends or opens anything inside it."""
    return f"<script type='application/json' id='{element_id}'>{json_for_html(data)}</script>"


def viewer_section(data: dict[str, Any], *, element_id: str = "viewer") -> str:
    """The viewer as an HTML fragment; the page must inline ``viewer.css`` and, after it, ``viewer.js``."""
    return (f"<div class='effnas-viewer' data-source='{element_id}-data'></div>\n"
            + json_script(data, f"{element_id}-data"))


#: Marks a page as written by effnas: ``effnas view -o`` writes over such a page, never over other files.
GENERATOR = "<meta name='generator' content='effnas'>"
#: The head of pages written before :data:`GENERATOR` existed.
_OLD_HEAD = "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><meta name='viewport'"


def is_effnas_page(path: Path) -> bool:
    """True when ``path`` is an HTML page effnas wrote (its head carries :data:`GENERATOR`, or is
    the head of the pages written before the mark existed)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(400)
    except OSError:
        return False
    return GENERATOR in head or head.startswith(_OLD_HEAD)


def page(title: str, body: str) -> str:
    """A whole HTML page around ``body`` with the viewer's style and script inlined."""
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>{GENERATOR}"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
            f"<style>\n{PAGE_CSS}\n{asset('viewer.css')}</style></head>\n<body>\n{body}\n"
            f"<script>\n{asset('viewer.js')}</script>\n</body></html>\n")


def write_viewer(data: dict[str, Any], path: str | Path) -> Path:
    """Write the stand-alone viewer page of ``data`` (from :func:`viewer_data`) to ``path``."""
    what = "official B0...B8 table" if data["official"] else "compound scaling"
    title = f"{data['base']}: {what}"
    body = f"<h1>{html.escape(title)}</h1>\n" + viewer_section(data)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_text(out, page(title, body))
    return out


__all__ = [
    "ASSETS", "GENERATOR", "PHIS", "asset", "is_effnas_page", "json_script", "member_view", "page",
    "viewer_data", "viewer_section", "write_viewer",
]
