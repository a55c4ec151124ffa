#!/usr/bin/env bash
# Issue 26, part 1 of the new CIFAR-10 study: choose the epoch budget by measurement. Trains the
# CIFAR-10 study's found base (phi 0) and its phi 2 compound member (the paper's 1.2, 1.1, 1.15:
# about 4x the MACs) with the fast recipe on the whole training pool (5 % held out for validation)
# at E and 2E epochs, seeds 0-1, two one-thread workers, then compares each member's test accuracy at
# 2E with E (effnas compare: the difference with its 95 % interval, paired by seed). The budget is
# E when both members gain less than 1.5 points from doubling it.
# Resumable: run it again after a kill and finished runs are kept (--resume).
# Usage (from the project root): E=8 bash bench/cifar10_budget.sh [OUT]   (default runs/cifar10-budget)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/cifar10-budget}
E=${E:-8}
PY=${PYTHON:-.venv/bin/python}
DATA=${EFFNAS_CIFAR10_JPEG:-../shared/data/cifar10-jpeg.tar.gz}
if [ ! -f "$DATA" ]; then
    echo "cifar10_budget.sh: error: no CIFAR-10 archive at '$DATA': set EFFNAS_CIFAR10_JPEG to cifar10-jpeg.tar.gz" >&2
    exit 2
fi
BASE=experiments/config/presets/specs/cifar10_found_base.json
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT"
for epochs in "$E" "$((2 * E))"; do
    echo "$(date -u +%FT%TZ) start $epochs epochs" | tee -a "$OUT/timings.log"
    $PY -m effnas family --base "$BASE" --alpha 1.2 --beta 1.1 --gamma 1.15 --phis 0,2 --no-baselines --train \
        --dataset "cifar10:$DATA" --epochs "$epochs" --seeds 2 --workers 2 --cpus-per-trial 1 --yes \
        --set data.data_fraction=1.0 --set data.val_fraction=0.05 --set train.recipe=fast \
        --set train.threads=1 --out "$OUT/e$epochs" --resume
    echo "$(date -u +%FT%TZ) done $epochs epochs" | tee -a "$OUT/timings.log"
done
$PY -m effnas compare "$OUT/e$((2 * E))" "$OUT/e$E" --labels "e$((2 * E))" "e$E" | tee "$OUT/gain.txt"
