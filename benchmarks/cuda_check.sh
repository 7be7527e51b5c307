#!/usr/bin/env bash
# The CUDA checks, as one short job on a machine with one NVIDIA GPU (results: benchmarks/cuda.md).
# Each step has its own time limit so that one slow step cannot eat the others; everything it reports goes
# to $OUT (default /tmp/reidkit-cuda-check): env.txt, tests.txt, cuda.md, chcr-default.json and pretrain-*.json.
#   bash benchmarks/cuda_check.sh
set -u
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/reidkit-cuda-check}"
work="$(mktemp -d)"
mkdir -p "$out"
py=python3
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
  $py -c "import faiss; print('faiss', faiss.__version__, 'gpus', faiss.get_num_gpus())" 2>&1 | tail -1
  nproc
} > "$out/env.txt" 2>&1
$py -m pip install -q --no-deps --no-build-isolation -e . >> "$out/env.txt" 2>&1
cat "$out/env.txt"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log the time and the exit status
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@"
  echo "== $name: rc $? in $((SECONDS - t0)) s" | tee -a "$out/steps.txt"
}

# 1. the test suite on the GPU machine (the CUDA-only tests run here and nowhere else)
step tests 120 $py -m pytest -q -p no:cacheprovider -n 14 > "$out/tests.txt" 2>&1
tail -5 "$out/tests.txt"

# 2. mixed precision, memory format and clustering on the GPU
step cuda_paths 140 $py benchmarks/cuda_paths.py --output "$out/cuda.md"

# 3. the default `reidkit run --method chcr` (synthetic `small`, shipped init, 750 steps), on the GPU
step chcr_default 140 reidkit run --method chcr --device cuda --output "$work/chcr" > "$out/chcr.log" 2>&1
cp "$work/chcr/metrics.json" "$out/chcr-default.json" 2>/dev/null
tail -3 "$out/chcr.log"

# 4. pretraining steps on the GPU: the default (bfloat16 autocast, channels-last) against float32 NCHW
step pretrain_auto 60 reidkit pretrain --preset small --steps 200 --device cuda --output "$work/p-auto.pth"
cp "$work/p-auto.json" "$out/pretrain-auto.json" 2>/dev/null
step pretrain_fp32 60 reidkit pretrain --preset small --steps 200 --device cuda --amp off --no-channels-last --output "$work/p-fp32.pth"
cp "$work/p-fp32.json" "$out/pretrain-fp32.json" 2>/dev/null
cat "$out/steps.txt"
