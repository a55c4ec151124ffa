#!/usr/bin/env bash
# The README's Quick start, command for command (tests/experiments/test_quickstart.py keeps them the same;
# bench/run_quickstart.py runs them and measures each one: docs/results/quickstart.md). Run it from an empty
# directory with the venv active: bash docs/quickstart.sh
set -euo pipefail

# every command; effnas COMMAND --help for each
effnas --help
# registered architectures
effnas models list
# stages, params, MACs; a stage diagram
effnas models show efficientnet_b0 --diagram b0.png
# interactive HTML: phi slider, stage cards, blocks
effnas view efficientnet_b0 --official -o b0.html
# train a small network on the bundled digits (the data extra: effnas[data])
effnas train --model tiny --dataset digits --epochs 5 --out runs/tiny
# search the nano space: trials.csv, pareto.png, best_spec.json
effnas search --space nano --dataset shapes --strategy tpe --trials 12 --epochs 1 --target-macs 1M --out runs/search
# one trial's spec, to train or scale on its own
effnas export --storage sqlite:///runs/search/study.db --study search --trial 3 -o t3.json
# compound coefficients alpha, beta, gamma under alpha*beta^2*gamma^2 ~ 2
effnas grid --base runs/search/best_spec.json --dataset shapes --step 0.1 --epochs 2 --out runs/grid
# the phi family and depth/width/resolution-only baselines at every phi, 2 seeds each
effnas family --base runs/search/best_spec.json --coefficients runs/grid/coefficients.json --phis 0-2 --train --dataset shapes --epochs 2 --seeds 2 --out runs/family
# accuracy against MACs and params, power-law fits
effnas curves runs/family --out runs/curves
# computed verdicts: compound against each single dimension at equal MACs
effnas compare runs/family
# the found coefficients on another backbone
effnas scale-backbone --backbone resnet50 --coefficients runs/grid/coefficients.json --phi 2
# every stage of the demo experiment: its runs, epochs and time on this machine
effnas run demo --plan
