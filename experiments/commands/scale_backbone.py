"""``effnas scale-backbone``: compound coefficients applied to ResNet / MobileNet (paper Table 3)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.commands import _scaling_args as sa
from scaling import BACKBONES, PAPER, Member, backbone_comparison, family_table, scale_backbone, train_members


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "scale-backbone", help="apply compound coefficients to resnet18/50, mobilenet_v1/v2 or a spec",
        description="Depth scales the blocks of every stage, width every channel count (the same "
        "round_filters rule as EfficientNet), resolution the input size. With --compare, also "
        "depth-only, width-only and resolution-only scaling at the compound network's MACs "
        f"(paper Table 3 in shape). Backbones: {', '.join(BACKBONES)}, any registered model or a spec .json.",
    )
    p.add_argument("--backbone", required=True, help=f"{', '.join(BACKBONES)}, a registered model or a spec .json")
    p.add_argument("--phi", type=int, default=1, help="compound coefficient phi (default 1)")
    p.add_argument("--resolution", type=int, help="the backbone's input size in pixels (default: its own)")
    p.add_argument("--num-classes", type=int, help="classifier outputs (default: the backbone's own)")
    p.add_argument("--compare", action="store_true", help="also single-dimension scaling at matched MACs")
    p.add_argument("--json", action="store_true", help="print the scaled spec and its cost as JSON")
    p.add_argument("--out", help="directory for backbones.csv, the specs and (with --train) the run directories")
    sa.add_coefficient_args(p)
    sa.add_training_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.phi < 0:
        raise ValueError(f"--phi must be a non-negative integer, got {args.phi}")
    coeffs = sa.coefficients_from(args, default=PAPER)
    assert coeffs is not None
    kw = {"coefficients": coeffs, "phi": args.phi, "depth_rounding": args.depth_rounding,
          "num_classes": args.num_classes, "resolution": args.resolution}
    rows: list[Member] = backbone_comparison(args.backbone, **kw) if (args.compare or args.train) else []
    scaled = rows[-1] if rows else scale_backbone(args.backbone, **kw)
    if args.train:
        if not args.out:
            raise ValueError("--train needs --out DIR for the run directories and backbones.csv")
        trainer, config = sa.trainer(), sa.train_config(args)
    if args.json:
        d = {"backbone": args.backbone, "phi": args.phi, "coefficients": coeffs.to_dict(), **scaled.row(),
             "spec": json.loads(scaled.spec.to_json())}
        if rows:
            d["comparison"] = [m.row() for m in rows]
        print(json.dumps(d, indent=2))
    else:
        print(format_rows(rows or [scaled], coeffs.as_tuple()))
    if args.out:
        out = Path(args.out)
        (out / "specs").mkdir(parents=True, exist_ok=True)
        for m in rows or [scaled]:
            m.spec.save(out / "specs" / f"{m.spec.name}.json")
        if not args.train:
            family_table(rows or [scaled]).to_csv(out / "backbones.csv", index=False)
    if args.train:
        from experiments.commands.family import format_trained

        name = rows[0].spec.name

        def key(m: Member, seed: int) -> str:
            return f"backbones/{name}-{m.method}-phi{args.phi}-seed{seed}"

        t = train_members(rows, trainer, train_config=config, out_dir=args.out,
                          seeds=sa.seeds(args), executor=sa.executor(args), resume=args.resume, key=key,
                          table_name="backbones.csv")
        print(format_trained(t))
    return 0


def format_rows(rows: list[Member], coeffs: tuple[float, float, float]) -> str:
    f = sa.fmt_count
    lines = [f"coefficients alpha, beta, gamma = {coeffs}",
             f"{'network':<34} {'method':<10} {'d':>6} {'w':>6} {'r':>4} {'blocks':>6} {'params':>12} {'MACs':>8} "
             f"{'realised':>8} {'nominal':>8}"]
    for m in rows:
        lines.append(f"{m.spec.name:<34} {m.method:<10} {m.multipliers.depth:>6.3f} {m.multipliers.width:>6.3f} "
                     f"{m.spec.resolution:>4} {m.spec.num_blocks:>6} {m.params:>12,} {f(m.macs):>8} "
                     f"{m.macs_ratio:>8.3f} {m.multipliers.nominal_macs_ratio:>8.3f}")
    return "\n".join(lines)
