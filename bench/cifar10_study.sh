#!/usr/bin/env bash
# The CIFAR-10 scaling study (docs/results/cifar10/short-budget/): the whole method on real CIFAR-10 at 32 px, then
# EfficientNet-B0 scaled by the paper's (1.2, 1.1, 1.15) on the same data as a second family, the found
# family trained 3x longer (12 epochs, baselines at phi 2), the paper's Fig. 4 with the found base, and
# the collection into docs/results/cifar10/short-budget/ (bench/cifar10_report.py, which also writes report.md).
# Resumable: run it again after a kill and it continues (every stage and run is --resume).
# Usage (from the project root): bash bench/cifar10_study.sh [OUT]   (default runs/cifar10-cpu)
# One torch thread (train.threads = 1 in the config): keep the machine's other core free.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/cifar10-cpu}
PY=${PYTHON:-.venv/bin/python}
# The real CIFAR-10 JPEG archive: EFFNAS_CIFAR10_JPEG, else ../shared/data/ beside the project.
DATA=${EFFNAS_CIFAR10_JPEG:-../shared/data/cifar10-jpeg.tar.gz}
if [ ! -f "$DATA" ]; then
    echo "cifar10_study.sh: error: no CIFAR-10 archive at '$DATA': set EFFNAS_CIFAR10_JPEG to cifar10-jpeg.tar.gz" >&2
    exit 2
fi
if [ ! -x "$PY" ]; then
    echo "cifar10_study.sh: error: no Python at '$PY': run 'make test' (it creates .venv) or set PYTHON" >&2
    exit 2
fi
SET=(--set "data.dataset=cifar10:$DATA")
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT"
stamp() { echo "$(date -u +%FT%TZ) $*" | tee -a "$OUT/timings.log"; }
stamp "start main run"
t0=$(date +%s)
$PY -m effnas run experiments/config/presets/cifar10-cpu.toml --set "run.out=$OUT" "${SET[@]}" --resume
t1=$(date +%s)
stamp "main run done in $((t1 - t0)) s"
$PY -m effnas family --config experiments/config/presets/cifar10-cpu.toml --base efficientnet_b0 \
    --alpha 1.2 --beta 1.1 --gamma 1.15 --phis 0,1,2 --no-baselines --seeds 3 --train \
    "${SET[@]}" --out "$OUT/b0-family" --resume
t2=$(date +%s)
stamp "b0 family done in $((t2 - t1)) s"
$PY -m effnas family --config experiments/config/presets/cifar10-cpu.toml --base "$OUT/baseline.json" \
    --coefficients "$OUT/grid/coefficients.json" --phis 0-3 --baseline-phis 2 --epochs 12 --train \
    "${SET[@]}" --out "$OUT/family-e12" --resume
t3=$(date +%s)
stamp "12-epoch family done in $((t3 - t2)) s"
$PY bench/cifar10_fig4.py "$OUT/baseline.json" --config experiments/config/presets/cifar10-cpu.toml \
    "${SET[@]}" --out "$OUT/fig4"
t4=$(date +%s)
stamp "fig4 done in $((t4 - t3)) s; total $((t4 - t0)) s"
$PY bench/cifar10_report.py "$OUT" --longer "$OUT/family-e12" --fig4 "$OUT/fig4"
