#!/usr/bin/env bash
# Speed benchmarks of ../shared/bench/README.md on the synthetic 125M llama (768/2048/12 layers,
# 12 heads, 4 kv heads, llama-spm vocabulary of 32000, context 512): whole-process wall time
# (median of RUNS after one warm-up run) and peak RSS, 2 threads.
#
#   bench/speed.sh [workload ...]      (default: perplexity imatrix quantize)
#     perplexity  -f wiki.test.raw -c 512 --chunks 4 on TYPES
#     imatrix     -f calibration_datav3_small.txt -c 512 --chunks 4 on F32, F16, BF16; alone,
#                 also the same text through `perplexity` (the collector's overhead is the difference)
#     quantize    F32 -> Q4_K_M with the imatrix of the previous workload (imq: --search
#                 reference, and alone also imq; a peer: its llama-quantize, imatrix as .dat)
#     generate    single-sequence generation, tokens/s, on GEN_TYPES: imq from two whole-process
#                 runs of `imq generate` (-n GEN_N and -n 16); a peer only where its bin
#                 directory has llama-bench (`-p 0 -n GEN_N`)
#
# Side by side: set LLAMA_CPP_BIN and/or IK_LLAMA_CPP_BIN to a peer's bin directory (holding
# llama-perplexity, llama-imatrix, llama-quantize). Each workload then runs imq and every peer
# in turn (imq, peer, imq, peer, ...: a warm-up round, then RUNS rounds), so that the load of a
# shared machine weighs on all of them alike, and prints one markdown row per workload: median
# wall time, peak RSS and imq/peer wall-time ratio (> 1: imq is slower). The peers read the
# same GGUF files imq made. IMQ_ARGS (e.g. --products fast) is added to imq's perplexity,
# imatrix and generate commands, LLAMA_CPP_ARGS / IK_LLAMA_CPP_ARGS to the peers' perplexity
# and imatrix commands; LLAMA_CPP_ARGS defaults to --no-repack on a CPU with
# AVX-512, where llama.cpp 34af94cd9 crashed evaluating repacked quantized weights.
#
# Environment: IMQ (build/imq), IMQ_SHARED (../shared), WORK (/tmp/imq-bench), RUNS (3),
# WARMUP (1), THREADS (2), TYPES (f32 f16 bf16 q8_0 q4_k_m iq4_xs iq3_xxs iq2_xxs), GEN_TYPES (f16 q4_k_m),
# GEN_N (64), IMQ_ARGS, LLAMA_CPP_BIN, IK_LLAMA_CPP_BIN, LLAMA_CPP_ARGS, IK_LLAMA_CPP_ARGS.
# Every run's times and the last log of each tool are kept in $WORK/speed-runs.txt and
# $WORK/last-TOOL.log.
set -euo pipefail
cd "$(dirname "$0")/.."
IMQ=${IMQ:-build/imq}
SHARED=${IMQ_SHARED:-$(cd .. && pwd)/shared}
WORK=${WORK:-${TMPDIR:-/tmp}/imq-bench}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}  # 0: no warm-up round (the files are already in the page cache)
THREADS=${THREADS:-2}
read -ra TYPES <<<"${TYPES:-f32 f16 bf16 q8_0 q4_k_m iq4_xs iq3_xxs iq2_xxs}"
read -ra GEN_TYPES <<<"${GEN_TYPES:-f16 q4_k_m}"
GEN_N=${GEN_N:-64}
WIKI=$SHARED/data/wiki.test.raw
CALIB=$SHARED/data/calibration_datav3_small.txt
VOCAB=$SHARED/models/vocab/ggml-vocab-llama-spm.gguf
mkdir -p "$WORK"
: >"$WORK/speed-runs.txt"

# The tools: imq, then each peer whose bin directory is set.
TOOLS=(imq)
declare -A BIN ARGS=([imq]=${IMQ_ARGS:-})
if [[ -n ${IK_LLAMA_CPP_BIN:-} ]]; then
  TOOLS+=(ik_llama.cpp) BIN[ik_llama.cpp]=$IK_LLAMA_CPP_BIN ARGS[ik_llama.cpp]=${IK_LLAMA_CPP_ARGS:-}
fi
if [[ -n ${LLAMA_CPP_BIN:-} ]]; then
  grep -qw avx512f /proc/cpuinfo && no_repack=--no-repack || no_repack=
  TOOLS+=(llama.cpp) BIN[llama.cpp]=$LLAMA_CPP_BIN ARGS[llama.cpp]=${LLAMA_CPP_ARGS-$no_repack}
fi
for t in "${TOOLS[@]:1}"; do
  for exe in llama-perplexity llama-imatrix llama-quantize; do
    [[ -x ${BIN[$t]}/$exe ]] || { echo "$t: no $exe in ${BIN[$t]}" >&2; exit 1; }
  done
done

# --- models: F32 synthesized, the rest quantized from it by imq ------------------------------
model() { echo "$WORK/bench-$1.gguf"; }
shape=(--n-embd 768 --n-ff 2048 --n-layer 12 --n-head 12 --n-head-kv 4 --ctx 512 --vocab-from "$VOCAB")
[[ -f $(model f32) ]] || "$IMQ" synth -o "$(model f32)" "${shape[@]}" --type f32 >/dev/null
IMATRIX=$WORK/imatrix-f32.gguf
ensure_imatrix() {
  [[ -f $IMATRIX ]] || "$IMQ" imatrix -m "$(model f32)" -f "$CALIB" -c 512 --chunks 4 \
    -t "$THREADS" -o "$IMATRIX" >/dev/null 2>&1
  # ik_llama.cpp's llama-quantize reads only the legacy format.
  [[ -f ${IMATRIX%.gguf}.dat ]] || "$IMQ" imatrix convert "$IMATRIX" -o "${IMATRIX%.gguf}.dat" \
    --output-format dat >/dev/null 2>&1
}
ensure_model() {
  local t=$1 im=()
  [[ -f $(model "$t") ]] && return
  # i-quants need an imatrix (Q4_K_M keeps the plain one of earlier measurements).
  [[ $t == iq* ]] && { ensure_imatrix; im=(--imatrix "$IMATRIX"); }
  "$IMQ" quantize "${im[@]}" "$(model f32)" "$(model "$t")" "${t^^}" "$THREADS" >/dev/null
}

# --- commands: CMD=(...) for one tool and workload -------------------------------------------
command_for() {
  local tool=$1 w=$2 t=$3 b=${BIN[$1]:-} extra=()
  read -ra extra <<<"${ARGS[$tool]:-}"
  case $tool:$w in
    imq:perplexity) CMD=("$IMQ" perplexity -m "$(model "$t")" -f "$WIKI" -c 512 --chunks 4 -t "$THREADS"
                         "${extra[@]}") ;;
    imq:perplexity-calib) CMD=("$IMQ" perplexity -m "$(model "$t")" -f "$CALIB" -c 512 --chunks 4 -t "$THREADS"
                               "${extra[@]}") ;;
    imq:imatrix) CMD=("$IMQ" imatrix -m "$(model "$t")" -f "$CALIB" -c 512 --chunks 4 -t "$THREADS"
                      -o "$WORK/imatrix-$t.gguf" "${extra[@]}") ;;
    imq:quantize-*) CMD=("$IMQ" quantize --search "${w#quantize-}" --imatrix "$IMATRIX" "$(model f32)"
                         "$WORK/q.gguf" Q4_K_M "$THREADS") ;;
    imq:generate-*) CMD=("$IMQ" generate -m "$(model "$t")" -p "The quick brown fox" -n "${w#generate-}"
                         --ignore-eos --temp 0 -t "$THREADS" "${extra[@]}") ;;
    *:perplexity) CMD=("$b/llama-perplexity" -m "$(model "$t")" -f "$WIKI" -c 512 --chunks 4 -t "$THREADS"
                       "${extra[@]}") ;;
    *:imatrix) CMD=("$b/llama-imatrix" -m "$(model "$t")" -f "$CALIB" -c 512 --chunks 4 -t "$THREADS"
                    -o "$WORK/imatrix-$tool-$t.dat" "${extra[@]}") ;;
    *:quantize-reference) CMD=("$b/llama-quantize" --imatrix "${IMATRIX%.gguf}.dat" "$(model f32)"
                               "$WORK/q-$tool.gguf" Q4_K_M "$THREADS") ;;
    *) CMD=() ;;  # the peer has no such workload
  esac
}

# run_once KEY TOOL W T: one whole-process run of TOOL; appends "seconds kib;" (or "fail;") to
# R[KEY]. A tool without the workload appends nothing.
declare -A R
run_once() {
  command_for "$2" "$3" "$4"
  ((${#CMD[@]})) || return 0
  if /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "${CMD[@]}" >"$WORK/last-$2.log" 2>&1; then
    R[$1]+="$(tail -1 "$WORK/time.txt");"
  else
    R[$1]+="fail;"
  fi
}

# stats "s kib;s kib;...": "median peak_mib" of the runs ("fail -" if any run failed).
stats() {
  tr ';' '\n' <<<"$1" | awk 'NF == 0 {next} $1 == "fail" {f = 1; next}
    {t[++n] = $1; if ($2 > m) m = $2}
    END {
      if (f || !n) {print "fail -"; exit}
      for (i = 2; i <= n; ++i) for (j = i; j > 1 && t[j - 1] > t[j]; --j) {x = t[j]; t[j] = t[j - 1]; t[j - 1] = x}
      printf "%.2f %d\n", t[int((n + 1) / 2)], m / 1024
    }'
}

# paired LABEL W T: a warm-up round and RUNS timed rounds of every tool in turn; one table row.
paired() {
  local label=$1 w=$2 t=$3 i tool row s kib imq_s=
  R=()
  for ((i = 1 - WARMUP; i <= RUNS; ++i)); do
    for tool in "${TOOLS[@]}"; do
      run_once "$tool" "$tool" "$w" "$t"
      if ((i == 0)); then R[$tool]=; fi  # the warm-up is not counted
    done
  done
  row="| $label |"
  for tool in "${TOOLS[@]}"; do
    if [[ -z ${R[$tool]:-} ]]; then
      row+=" | |"
      [[ $tool == imq ]] || row+=" |"
      continue
    fi
    echo "$label $tool: ${R[$tool]}" >>"$WORK/speed-runs.txt"
    read -r s kib < <(stats "${R[$tool]}")
    if [[ $tool == imq ]]; then
      imq_s=$s
      row+=" $s s | $kib |"
    else
      row+=" $s s | $kib | $(awk -v a="$imq_s" -v b="$s" \
        'BEGIN {print (a + 0 > 0 && b + 0 > 0) ? sprintf("%.2f", a / b) : "-"}') |"
    fi
  done
  echo "$row"
}

# generation T: tokens/s. imq: GEN_N - 16 tokens over the difference of the median wall times
# of `generate -n GEN_N` and `generate -n 16` (paired runs; model load and prompt cancel out).
generation() {
  local t=$1 i long short tool b row extra=()
  R=()
  for ((i = 1 - WARMUP; i <= RUNS; ++i)); do
    run_once long imq "generate-$GEN_N" "$t"
    run_once short imq generate-16 "$t"
    if ((i == 0)); then R[long]='' R[short]=''; fi
  done
  echo "generate $t imq -n $GEN_N: ${R[long]} -n 16: ${R[short]}" >>"$WORK/speed-runs.txt"
  read -r long _ < <(stats "${R[long]}")
  read -r short _ < <(stats "${R[short]}")
  row="| generate ${t^^}, tokens/s | $(awk -v l="$long" -v s="$short" -v n="$GEN_N" \
    'BEGIN {print (l + 0 > s + 0) ? sprintf("%.1f", (n - 16) / (l - s)) : "-"}') | |"
  for tool in "${TOOLS[@]:1}"; do
    b=${BIN[$tool]}
    read -ra extra <<<"${ARGS[$tool]}"
    if [[ -x $b/llama-bench ]]; then
      # llama-bench's csv: the avg_ts column of its one row.
      row+=" $("$b/llama-bench" -m "$(model "$t")" -p 0 -n "$GEN_N" -t "$THREADS" -r "$RUNS" -o csv \
        "${extra[@]}" 2>/dev/null | awk -F, 'NR == 1 {for (i = 1; i <= NF; ++i) if ($i ~ /avg_ts/) c = i; next}
        c {gsub(/"/, "", $c); printf "%.1f", $c}') | | |"
    else
      row+=" (no llama-bench) | | |"
    fi
  done
  echo "$row"
}

header="| workload | imq | imq MiB |"
rule="|---|---:|---:|"
for tool in "${TOOLS[@]:1}"; do
  header+=" $tool | $tool MiB | imq/$tool |"
  rule+="---:|---:|---:|"
done
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) CPUs, load average$(uptime | sed 's/.*load average//')"
for tool in "${TOOLS[@]:1}"; do echo "$tool: ${BIN[$tool]} ${ARGS[$tool]}"; done
echo "$header"
echo "$rule"
workloads=("$@")
[ ${#workloads[@]} -eq 0 ] && workloads=(perplexity imatrix quantize)
for w in "${workloads[@]}"; do
  case $w in
    perplexity)
      for t in "${TYPES[@]}"; do ensure_model "$t"; paired "perplexity ${t^^}" perplexity "$t"; done ;;
    imatrix)
      for t in f32 f16 bf16; do
        ensure_model "$t"
        paired "imatrix ${t^^}" imatrix "$t"
        # Without peers: the collector's overhead, against perplexity on the same text.
        ((${#TOOLS[@]} > 1)) || paired "perplexity ${t^^} (same text)" perplexity-calib "$t"
      done ;;
    quantize)
      ensure_imatrix
      paired "quantize Q4_K_M, imatrix, --search reference" quantize-reference f32
      # imq's own search (no peer has it, and it takes minutes): alone only.
      ((${#TOOLS[@]} > 1)) || paired "quantize Q4_K_M, imatrix, --search imq" quantize-imq f32 ;;
    generate)
      for t in "${GEN_TYPES[@]}"; do ensure_model "$t"; generation "$t"; done ;;
    *) echo "unknown workload $w (perplexity, imatrix, quantize, generate)" >&2; exit 1 ;;
  esac
done
