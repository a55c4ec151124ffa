"""``effnas grid``: the alpha, beta, gamma grid search at phi (EfficientNet paper, Section 3.3)."""

from __future__ import annotations

import argparse
from pathlib import Path

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.cli.commands import _progress as console
from effnas.experiments.config.choices import DEPTH_ROUNDINGS, GRID_RULES
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
        "listed, not trained), train each distinct network once (points that build the same network share its "
        "result), in one rung or by successive halving (--halving), and pick among the points tied with the best "
        "within noise by a stated rule (docs/scaling.md). Writes grid.csv and coefficients.json into --out; "
        "--dry-run writes grid_candidates.csv. Each run has its own run directory; --resume keeps finished ones. "
        "Exit code 1 when a run failed.",
        epilog=c.examples(
            ("effnas grid --base efficientnet_nano --dataset shapes --step 0.1 --epochs 2 --dry-run",
             "the candidates and their MACs, nothing trained"),
            ("effnas grid --base efficientnet_nano --dataset shapes --step 0.1 --epochs 2 --out runs/grid",
             "train them: grid.csv and coefficients.json in runs/grid"),
            ("effnas grid --base tiny --dataset shapes --rule fast --step 0.25 --epochs 2 --dry-run",
             "fast scaling's A = 0, 0.25, ..., 1 as grid points, at the same realised MACs"),
            ("effnas grid --base runs/search/best_spec.json --config demo --workers 2 --out runs/grid2",
             "a search's best network with the demo's grid settings, two candidates at a time through Ray"),
        ),
    )
    c.add_config_args(p)
    g = p.add_argument_group("grid (each flag sets the config key in brackets)")
    c.key_flag(g, "--base", key="train.model", help="a registered model name or a spec .json file")
    c.key_flag(g, "--step", key="grid.step", help="grid step")
    c.key_flag(g, "--tolerance", key="grid.tolerance", help="allowed |product - target|")
    c.key_flag(g, "--target", key="grid.target", help="alpha*beta^2*gamma^2 target")
    c.key_flag(g, "--phi", key="grid.phi", help="the compound coefficient searched at")
    c.key_flag(g, "--cost-tolerance", key="grid.cost_tolerance", help="realised MACs within this of target^phi")
    c.key_flag(g, "--resolution", key="data.resolution", help="the base's input pixels (default: its own)")
    c.key_flag(g, "--rule", key="grid.rule", choices=GRID_RULES, help="what the grid searches: compound's "
               "alpha, beta, gamma, or fast scaling's A in [0, 1] on --step (docs/scaling.md)")
    c.key_flag(g, "--depth-rounding", key="grid.depth_rounding", choices=DEPTH_ROUNDINGS,
               help="repeats rounded to nearest (round) or up (ceil, TF)")
    p.add_argument("--dry-run", action="store_true", help="list the candidates and their MACs; train nothing")
    p.add_argument("--out", metavar="DIR", help="directory for grid.csv, coefficients.json and the run directories")
    t = p.add_argument_group("training")
    c.add_data_args(t)
    c.key_flag(t, "--epochs", key="grid.epochs", help="epochs per candidate (with --halving the first rung's)")
    c.key_flag(t, "--seeds", key="grid.seeds", help="seeds per candidate: a count (2), a list (0,5) or a range (0-2); "
               "with --halving the first rung's, each later rung adds one")
    c.key_flag(t, "--halving", key="grid.halving", action=argparse.BooleanOptionalAction,
               help="successive halving: the best 1/eta of each rung train again, eta x longer, with one more seed")
    c.key_flag(t, "--eta", key="grid.eta", help="with --halving: keep 1/eta per rung, eta x the epochs")
    c.key_flag(t, "--rungs", key="grid.rungs", help="with --halving: the most rungs")
    c.key_flag(t, "--budget-epochs", key="grid.budget_epochs",
               help="the most training epochs the grid may spend (runs x epochs; default: what the schedule needs)")
    c.add_run_args(t)
    console.add_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = c.experiment(args)
    base = plan.base_spec(cfg)
    gp = plan.grid_plan(cfg, base)
    table = gp.table
    if args.dry_run:
        if args.out:
            stages.write_csv(table, guard.out_dir(args.out) / "grid_candidates.csv")
        g = cfg.grid
        ready = table[table.within_tolerance.astype(bool)]
        space = (f"values of fast scaling's A, step {g.step:g}" if g.rule == "fast" else
                 f"candidates with |alpha*beta^2*gamma^2 - {g.target:g}| <= {g.tolerance:g}, step {g.step:g}")
        print(f"{len(table)} {space}, at phi {g.phi:g}; {len(ready)} within {g.cost_tolerance:.0%} of "
              f"{g.target:g}^{g.phi:g} MACs, building {ready.network.nunique()} distinct networks; "
              f"base {base.name} at {base.resolution} px")
        if gp.schedule is not None:
            print(f"schedule: {gp.schedule.text()}")
        print(table.drop(columns=["points"]).to_string(index=False))
        return 0
    if not args.out:
        raise UserError("--out DIR is required: it holds grid.csv, coefficients.json and the run directories")
    work = [stage_work("grid", gp, out=args.out, resume=args.resume)]
    ask = console.asker(args, lambda: estimate(work, base, gp.train_config, gp.runtime),
                        shrink="--epochs, --seeds or --step")
    result = stages.grid(cfg, gp, args.out, resume=args.resume, progress=console.board(args, gp.runtime),
                         go_ahead=ask)
    t = result.table.drop_duplicates(["alpha", "beta", "gamma"])
    t = t.sort_values(["last_rung", "mean_accuracy"], ascending=False, na_position="last")
    cols = [k for k in ("rule", "alpha", "beta", "gamma", "product", "resolution", "macs", "macs_ratio",
                        "same_network_as", "last_rung", "n", "mean_accuracy", "ci_low", "ci_high", "tied_with_best",
                        "picked")
            if k in t.columns]
    print(c.console_table(t[cols], Path(args.out) / "grid.csv", verbose=args.verbose))
    for line in result.lines():
        print(line)
    b = result.best
    picked = t[(t.alpha == b.alpha) & (t.beta == b.beta) & (t.gamma == b.gamma)]
    rule = f"{picked['rule'].iloc[0]}: " if "rule" in t.columns and len(picked) else ""
    print(f"picked: {rule}alpha {b.alpha:g}, beta {b.beta:g}, gamma {b.gamma:g} (product {b.product:.3f}); "
          f"wrote {Path(args.out) / 'grid.csv'} and {Path(args.out) / 'coefficients.json'}")
    runs = result.table.dropna(subset=["run_dir"]).drop_duplicates("run_dir")  # a shared run once
    bad = stages.format_failures(runs, "grid runs")
    if bad:
        print(bad)
        return 1
    return 0
