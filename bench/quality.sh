#!/usr/bin/env bash
# Quality of error-compensated quantization against llama.cpp's, one table per model:
#
#   bench/quality.sh [model ...]    models: names in $IMQ_SHARED/models (default: dict8-spm4k
#                                   dense-spm4k moe-gpt2bpe) or paths to GGUF files; MODEL=path adds one
#
# For each mix (MIXES, default Q2_K Q3_K_M Q4_K_M Q5_K_M IQ4_XS), scope (SCOPES: "layers" =
# --token-embedding-type f32 --output-tensor-type f32 on every side, "whole") and method
# (METHODS; LAYERS_METHODS for the layers scope, default the same without ec+tune, which
# changes the mix of the layers):
#   llama  llama.cpp's llama-quantize from $LLAMA_CPP_BIN when set, else imq --search reference
#          (byte-identical to it, tests/quantize)
#   imq    imq --search imq
#   ec     imq --calibration-file (error-compensated)
#   ec+tune  the same with --tune-mix on the calibration text
# it prints the file size, the mean KLD with its ± over each evaluation text, the ratio to the
# llama row's KLD and the quantize wall time.
# Inputs: the imatrix is $IMQ_SHARED/reference/<model>/imatrix-calib-c256.gguf when there is one
# (llama-imatrix -c 256 --chunks 8), else collected with imq the same way. Calibration text:
# CALIB (calibration_datav3_small.txt), CALIB_CHUNKS chunks of 256 (128: quantize's default 32,768 tokens). Evaluation: EVALS
# (wiki.test.raw; dict8-spm4k adds dict-heldout.txt), -c 256, CHUNKS chunks (20: 5,120 tokens).
# Environment: IMQ (build/imq), IMQ_SHARED (../shared), OUT (/tmp/imq-quality), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
IMQ=${IMQ:-build/imq}
SHARED=${IMQ_SHARED:-../shared}
OUT=${OUT:-/tmp/imq-quality}
THREADS=${THREADS:-2}
CHUNKS=${CHUNKS:-20}
CALIB=${CALIB:-$SHARED/data/calibration_datav3_small.txt}
CALIB_CHUNKS=${CALIB_CHUNKS:-128}
MIXES=${MIXES:-Q2_K Q3_K_M Q4_K_M Q5_K_M IQ4_XS}
SCOPES=${SCOPES:-layers whole}
METHODS=${METHODS:-llama imq ec ec+tune}
LAYERS_METHODS=${LAYERS_METHODS:-${METHODS/ ec+tune/}}
mkdir -p "$OUT"

models=("$@")
[ ${#models[@]} -eq 0 ] && models=(dict8-spm4k dense-spm4k moe-gpt2bpe)
[ -n "${MODEL:-}" ] && models+=("$MODEL")

kld() {  # kld LOG -> "mean ± err"
  awk '/Mean +KLD:/ {print $3 " ± " $5; exit}' "$1"
}

for m in "${models[@]}"; do
  if [ -f "$m" ]; then
    model=$m name=$(basename "$m" .gguf) imatrix=""
  else
    name=$m model=$SHARED/models/$m-f32.gguf
    [ -f "$model" ] || model=$SHARED/models/$m-bf16.gguf
    imatrix=$SHARED/reference/$m/imatrix-calib-c256.gguf
  fi
  [ -f "$model" ] || { echo "quality.sh: $m: no such model" >&2; exit 1; }
  if [ ! -f "$imatrix" ]; then
    imatrix=$OUT/$name-imatrix.gguf
    [ -f "$imatrix" ] || "$IMQ" imatrix -m "$model" -f "$CALIB" -c 256 --chunks 8 -t "$THREADS" \
      -o "$imatrix" >"$OUT/$name-imatrix.log" 2>&1
  fi
  evals=${EVALS:-wiki.test.raw}
  [ -z "${EVALS:-}" ] && [ "$name" = dict8-spm4k ] && evals+=" dict-heldout.txt"
  for e in $evals; do
    "$IMQ" perplexity -m "$model" -f "$SHARED/data/$e" -c 256 --chunks "$CHUNKS" -t "$THREADS" \
      --kl-divergence-base "$OUT/$name-$e.kld" >"$OUT/$name-$e-base.log" 2>&1
  done
  echo "# $name ($model), imatrix $imatrix, calibration $CALIB ($CALIB_CHUNKS x 256), eval: $evals"
  echo "| mix | scope | method | bytes | $(for e in $evals; do printf 'KLD %s | ratio | ' "$e"; done)quantize s |"
  echo "|---|---|---|---|$(for e in $evals; do printf -- '---|---|'; done)---|"
  for mix in $MIXES; do
    for scope in $SCOPES; do
      scope_args=()
      [ "$scope" = layers ] && scope_args=(--token-embedding-type f32 --output-tensor-type f32)
      declare -A base_kld=()
      methods=$METHODS
      [ "$scope" = layers ] && methods=$LAYERS_METHODS
      for method in $methods; do
        q=$OUT/$name-$mix-$scope-$method.gguf
        log=$OUT/$name-$mix-$scope-$method.quantize.log
        start=$(date +%s.%N)
        if ! case $method in
          llama)
            if [ -n "${LLAMA_CPP_BIN:-}" ]; then
              "$LLAMA_CPP_BIN/llama-quantize" --imatrix "$imatrix" "${scope_args[@]}" "$model" "$q" "$mix" "$THREADS" >"$log" 2>&1
            else
              "$IMQ" quantize --search reference --imatrix "$imatrix" "${scope_args[@]}" "$model" "$q" "$mix" "$THREADS" >"$log" 2>&1
            fi ;;
          imq) "$IMQ" quantize --search imq --imatrix "$imatrix" "${scope_args[@]}" "$model" "$q" "$mix" "$THREADS" >"$log" 2>&1 ;;
          ec) "$IMQ" quantize --imatrix "$imatrix" --calibration-file "$CALIB" --calibration-ctx 256 \
                --calibration-chunks "$CALIB_CHUNKS" "${scope_args[@]}" "$model" "$q" "$mix" "$THREADS" >"$log" 2>&1 ;;
          ec+tune) "$IMQ" quantize --imatrix "$imatrix" --calibration-file "$CALIB" --calibration-ctx 256 \
                --calibration-chunks "$CALIB_CHUNKS" --tune-mix "$CALIB" "${scope_args[@]}" "$model" "$q" "$mix" "$THREADS" >"$log" 2>&1 ;;
          *) echo "quality.sh: unknown method $method" >&2; exit 1 ;;
        esac; then
          echo "| $mix | $scope | $method | - | $(tail -1 "$log") |"  # e.g. --tune-mix on a non-K mix
          continue
        fi
        secs=$(echo "$(date +%s.%N) - $start" | bc)
        row="| $mix | $scope | $method | $(stat -c %s "$q") |"
        for e in $evals; do
          klog=$OUT/$name-$mix-$scope-$method-$e.kld.log
          "$IMQ" perplexity -m "$q" -f "$SHARED/data/$e" -c 256 --chunks "$CHUNKS" -t "$THREADS" \
            --kl-divergence-base "$OUT/$name-$e.kld" --kl-divergence >"$klog" 2>&1
          k=$(kld "$klog")
          [ "$method" = llama ] && base_kld[$e]=${k%% *}
          ratio=-
          [ -n "${base_kld[$e]:-}" ] && ratio=$(echo "${k%% *} / ${base_kld[$e]}" | bc -l | xargs printf '%.2f')
          row+=" $k | $ratio |"
        done
        printf '%s %.1f |\n' "$row" "$secs"
      done
      unset base_kld
    done
  done
done
