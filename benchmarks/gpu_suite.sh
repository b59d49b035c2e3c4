#!/usr/bin/env bash
# The GPU suite in one command, under a hard time limit (8 minutes on one H200):
#   bash benchmarks/gpu_suite.sh [--quick] [--cpu] [--data-dir DIR] [--budget-s S] [--out PATH]
# MiniLM on SST-2 (fp32, bf16-mixed, bf16-mixed + torch.compile; textclass vs HF Trainer; dev accuracy
# after one epoch) and textcnn/lstm on news (epoch time, GPU utilisation); see benchmarks/gpu_suite.py.
# Without a GPU it prints "not measured: no GPU" and exits 0; --quick --cpu runs every section on a
# tiny slice on the CPU (the tested path). Each section prints and writes its figures as it finishes,
# so a run the limit stops keeps them (exit status 124).
# Environment: PYTHON (default: the checkout's .venv/bin/python, else python3),
# GPU_SUITE_LIMIT_S (the hard limit, default 480 s; the sections get 30 s less as their budget).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$here/../.venv/bin/python" ]]; then python="$here/../.venv/bin/python"; else python="python3"; fi
fi
limit_s="${GPU_SUITE_LIMIT_S:-480}"
budget=()
[[ " $* " == *" --budget-s "* ]] || budget=(--budget-s "$((limit_s - 30))")
# SIGTERM at the limit: the script stops the running section, prints the table so far and writes the results
# the benchmarks package from the checkout, wherever this is started from
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=TERM --kill-after=60 "$limit_s" "$python" -m benchmarks.gpu_suite "${budget[@]}" "$@"
