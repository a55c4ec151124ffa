"""``effnas grid``: the alpha, beta, gamma grid search at phi (EfficientNet paper, Section 3.3)."""

from __future__ import annotations

import argparse
from pathlib import Path

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.cli.commands import _progress as console
from effnas.experiments.config.choices import DEPTH_ROUNDINGS
from effnas.experiments.pipeline import plan, stages
from effnas.experiments.pipeline.estimate import estimate, stage_work
from effnas.experiments.train import guard
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "grid", help="grid-search compound coefficients alpha, beta, gamma at phi = 1",
        description="Enumerate alpha, beta, gamma >= 1 on a grid with |alpha*beta^2*gamma^2 - target| <= "
        "tolerance, scale the base by each at phi, bring each candidate's realised MACs within "
        "grid.cost_tolerance of target^phi (by its resolution in whole pixels; candidates that cannot be are "
        "listed, not trained), train the rest and keep the best by validation accuracy (ties: fewer MACs). "
        "Writes grid.csv and coefficients.json into --out; --dry-run writes grid_candidates.csv. Each candidate "
        "trains into its own run directory; --resume keeps finished ones. Exit code 1 when a candidate failed.",
    )
    c.add_config_args(p)
    g = p.add_argument_group("grid (each flag sets the config key in brackets)")
    c.key_flag(g, "--base", key="train.model", help="a registered model name or a spec .json file")
    c.key_flag(g, "--step", key="grid.step", type=float, help="grid step (default 0.05)")
    c.key_flag(g, "--tolerance", key="grid.tolerance", type=float, help="allowed |product - target| (default 0.1)")
    c.key_flag(g, "--target", key="grid.target", type=float, help="alpha*beta^2*gamma^2 target (default 2)")
    c.key_flag(g, "--phi", key="grid.phi", type=float, help="the compound coefficient searched at (default 1)")
    c.key_flag(g, "--cost-tolerance", key="grid.cost_tolerance", type=float,
               help="realised MACs within this of target^phi (default 0.05)")
    c.key_flag(g, "--resolution", key="data.resolution", type=int, help="the base's input pixels (default: its own)")
    c.key_flag(g, "--depth-rounding", key="grid.depth_rounding", choices=DEPTH_ROUNDINGS,
               help="repeats rounded to nearest (default) or up (TF)")
    p.add_argument("--dry-run", action="store_true", help="list the candidates and their MACs; train nothing")
    p.add_argument("--out", help="directory for grid.csv, coefficients.json and the run directories")
    t = p.add_argument_group("training")
    c.add_data_args(t)
    c.key_flag(t, "--epochs", key="grid.epochs", type=int, help="epochs per candidate (default 10)")
    c.key_flag(t, "--seeds", key="grid.seeds", type=c.seeds_arg, help="seeds per candidate: a count or a list")
    c.add_run_args(t)
    console.add_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = c.experiment(args)
    base = plan.base_spec(cfg)
    gp = plan.grid_plan(cfg, base)
    table, jobs = gp.table, gp.jobs
    if args.dry_run:
        if args.out:
            stages.write_csv(table, guard.out_dir(args.out) / "grid_candidates.csv")
        g = cfg.grid
        print(f"{len(table)} candidates with |alpha*beta^2*gamma^2 - {g.target:g}| <= {g.tolerance:g}, step "
              f"{g.step:g}, at phi {g.phi:g}; {len(jobs) // len(g.seeds)} within {g.cost_tolerance:.0%} of "
              f"{g.target:g}^{g.phi:g} MACs; base {base.name} at {base.resolution} px")
        print(table.to_string(index=False))
        return 0
    if not args.out:
        raise UserError("--out DIR is required: it holds grid.csv, coefficients.json and the run directories")
    work = [stage_work("grid", gp, out=args.out, resume=args.resume)]
    ask = console.asker(args, lambda: estimate(work, base, gp.train_config, gp.runtime),
                        shrink="--epochs, --seeds or --step")
    result = stages.grid(cfg, gp, args.out, resume=args.resume, progress=console.board(args, gp.runtime),
                         go_ahead=ask)
    t = result.table.drop_duplicates(["alpha", "beta", "gamma"])
    t = t.sort_values("mean_accuracy", ascending=False, na_position="last")
    cols = [k for k in ("alpha", "beta", "gamma", "product", "resolution", "blocks", "macs", "macs_ratio",
                        "nominal_macs_ratio", "mean_accuracy", "status") if k in t.columns]
    print(t[cols].head(15).to_string(index=False))
    b = result.best
    print(f"best: alpha {b.alpha:g}, beta {b.beta:g}, gamma {b.gamma:g} (product {b.product:.3f}); "
          f"wrote {Path(args.out) / 'grid.csv'} and {Path(args.out) / 'coefficients.json'}")
    bad = stages.format_failures(result.table[result.table.get("run_dir").notna()]
                                 if "run_dir" in result.table.columns else result.table, "grid runs")
    if bad:
        print(bad)
        return 1
    return 0
