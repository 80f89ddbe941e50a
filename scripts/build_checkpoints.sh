#!/usr/bin/env bash
# Rebuild the bundled checkpoints in checkpoints/ (each also gets a model card checkpoints/<name>.md).
# Deterministic: fixed simulation seeds and epoch counts (no wall-clock limits). About 15 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
T="$PY -m core train --task halo_mass --simulate 100000 --seed 1 --quiet"
$T --model flow --set train.epochs=40 --out checkpoints/halo_mass_flow.gps
$T --model vae_hmc --set train.epochs=40 --eval-n 200 --out checkpoints/halo_mass_vae_hmc.gps
$T --model lightgbm --set num_leaves=15 --set n_estimators=400 --out checkpoints/halo_mass_lightgbm.gps
$T --model shmr --out checkpoints/halo_mass_shmr.gps
$T --model exact --out checkpoints/halo_mass_exact.gps
ls -la checkpoints/
