#!/usr/bin/env bash
# One GPU check: the CUDA tests (pytest -m gpu) and the GPU benchmarks, one "FIGURE ..." line per number.
#
#   bash benchmarks/gpu_check.sh              # on a CUDA machine: full sizes, under 8 minutes on an H100/H200
#   bash benchmarks/gpu_check.sh --cpu-smoke  # tiny sizes on the CPU, no CUDA needed (run by the test suite)
#
# Figures (each line: FIGURE <name> key=value ...):
#   cuda_tests          pytest -m gpu over the test files that hold CUDA tests (passed / failed / skipped)
#   rl2d                RL 2048^2, 65^2 PSF: ms/iteration on CUDA and on the CPU in the same run, peak GPU memory
#   rl3d                RL 256^3 (33^3 PSF): the same
#   infer_sN_fp32/_amp  GAN inference input MP/s per system at paper width, without and with AMP (the faster of
#                       channels-last and contiguous memory on CUDA, named), peak GPU memory
#   train_s1, train_s2  training iterations/s at paper width (HQ patch 256, batch 2, AMP), peak GPU memory
# The last line says how many figures were printed and which steps failed; the exit status is 1 when any did.
# Python: $PYTHON, else .venv/bin/python, else python3. Each step has its own time limit (STEP_LIMIT_S).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
MODE=gpu
case "${1:-}" in
  --cpu-smoke) MODE=cpu-smoke ;;
  "") ;;
  *) echo "usage: bash benchmarks/gpu_check.sh [--cpu-smoke]" >&2; exit 2 ;;
esac
LOG=$(mktemp -d "${TMPDIR:-/tmp}/decongan-gpu-check.XXXXXX")
START=$SECONDS
FAILED=()

if [ "$MODE" = gpu ]; then
  if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: torch sees no CUDA device here; run 'bash benchmarks/gpu_check.sh --cpu-smoke' for the CPU run" >&2
    exit 2
  fi
  LIMIT=${STEP_LIMIT_S:-150}  # 3 steps: at most 7.5 minutes in all
  RL_ARGS=(--devices cpu cuda)
  MODEL_ARGS=(--device cuda --size 1024 --train-size 256 --repeats 3)
else
  LIMIT=${STEP_LIMIT_S:-120}
  export OMP_NUM_THREADS=1  # tiny sizes: one thread, so a busy shared machine does not stall the OpenMP pool
  RL_ARGS=(--devices cpu cuda --size 96 --psf-size 9 --size-3d 24 --psf-size-3d 5 --repeats 1
           --iterations-cpu 1 2 --iterations-cpu-3d 1 2)
  MODEL_ARGS=(--device cpu --size 32 --train-size 32 --width-divisor 16 --repeats 1)
fi

# step NAME COMMAND...: run with a time limit, keep its output in $LOG/NAME.log, print its FIGURE lines
step() {
  local name=$1; shift
  timeout "$LIMIT" "$@" >"$LOG/$name.log" 2>&1
  local rc=$?
  grep '^FIGURE ' "$LOG/$name.log"
  if [ $rc -ne 0 ]; then
    FAILED+=("$name (exit $rc$([ $rc -eq 124 ] && echo ", over ${LIMIT} s"))")
    echo "gpu_check: $name failed; the end of its output ($LOG/$name.log):" >&2
    tail -n 25 "$LOG/$name.log" >&2
  fi
}

# the CUDA tests: every test file that marks a test with pytest.mark.gpu (skipped without CUDA)
mapfile -t GPU_TESTS < <(grep -rlE 'pytest\.mark\.gpu' tests --include='test_*.py' | sort)
timeout "$LIMIT" "$PY" -m pytest -q -p no:cacheprovider -m gpu "${GPU_TESTS[@]}" >"$LOG/cuda_tests.log" 2>&1
rc=$?
summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|deselected|error)' "$LOG/cuda_tests.log" | tail -n 1 | tr -d '=' | xargs)
count() { grep -oE "[0-9]+ $1" <<<"$summary" | grep -oE '^[0-9]+' || echo 0; }
echo "FIGURE cuda_tests mode=$MODE files=${#GPU_TESTS[@]} passed=$(count passed) failed=$(count failed)" \
     "skipped=$(count skipped) errors=$(count error) exit=$rc"
if [ $rc -ne 0 ] || { [ "$MODE" = gpu ] && [ "$(count skipped)" != 0 ]; }; then
  # on a GPU machine a skipped CUDA test is a failure of the check too
  FAILED+=("cuda_tests (exit $rc, $summary)")
  tail -n 25 "$LOG/cuda_tests.log" >&2
fi

step rl "$PY" benchmarks/bench_rl_gpu.py "${RL_ARGS[@]}"
step models "$PY" benchmarks/bench_models.py --figures --systems s1 s2 s3 s4 s5 --train-systems s1 s2 "${MODEL_ARGS[@]}"

n=$(cat "$LOG"/*.log | grep -c '^FIGURE ')
n=$((n + 1))  # the cuda_tests line
if [ ${#FAILED[@]} -eq 0 ]; then
  echo "gpu_check: $MODE, $n figures in $((SECONDS - START)) s, all steps passed (logs in $LOG)"
  exit 0
fi
echo "gpu_check: $MODE, $n figures in $((SECONDS - START)) s; FAILED: ${FAILED[*]} (logs in $LOG)"
exit 1
