"""``effnas family``: a compound-scaled family (from coefficients or the official table), its
cost table, optional single-dimension baselines at matched MACs, and optional training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from experiments.commands import _scaling_args as sa
from scaling import (
    PAPER,
    Coefficients,
    Member,
    family,
    family_table,
    matched_baselines,
    parse_phis,
    side_by_side,
    train_members,
)
from search_spaces import load_spec


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "family", help="build (and train) a compound-scaled family phi = 0..K with its cost table",
        description="Members phi = 0..K of a base network, scaled with coefficients (d = alpha^phi, "
        "w = beta^phi, r = gamma^phi; repeats rounded to nearest) or as the official B0..B8 table "
        "(--official, TF ceil rounding; the coefficient family is shown beside it). With --baselines, "
        "depth-only, width-only and resolution-only scaling of the base at each member's MACs. "
        "With --train, every network is trained (resumable with --resume) into --out/family.csv.",
    )
    p.add_argument("--base", required=True, help="a registered model name or a spec .json file")
    p.add_argument("--official", action="store_true", help="members are the official B0..B8 rows")
    p.add_argument("--phis", default="0-7", help="phi range, e.g. 0-7 or 0,1,3 (default 0-7)")
    p.add_argument("--resolution", type=int, help="the base's input size in pixels (default: its own)")
    p.add_argument("--num-classes", type=int, help="the base's classifier outputs (default: its own)")
    p.add_argument("--baselines", action="store_true",
                   help="add depth-, width- and resolution-only scaling at each member's MACs")
    p.add_argument("--baseline-phis", help="only match these members with baselines, e.g. 2 (default: every phi >= 1)")
    p.add_argument("--out", help="directory for family.csv, reference.csv and the member specs")
    p.add_argument("--json", action="store_true", help="print the table as JSON rows")
    sa.add_coefficient_args(p)
    sa.add_training_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    base = load_spec(args.base, num_classes=args.num_classes, resolution=args.resolution)
    phis = parse_phis(args.phis)
    coeffs = sa.coefficients_from(args)
    if not args.official and coeffs is None:
        raise ValueError("give --coefficients FILE, --alpha/--beta/--gamma, or --official")
    members = family(base, phis, official=args.official, coefficients=coeffs, depth_rounding=args.depth_rounding)
    reference: list[Member] = []
    if args.official:
        reference = family(base, phis, coefficients=coeffs or PAPER, depth_rounding=args.depth_rounding)
    baselines: list[Member] = []
    if args.baselines or args.baseline_phis:
        wanted = set(parse_phis(args.baseline_phis)) if args.baseline_phis else set(phis)
        if not wanted <= set(phis):
            raise ValueError(f"--baseline-phis {args.baseline_phis} names phis outside --phis {args.phis}")
        targets = [m for m in members if m.phi in wanted]
        baselines = matched_baselines(base, targets, depth_rounding=args.depth_rounding)
    if args.train:
        if not args.out:
            raise ValueError("--train needs --out DIR for the run directories and family.csv")
        trainer, config = sa.trainer(), sa.train_config(args)
    table = family_table(members + baselines)
    if args.out:
        out = Path(args.out)
        (out / "specs").mkdir(parents=True, exist_ok=True)
        for m in members + baselines:
            m.spec.save(out / "specs" / f"{m.spec.name}.json")
        if reference:
            side_by_side(members, reference).to_csv(out / "reference.csv", index=False)
        if not args.train:
            table.to_csv(out / "family.csv", index=False)
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), indent=2))
    else:
        print(format_family(members, reference, baselines, coeffs or PAPER))
    if args.train:
        trained = train_members(members + baselines, trainer, train_config=config,
                                out_dir=args.out, seeds=sa.seeds(args), executor=sa.executor(args),
                                resume=args.resume)
        print(format_trained(trained))
        print(f"wrote {Path(args.out) / 'family.csv'}")
    return 0


def format_family(members: list[Member], reference: list[Member], baselines: list[Member],
                  coeffs: Coefficients) -> str:
    f = sa.fmt_count
    lines = []
    if reference:
        lines.append(f"{members[0].spec.name.rsplit('-', 1)[0]}: official table (TF ceil) | coefficient family "
                     f"alpha, beta, gamma = {coeffs.as_tuple()} (repeats rounded to nearest)")
        lines.append(f"{'phi':>3} | {'d':>4} {'w':>4} {'r':>4} {'params':>12} {'MACs':>8} {'real':>6} {'nominal':>7} | "
                     f"{'d':>5} {'w':>5} {'r':>4} {'params':>12} {'MACs':>8} {'real':>6} {'nominal':>7}")
        by_phi = {m.phi: m for m in reference}
        for o in members:
            c = by_phi[o.phi]
            lines.append(
                f"{o.phi:>3} | {o.multipliers.depth:>4.1f} {o.multipliers.width:>4.1f} {o.spec.resolution:>4} "
                f"{o.params:>12,} {f(o.macs):>8} {o.macs_ratio:>6.2f} {o.multipliers.nominal_macs_ratio:>7.2f} | "
                f"{c.multipliers.depth:>5.2f} "
                f"{c.multipliers.width:>5.2f} {c.spec.resolution:>4} {c.params:>12,} {f(c.macs):>8} "
                f"{c.macs_ratio:>6.2f} {c.multipliers.nominal_macs_ratio:>7.2f}")
    else:
        lines.append(f"{'method':<10} {'phi':>3} {'d':>6} {'w':>6} {'r':>4} {'blocks':>6} {'dropout':>7} "
                     f"{'params':>12} {'MACs':>8} {'realised':>8} {'nominal':>8}")
        for m in members + baselines:
            lines.append(
                f"{m.method:<10} {m.phi:>3} {m.multipliers.depth:>6.3f} {m.multipliers.width:>6.3f} "
                f"{m.spec.resolution:>4} {m.spec.num_blocks:>6} {m.spec.dropout:>7.3f} {m.params:>12,} "
                f"{f(m.macs):>8} {m.macs_ratio:>8.3f} {m.multipliers.nominal_macs_ratio:>8.3f}")
        return "\n".join(lines)
    if baselines:
        lines.append("single-dimension baselines at matched MACs:")
        for m in baselines:
            lines.append(f"{m.method:<10} phi {m.phi}: d {m.multipliers.depth:.3f} w {m.multipliers.width:.3f} "
                         f"r {m.spec.resolution} params {m.params:,} MACs {f(m.macs)} ratio {m.macs_ratio:.3f}")
    return "\n".join(lines)


def format_trained(t: pd.DataFrame) -> str:
    acc = [c for c in ("val_accuracy", "test_accuracy") if c in t.columns]
    if not acc:
        return "no run finished"
    g = t.groupby(["method", "phi"], sort=False)
    agg = g.agg(macs=("macs", "first"), n=("seed", "size"), **{f"{c}_mean": (c, "mean") for c in acc},
                **{f"{c}_std": (c, "std") for c in acc}).reset_index().fillna(0.0)
    lines = [f"{'method':<10} {'phi':>3} {'MACs':>8} {'seeds':>5} " + " ".join(f"{c + ' (%)':>20}" for c in acc)]
    for _, r in agg.iterrows():
        cells = " ".join(f"{100 * r[f'{c}_mean']:>12.2f} ± {100 * r[f'{c}_std']:>5.2f}" for c in acc)
        lines.append(f"{r['method']:<10} {r['phi']:>3} {sa.fmt_count(r['macs']):>8} {r['n']:>5} {cells}")
    bad = t[t["status"] != "completed"] if "status" in t.columns else t.iloc[0:0]
    for _, r in bad.iterrows():
        lines.append(f"  {r['run_dir']}: {r['status']} {r.get('error', '') or ''}")
    return "\n".join(lines)
