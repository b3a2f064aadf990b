#!/usr/bin/env bash
# The GPU check (about 8 minutes on one H100): the d = 100 poisson-sine recipe solved on CUDA,
# the per-step benchmark against DeepXDE on CUDA (benchmarks/pinn_vs_deepxde.py), the
# derivative-method benchmark (benchmarks/derivatives.py) and the d = 10,000 and 100,000
# poisson-ridge recipes, each cut to a time budget.
#
#   bash benchmarks/gpu.sh [OUTDIR]        # OUTDIR: $1, else $OUT, else ./gpu-results
#
# Writes into OUTDIR: nvidia-smi.txt, env.txt, solve.log (+ the solution's info
# JSON), pinn_vs_deepxde.json/.md (results), benchmark.log, derivatives.json/.md/.png,
# ridge-*.log/.json, timings.txt (wall seconds per part).
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

start=$SECONDS
"$py" benchmarks/derivatives.py --device cuda --dims 10 100 1000 10000 100000 --repeats 5 \
    --budget 20 --max-gb 60 --out "$out/derivatives.json" 2>&1 | tee "$out/derivatives.log" || status=1
echo "derivatives $((SECONDS - start)) s" | tee -a "$out/timings.txt"

for d in 10000 100000; do
    start=$SECONDS
    recipe=configs/runs/poisson-ridge-d$d-pinn.yaml
    solution="${TMPDIR:-/tmp}/poisson-ridge-d$d-cuda.h5"
    "$py" -m pinnlab solve --config "$recipe" --device cuda --quiet \
        --set train.time_budget=75 --out "$solution" 2>&1 | tee "$out/ridge-d$d.log" || status=1
    "$py" -m pinnlab info "$solution" --json >"$out/ridge-d$d.json" 2>&1 || status=1
    echo "ridge d=$d $((SECONDS - start)) s" | tee -a "$out/timings.txt"
done

nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,clocks.max.sm --format=csv \
    >>"$out/nvidia-smi.txt" 2>&1 || true
exit $status
