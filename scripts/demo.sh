#!/usr/bin/env bash
# The main job, end to end, on a default input: install dependencies, build, then
#   1. collect an importance matrix from calibration text,
#   2. quantize to Q4_K_M and Q3_K_M without it, with it (llama.cpp's block search), and with it
#      and imq's own search (--search imq, same file format and size), and with imq's search and
#      a mix measured on the calibration text (--tune-mix: per-tensor types, no larger file), and
#      error-compensated from the calibration text (--calibration-file: same mix, same size),
#   3. evaluate each against the unquantized model (perplexity, KL divergence, same top token),
# and print one table that shows what the imatrix bought.
# Inputs: MODEL (default ../shared/models/dense-spm4k-f32.gguf, else a model made by `imq synth`),
# CALIB (calibration text), EVAL (evaluation text; never the calibration text), CTX, CHUNKS,
# OUT (work folder, default out/demo), THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
IMQ=./build/imq
SHARED=${IMQ_SHARED:-../shared}
OUT=${OUT:-out/demo}
THREADS=${THREADS:-$(nproc)}
CTX=${CTX:-256}
mkdir -p "$OUT"
if [ -z "${MODEL:-}" ]; then
  if [ -f "$SHARED/models/dense-spm4k-f32.gguf" ]; then
    MODEL=$SHARED/models/dense-spm4k-f32.gguf
  else
    MODEL=$OUT/synth-f32.gguf
    echo "== no model given and no $SHARED: making a random model with imq synth"
    $IMQ synth -o "$MODEL" --n-embd 256 --n-layer 4 --n-head 4 --n-head-kv 2 --n-ff 768 --vocab 512 --seed 1
  fi
fi
CALIB=${CALIB:-$SHARED/data/calibration_datav3_small.txt}
EVAL=${EVAL:-$SHARED/data/wiki.test.raw}
if [ ! -f "$CALIB" ] || [ ! -f "$EVAL" ]; then
  echo "== no calibration/evaluation text found: writing sample text"
  CALIB=$OUT/calib.txt; EVAL=$OUT/eval.txt
  python3 -c "import random; r=random.Random(1); w='the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their'.split(); print('\n'.join(' '.join(r.choice(w) for _ in range(40)) for _ in range(400)))" > "$CALIB"
  python3 -c "import random; r=random.Random(2); w='the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their'.split(); print('\n'.join(' '.join(r.choice(w) for _ in range(40)) for _ in range(400)))" > "$EVAL"
fi
CHUNKS=${CHUNKS:-10}

echo "== model $MODEL, calibration $CALIB, evaluation $EVAL (ctx $CTX, $CHUNKS chunks, $THREADS threads)"
echo "== 1. importance matrix"
$IMQ imatrix -m "$MODEL" -f "$CALIB" -o "$OUT/imatrix.gguf" -c "$CTX" -t "$THREADS" --chunks 32 --no-ppl
echo "== 2. base logits of the unquantized model"
$IMQ perplexity -m "$MODEL" -f "$EVAL" -c "$CTX" --chunks "$CHUNKS" -t "$THREADS" \
  --kl-divergence-base "$OUT/base.kld" > "$OUT/ppl-base.log" 2>&1
rows=()
for type in Q4_K_M Q3_K_M; do
  for mode in noimat imat imat-imq imat-imq-tune imat-ec; do
    q="$OUT/model-$type-$mode.gguf"
    args=()
    [ "$mode" != noimat ] && args=(--imatrix "$OUT/imatrix.gguf")
    [ "$mode" = imat-imq ] && args+=(--search imq)
    [ "$mode" = imat-imq-tune ] && args+=(--search imq --tune-mix "$CALIB")
    [ "$mode" = imat-ec ] && args+=(--calibration-file "$CALIB" --calibration-ctx "$CTX")
    echo "== 3. quantize $type ($mode)"
    $IMQ quantize "${args[@]}" "$MODEL" "$q" "$type" "$THREADS" > "$OUT/quantize-$type-$mode.log" 2>&1
    $IMQ perplexity -m "$q" -c "$CTX" --chunks "$CHUNKS" -t "$THREADS" --kl-divergence-base "$OUT/base.kld" \
      --kl-divergence > "$OUT/kld-$type-$mode.log" 2>&1
    rows+=("$type $mode $q $OUT/kld-$type-$mode.log")
  done
done
python3 - "$MODEL" "$OUT/ppl-base.log" "${rows[@]}" <<'PY'
import os, re, sys
model, base_log, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
def grab(path, pattern):
    m = re.search(pattern, open(path, errors='replace').read())
    return float(m.group(1)) if m else float('nan')
def n_params(path):
    out = os.popen('./build/imq info --json ' + path).read()
    import json
    return sum(eval('*'.join(map(str, t['shape']))) for t in json.loads(out)['tensors'])
n = n_params(model)
print()
print('%-8s %-8s %-10s %10s %7s %12s %12s %10s' % ('type', 'imatrix', 'search', 'size MiB', 'bpw', 'PPL', 'mean KLD', 'same top'))
ppl = grab(base_log, r'Final estimate: PPL = ([0-9.]+)')
size = os.path.getsize(model)
print('%-8s %-8s %-10s %10.2f %7.2f %12.4f %12s %10s' % ('F32', '-', '-', size / 2**20, size * 8 / n, ppl, '-', '-'))
for r in rows:
    t, mode, q, log = r.split(' ')
    size = os.path.getsize(q)
    print('%-8s %-8s %-10s %10.2f %7.2f %12.4f %12.6f %9.3f%%' % (t, 'no' if mode == 'noimat' else 'yes',
          {'imat-imq': 'imq', 'imat-imq-tune': 'imq+tune', 'imat-ec': 'error-comp'}.get(mode, 'reference'), size / 2**20,
          size * 8 / n, grab(log, r'Mean PPL\(Q\)\s*:\s*([0-9.]+)'), grab(log, r'Mean\s+KLD:\s*([0-9.]+)'),
          grab(log, r'Same top p:\s*([0-9.]+)')))
PY
