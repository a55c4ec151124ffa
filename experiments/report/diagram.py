"""Draw a network as its stages, in the spirit of EfficientNet Table 1 / MnasNet Figure 2.

One row per stage, top to bottom: the input, the stem, every stage of the spec, the head conv
(when the network has one) and global pool + FC. Each row is a box coloured by the operator
(MBConv, DSConv, Conv, Basic, Bottleneck) showing the operator, kernel, stride, repeats (xN),
squeeze-excitation and skip; to its right the stage's output as ``H x W x C`` and a bar whose
length is the stage's share of the network's multiply-adds (from :func:`effnas.search_spaces.cost.cost`).

Only the non-interactive Agg backend is used, so drawing works without a display and never
changes the global matplotlib backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.cost import Cost, cost
from effnas.search_spaces.spec import BlockSpec, NetworkSpec

#: Box colours by operator (colour-blind-safe Okabe-Ito hues, lightened).
COLOURS = {
    "input": "#eeeeee",
    "stem": "#d9d9d9",
    "mbconv": "#a6cee3",
    "fused_mbconv": "#8dd3c7",
    "dsconv": "#b2df8a",
    "conv": "#fdbf6f",
    "basic": "#cab2d6",
    "bottleneck": "#fb9a99",
    "head": "#d9d9d9",
    "classifier": "#ffffb3",
}
_BAR = "#3b6ea5"


@dataclass(frozen=True)
class Row:
    """One drawn row: a label, two lines of text in the box, the output and MACs."""

    label: str
    title: str
    detail: str
    colour: str
    output: str
    macs: int | None
    params: int | None


def op_name(block: BlockSpec) -> str:
    """The operator as the papers write it: ``MBConv6``, ``Fused-MBConv4``, ``DSConv``, ``Conv``, ``Basic``,
    ``Bottleneck``.

    >>> from effnas.search_spaces import decode_block
    >>> op_name(decode_block("r2_k5_s22_e6_i24_o40_se0.25"))
    'MBConv6'
    >>> op_name(decode_block("r4_k3_s2_e4_i24_o48_c1"))
    'Fused-MBConv4'
    >>> op_name(decode_block("dsconv_r1_k3_s11_e1_i32_o64_noskip"))
    'DSConv'
    """
    if block.op == "mbconv":
        return f"MBConv{block.expansion}"
    if block.op == "fused_mbconv":
        return f"Fused-MBConv{block.expansion}"
    return {"dsconv": "DSConv", "conv": "Conv", "basic": "Basic", "bottleneck": "Bottleneck"}[block.op]


def block_detail(block: BlockSpec) -> str:
    """SE, skip, bottleneck expansion and activation override, e.g. ``SE 0.25 · residual``.

    >>> from effnas.search_spaces import decode_block
    >>> block_detail(decode_block("r1_k3_s11_e1_i32_o16_noskip"))
    'no SE · no skip'
    """
    parts = [f"SE {block.se_ratio:g}" if block.se_ratio > 0 else "no SE"]
    parts.append({"identity": "residual", "pool": "pool skip", "none": "no skip"}[block.skip])
    if block.op == "bottleneck":
        parts.append(f"expansion {block.expansion}")
    if block.activation:
        parts.append(block.activation)
    return " · ".join(parts)


def _fmt_count(m: int) -> str:
    """Three significant digits with a unit: ``91.5 M``, ``1.46 G``, ``173 k``, ``696``.

    >>> _fmt_count(91_528_224), _fmt_count(1_464_336_384), _fmt_count(173_000), _fmt_count(696)
    ('91.5 M', '1.46 G', '173 k', '696')
    """
    for scale, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if m >= scale:
            return f"{m / scale:.3g}{unit}"
    return str(m)


def rows(spec: NetworkSpec, c: Cost) -> list[Row]:
    """The rows to draw, from the spec (operators) and its cost (outputs, MACs)."""
    by_name = {s.name: s for s in c.stages}

    def out(name: str) -> str:
        s = by_name[name]
        return f"{s.out_resolution}×{s.out_resolution}×{s.out_channels}"

    r = c.resolution
    result = [Row("input", "Image", "", COLOURS["input"], f"{r}×{r}×3", None, None)]
    stem = by_name["stem"]
    pool = " + maxpool 3×3 s2" if spec.stem_pool else ""
    result.append(Row("stem", f"Conv k{spec.stem_kernel}×{spec.stem_kernel} s{spec.stem_stride}{pool}",
                      spec.activation, COLOURS["stem"], out("stem"), stem.macs, stem.params))
    for i, b in enumerate(spec.stages):
        s = by_name[f"stages.{i}"]
        title = f"{op_name(b)}  k{b.kernel}×{b.kernel}  s{b.stride}  ×{b.repeats}"
        result.append(Row(f"stage {i + 1}", title, block_detail(b), COLOURS[b.op], out(f"stages.{i}"),
                          s.macs, s.params))
    if "head" in by_name:
        h = by_name["head"]
        result.append(Row("head", "Conv k1×1 s1", spec.activation, COLOURS["head"], out("head"), h.macs, h.params))
    fc = by_name["classifier"]
    drop = f"dropout {spec.dropout:g} · " if spec.dropout else ""
    result.append(Row("pool + FC", "Global pool + FC", f"{drop}{spec.feature_channels} → {spec.num_classes}",
                      COLOURS["classifier"], f"{fc.out_channels}", fc.macs, fc.params))
    return result


def draw(spec: NetworkSpec, path: str | Path, *, resolution: int | None = None, dpi: int = 110,
         precomputed: Cost | None = None) -> Path:
    """Draw ``spec`` as one box per stage with outputs and MACs shares; write a PNG to ``path``.

    Args:
        spec: the network.
        path: the image file to write (parent directories are created).
        resolution: input pixels for the outputs and MACs (default: the spec's own).
        dpi: image resolution; the figure is 10 inches wide, 0.52 inch per row.
        precomputed: ``cost(spec, resolution=...)`` when the caller has it already (fvcore's trace
            takes seconds for big models); its resolution wins over ``resolution``.

    Returns:
        The path written.

    Raises:
        UserError: ``resolution`` is not a positive integer.
    """
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                   or resolution < 1):
        raise UserError(f"resolution must be a positive integer, got {resolution!r}")
    c = precomputed if precomputed is not None else cost(spec, resolution=resolution)
    return draw_rows(rows(spec, c), path, title=_title(spec, c), total_macs=c.macs, dpi=dpi)


def _title(spec: NetworkSpec, c: Cost) -> str:
    return (f"{spec.name}: {c.resolution}×{c.resolution} px, {c.num_classes} classes — "
            f"{c.params / 1e6:.2f} M params, {_fmt_count(c.macs)} MACs, {spec.num_blocks} blocks")


def draw_rows(items: list[Row], path: str | Path, *, title: str, total_macs: int, dpi: int = 110) -> Path:
    """Lay out ``items`` top to bottom; the geometry is in inches so every row has the same height."""
    n = len(items)
    row_h, top, bottom = 0.52, 0.75, 0.55  # inches
    width = 10.0
    height = top + n * row_h + bottom
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # y grows downwards, in inches
    ax.axis("off")
    ax.text(0.15, 0.3, title, fontsize=10.5, fontweight="bold", va="center")
    hdr = top - 0.15
    x_label, x_box, box_w, x_out, x_bar, bar_w = 0.15, 1.05, 4.25, 5.45, 6.75, 2.1
    for x, text in ((x_label, "stage"), (x_box, "operator · kernel · stride · repeats"),
                    (x_out, "output H×W×C"), (x_bar, "share of MACs")):
        ax.text(x, hdr, text, fontsize=8, color="#555555", va="center")
    biggest = max((it.macs or 0) for it in items) or 1
    for i, it in enumerate(items):
        y = top + i * row_h
        yc = y + row_h / 2 - 0.04
        bh = row_h - 0.14
        ax.add_patch(FancyBboxPatch((x_box, yc - bh / 2), box_w, bh, boxstyle="round,pad=0,rounding_size=0.06",
                                    facecolor=it.colour, edgecolor="#444444", linewidth=0.8))
        ax.text(x_label, yc, it.label, fontsize=8.5, va="center")
        if it.detail:
            ax.text(x_box + 0.12, yc - 0.08, it.title, fontsize=9, fontweight="bold", va="center")
            ax.text(x_box + 0.12, yc + 0.11, it.detail, fontsize=7.5, color="#333333", va="center")
        else:
            ax.text(x_box + 0.12, yc, it.title, fontsize=9, fontweight="bold", va="center")
        if it.params:
            ax.text(x_box + box_w - 0.1, yc, f"{_fmt_count(it.params)} params", fontsize=7, color="#555555",
                    va="center", ha="right")
        ax.text(x_out, yc, it.output, fontsize=8.5, va="center", family="monospace")
        if i + 1 < n:
            ax.add_patch(FancyArrowPatch((x_box + box_w / 2, yc + bh / 2), (x_box + box_w / 2, yc + bh / 2 + 0.14),
                                         arrowstyle="-|>", mutation_scale=7, color="#444444", linewidth=0.8))
        if it.macs is not None:
            share = it.macs / total_macs if total_macs else 0.0
            ax.add_patch(Rectangle((x_bar, yc - 0.09), bar_w, 0.18, facecolor="#eeeeee", edgecolor="none"))
            ax.add_patch(Rectangle((x_bar, yc - 0.09), bar_w * it.macs / biggest, 0.18, facecolor=_BAR,
                                   edgecolor="none"))
            ax.text(x_bar + bar_w + 0.08, yc, f"{share:5.1%}  {_fmt_count(it.macs)}", fontsize=7.5, va="center")
    ax.text(0.15, height - 0.25, "Bars: MACs (conv + linear multiply-adds, fvcore) of each stage, scaled to the "
            "largest stage; percentages are shares of the total. ×N: blocks in the stage; only the first is strided.",
            fontsize=6.5, color="#555555", va="center")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=dpi)
    return out
