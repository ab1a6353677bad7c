#!/usr/bin/env bash
# i-quant speed side by side with a llama.cpp-family peer's llama-perplexity (bench/README.md,
# "i-quant speed"): perplexity -f wiki.test.raw -c 512 --chunks 4 -t THREADS on the 125M bench
# model quantized to each TYPE with the bench imatrix, imq and the peer run in pairs (imq, peer,
# imq, peer, ...) after one warm-up of each, so that both see the same load; whole-process wall
# time (median of RUNS) and peak RSS from /usr/bin/time. IMQ_BASE (optional): a second imq
# binary (e.g. the build before a change) run in the same rotation. Then single-sequence
# generation, imq only (the peer builds no generation tool here): `generate -n 1` and `-n GEN_N`
# greedy, the difference / (GEN_N - 1) is the time per token.
#
#   bench/iquant_speed.sh [TYPE ...]      (default: IQ2_XXS IQ3_XXS IQ4_XS)
#
# On a loaded machine 2-thread runs measure the scheduler more than the kernels (every
# barrier waits for a descheduled thread; a generated token has ~100 of them): THREADS=1
# compares the arithmetic.
# Environment: IMQ (build/imq), PEER (/work/peers/ik_llama.cpp/build/bin), IMQ_SHARED
# (../shared), WORK (/tmp/imq-bench: bench-f32.gguf from bench/speed.sh, im.gguf the imatrix of
# calibration_datav3_small.txt; b-TYPE.gguf made here when absent), RUNS (3), THREADS (2),
# PPL and GEN (1; 0 skips the perplexity or the generation part), GEN_N (129 tokens).
# Logs and timings go to a fresh directory under /tmp, printed at the start.
set -euo pipefail
cd "$(dirname "$0")/.."
IMQ=${IMQ:-build/imq}
PEER=${PEER:-/work/peers/ik_llama.cpp/build/bin}
SHARED=${IMQ_SHARED:-$(cd .. && pwd)/shared}
WORK=${WORK:-${TMPDIR:-/tmp}/imq-bench}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
WIKI=$SHARED/data/wiki.test.raw
LOGS=$(mktemp -d /tmp/iquant-speed.XXXXXX)
# Run from LOGS: the peer writes llama.log into its working directory.
IMQ=$(realpath "$IMQ") PEER=$(realpath "$PEER") WORK=$(realpath "$WORK") WIKI=$(realpath "$WIKI")
[[ -n ${IMQ_BASE:-} ]] && IMQ_BASE=$(realpath "$IMQ_BASE")
cd "$LOGS"
types=("$@")
[ ${#types[@]} -eq 0 ] && types=(IQ2_XXS IQ3_XXS IQ4_XS)

# run LOG COMMAND...: one timed run, prints "wall_s kib cpu_s" (cpu: user + system; on a
# loaded machine it varies much less than the wall time).
run() {
  local log=$1
  shift
  /usr/bin/time -f "%e %M %U %S" -o "$LOGS/time.txt" "$@" >"$log" 2>&1
  tail -1 "$LOGS/time.txt" | awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}'
}
wall() { echo "${1%% *}"; }
kib() { echo "$1" | awk '{print $2}'; }
cpu() { echo "${1##* }"; }
median() { printf "%s\n" "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max() { printf "%s\n" "$@" | sort -g | tail -1; }

echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'); $(uptime | sed 's/.*load/load/'); logs in $LOGS"
printf "%-8s %17s %17s %15s %9s %9s %17s   %s\n" type "imq wall/cpu s" "peer wall/cpu s" "ratio wall/cpu" \
  "imq MiB" "peer MiB" "base wall/cpu s" "wall runs imq | peer | base"
for t in "${types[@]}"; do
  ((${PPL:-1})) || break
  m=$WORK/b-$t.gguf
  [[ -f $m ]] || "$IMQ" quantize --imatrix "$WORK/im.gguf" "$WORK/bench-f32.gguf" "$m" "$t" "$THREADS" >/dev/null
  args=(-m "$m" -f "$WIKI" -c 512 --chunks 4 -t "$THREADS")
  a=() b=() c=() ca=() cb=() cc=() ra=() rb=()
  for ((i = 0; i <= RUNS; ++i)); do
    x=$(run "$LOGS/imq-$t.log" "$IMQ" perplexity "${args[@]}")
    y=$(run "$LOGS/peer-$t.log" "$PEER/llama-perplexity" "${args[@]}")
    [[ -n ${IMQ_BASE:-} ]] && z=$(run "$LOGS/base-$t.log" "$IMQ_BASE" perplexity "${args[@]}")
    ((i == 0)) && continue
    a+=("$(wall "$x")") ca+=("$(cpu "$x")") ra+=("$(kib "$x")")
    b+=("$(wall "$y")") cb+=("$(cpu "$y")") rb+=("$(kib "$y")")
    [[ -n ${IMQ_BASE:-} ]] && c+=("$(wall "$z")") cc+=("$(cpu "$z")")
  done
  ma=$(median "${a[@]}") mb=$(median "${b[@]}") qa=$(median "${ca[@]}") qb=$(median "${cb[@]}") base=-
  [[ -n ${IMQ_BASE:-} ]] && base="$(median "${c[@]}") / $(median "${cc[@]}")"
  printf "%-8s %17s %17s %15s %9d %9d %17s   %s | %s | %s\n" "$t" "$ma / $qa" "$mb / $qb" \
    "$(printf "%.2fx / %.2fx" "$(echo "$mb / $ma" | bc -l)" "$(echo "$qb / $qa" | bc -l)")" \
    $(($(max "${ra[@]}") / 1024)) $(($(max "${rb[@]}") / 1024)) "$base" "${a[*]}" "${b[*]}" "${c[*]:-}"
done

# Generation: per run, -n 1 and -n GEN_N of imq, then of IMQ_BASE; ms/token = the difference
# of the medians / (GEN_N - 1), of wall and of cpu time.
GEN_N=${GEN_N:-129}
printf "\n%-10s %20s %20s\n" type "imq ms/tok wall/cpu" "base ms/tok wall/cpu"
for t in "${types[@]}"; do
  ((${GEN:-1})) || break
  bins=("$IMQ")
  [[ -n ${IMQ_BASE:-} ]] && bins+=("$IMQ_BASE")
  declare -A s=()
  for ((i = 0; i <= RUNS; ++i)); do
    for k in "${!bins[@]}"; do
      for n in 1 "$GEN_N"; do
        x=$(run "$LOGS/gen$n-$k-$t.log" "${bins[k]}" generate -m "$WORK/b-$t.gguf" -p "The history of the city" \
          --temp 0 --ignore-eos -t "$THREADS" -n $n)
        ((i == 0)) || s[$k,$n]+="$(wall "$x") " s[c$k,$n]+="$(cpu "$x") "
      done
    done
  done
  ms=()
  for k in "${!bins[@]}"; do
    ms+=("$(printf "%.1f / %.1f" \
      "$(echo "($(median ${s[$k,$GEN_N]}) - $(median ${s[$k,1]})) * 1000 / ($GEN_N - 1)" | bc -l)" \
      "$(echo "($(median ${s[c$k,$GEN_N]}) - $(median ${s[c$k,1]})) * 1000 / ($GEN_N - 1)" | bc -l)")")
  done
  printf "%-10s %20s %20s\n" "$t" "${ms[0]}" "${ms[1]:--}"
  unset s
done
