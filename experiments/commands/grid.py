"""``effnas grid``: the alpha, beta, gamma grid search at phi = 1 (EfficientNet paper, Section 3.3)."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.commands import _scaling_args as sa
from scaling import candidate_table, grid_candidates, grid_search
from search_spaces import load_spec


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "grid", help="grid-search compound coefficients alpha, beta, gamma at phi = 1",
        description="Enumerate alpha, beta, gamma >= 1 on a grid with |alpha*beta^2*gamma^2 - target| <= "
        "tolerance, scale the base by each at phi = 1, train it and keep the best by validation accuracy "
        "(ties: fewer MACs). Writes grid.csv and coefficients.json into --out. Each candidate trains into "
        "its own run directory; --resume keeps finished ones.",
    )
    p.add_argument("--base", required=True, help="a registered model name or a spec .json file")
    p.add_argument("--step", type=float, default=0.05, help="grid step (default 0.05)")
    p.add_argument("--tolerance", type=float, default=0.1, help="allowed |product - target| (default 0.1)")
    p.add_argument("--target", type=float, default=2.0, help="alpha*beta^2*gamma^2 target (default 2)")
    p.add_argument("--resolution", type=int, help="the base's input size in pixels (default: its own)")
    p.add_argument("--num-classes", type=int, help="the base's classifier outputs (default: its own)")
    p.add_argument("--depth-rounding", choices=("round", "ceil"), default="round",
                   help="repeats rounded to nearest (default) or up (TF)")
    p.add_argument("--dry-run", action="store_true", help="list the candidates and their MACs; train nothing")
    p.add_argument("--out", help="directory for grid.csv, coefficients.json and the run directories")
    sa.add_training_args(p, optional=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    base = load_spec(args.base, num_classes=args.num_classes, resolution=args.resolution)
    cands = grid_candidates(step=args.step, target=args.target, tolerance=args.tolerance)
    if args.dry_run:
        table, _ = candidate_table(base, cands, depth_rounding=args.depth_rounding)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            table.to_csv(Path(args.out) / "grid.csv", index=False)
        print(f"{len(cands)} candidates with |alpha*beta^2*gamma^2 - {args.target:g}| <= {args.tolerance:g}, "
              f"step {args.step:g}; base {base.name} ({sa.fmt_count(table.macs.iloc[0] / table.macs_ratio.iloc[0])} "
              "MACs)")
        print(table.to_string(index=False))
        return 0
    if not args.out:
        raise ValueError("--out DIR is required: it holds grid.csv, coefficients.json and the run directories")
    config = sa.train_config(args)
    result = grid_search(base, sa.trainer(), candidates=cands, train_config=config, out_dir=args.out,
                         seeds=sa.seeds(args), executor=sa.executor(args), resume=args.resume,
                         depth_rounding=args.depth_rounding)
    t = result.table.drop_duplicates(["alpha", "beta", "gamma"]).sort_values("mean_accuracy", ascending=False)
    cols = ["alpha", "beta", "gamma", "product", "resolution", "blocks", "macs", "macs_ratio", "mean_accuracy"]
    print(t[cols].head(15).to_string(index=False))
    b = result.best
    print(f"best: alpha {b.alpha:g}, beta {b.beta:g}, gamma {b.gamma:g} (product {b.product:.3f}); "
          f"wrote {Path(args.out) / 'grid.csv'} and {Path(args.out) / 'coefficients.json'}")
    return 0
