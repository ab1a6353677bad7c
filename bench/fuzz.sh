#!/usr/bin/env bash
# bench/fuzz.sh [SECONDS]: builds the libFuzzer harnesses of fuzz/ (clang++-14,
# -fsanitize=fuzzer,address,undefined; a UBSan report is fatal, leaks are reported) and runs
# each for SECONDS (default 60), one after the other. Exit status:
#   0   nothing found
#   1   a harness found a crash, hang, leak, UBSan report or out-of-memory: the input that
#       triggers it is printed (and kept under $FUZZ_WORK/artifacts/<harness>/)
#   2   the harnesses could not be built or set up
#   77  skipped: clang++-14 or libFuzzer (Debian: clang-14 libclang-rt-14-dev) or ../shared is
#       missing; with IMQ_REQUIRE_SHARED=1 (CI) that is a failure (exit 2) instead
# Environment:
#   IMQ_SHARED       the shared folder (models and references; default ../shared): the seed
#                    corpora come from its files, fuzz_tokenizer loads its vocabularies
#   FUZZ_WORK        build folder, corpora and artifacts (default build-fuzz, ignored by git);
#                    corpora grow from run to run
#   FUZZ_BUILD       the harnesses' build folder (default $FUZZ_WORK/build)
#   FUZZ_HARNESSES   the harnesses to run (default: all), e.g. "gguf imatrix"
#   FUZZ_JOBS        parallel compile jobs (default 2)
#   FUZZ_ARGS        extra libFuzzer options (e.g. -runs=10000000 for a campaign by count)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-60}
work=${FUZZ_WORK:-$root/build-fuzz}
build=${FUZZ_BUILD:-$work/build}
shared=${IMQ_SHARED:-$root/../shared}
harnesses=${FUZZ_HARNESSES:-"gguf imatrix tokenizer safetensors hf_config sentencepiece"}

skip() {
  if [ "${IMQ_REQUIRE_SHARED:-}" = 1 ]; then
    echo "fuzz.sh: FAILED: $1 (IMQ_REQUIRE_SHARED=1: fuzzing is required)" >&2
    exit 2
  fi
  echo "fuzz.sh: SKIPPED: $1" >&2
  exit 77
}

cxx=$(command -v clang++-14 || true)
[ -n "$cxx" ] || skip "clang++-14 not found (Debian: apt-get install clang-14)"
libfuzzer=$("$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a)
[ -f "$libfuzzer" ] || skip "libFuzzer not found for $cxx (Debian: apt-get install libclang-rt-14-dev)"
[ -d "$shared/models" ] || skip "no shared folder at $shared (set IMQ_SHARED): the seed corpora come from it"
shared=$(cd "$shared" && pwd)

# --- build ----------------------------------------------------------------------------------
mkdir -p "$work"
if ! { CXX="$cxx" cmake -S fuzz -B "$build" -DCMAKE_BUILD_TYPE=None >/dev/null &&
       cmake --build "$build" -j"${FUZZ_JOBS:-2}" >"$work/build.log" 2>&1; }; then
  tail -n 30 "$work/build.log" >&2
  echo "fuzz.sh: building the harnesses failed (log: $work/build.log)" >&2
  exit 2
fi

# --- seed corpora -----------------------------------------------------------------------------
# Regenerated every run from ../shared (never copied into the repository): small files whole,
# large ones as a prefix of the harness's -max_len (GGUF header and metadata come first).
declare -A max_len=([gguf]=16384 [imatrix]=16384 [tokenizer]=2048 [safetensors]=8192
                    [hf_config]=4096 [sentencepiece]=8192)
seeds=$work/seeds
rm -rf "$seeds"
mkdir -p "$seeds"/{gguf,imatrix,tokenizer,safetensors,hf_config,sentencepiece}
prefix() {  # prefix FILE DEST MAXLEN
  head -c "$3" "$1" >"$2"
}
n=0
for f in "$shared"/models/*.gguf "$shared"/models/vocab/*.gguf "$shared"/reference/*/q-Q4_K_M-imat.gguf; do
  [ -f "$f" ] && prefix "$f" "$seeds/gguf/$((n++))-$(basename "$f")" "${max_len[gguf]}"
done
for f in "$shared"/reference/*/imatrix-*.gguf "$shared"/reference/*/imatrix-*.dat \
         "$shared"/reference/archs/*/imatrix-*.gguf; do
  [ -f "$f" ] || continue
  prefix "$f" "$seeds/imatrix/$((n++))-$(basename "$f")" "${max_len[imatrix]}"
  case "$f" in *.gguf) cp "$seeds/imatrix/$((n - 1))-$(basename "$f")" "$seeds/gguf/";; esac
done
# Small complete inputs that ../shared has no file for (fuzz/make_seeds.py).
python3 fuzz/make_seeds.py "$seeds"
# Tokenizer: selector byte (0..3 picks the vocabulary), then text.
i=0
for f in "$shared"/models/vocab/*.inp "$shared"/seeds/*.txt "$shared"/data/wiki.test.head100.txt; do
  [ -f "$f" ] || continue
  for sel in 0 1 2 3; do
    { printf "\\x0$sel"; head -c $((${max_len[tokenizer]} - 1)) "$f"; } >"$seeds/tokenizer/$((i++))"
  done
done
for f in "$shared"/models/hf/*/*.safetensors; do
  [ -f "$f" ] && prefix "$f" "$seeds/safetensors/$((n++))-$(basename "$f")" "${max_len[safetensors]}"
done
for f in "$shared"/models/hf/*/*.json; do
  [ -f "$f" ] && cp "$f" "$seeds/hf_config/$((n++))-$(basename "$f")"
done
for f in "$shared"/models/hf/*/tokenizer.model; do
  [ -f "$f" ] && prefix "$f" "$seeds/sentencepiece/$((n++))-tokenizer.model" "${max_len[sentencepiece]}"
done

# --- run --------------------------------------------------------------------------------------
declare -A dict=([gguf]=fuzz/gguf.dict [imatrix]=fuzz/gguf.dict [tokenizer]=fuzz/tokenizer.dict
                 [safetensors]=fuzz/json.dict [hf_config]=fuzz/json.dict)
export IMQ_SHARED=$shared
status=0
for h in $harnesses; do
  exe=$build/fuzz_$h
  [ -x "$exe" ] || { echo "fuzz.sh: no harness fuzz_$h" >&2; exit 2; }
  corpus=$work/corpus/$h artifacts=$work/artifacts/$h
  mkdir -p "$corpus" "$artifacts"
  opts=(-max_total_time="$seconds" -max_len="${max_len[$h]}" -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$artifacts/" -print_final_stats=1)
  [ -n "${dict[$h]:-}" ] && opts+=(-dict="${dict[$h]}")
  log=$work/fuzz_$h.log
  echo "== fuzz_$h: ${seconds}s, corpus $corpus"
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of options
  if "$exe" "${opts[@]}" ${FUZZ_ARGS:-} "$corpus" "$seeds/$h" >"$log" 2>&1; then
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)" "$log" | tr '\n' ' '
    echo "corpus: $(find "$corpus" -type f | wc -l) files"
  else
    status=1
    tail -n 40 "$log" >&2
    found=$(grep -oE "Test unit written to .*" "$log" | sed 's/Test unit written to //' | tail -n 1)
    echo "fuzz.sh: fuzz_$h FOUND A PROBLEM; input: ${found:-(see $log)}; log: $log" >&2
  fi
done
exit $status
