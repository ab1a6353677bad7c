#!/usr/bin/env bash
# Q3_HIFI quality benchmark: KLD and PPL against the F32 model of Q3_HIFI and Q3_HIFI_M (with
# and without an imatrix) and llama.cpp's Q3_K_S/M/L with an imatrix, with file sizes.
#
#   bench/q3_hifi.sh [model ...]          models: dense-spm4k moe-gpt2bpe (default: both)
#
# Environment: IMQ (default build/imq), IMQ_SHARED (default ../shared), OUT (scratch folder,
# default /tmp/imq-q3hifi-bench), THREADS (default 2), CHUNKS (default 10), EXTRA_TYPES (more
# TYPE[:noimat] entries to measure). Evaluation as the reference logs: wiki.test.raw, -c 256.
# The imatrix is `imq imatrix` on calibration_datav3_small.txt when that command works, else
# the reference one made by llama-imatrix from the same text (reference/<model>/imatrix-calib-c256.gguf).
set -euo pipefail
cd "$(dirname "$0")/.."
IMQ=${IMQ:-build/imq}
SHARED=${IMQ_SHARED:-../shared}
OUT=${OUT:-/tmp/imq-q3hifi-bench}
THREADS=${THREADS:-2}
CHUNKS=${CHUNKS:-10}
mkdir -p "$OUT"
WIKI=$SHARED/data/wiki.test.raw
CALIB=$SHARED/data/calibration_datav3_small.txt
TYPES="Q3_K_S Q3_K_M Q3_K_L Q3_HIFI Q3_HIFI:noimat Q3_HIFI_M Q3_HIFI_M:noimat ${EXTRA_TYPES:-}"

models=("$@")
[ ${#models[@]} -eq 0 ] && models=(dense-spm4k moe-gpt2bpe)

for m in "${models[@]}"; do
  model=$SHARED/models/$m-f32.gguf
  imatrix=$OUT/$m-imatrix.gguf
  if ! "$IMQ" imatrix -m "$model" -f "$CALIB" -c 256 -t "$THREADS" -o "$imatrix" >"$OUT/$m-imatrix.log" 2>&1; then
    imatrix=$SHARED/reference/$m/imatrix-calib-c256.gguf
    echo "# $m: imq imatrix unavailable, using $imatrix"
  fi
  base=$OUT/$m-base.kld
  "$IMQ" perplexity -m "$model" -f "$WIKI" -c 256 --chunks "$CHUNKS" -t "$THREADS" \
    --kl-divergence-base "$base" >"$OUT/$m-f32.log" 2>&1
  ppl_f32=$(grep -o 'Final estimate: PPL = [0-9.]*' "$OUT/$m-f32.log" | awk '{print $5}')
  f32_size=$(stat -c %s "$model")
  printf '# %s  F32 PPL %s  (%d bytes)\n' "$m" "$ppl_f32" "$f32_size"
  printf '%-18s %10s %10s %10s %12s %10s\n' type bytes bpw PPL "PPL-PPL32" KLD
  for spec in $TYPES; do
    type=${spec%%:*}
    args=(--imatrix "$imatrix")
    tag=imat
    if [ "$spec" != "$type" ]; then args=(); tag=noimat; fi
    q=$OUT/$m-$type-$tag.gguf
    start=$(date +%s.%N)
    "$IMQ" quantize "${args[@]}" "$model" "$q" "$type" "$THREADS" >"$OUT/$m-$type-$tag.quantize.log" 2>&1
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    "$IMQ" perplexity -m "$q" -c 256 --chunks "$CHUNKS" -t "$THREADS" --kl-divergence-base "$base" \
      --kl-divergence >"$OUT/$m-$type-$tag.kld.log" 2>&1
    ppl=$(grep 'Mean PPL(Q)  ' "$OUT/$m-$type-$tag.kld.log" | awk '{print $4}')
    kld=$(grep 'Mean    KLD:' "$OUT/$m-$type-$tag.kld.log" | awk '{print $3}')
    size=$(stat -c %s "$q")
    bpw=$(grep -o 'quant size *= .*' "$OUT/$m-$type-$tag.quantize.log" | grep -o '[0-9.]* BPW' | head -1 || true)
    printf '%-18s %10d %10s %10s %12s %10s   (quantize %.1fs)\n' "$type-$tag" "$size" "${bpw% BPW}" "$ppl" \
      "$(echo "$ppl - $ppl_f32" | bc -l | xargs printf '%.4f')" "$kld" "$secs"
  done
done
