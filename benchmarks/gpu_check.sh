#!/usr/bin/env bash
# One-shot GPU check: training-step benchmark on CUDA (and the CPU on the same machine), then a
# short E1 run (quick-scale data and epochs, seed 0) of rkn, lstm and gru on the GPU.
# Usage: bash benchmarks/gpu_check.sh OUT_DIR   (needs python3 with torch, numpy, pillow, pyyaml,
# jsonschema; see README "Paper scale on one GPU" for bringing missing packages as wheels)
set -euo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
nvidia-smi -L || true
python3 benchmarks/train_step.py --device cuda --repeats 20 | tee "$out/train_step_cuda.txt"
python3 benchmarks/train_step.py --device cpu --threads 1 --repeats 5 --models rkn lstm | tee "$out/train_step_cpu.txt"
results=$(mktemp -d)
printf 'results_dir: %s\n' "$results" > "$results/overlay.yaml"
configs="--config config/config.yaml --config config/quick.yaml --config $results/overlay.yaml"
python3 workflow/scripts/simulate.py $configs --dataset pendulum_filtering
for model in rkn lstm gru; do
  start=$(date +%s.%N)
  python3 workflow/scripts/train.py $configs --experiment pendulum_filtering --model "$model" --seed 0 --device cuda
  end=$(date +%s.%N)
  run=$(ls -d "$results"/quick/runs/pendulum_filtering/"$model"/seed0-*)  # seed0-<hash of the settings>
  cp "$run/metrics.json" "$out/e1_${model}_metrics.json"
  echo "$model: $(python3 -c "print(round($end - $start, 1))") s" | tee -a "$out/e1_wall.txt"
done
