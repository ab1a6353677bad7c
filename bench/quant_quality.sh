#!/usr/bin/env bash
# Quantization quality: KLD and PPL against the F32 model, file size and quantize time, for a
# list of types, each with or without an imatrix and with either block search.
#
#   bench/quant_quality.sh [model ...]          models: dense-spm4k moe-gpt2bpe (default: both)
#
# TYPES: entries TYPE[:noimat][:imq][:tune] (:tune adds --tune-mix on the calibration text; default: Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K, each without an
# imatrix, with one, with one and --search imq, and without one and --search imq).
# Environment: IMQ (build/imq), IMQ_SHARED (../shared), OUT (/tmp/imq-quality-bench),
# THREADS (2), CHUNKS (10). Evaluation as the reference logs: wiki.test.raw, -c 256, CHUNKS
# chunks. The imatrix is `imq imatrix` on calibration_datav3_small.txt (all 213 chunks of 256;
# the calibration text is never the evaluation text).
set -euo pipefail
cd "$(dirname "$0")/.."
IMQ=${IMQ:-build/imq}
SHARED=${IMQ_SHARED:-../shared}
OUT=${OUT:-/tmp/imq-quality-bench}
THREADS=${THREADS:-2}
CHUNKS=${CHUNKS:-10}
mkdir -p "$OUT"
WIKI=$SHARED/data/wiki.test.raw
CALIB=$SHARED/data/calibration_datav3_small.txt
if [ -z "${TYPES:-}" ]; then
  TYPES=""
  for t in Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K; do TYPES+="$t:noimat $t $t:imq $t:noimat:imq "; done
fi

models=("$@")
[ ${#models[@]} -eq 0 ] && models=(dense-spm4k moe-gpt2bpe)

for m in "${models[@]}"; do
  model=$SHARED/models/$m-f32.gguf
  imatrix=$OUT/$m-imatrix.gguf
  [ -f "$imatrix" ] || "$IMQ" imatrix -m "$model" -f "$CALIB" -c 256 -t "$THREADS" -o "$imatrix" >"$OUT/$m-imatrix.log" 2>&1
  base=$OUT/$m-base.kld
  "$IMQ" perplexity -m "$model" -f "$WIKI" -c 256 --chunks "$CHUNKS" -t "$THREADS" \
    --kl-divergence-base "$base" >"$OUT/$m-f32.log" 2>&1
  ppl_f32=$(grep -o 'Final estimate: PPL = [0-9.]*' "$OUT/$m-f32.log" | awk '{print $5}')
  printf '# %s  F32 PPL %s  (%d bytes)\n' "$m" "$ppl_f32" "$(stat -c %s "$model")"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' type imatrix search bytes bpw PPL PPL-PPL32 KLD "quantize s"
  for spec in $TYPES; do
    type=${spec%%:*}
    args=(--imatrix "$imatrix") imat=yes search=reference
    [[ :$spec: == *:noimat:* ]] && args=() imat=no
    [[ :$spec: == *:imq:* ]] && search=imq
    tag=$type-$imat-$search
    [[ :$spec: == *:tune:* ]] && args+=(--tune-mix "$CALIB") && tag+=-tune
    q=$OUT/$m-$tag.gguf
    start=$(date +%s.%N)
    "$IMQ" quantize --search $search "${args[@]}" "$model" "$q" "$type" "$THREADS" >"$OUT/$m-$tag.quantize.log" 2>&1
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    "$IMQ" perplexity -m "$q" -c 256 --chunks "$CHUNKS" -t "$THREADS" --kl-divergence-base "$base" \
      --kl-divergence >"$OUT/$m-$tag.kld.log" 2>&1
    ppl=$(grep 'Mean PPL(Q)  ' "$OUT/$m-$tag.kld.log" | awk '{print $4}')
    kld=$(grep 'Mean    KLD:' "$OUT/$m-$tag.kld.log" | awk '{print $3}')
    bpw=$(grep -o '[0-9.]* BPW' "$OUT/$m-$tag.quantize.log" | tail -1 || true)
    label=$search; [[ :$spec: == *:tune:* ]] && label+=" + tune"
    printf '| %s | %s | %s | %d | %s | %s | %s | %s | %.1f |\n' "$type" $imat "$label" "$(stat -c %s "$q")" \
      "${bpw% BPW}" "$ppl" "$(echo "$ppl - $ppl_f32" | bc -l | xargs printf '%.4f')" "$kld" "$secs"
  done
done
