"""Run the README's Quick start (docs/quickstart.sh) command by command in an empty directory and
measure each one: the wall time, its exit code and the machine, into
docs/results/quickstart/times.json (the data of docs/results/quickstart.md and of the times the
README states; regenerate both with ``python bench/results/quickstart.py``).

    python bench/run_quickstart.py                 # all commands, in a temporary directory
    python bench/run_quickstart.py --dir /tmp/qs   # keep what they wrote

Run it on a quiet machine: the times are what a user of this machine waits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "quickstart.sh"
OUT = ROOT / "docs" / "results" / "quickstart" / "times.json"


def steps(script: Path = SCRIPT) -> list[tuple[str, str]]:
    """The ``(what, command)`` pairs of the script: each command line with the comment above it."""
    out, what = [], ""
    for line in script.read_text().splitlines():
        if line.startswith("effnas "):
            out.append((what, line))
            what = ""
        elif line.startswith("# ") and not line.startswith("#!"):
            what = line[2:]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, help="run in this directory (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"where the times go (default: {OUT.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    exe = Path(sys.executable).parent / "effnas"
    with tempfile.TemporaryDirectory(prefix="effnas-quickstart-") as tmp:
        cwd = args.dir or Path(tmp)
        cwd.mkdir(parents=True, exist_ok=True)
        rows = []
        for what, command in steps():
            argv_ = shlex.split(command)
            t0 = time.perf_counter()
            done = subprocess.run([str(exe), *argv_[1:]], cwd=cwd, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            rows.append({"command": command, "what": what, "seconds": round(seconds, 1), "returncode": done.returncode})
            print(f"{seconds:7.1f} s  rc {done.returncode}  {command}", flush=True)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
    machine = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "python": platform.python_version(), "load_average_1min_at_end": round(os.getloadavg()[0], 2)}
    import torch  # lazy: only for the version it records

    record = {"machine": machine, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "steps": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}: {sum(r['seconds'] for r in rows):.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
