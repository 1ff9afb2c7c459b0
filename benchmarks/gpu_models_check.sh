#!/usr/bin/env bash
# One-shot GPU check of every model family: smoke-scale data, seed 0, one training run per
# (experiment, model) below with --device cuda through the training CLI; prints each run's wall time
# and metrics. Usage: bash benchmarks/gpu_models_check.sh OUT_DIR
# (needs python3 with torch, numpy, pillow, pyyaml; no Snakemake). DEVICE=cpu runs it on the CPU.
set -euo pipefail
out=${1:?usage: gpu_models_check.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
results=$(mktemp -d)
printf 'results_dir: %s\n' "$results" > "$results/overlay.yaml"
configs="--config config/config.yaml --config config/smoke.yaml --config $results/overlay.yaml"
runs="pendulum_filtering:rkn pendulum_filtering:lstm
pendulum_imputation:rkn pendulum_imputation:gru pendulum_imputation:kvae_smooth pendulum_imputation:e2c
pendulum_imputation:dks_filter pendulum_imputation:hold_last_frame
multiple_pendulums:rkn ablations:rkn_full_cov ablations:rkn_b15
quad_link_noisy:rkn quad_link_imputation:kvae_filter quad_link_imputation:dks"
for dataset in pendulum_filtering pendulum_imputation multiple_pendulums quad_link_noisy quad_link_imputation; do
  python3 workflow/scripts/simulate.py $configs --dataset "$dataset" > /dev/null
done
status=0
for item in $runs; do
  experiment=${item%%:*} model=${item##*:}
  start=$(date +%s.%N)
  if python3 workflow/scripts/train.py $configs --experiment "$experiment" --model "$model" --seed 0 \
      --device "${DEVICE:-cuda}" > "$out/${experiment}_${model}.log" 2>&1; then
    end=$(date +%s.%N)
    metrics=$(python3 -c "import json,glob; print(json.dumps(json.load(open(glob.glob('$results/smoke/runs/$experiment/$model/seed0-*/metrics.json')[0]))))")
    device=$(python3 -c "import json,glob; print(json.load(open(glob.glob('$results/smoke/runs/$experiment/$model/seed0-*/meta.json')[0]))['device'])")
    echo "$experiment $model ok on $device: $(python3 -c "print(round($end - $start, 1))") s $metrics" | tee -a "$out/summary.txt"
  else
    status=1
    echo "$experiment $model FAILED (log: ${experiment}_${model}.log)" | tee -a "$out/summary.txt"
    tail -5 "$out/${experiment}_${model}.log"
  fi
done
exit $status
