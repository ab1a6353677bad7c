#!/usr/bin/env bash
# Speed benchmarks of ../shared/bench/README.md on the synthetic 125M llama (768/2048/12 layers,
# 12 heads, 4 kv heads, llama-spm vocabulary of 32000, context 512): whole-process wall time
# (median of RUNS after one warm-up run) and peak RSS, 2 threads.
#
#   bench/speed.sh [workload ...]      (default: perplexity imatrix quantize)
#     perplexity  -f wiki.test.raw -c 512 --chunks 4 on F32, F16, Q4_K_M
#     imatrix     -f calibration_datav3_small.txt -c 512 --chunks 4 on F32, F16, and the same
#                 text through `perplexity` (the collector's overhead is the difference)
#     quantize    F32 -> Q4_K_M with the imatrix of the previous workload, --search reference and imq
#
# Environment: IMQ (build/imq), IMQ_SHARED (../shared), WORK (/tmp/imq-bench), RUNS (3), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
IMQ=${IMQ:-build/imq}
SHARED=${IMQ_SHARED:-$(cd .. && pwd)/shared}
WORK=${WORK:-${TMPDIR:-/tmp}/imq-bench}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
WIKI=$SHARED/data/wiki.test.raw
CALIB=$SHARED/data/calibration_datav3_small.txt
VOCAB=$SHARED/models/vocab/ggml-vocab-llama-spm.gguf
mkdir -p "$WORK"

shape=(--n-embd 768 --n-ff 2048 --n-layer 12 --n-head 12 --n-head-kv 4 --ctx 512 --vocab-from "$VOCAB")
for t in f32 f16; do
  [[ -f $WORK/bench-$t.gguf ]] || "$IMQ" synth -o "$WORK/bench-$t.gguf" "${shape[@]}" --type $t >/dev/null
done
[[ -f $WORK/bench-q4_k_m.gguf ]] ||
  "$IMQ" quantize "$WORK/bench-f32.gguf" "$WORK/bench-q4_k_m.gguf" Q4_K_M "$THREADS" >/dev/null

# time_it LABEL COMMAND...: one warm-up, then RUNS timed runs; prints median, peak RSS, all runs.
time_it() {
  local label=$1
  shift
  local times=() peak=0 out kb
  for ((i = 0; i <= RUNS; ++i)); do
    /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >"$WORK/last.log" 2>&1
    out=$(tail -1 "$WORK/time.txt")
    ((i == 0)) && continue
    times+=("${out% *}")
    kb=${out#* }
    ((kb > peak)) && peak=$kb
  done
  local median
  median=$(printf "%s\n" "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf "%-34s %9s %10d   %s\n" "$label" "$median" $((peak / 1024)) "${times[*]}"
}

printf "%-34s %9s %10s   %s\n" workload "median s" "peak MiB" "runs (s)"
workloads=("$@")
[ ${#workloads[@]} -eq 0 ] && workloads=(perplexity imatrix quantize)
for w in "${workloads[@]}"; do
  case $w in
    perplexity)
      for t in f32 f16 q4_k_m; do
        time_it "perplexity $t" "$IMQ" perplexity -m "$WORK/bench-$t.gguf" -f "$WIKI" -c 512 --chunks 4 -t "$THREADS"
      done ;;
    imatrix)
      for t in f32 f16; do
        time_it "imatrix $t" "$IMQ" imatrix -m "$WORK/bench-$t.gguf" -f "$CALIB" -c 512 --chunks 4 \
          -t "$THREADS" -o "$WORK/imatrix-$t.gguf"
        time_it "perplexity $t (same text)" "$IMQ" perplexity -m "$WORK/bench-$t.gguf" -f "$CALIB" -c 512 \
          --chunks 4 -t "$THREADS"
      done ;;
    quantize)
      [[ -f $WORK/imatrix-f32.gguf ]] || "$IMQ" imatrix -m "$WORK/bench-f32.gguf" -f "$CALIB" -c 512 \
        --chunks 4 -t "$THREADS" -o "$WORK/imatrix-f32.gguf" >/dev/null 2>&1
      for s in reference imq; do
        time_it "quantize Q4_K_M --search $s" "$IMQ" quantize --search $s --imatrix "$WORK/imatrix-f32.gguf" \
          "$WORK/bench-f32.gguf" "$WORK/q.gguf" Q4_K_M "$THREADS"
      done ;;
    *) echo "unknown workload $w (perplexity, imatrix, quantize)" >&2; exit 1 ;;
  esac
done
