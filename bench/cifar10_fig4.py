"""EfficientNet Fig. 4 on CIFAR-10: width scaling of the study's found base at four (depth,
resolution) settings, with the study's data and recipe (experiments/config/presets/cifar10-cpu.toml).

    python bench/cifar10_fig4.py runs/cifar10-cpu/baseline.json --out runs/cifar10-cpu/fig4
        [--set data.dataset=cifar10:PATH.tar.gz]

Each network is trained once (seed 0) into ``OUT/d{d}-r{r}-w{w}/`` (resumable: a finished run is
reused); ``OUT/fig4.csv`` and ``OUT/fig4.png`` (accuracy against MACs, a line per setting) follow.
The paper's claim: width helps more when depth and resolution are also larger.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import effnas.search_spaces as ss  # noqa: E402
from effnas.experiments.config.schema import load_config  # noqa: E402
from effnas.experiments.pipeline.plan import base_spec, train_config  # noqa: E402
from effnas.experiments.train.loop import train_fn  # noqa: E402
from effnas.search_spaces.common.errors import UserError, first_line  # noqa: E402
from effnas.search_spaces.cost import macs  # noqa: E402

SETTINGS = ((1.0, 1.0), (2.0, 1.0), (1.0, 1.3), (2.0, 1.3))  #: (depth, resolution) as in the paper's Fig. 4
WIDTHS = (1.0, 1.4, 1.8, 2.6)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="the study's baseline.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default=str(ROOT / "experiments" / "config" / "presets" / "cifar10-cpu.toml"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a config key, e.g. data.dataset=cifar10:PATH.tar.gz")
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except UserError as e:  # bad input: one line, as the effnas CLI does
        print(f"cifar10_fig4.py: error: {first_line(e)}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, overrides=args.set)
    base = base_spec(cfg, ss.load_spec(args.base))
    shared = train_config(cfg)
    rows = []
    for d, r in SETTINGS:
        for w in WIDTHS:
            res = ss.scale_resolution(base.resolution or 32, r)
            spec = ss.scale(base, depth=d, width=w, resolution=res, depth_rounding="round",
                            name=f"{base.name}-d{d:g}-r{r:g}-w{w:g}")
            out = Path(args.out) / f"d{d:g}-r{r:g}-w{w:g}" if args.seed == 0 else \
                Path(args.out) / f"seed{args.seed}" / f"d{d:g}-r{r:g}-w{w:g}"
            m = train_fn({**shared, "model": spec.to_dict(),
                          "resolution": res, "seed": args.seed, "out_dir": str(out), "resume": True})
            rows.append({"depth": d, "resolution_mult": r, "resolution": res, "width": w, "seed": args.seed,
                         "macs": macs(spec, res), "params": m.get("params"), "status": m["status"],
                         "test_accuracy": m.get("test_accuracy"), "val_accuracy": m.get("val_accuracy"),
                         "train_seconds": m.get("train_seconds")})
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(Path(args.out) / "fig4.csv", index=False)
    fig, ax = plt.subplots(figsize=(6, 4))
    for (d, r), g in df.groupby(["depth", "resolution_mult"], sort=False):
        ax.plot(g["macs"] / 1e6, g["test_accuracy"] * 100, "o-", label=f"d={d:g}, r={r:g}")
    ax.set_xscale("log")
    ax.set_xlabel("MACs (millions)")
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_title("Width w = 1.0, 1.4, 1.8, 2.6 at four depth/resolution settings")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(Path(args.out) / "fig4.png", dpi=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
