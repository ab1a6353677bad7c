#!/usr/bin/env bash
# Q3_HIFI quality benchmark: KLD and PPL against the F32 model of Q3_HIFI and Q3_HIFI_M (with
# and without an imatrix) and llama.cpp's Q3_K_S/M/L with an imatrix, with file sizes.
#
#   bench/q3_hifi.sh [model ...]          models: dense-spm4k moe-gpt2bpe (default: both)
#
# Same environment as bench/quant_quality.sh (OUT defaults to /tmp/imq-q3hifi-bench);
# EXTRA_TYPES adds TYPE[:noimat][:imq] entries.
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-/tmp/imq-q3hifi-bench}
export TYPES="Q3_K_S Q3_K_M Q3_K_L Q3_HIFI Q3_HIFI:noimat Q3_HIFI_M Q3_HIFI_M:noimat ${EXTRA_TYPES:-}"
exec bench/quant_quality.sh "$@"
