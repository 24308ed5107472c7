#!/usr/bin/env bash
# Prepare, on this (CPU) machine, what bench/gpu_all.sh needs on the lent GPU machine, which has its own
# Python 3.12 and torch but no network and none of our pins (see the device tool's README):
#   .gpu/suite/  wheels the CUDA test suite needs there (gymnasium, captum, PyAV) and its data -> call 1
#   .gpu/bench/  the full CIFAR-10 zip, Tiny Shakespeare (gzipped) and the airbench wheel  -> call 2
# Each call's working tree must stay under 64 MiB: the CIFAR-10 zip alone is 60 MiB, hence two calls.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
download() {  # download DIR NAME==VERSION...: wheels for the device's CPython 3.12, no dependencies
  local dir=$1; shift
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$dir" "$@"
}
rm -rf .gpu && mkdir -p .gpu/suite/data .gpu/bench/data
grep -qx '/.gpu/' .gitignore || echo '/.gpu/' >> .gitignore
pin() { grep -E "^$1==" requirements.txt | cut -d' ' -f1; }
download .gpu/suite "$(pin gymnasium)" farama-notifications==0.0.4 "$(pin captum)" "$(pin av)"
# the suite's presets read the real data the tests read here (tests/conftest.py SHARED_DATA, via LAB_SHARED_DATA)
cp -r "$DATA/cifar10-jpg-subset.zip" "$DATA/mnist-t10k" "$DATA/tinyshakespeare.txt" .gpu/suite/data/
python -m pip wheel -q --no-deps -w .gpu/bench airbench==0.1.8  # an sdist on the registry: built here, pure Python
cp "$DATA/cifar10-jpg-full.zip" .gpu/bench/data/
gzip -9c "$DATA/tinyshakespeare.txt" > .gpu/bench/data/tinyshakespeare.txt.gz
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
for part in suite bench; do
  size=$(du -sb .gpu/$part | cut -f1)
  printf '%-6s %6.1f MiB carried + %4.1f MiB of tracked files = %5.1f MiB (limit 64)\n' "$part" \
    "$(echo "$size / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" "$(echo "($size + $tree) / 1048576" | bc -l)"
done
