#!/usr/bin/env bash
# The GPU check: run this on a Linux machine with an NVIDIA GPU and its driver, from a clone of
# the repository:   bash bench/gpu_check.sh
#
# NOT RUN YET: the project is developed on a CPU-only machine (docs/gpu.md says what was tested
# there and what only this script checks). It takes at most about 8 minutes:
#   1. installs effnas with the CUDA build of torch into $VENV (default .venv-gpu);
#   2. runs the tests marked `gpu` (mixed precision x channels_last, CUDA out-of-memory status,
#      2-GPU NCCL data-parallel when two GPUs exist, two Ray trials sharing one GPU);
#   3. B0 at 224 px: training throughput and peak memory of eager fp32 NCHW, channels_last,
#      bf16 and fp16 autocast (bench/train_throughput.py, random data);
#   4. a short real training on CUDA with the trainer's defaults (AMP + channels_last):
#      effnas train, its img/s, precision and peak memory from metrics.json;
#   5. a 2-trial search sharing one GPU at 0.5 GPU per trial (Ray);
#   6. a 2-process DDP training if two GPUs exist;
# then prints one table. Environment: VENV, OUT (default runs/gpu-check), TORCH (the pip
# requirement for torch, default torch==2.13.0: PyPI's Linux wheel is the CUDA build),
# SKIP_INSTALL=1 to use $VENV as it is.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-gpu}
OUT=${OUT:-runs/gpu-check}
TORCH=${TORCH:-torch==2.13.0}
PY=$VENV/bin/python
START=$SECONDS
declare -a ROWS=()

step() { printf '\n== [%3ds] %s\n' "$((SECONDS - START))" "$*"; }
row() { ROWS+=("$1|$2|$3"); }

if ! command -v nvidia-smi >/dev/null; then
    echo "gpu_check: nvidia-smi not found: run this on a machine with an NVIDIA GPU and its driver" >&2
    exit 2
fi
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    step "install into $VENV ($TORCH, then effnas with [dev])"
    test -x "$PY" || python3 -m venv "$VENV" || exit 2
    "$PY" -m pip install -q --upgrade pip && "$PY" -m pip install -q "$TORCH" && "$PY" -m pip install -q -e '.[dev]' \
        || { echo "gpu_check: install failed" >&2; exit 2; }
fi
if ! "$PY" -c "import torch, sys; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'GPUs', \
torch.cuda.device_count(), 'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported()); \
sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA device: install a CUDA build of torch that matches the driver (TORCH=...)" >&2
    exit 2
fi
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
EFFNAS=("$PY" -m effnas)
mkdir -p "$OUT"
rm -rf "$OUT/train" "$OUT/ddp" "$OUT/search"

step "1/5 tests marked gpu"
if timeout 300 "$PY" -m pytest -q -m gpu tests/experiments/test_gpu.py -rs -p no:cacheprovider 2>&1 \
        | tee "$OUT/gpu_tests.txt" | tail -15; then
    row "gpu tests" "$(tail -1 "$OUT/gpu_tests.txt")" "tests/experiments/test_gpu.py"
else
    row "gpu tests" "FAILED: $(tail -1 "$OUT/gpu_tests.txt")" "$OUT/gpu_tests.txt"
fi

step "2/5 B0 224 px throughput: eager fp32 NCHW, channels_last, bf16, fp16 (random data, batch 64)"
VARIANTS=eager_nchw,channels_last,fp16
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_bf16_supported() else 1)" && VARIANTS=$VARIANTS,bf16
if timeout 150 "$PY" bench/train_throughput.py --model efficientnet_b0 --resolution 224 --batch-size 64 \
        --variants "$VARIANTS" --rounds 2 --steps 5 > "$OUT/throughput.md" 2> "$OUT/throughput.log"; then
    cat "$OUT/throughput.md"
    while IFS='|' read -r _ name img x mem _; do
        row "B0 224 ${name// /}" "$(echo "$img" | xargs) img/s (x$(echo "$x" | xargs) eager)" "peak $(echo "$mem" | xargs) MB"
    done < <(grep -E '^\| (eager|channels|bf16|fp16)' "$OUT/throughput.md")
else
    row "B0 224 throughput" "FAILED" "$OUT/throughput.log"
fi

metrics_row() {  # name, metrics.json
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
name, path = sys.argv[1], sys.argv[2]
m = json.load(open(path))
ips, peak = m.get("images_per_second") or 0, m.get("peak_memory_mb")
print(f"{name}|{m['status']}, {ips:.0f} img/s, {m.get('precision')}, {m.get('devices')} device(s)|"
      f"peak {peak:.0f} MB" if peak is not None else f"{name}|{m['status']}, {ips:.0f} img/s|peak -")
EOF
}

step "3/5 real training on CUDA, the trainer's defaults (AMP + channels_last): B0 at 128 px on shapes"
TRAIN=(train --model efficientnet_b0 --dataset shapes --resolution 128 --epochs 1 --batch-size 128 --device cuda
       --quiet)
if timeout 150 "${EFFNAS[@]}" "${TRAIN[@]}" --out "$OUT/train" > "$OUT/train.log" 2>&1; then
    tail -1 "$OUT/train.log"
    IFS='|' read -r a b c < <(metrics_row "train B0 128 1 GPU" "$OUT/train/metrics.json"); row "$a" "$b" "$c"
else
    row "train B0 128 1 GPU" "FAILED: $(tail -1 "$OUT/train.log")" "$OUT/train.log"
fi

step "4/5 a 2-trial search sharing one GPU (0.5 GPU per trial, Ray)"
if timeout 150 "${EFFNAS[@]}" search --config demo --set train.device=auto --trials 2 --epochs 1 --workers 2 \
        --cpus-per-trial 1 --gpus-per-trial 0.5 --out "$OUT/search" > "$OUT/search.log" 2>&1; then
    row "search 2 trials x 0.5 GPU" "completed" "$(grep -c . "$OUT/search/trials.csv") lines in trials.csv"
else
    row "search 2 trials x 0.5 GPU" "FAILED: $(tail -1 "$OUT/search.log")" "$OUT/search.log"
fi

step "5/5 DDP on 2 GPUs"
if [ "$GPUS" -ge 2 ]; then
    if timeout 120 "${EFFNAS[@]}" "${TRAIN[@]}" --devices 2 --out "$OUT/ddp" > "$OUT/ddp.log" 2>&1; then
        IFS='|' read -r a b c < <(metrics_row "train B0 128 2 GPUs (DDP)" "$OUT/ddp/metrics.json"); row "$a" "$b" "$c"
    else
        row "train B0 128 2 GPUs (DDP)" "FAILED: $(tail -1 "$OUT/ddp.log")" "$OUT/ddp.log"
    fi
else
    row "train B0 128 2 GPUs (DDP)" "skipped: $GPUS GPU" "-"
fi

printf '\n== gpu_check: %d s on %s\n\n| check | result | detail |\n|---|---|---|\n' "$((SECONDS - START))" \
    "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
for r in "${ROWS[@]}"; do
    IFS='|' read -r a b c <<< "$r"
    printf '| %s | %s | %s |\n' "$a" "$b" "$c"
done
if printf '%s\n' "${ROWS[@]}" | grep -q FAILED; then exit 1; fi
