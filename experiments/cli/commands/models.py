"""``effnas models list|show``: the registry and each model's cost."""

from __future__ import annotations

import argparse
import json

from effnas.experiments.cli.commands._common import examples
from effnas.experiments.train import guard
from effnas.search_spaces import encode_block, load_spec, names
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.cost import Cost, cost


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("models", help="list registered models, or show one model's structure and cost",
                       epilog=examples(("effnas models list", "every registered model"),
                                         ("effnas models show efficientnet_b0", "B0's stages, params and MACs")))
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pl = msub.add_parser("list", help="list the registered model names with params and MACs",
                         epilog=examples(("effnas models list", "name, resolution, classes, stages, blocks"),
                                           ("effnas models list --json", "the same as a JSON list")))
    pl.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    pl.set_defaults(func=run_list)
    ps = msub.add_parser(
        "show", help="structure and cost of a model",
        description="Print a model's stages with parameters and multiply-adds (MACs, counted the "
        "papers' way: convolutions and linear layers, one per multiply-add, with fvcore).",
        epilog=examples(
            ("effnas models show efficientnet_b0 --diagram b0.png", "stages, params, MACs and a stage diagram"),
            ("effnas models show efficientnet_b0 --resolution 32 --num-classes 10 --json",
             "at CIFAR's size and classes, as JSON"),
            ("effnas models show runs/search/best_spec.json --latency", "a spec file, with latency on this device"),
        ),
    )
    ps.add_argument("model", help="a registered name (see 'effnas models list') or a spec .json file")
    ps.add_argument("--resolution", type=int, metavar="N", help="input size in pixels (default: the model's own)")
    ps.add_argument("--num-classes", type=int, metavar="N", help="classifier outputs (default: the model's own)")
    ps.add_argument("--latency", action="store_true", help="also measure latency on this device")
    ps.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    ps.add_argument("--diagram", metavar="FILE.png", help="also draw the network's stages to a PNG")
    ps.set_defaults(func=run_show)


def run_list(args: argparse.Namespace) -> int:
    rows = []
    for n in names():
        spec = load_spec(n)
        rows.append({"name": n, "resolution": spec.resolution, "num_classes": spec.num_classes,
                     "stages": len(spec.stages), "blocks": spec.num_blocks})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'name':<18} {'res':>5} {'classes':>8} {'stages':>7} {'blocks':>7}")
        for r in rows:
            print(f"{r['name']:<18} {r['resolution']:>5} {r['num_classes']:>8} {r['stages']:>7} {r['blocks']:>7}")
    return 0


def _positive(name: str, v: int | None) -> None:
    if v is not None and v < 1:
        raise UserError(f"{name} must be a positive integer, got {v}")


def run_show(args: argparse.Namespace) -> int:
    _positive("--resolution", args.resolution)
    _positive("--num-classes", args.num_classes)
    spec = load_spec(args.model, num_classes=args.num_classes, resolution=args.resolution)

    guard.check_memory(spec, train=False)  # the cost is counted with a forward pass at this resolution
    c = cost(spec, latency=args.latency)
    if args.diagram:
        from effnas.experiments.report.diagram import draw  # lazy: pulls in matplotlib

        draw(spec, guard.out_file(args.diagram, "--diagram", accept=guard.is_plot), precomputed=c)
    if args.json:
        d = c.to_dict()
        d["spec"] = json.loads(spec.to_json())
        print(json.dumps(d, indent=2))
    else:
        print(format_cost(c, [encode_block(s) for s in spec.stages]))
    return 0


def format_cost(c: Cost, block_strings: list[str]) -> str:
    lines = [f"{c.name}: {c.resolution}x{c.resolution} px, {c.num_classes} classes",
             f"{'stage':<11} {'block':<40} {'out':>11} {'params':>12} {'MACs':>14} {'activations':>12}"]
    labels = {f"stages.{i}": b for i, b in enumerate(block_strings)}
    for s in c.stages:
        out = f"{s.out_channels}x{s.out_resolution}" if s.name != "classifier" else f"{s.out_channels}"
        lines.append(f"{s.name:<11} {labels.get(s.name, ''):<40} {out:>11} {s.params:>12,} {s.macs:>14,} "
                     f"{s.activations:>12,}")
    lines.append(f"{'total':<11} {'':<40} {'':>11} {c.params:>12,} {c.macs:>14,} {c.activations:>12,}")
    lines.append(f"MACs {c.macs / 1e6:.2f} M (conv + linear); other ops (BN, element-wise, pooling) "
                 f"{c.other_ops / 1e6:.2f} M; params {c.params / 1e6:.3f} M; activations {c.activations / 1e6:.2f} M "
                 "(conv + linear output elements)")
    if c.latency_ms is not None:
        lines.append(f"latency on {c.device}: {c.latency_ms:.2f} ms at batch 1, "
                     f"{c.latency_batch_ms:.2f} ms at batch {c.latency_batch}")
    return "\n".join(lines)
