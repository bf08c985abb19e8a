#!/usr/bin/env bash
# Everything a GPU machine should check, in one call (about 6 minutes on one H100):
#   1. the CUDA tests (they skip on machines without a GPU, so CI never runs them);
#   2. the GPU benchmark section: this checkout on CUDA beside the same machine's CPU.
# Usage, from the repository root, with torch (CUDA build), scikit-learn, scipy, pytest:
#   bash benchmarks/gpu_check.sh OUTPUT_DIR
# then, on the development machine, fold the measurements into the committed results:
#   python benchmarks/run.py --merge OUTPUT_DIR/results.json
set -uo pipefail
out="${1:?usage: bash benchmarks/gpu_check.sh OUTPUT_DIR}"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

python - <<'EOF' | tee "$out/device.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda)
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
EOF

# the modules holding the CUDA tests (their CPU tests run too)
python -m pytest -q -p no:cacheprovider -rs tests/test_device.py tests/test_matcher_device.py \
    tests/test_training_step.py 2>&1 | tee "$out/cuda_tests.txt"
tests_rc=${PIPESTATUS[0]}

python benchmarks/run.py --device cuda --threads "$(python -c "import os; print(os.cpu_count())")" --out "$out" 2>&1 | tee "$out/benchmark.txt"
bench_rc=${PIPESTATUS[0]}

echo "cuda tests exit status: $tests_rc; benchmark exit status: $bench_rc" | tee -a "$out/device.txt"
exit $(( tests_rc || bench_rc ))
