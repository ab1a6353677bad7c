#!/usr/bin/env bash
# Perplexity benchmark of ../shared/bench/README.md: the synthetic 125M llama (768/2048/12 layers,
# 12 heads, 4 kv heads, llama-spm vocabulary of 32000, context 512), F32 / F16 / Q4_K_M,
# `perplexity -f wiki.test.raw -c 512 --chunks 4 -t 2`, whole-process wall time (median of
# RUNS after one warm-up) and peak RSS.
#
#   bench/run_perplexity.sh [build/imq] [work dir]     (env: RUNS=3 THREADS=2 TYPES="f32 f16 q4_k_m")
set -euo pipefail
cd "$(dirname "$0")/.."
IMQ=${1:-build/imq}
WORK=${2:-${TMPDIR:-/tmp}/imq-bench}
SHARED=${IMQ_SHARED:-$(cd .. && pwd)/shared}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
TYPES=${TYPES:-"f32 f16 q4_k_m"}
TEXT=$SHARED/data/wiki.test.raw
VOCAB=$SHARED/models/vocab/ggml-vocab-llama-spm.gguf
mkdir -p "$WORK"

shape=(--n-embd 768 --n-ff 2048 --n-layer 12 --n-head 12 --n-head-kv 4 --ctx 512 --vocab-from "$VOCAB")
[[ -f $WORK/bench-f32.gguf ]] || "$IMQ" synth -o "$WORK/bench-f32.gguf" "${shape[@]}" --type f32 >/dev/null
[[ -f $WORK/bench-f16.gguf ]] || "$IMQ" synth -o "$WORK/bench-f16.gguf" "${shape[@]}" --type f16 >/dev/null
if [[ " $TYPES " == *" q4_k_m "* && ! -f $WORK/bench-q4_k_m.gguf ]]; then
  "$IMQ" quantize "$WORK/bench-f32.gguf" "$WORK/bench-q4_k_m.gguf" Q4_K_M "$THREADS" >/dev/null
fi

printf "%-8s %10s %12s %s\n" type "median s" "peak MiB" "runs (s)"
for t in $TYPES; do
  model=$WORK/bench-$t.gguf
  times=()
  peak=0
  for ((i = 0; i <= RUNS; ++i)); do
    /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$IMQ" perplexity -m "$model" -f "$TEXT" -c 512 \
      --chunks 4 -t "$THREADS" >/dev/null 2>&1
    out=$(tail -1 "$WORK/time.txt")
    ((i == 0)) && continue  # warm-up: page cache
    times+=("${out% *}")
    kb=${out#* }
    ((kb > peak)) && peak=$kb
  done
  median=$(printf "%s\n" "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf "%-8s %10s %12d %s\n" "$t" "$median" $((peak / 1024)) "${times[*]}"
done
