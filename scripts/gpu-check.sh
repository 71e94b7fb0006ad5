#!/usr/bin/env bash
# The first run on a GPU, prepared: set-up on the machine's own torch (nothing downloaded), the machine,
# its ceilings, the smoke suite and the headline cases, then checks that fail the script when a figure is
# impossible. Everything goes to OUT (results files, a log), so nothing is lost when the machine goes back.
#
#   scripts/gpu-check.sh OUT                      # on an H100/H200: TORCH=system, --device cuda
#   scripts/gpu-check.sh OUT --device cpu --tiny  # the CPU dry run: tiny sizes, the same checks
#
# Environment: PYTHON (the interpreter that has torch, default python3), TORCH (default system; auto for
# --tiny, which keeps an existing set-up). Meant to finish in under 8 minutes on one H100 or H200.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/gpu-check.sh OUT [--device KIND] [--tiny]" >&2; exit 2; }
OUT=$1; shift
DEVICE=cuda; TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
export CI=true CHIPBENCH_CACHE_DIR="$OUT/cache"
step() { echo; echo "=== gpu-check: $* ($(date -u +%H:%M:%S))"; }
failed=0
run() { "$@" || { echo "gpu-check: FAILED ($?): $*"; failed=1; }; }

step "set-up"
if [ "$TINY" = 1 ]; then TORCH=${TORCH:-auto}; else TORCH=${TORCH:-system}; fi
PIP_NO_INDEX=${PIP_NO_INDEX:-1} make setup TORCH="$TORCH" PYTHON="${PYTHON:-python3}" || exit 1
CB=.venv/bin/chipbench

step "the machine"
# One probe of the machine: its JSON kept, its table in the log (torch imported once, not twice).
run $CB env --device "$DEVICE" --output "$OUT/env.json" > "$OUT/env.txt"
tail -n 40 "$OUT/env.txt"

step "ceilings"
# The dry run may share its CPU with other work (a test suite): its ceilings are stored even then.
if [ "$TINY" = 1 ]; then sizes=(--size 256 --copy-mib 16 --time-budget 0.1 --allow-busy); else sizes=(--size 8192 --time-budget 3); fi
run $CB calibrate --device "$DEVICE" "${sizes[@]}" --output "$OUT/calibrate.json"

step "the smoke suite"
# The dry run checks this script, not the suite: each family's whole step and the ceilings' kernels will do
# (the CI job's test runs the whole smoke suite).
if [ "$TINY" = 1 ]; then smoke=(calib.matmul calib.copy dlrm.train_step hstu.train_step llama.train_step); else smoke=(); fi
run $CB run ${smoke[@]+"${smoke[@]}"} --suite smoke --device "$DEVICE" --output "$OUT/smoke.json"

step "the headline cases"
if [ "$TINY" = 1 ]; then
  L8=(--set flavor=tiny); B=0.2
  cases=(llama.train_step llama.gemm llama.attention)
  dlrm=(--set preset=tiny --set backend=torch)
else
  L8=(--set flavor=llama3-8b --set n_layers=2 --set seq_len=8192 --set batch_size=1); B=3
  cases=(llama.train_step)
  dlrm=(--set preset=dcnv2 --set max_rows=-1 --set backend=torch)
fi
run $CB run "${cases[@]}" --device "$DEVICE" --dtype bf16 "${L8[@]}" --time-budget "$B" --output "$OUT/llama.json"
if [ "$TINY" = 0 ]; then
  run $CB run llama.gemm llama.attention --suite default --device "$DEVICE" --dtype bf16 --output "$OUT/llama-micro.json"
fi
run $CB run dlrm.train_step dlrm.inference dlrm.embedding --device "$DEVICE" "${dlrm[@]}" --time-budget "$B" \
  --output "$OUT/dlrm.json"

step "checks"
run .venv/bin/python scripts/gpu_check_verify.py "$OUT" --device "$DEVICE" $([ "$TINY" = 1 ] && echo --tiny)
exit $failed
