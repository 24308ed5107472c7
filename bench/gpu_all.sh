#!/usr/bin/env bash
# Every GPU figure of issue 14 on the lent machine, in two calls of the device tool (prepare with
# bench/gpu_prepare.sh here first; each call's tree must stay under 64 MiB):
#   run(command="bash bench/gpu_all.sh suite",   carry=[".gpu/suite"], timeout_s=240)
#   run(command="bash bench/gpu_all.sh benches", carry=[".gpu/bench"], timeout_s=480)
# The session's device time is 15 minutes, machine starts (a minute or more each) and idle time included: the
# parts below are sized to fit that (the second call finds the machine warm if it follows within 30 s).
# Outputs land in $OUT (or ./gpu-out): one log per part, the figures at the end of each.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 LAB_HOME=/tmp/lab
part=${1:-all}
install() {  # the carried wheels, beside the machine's own packages
  ls "$1"/*.whl >/dev/null 2>&1 || return 0
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$1"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
date -u +%F | tee -a "$OUT/gpu.txt"

if [[ $part == suite || $part == all ]]; then
  install .gpu/suite
  export LAB_SHARED_DATA=$PWD/.gpu/suite/data
  # item 1: every preset a few steps on CUDA (bf16, fp16 + GradScaler, channels_last, compile), resume, Media, OOM
  timeout 225 python3 -m pytest -q -m cuda tests/cuda -p no:cacheprovider --durations=15 2>&1 \
    | tee "$OUT/suite.log" | tail -40
fi
if [[ $part == benches || $part == all ]]; then
  install .gpu/bench
  data=$PWD/.gpu/bench/data
  export LAB_DATA_ROOTS=$data
  gunzip -c "$data/tinyshakespeare.txt.gz" > /tmp/tinyshakespeare.txt
  # item 5: the engine against a bare loop and the tutorial loop (the subset is not carried: the full zip is)
  timeout 90 python3 bench/throughput.py --device cuda --amp bf16 --repeats 2 --data "$data/cifar10-jpg-full.zip" 2>&1 \
    | tee "$OUT/throughput.log" | tail -12
  # item 4: our cifar10-speedrun preset against airbench94, 5 seeds each, and watched by the live view
  timeout 200 python3 bench/speedrun.py --device cuda --seeds 5 --epochs 10,11 --data "$data/cifar10-jpg-full.zip" 2>&1 \
    | tee "$OUT/speedrun.log" | tail -8
  # item 6: nanoGPT's baby GPT on Tiny Shakespeare
  timeout 180 python3 bench/families.py --shakespeare --device cuda --time-limit 165 --text /tmp/tinyshakespeare.txt 2>&1 \
    | tee "$OUT/shakespeare.log" | tail -6
fi
