"""``effnas scale-backbone``: compound coefficients applied to ResNet / MobileNet (paper Table 3)."""

from __future__ import annotations

import argparse
import json

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.cli.commands import _progress as console
from effnas.experiments.cli.commands.family import format_table, format_trained
from effnas.experiments.pipeline import plan, stages
from effnas.experiments.pipeline.estimate import estimate, stage_work
from effnas.scaling import BACKBONES, PAPER, resolve_backbone
from effnas.scaling.analysis.compare import summary
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "scale-backbone", help="apply compound coefficients to resnet18/50, mobilenet_v1/v2 or a spec",
        description="Depth scales the blocks of every stage, width every channel count (the same "
        "round_filters rule as EfficientNet), resolution the input size. With --compare (default), also "
        "depth-only, width-only and resolution-only scaling at the compound network's MACs "
        f"(paper Table 3 in shape). Backbones: {', '.join(BACKBONES)}, any registered model or a spec .json. "
        "Exit code 1 when a trained run failed.",
        epilog=c.examples(
            ("effnas scale-backbone --backbone resnet50 --phi 2",
             "ResNet-50 scaled by the paper's coefficients to ~4x MACs, beside depth-, width- and resolution-only"),
            ("effnas scale-backbone --backbone mobilenet_v2 --coefficients runs/grid/coefficients.json --phi 1 "
             "--no-compare", "a grid's coefficients, the compound network alone"),
            ("effnas scale-backbone --backbone resnet18 --resolution 32 --train --dataset shapes --epochs 2 "
             "--out runs/r18", "train the scaled networks"),
        ),
    )
    c.add_config_args(p)
    g = p.add_argument_group("backbone (each flag sets the config key in brackets)")
    p.add_argument("--backbone", required=True, help=f"{', '.join(BACKBONES)}, a registered model or a spec .json "
                   "[backbones.models]")
    c.key_flag(g, "--phi", key="backbones.phi", help="compound coefficient phi (2: ~4x MACs)")
    c.key_flag(g, "--resolution", key="backbones.resolution", help="the backbone's input pixels (default: "
               "data.resolution, else its own)")
    c.key_flag(g, "--compare", key="backbones.single_dimension", action=argparse.BooleanOptionalAction,
               help="also single-dimension scaling at matched MACs")
    p.add_argument("--json", action="store_true", help="print the networks and their cost as JSON")
    p.add_argument("--out", metavar="DIR", help="directory for backbones.csv, the specs and (with --train) the run "
                   "directories")
    c.add_coefficient_args(p)
    t = p.add_argument_group("training")
    t.add_argument("--train", action="store_true", help="train every network (needs --out)")
    c.add_data_args(t)
    c.key_flag(t, "--epochs", key="backbones.epochs", help="epochs per network (default: family.epochs)")
    c.key_flag(t, "--seeds", key="family.seeds", help="seeds per network: a count (2), a list (0,5) or a range (0-2)")
    c.add_run_args(t)
    console.add_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = c.experiment(args).with_values({"backbones.models": (args.backbone,)})
    coeffs = c.coefficients_from(args, cfg) or PAPER
    bp = plan.backbone_plan(cfg, args.backbone, coeffs)
    table, jobs = bp.table, bp.jobs
    if args.train and args.out:
        stages.preflight(cfg, args.out, jobs, bp.train_config)
    if args.json:
        print(json.dumps({"backbone": args.backbone, "phi": cfg.backbones.phi, "coefficients": coeffs.to_dict(),
                          "networks": table.to_dict(orient="records"),
                          "specs": [json.loads(j.spec.to_json()) for j in jobs if j.seed == jobs[0].seed]}, indent=2))
    elif not (args.train and args.quiet):  # with --train, the plan; the trained table is the result
        print(f"coefficients alpha, beta, gamma = {coeffs.as_tuple()}, phi = {cfg.backbones.phi}")
        print(format_table(table))
    if args.train and not args.out:
        raise UserError("--train needs --out DIR for the run directories and backbones.csv")
    if args.out and not args.train:
        stages.write_plan(bp, args.out, "networks.csv")
    if not args.train:
        return 0
    base = resolve_backbone(args.backbone, num_classes=plan.num_classes(cfg),
                            resolution=cfg.backbones.resolution or cfg.data.resolution)
    work = [stage_work("backbones", bp, out=args.out, resume=args.resume)]
    ask = console.asker(args, lambda: estimate(work, base, bp.train_config, bp.runtime), shrink="--epochs or --seeds")
    trained = stages.backbones(cfg, bp, args.out, resume=args.resume, progress=console.board(args, bp.runtime),
                               go_ahead=ask)
    print(format_trained(trained))
    print(summary(trained))
    bad = stages.format_failures(trained, "runs")
    if bad:
        print(bad)
        return 1
    return 0
