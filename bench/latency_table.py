"""How well a latency lookup table predicts measured latency on this machine (issue 27, item 4).

    OMP_NUM_THREADS=1 python bench/latency_table.py            # both spaces, on a quiet machine (a few minutes)
    python bench/results/latency_table.py                      # the page docs/results/latency_table.md

For each space (``cifar``: 32 px, the CIFAR-10 study's; ``mnasnet``: 224 px, MnasNet's), ``--calibrate``
random candidates build the table (:class:`effnas.search_spaces.latency_table.LatencyTable`: every op timed
once, the line ``a + b * sum`` fitted on the calibration networks' measured latencies), then ``--candidates``
other random candidates (seeded, distinct) are predicted from the table (their missing ops timed, never
the networks) and then measured whole under the same protocol (batch 1, one thread, torch eager, median of
20 calls after 5). A MACs line fitted on the same calibration networks is the baseline a table has to beat.
Writes docs/results/latency_table/<space>.json (the table) and candidates.csv (one row per candidate:
space, MACs, params, op sum, predicted, measured, MACs-line prediction) and run.json (protocol, machine,
seconds). Timing on a busy machine measures the machine: run it while nothing else runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from effnas.nas.space import get_mbconv_space  # noqa: E402
from effnas.search_spaces import NetworkSpec, build  # noqa: E402
from effnas.search_spaces.cost import count_params  # noqa: E402
from effnas.search_spaces.counts import count_macs  # noqa: E402
from effnas.search_spaces.latency_table import LatencyTable, time_network  # noqa: E402
from effnas.search_spaces.timing import Protocol, machine  # noqa: E402

OUT = ROOT / "docs" / "results" / "latency_table"


def candidates(space_name: str, n: int, seed: int) -> list[NetworkSpec]:
    """``n`` distinct random candidates of the space (uniform over every choice), reproducible by ``seed``."""
    space = get_mbconv_space(space_name)
    rng = np.random.default_rng(seed)
    dists = space.distributions()
    out: dict[str, NetworkSpec] = {}
    while len(out) < n:
        params = {k: d.choices[rng.integers(len(d.choices))] for k, d in dists.items()}
        spec = space.to_spec(params, name=f"{space_name}_{len(out)}")
        out.setdefault(json.dumps({k: str(v) for k, v in params.items()}, sort_keys=True), spec)
    return list(out.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spaces", nargs="+", default=["cifar", "mnasnet"])
    ap.add_argument("--calibrate", type=int, default=10, help="networks that build the table and fit its line")
    ap.add_argument("--candidates", type=int, default=50, help="other networks the table predicts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    protocol = Protocol(batch=1, threads=1)
    rows, seconds = [], {}
    args.out.mkdir(parents=True, exist_ok=True)
    for space in args.spaces:
        t0 = time.perf_counter()
        specs = candidates(space, args.calibrate + args.candidates, args.seed)
        calib, test = specs[:args.calibrate], specs[args.calibrate:]
        table = LatencyTable(protocol=protocol)  # LatencyTable.build, keeping the measured calibration latencies
        table.extend(calib)
        measured_calib = [time_network(s, protocol) for s in calib]
        table.fit(calib, measured_calib)
        macs_line = np.polyfit([count_macs(s) for s in calib], measured_calib, 1)
        built = time.perf_counter() - t0
        for i, spec in enumerate(test):
            t1 = time.perf_counter()
            added = table.extend([spec])
            op_sum = table.op_sum(spec)
            predicted = table.a + table.b * op_sum  # LatencyTable.predict, without tracing the network again
            predict_s = time.perf_counter() - t1
            measured = time_network(spec, protocol)
            macs = count_macs(spec)
            rows.append({"space": space, "candidate": i, "resolution": spec.resolution, "macs": macs,
                         "params": count_params(build(spec)), "ops_added": added, "op_sum_ms": op_sum,
                         "predicted_ms": predicted, "measured_ms": measured,
                         "macs_line_ms": float(np.polyval(macs_line, macs)), "predict_seconds": predict_s})
            print(f"{space} {i + 1}/{len(test)}: predicted {predicted:.2f} ms, measured {measured:.2f} ms "
                  f"({100 * (predicted / measured - 1):+.1f} %)", flush=True)
        table.save(args.out / f"{space}.json")
        seconds[space] = {"build": round(built, 1), "total": round(time.perf_counter() - t0, 1),
                          "entries": len(table.entries), "a_ms": table.a, "b": table.b,
                          "macs_line": [float(v) for v in macs_line]}
    pd.DataFrame(rows).to_csv(args.out / "candidates.csv", index=False)
    (args.out / "run.json").write_text(json.dumps(
        {"protocol": protocol.to_dict(), "machine": machine(protocol.threads), "calibrate": args.calibrate,
         "candidates": args.candidates, "seed": args.seed, "spaces": seconds,
         "command": "OMP_NUM_THREADS=1 python bench/latency_table.py " + " ".join(argv or sys.argv[1:])},
        indent=1) + "\n")
    print(f"wrote {args.out}: python bench/results/latency_table.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
