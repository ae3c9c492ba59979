#!/usr/bin/env bash
# What needs an NVIDIA GPU, in one run on a GPU machine, from the repository root:
#   1. the tests marked gpu that run without TensorRT: training on CUDA (train, resume, a checkpoint
#      any machine scores alike) and the TensorRT engine's buffers, streams and graphs (stand-in plan);
#   2. the training step of the 30-minute recipe's model on CUDA, at the recipe's batch and at 64;
#   3. a short magnetic-tile run of the recipe on CUDA, with the GPU's use sampled every 2 s.
# Usage: DATA=.../magnetic-tile benchmarks/cuda_check.sh OUT [MINUTES]   (PYTHON: python3; DEVICE: cuda,
# or cpu to try the script itself on a machine without a GPU)
# Writes OUT/machine.txt, gpu-tests.log, train-step/, train/ (no weights), gpu-use.csv; exit 1 if a step failed.
set -u
out=${1:?usage: benchmarks/cuda_check.sh OUT [MINUTES]}
minutes=${2:-2}
python=${PYTHON:-python3}
data=${DATA:-../shared/datasets/magnetic-tile}
device=${DEVICE:-cuda}
recipe=benchmarks/configs/magnetic_tile_lraspp256_lean.yaml
mkdir -p "$out/configs"
failed=0

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"
  "$python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)'
  lscpu | grep -E "^Model name|^CPU\(s\)"
} >"$out/machine.txt" 2>&1

"$python" -m pytest -q -p no:cacheprovider -m gpu tests/training/test_devices.py \
  tests/engines/test_tensorrt_cuda.py >"$out/gpu-tests.log" 2>&1 || failed=1
tail -n 3 "$out/gpu-tests.log"

# The recipe's config with a few settings changed: NAME KEY=VALUE ... (values as YAML)
variant() {
  local name=$1
  shift
  "$python" - "$recipe" "$out/configs/$name.yaml" "$@" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
for item in sys.argv[3:]:
    cfg.update(yaml.safe_load(item.replace("=", ": ", 1)))
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
EOF
}
variant lean-b16 "device=$device"
variant lean-b64 "device=$device" batch_size=64
variant lean-cuda "device=$device" "max_minutes=$minutes"

"$python" benchmarks/train_step.py --config "$out/configs/lean-b16.yaml" "$out/configs/lean-b64.yaml" \
  --device "$device" --rounds "${ROUNDS:-10}" --steps 5 --out "$out/train-step" || failed=1

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 2 >"$out/gpu-use.csv" 2>&1 &
sampler=$!
"$python" benchmarks/train_magnetic_tile.py --config "$out/configs/lean-cuda.yaml" --data "$data" \
  --out "$out/train" >"$out/train.log" 2>&1 || failed=1
kill "$sampler" 2>/dev/null
tail -n 40 "$out/train.log"
find "$out" -name "*.pt" -delete
exit "$failed"
