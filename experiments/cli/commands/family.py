"""``effnas family``: a compound-scaled family (from coefficients and/or the official table), its
cost table with realised vs nominal MACs, single-dimension baselines at matched MACs at every phi,
and optional training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.cli.commands import _progress as console
from effnas.experiments.config.choices import DEPTH_ROUNDINGS, LATENCY_RUNTIMES
from effnas.experiments.pipeline import plan, stages
from effnas.experiments.pipeline.estimate import estimate, stage_work
from effnas.scaling.analysis.compare import summary
from effnas.scaling.analysis.rules import compare_rules, rule_lines
from effnas.scaling.curves import INTERVAL, interval_text
from effnas.scaling.family import ACCURACIES, trained_summary
from effnas.scaling.rules import SYNTAX, parse_rule
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "family", help="build (and train) a scaled family phi = 0..K (compound or a --rule) with its cost table",
        description="Members phi = 0..K of a base network, scaled with coefficients (d = alpha^phi, "
        "w = beta^phi, r = gamma^phi; repeats rounded to nearest; resolution adjusted in whole pixels so "
        "that realised MACs land within family.cost_tolerance of the nominal ratio) and/or the official "
        "B0..B7 table (--official, TF rounding); or by another --rule (fast:A, resnet-rs, depth, width, resolution, "
        "exponents:E_D,E_W,E_R: member phi spends P^phi times the base's MACs, P the coefficients' product or "
        "grid.target, and is held to it the same way). Single-dimension baselines (depth-, width-, resolution-only) "
        "at each member's realised MACs unless --no-baselines. With --train every network is trained "
        "(resumable with --resume) into --out/family.csv; exit code 1 when a run failed. Without --train the "
        "table is written to --out/members.csv.",
        epilog=c.examples(
            ("effnas family --base efficientnet_b0 --official --phis 0-7",
             "the official B0..B7 cost table, nothing trained"),
            ("effnas family --base efficientnet_nano --alpha 1.2 --beta 1.1 --gamma 1.15 --phis 0-3",
             "a family from the paper's coefficients with single-dimension baselines at matched MACs"),
            ("effnas family --rule fast:0.8 --base tiny --phis 0-2",
             "fast compound scaling (Dollar et al. 2021, dWr) at 2x MACs per phi, with the matched baselines"),
            ("effnas family --rule nonuniform:40 --base tiny --phis 0-4 --no-baselines",
             "EfficientNetV2's non-uniform scaling: the input capped at 40 px, the rest spent on the later stages"),
            ("effnas family --base tiny --alpha 1.2 --beta 1.1 --gamma 1.15 --rules fast:0.8,resnet-rs --phis 0-2 "
             "--no-baselines --train --dataset shapes --seeds 3 --out runs/rules",
             "three rules' families on one base and seeds; then: effnas compare runs/rules --rules"),
            ("effnas family --base efficientnet_nano --coefficients runs/grid/coefficients.json --phis 0-3 --train "
             "--dataset shapes --seeds 2 --out runs/family", "train every member and baseline, two seeds each"),
        ),
    )
    c.add_config_args(p)
    g = p.add_argument_group("family (each flag sets the config key in brackets)")
    c.key_flag(g, "--base", key="train.model", help="a registered model name or a spec .json file")
    c.key_flag(g, "--phis", key="family.phis", help="the members, e.g. 0-7 or 0,1,3")
    g.add_argument("--official", dest="family.official", action="store_const", const=True,
                   help="also the official B0..B7 rows (alone when no coefficients are given) [family.official]")
    c.key_flag(g, "--resolution", key="data.resolution", help="the base's input pixels (default: its own)")
    c.key_flag(g, "--baselines", key="family.single_dimension", action=argparse.BooleanOptionalAction,
               help="depth-, width- and resolution-only scaling at each member's MACs")
    c.key_flag(g, "--baseline-phis", key="family.baseline_phis",
               help="only match these members, e.g. 2 (default: every phi >= 1)")
    c.key_flag(g, "--cost-tolerance", key="family.cost_tolerance", help="realised MACs within this of nominal")
    c.key_flag(g, "--depth-rounding", key="family.depth_rounding", choices=DEPTH_ROUNDINGS,
               help="repeats rounded to nearest (round) or up (ceil, TF)")
    c.key_flag(g, "--rule", key="family.rule",
               help=f"how members spend their MACs: {SYNTAX} (docs/scaling.md)")
    c.key_flag(g, "--rules", key="family.rules",
               help="more rules beside --rule on the same base, data, epochs and seeds, e.g. fast:0.8,resnet-rs "
               "(an exponents: rule as '[\"exponents:0.2,0.6,0.2\"]'); compare them with 'effnas compare DIR --rules' "
               "(default: none)")
    p.add_argument("--out", metavar="DIR", help="directory for family.csv (members.csv without --train) and the "
                   "specs")
    p.add_argument("--json", action="store_true", help="print the table as JSON rows")
    c.add_coefficient_args(p)
    t = p.add_argument_group("training")
    t.add_argument("--train", action="store_true", help="train every network (needs --out)")
    c.add_data_args(t)
    c.key_flag(t, "--epochs", key="family.epochs", help="epochs per network (default: train.epochs)")
    c.key_flag(t, "--seeds", key="family.seeds", help="seeds per network: a count (2), a list (0,5) or a range (0-2)")
    c.key_flag(t, "--latency-batch", key="family.latency_batch",
               help="after training, latency is measured at batch 1 and at this batch (latency_ms_bN)")
    c.key_flag(t, "--latency-runtime", key="family.latency_runtime", choices=LATENCY_RUNTIMES,
               help="torch, or onnxruntime as well (ort_latency_ms_*; needs effnas[deploy])")
    c.add_run_args(t)
    console.add_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = c.experiment(args)
    coeffs = c.coefficients_from(args, cfg)
    if coeffs is None and not cfg.family.official and parse_rule(cfg.family.rule).is_compound:
        raise UserError("give --coefficients FILE, --alpha/--beta/--gamma, --official, or a --rule other than "
                         "compound (e.g. --rule fast:0.8)")
    base = plan.base_spec(cfg)
    fp = plan.family_plan(cfg, base, coeffs)
    table, jobs = fp.table, fp.jobs
    if args.train and not args.out:
        raise UserError("--train needs --out DIR for the run directories and family.csv")
    if args.train:
        # data, cluster, --out and memory before the table is printed
        stages.preflight(cfg, args.out, jobs, fp.train_config)
    if args.out and not args.train:
        stages.write_plan(fp, args.out, "members.csv")
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), indent=2))
    elif not (args.train and args.quiet):  # with --train, the plan; the trained table is the result
        print(format_table(table))
    if not args.train:
        return 0
    work = [stage_work("family", fp, out=args.out, resume=args.resume)]
    ask = console.asker(args, lambda: estimate(work, base, fp.train_config, fp.runtime),
                        shrink="--epochs, --seeds or --phis")
    trained = stages.family(cfg, fp, args.out, resume=args.resume, progress=console.board(args, fp.runtime),
                            go_ahead=ask)
    print(format_trained(trained))
    print(summary(trained))
    if cfg.family.rules:
        print(rules_text(trained, cfg.family.rule, cfg.family.rules, cfg.family.cost_tolerance))
    print(f"wrote {Path(args.out) / 'family.csv'}")
    bad = stages.format_failures(trained, "runs")
    if bad:
        print(bad)
        return 1
    return 0


def rules_text(trained: pd.DataFrame, rule: str, rules: tuple[str, ...], tolerance: float) -> str:
    """The rules against compound (or against ``rule`` when compound is not among them) at equal MACs,
    activations and training time (:func:`effnas.scaling.analysis.rules.compare_rules`)."""
    labels = [parse_rule(r).label for r in (rule, *rules)]
    reference = "compound" if "compound" in labels else labels[0]
    metric = next((m for m in ("test_accuracy", "val_accuracy") if m in trained and trained[m].notna().any()), None)
    if metric is None or not (trained["method"] == reference).any():
        return "no rule verdicts: no trained runs of " + reference
    table = compare_rules(trained, metric=metric, reference=reference, tolerance=tolerance)
    return "\n".join([f"rules against {reference} on {metric} (A - B in points, 95 % interval; members matched by "
                      f"phi, compared where their realised cost is within {100 * tolerance:g} %):",
                      *rule_lines(table)])


TABLE_COLUMNS = ("method", "phi", "depth", "width", "resolution", "blocks", "dropout", "params", "macs",
                 "activations", "macs_ratio", "target_macs_ratio", "within_tolerance")


def format_table(table: pd.DataFrame) -> str:
    cols = [k for k in TABLE_COLUMNS if k in table.columns]
    t = table[cols].copy()
    for k in ("macs", "activations"):
        if k in t.columns:
            t[k] = t[k].map(c.fmt_count)
    text = t.to_string(index=False)
    if "reason" in table.columns:
        off = table[table["reason"].fillna("").astype(str) != ""]
        text += "".join(f"\n  {r['method']} phi {r['phi']}: {r['reason']}" for _, r in off.iterrows())
    return text


def format_trained(t: pd.DataFrame) -> str:
    """A line per trained network: MACs, runs and each accuracy's mean with its 95 % t-interval
    over seeds (``n = 1``: the mean alone)."""
    acc = [k for k in ACCURACIES if k in t.columns]
    if not acc or t[acc].isna().all().all():
        return "no run finished"
    s = trained_summary(t, metrics=acc)
    timed = [k for k in TIMED_SHOWN if k in s.columns]
    lines = [f"{'method':<10} {'phi':>3} {'MACs':>8} {'runs':>4}" + "".join(f" {TIMED_SHOWN[k]:>11}" for k in timed)
             + "  " + "  ".join(f"{k + ' (%)':<30}" for k in acc) + f"  (mean [{INTERVAL}])"]
    for _, r in s.iterrows():
        cells = "  ".join(f"{interval_text(r, prefix=f'{k}_'):<30}" for k in acc)
        times = "".join(f" {r[k]:>11.4g}" for k in timed)
        lines.append(f"{r['method']:<10} {r['phi']:>3} {c.fmt_count(r['macs']):>8} {r['runs']:>4}{times}  "
                     f"{cells}".rstrip())
    return "\n".join(lines)


#: Measured time shown per trained network (the mean over its runs): column -> heading.
TIMED_SHOWN = {"train_seconds": "train s", "train_img_per_s": "train img/s", "latency_ms_b1": "ms b1",
               "latency_ms_bN": "ms bN"}
