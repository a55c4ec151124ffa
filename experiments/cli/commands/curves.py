"""``effnas curves``: accuracy against MACs and params per scaling method, with power-law fits."""

from __future__ import annotations

import argparse
from typing import Any

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.train import guard
from effnas.scaling import load_results, plot_curves
from effnas.scaling.analysis.compare import summary
from effnas.scaling.curves import AXES, INTERVAL, MEASURED, check_results, holdout_text, interval_text
from effnas.scaling.fit import fit_note
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "curves", help="plot and fit scaling curves from trained family directories",
        description="Reads family.csv from each DIR (as written by 'effnas family --train'), plots accuracy "
        "against MACs, against params and, when every trained row has them, against activations (conv + linear "
        "output elements), training time (train_seconds) and measured latency (latency_ms_b1, latency_ms_bN) "
        "per scaling method (mean over seeds, the 95 % t-interval over seeds "
        "as error bars; a size with one run has none), fits error = a*(x/x0)^-b + c per method and draws it "
        "with a 90 % band out to --extrapolate times the largest size (a fit with a parameter at its bound: "
        "dashed, no band; an undetermined fit: not drawn), and checks each fit by refitting on phi <= K-1 and "
        "predicting the largest phi K. Writes accuracy_vs_macs.png, accuracy_vs_params.png, "
        "accuracy_vs_activations.png, accuracy_vs_train_seconds.png, accuracy_vs_latency_ms_b1.png, "
        "accuracy_vs_latency_ms_bN.png, curves.csv, "
        "fits.json, bands.csv.",
        epilog=c.examples(
            ("effnas curves runs/family --out runs/curves",
             "accuracy against MACs, params and activations, with power-law fits"),
            ("effnas curves runs/family runs/family-b --out runs/curves --metric val_accuracy --bootstrap 200",
             "two families on one plot, validation accuracy, with bootstrap intervals of the fits"),
        ),
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="family directories (or family.csv files)")
    p.add_argument("--out", metavar="DIR", required=True, help="directory for the plots and data")
    p.add_argument("--metric", default="test_accuracy", help="accuracy column (default: %(default)s)")
    p.add_argument("--extrapolate", type=float, default=4.0, metavar="X",
                   help="extend fits to this multiple of the largest size (default: %(default)s)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="N",
                   help="also N refits on the seeds resampled within each size, for 95 %% percentile intervals of "
                   "a, b, c in fits.json (default: %(default)s, none; ~3 ms a refit)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.extrapolate >= 1:
        raise UserError(f"--extrapolate must be >= 1, got {args.extrapolate}")
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap must be >= 0 resamples, got {args.bootstrap}")

    df = check_results(load_results(args.dirs), metric=args.metric)
    with guard.Lock(guard.out_dir(args.out), what="curves directory"):
        res = plot_curves(df, args.out, metric=args.metric, extrapolate=args.extrapolate, bootstrap=args.bootstrap)
    pts = res["points"]
    timed = [a for a in MEASURED if a in res["fits"]]  # measured costs every trained row has
    print(f"{'method':<10} {'phi':>3} {'MACs':>12} {'params':>10}" + "".join(f" {a:>14}" for a in timed)
          + f"  {args.metric} (%): mean [{INTERVAL}]")
    for _, r in pts.iterrows():
        print(f"{r['method']:<10} {r['phi']:>3} {r['macs']:>12,} {r['params']:>10,}"
              + "".join(f" {r[a]:>14.4g}" for a in timed) + f"  {interval_text(r)}")
    for axis in (a for a in AXES if a in res["fits"]):
        for m, f in res["fits"][axis].items():
            if isinstance(f, dict):
                print(f"fit vs {axis:<6} {m:<10} error = {f['a']:.4f} (x/{f['x0']:.3g})^-{f['b']:.3f} + {f['c']:.4f}"
                      f"  (rmse {f['rmse']:.4f}, {f['n_points']} points; {_status(f)})")
                if isinstance(f["bootstrap"], dict):
                    print(f"  bootstrap {'':<7} {m:<10} " + ", ".join(
                        f"{k} [{f['bootstrap'][k][0]:.4f}, {f['bootstrap'][k][1]:.4f}]" for k in ("a", "b", "c"))
                        + f" (95 % percentile interval, {f['bootstrap']['draws']} refits over seeds)")
                print(f"  held out {'':<8} {m:<10} {holdout_text(f['holdout'])}")
            else:
                print(f"fit vs {axis:<6} {m:<10} {f}")
    print(summary(df, metric=args.metric))
    print("wrote " + ", ".join(res["files"]) + f" and curves.csv, fits.json, bands.csv in {args.out}")
    return 0


def _status(f: dict[str, Any]) -> str:
    """A fit's status as ``fits.json`` gives it: band or why not."""
    return fit_note(f["status"], f["at_bound"]) or "90 % band"
