#!/usr/bin/env bash
# The GPU check (about 3 to 5 minutes on one H100): the d = 100 poisson-sine recipe solved on
# CUDA, then the per-step benchmark against DeepXDE on CUDA (benchmarks/pinn_vs_deepxde.py).
#
#   bash benchmarks/gpu.sh [OUTDIR]        # OUTDIR: $1, else $OUT, else ./gpu-results
#
# Writes into OUTDIR: nvidia-smi.txt, env.txt, solve.log (+ the solution's info
# JSON), pinn_vs_deepxde.json/.md (results), benchmark.log, timings.txt (wall seconds per part).
# Python: the repo's .venv if present; else a python3 that can already import pinnlab and
# deepxde; else a new .venv (python3 -m venv .venv && .venv/bin/pip install -e '.[dev]').
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-./gpu-results}}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 DDE_BACKEND=pytorch

has_packages='import importlib.util as u, sys; sys.exit(not (u.find_spec("pinnlab") and u.find_spec("deepxde")))'
if [[ -x .venv/bin/python ]]; then
    py=.venv/bin/python
elif python3 -c "$has_packages" 2>/dev/null; then
    py=python3
else
    python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' || exit 1
    py=.venv/bin/python
fi

nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed" >>"$out/nvidia-smi.txt"
"$py" - >"$out/env.txt" 2>&1 <<'EOF'
import os, platform, sys, torch
print("python", sys.version.split()[0], platform.platform())
print("torch", torch.__version__, "cuda", torch.version.cuda, "cpus", os.cpu_count())
print("gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
EOF
cat "$out/env.txt"
if ! "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "CUDA is not available to $py; see $out/env.txt" >&2
    exit 1
fi

status=0
recipe=configs/runs/poisson-sine-d100-pinn.yaml
start=$SECONDS
if [[ -f $recipe ]]; then
    solution="${TMPDIR:-/tmp}/poisson-sine-d100-pinn-cuda.h5"  # the info JSON below keeps its content
    "$py" -m pinnlab solve poisson-sine --config "$recipe" --device cuda --quiet \
        --out "$solution" 2>&1 | tee "$out/solve.log" || status=1
    "$py" -m pinnlab info "$solution" --json \
        >"$out/poisson-sine-d100-pinn.json" 2>&1 || status=1
else
    echo "skipped: $recipe does not exist" | tee "$out/solve.log"
    status=1
fi
echo "solve $((SECONDS - start)) s" | tee -a "$out/timings.txt"

start=$SECONDS
"$py" benchmarks/pinn_vs_deepxde.py --device cuda --dims 2 10 100 \
    --steps 500 500 100 --timing-steps 100 100 20 \
    --out "$out/pinn_vs_deepxde.json" 2>&1 | tee "$out/benchmark.log" || status=1
echo "benchmark $((SECONDS - start)) s" | tee -a "$out/timings.txt"

nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,clocks.max.sm --format=csv \
    >>"$out/nvidia-smi.txt" 2>&1 || true
exit $status
