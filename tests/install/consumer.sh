#!/usr/bin/env bash
# A project outside the tree builds against the installed imq (find_package(imq) -> imq::imq)
# and runs its example: install BUILD into a temporary prefix, configure examples/ there, build,
# and quantize + score a synthetic model (no ../shared needed).
#   consumer.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/imq/quantize.h"
test -f "$tmp/prefix/lib/pkgconfig/imq.pc" || test -f "$tmp/prefix/lib/x86_64-linux-gnu/pkgconfig/imq.pc"
cmake -S "$src/examples" -B "$tmp/ex" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/ex" -j2 >/dev/null
imq=$tmp/prefix/bin/imq
"$imq" synth -o "$tmp/m.gguf" --n-embd 256 --n-ff 512 --n-layer 2 --vocab 512 >/dev/null
"$imq" imatrix -m "$tmp/m.gguf" -f "$src/README.md" -c 128 --chunks 4 -o "$tmp/i.gguf" >/dev/null 2>&1
"$tmp/ex/quantize_and_score" "$tmp/m.gguf" "$tmp/i.gguf" "$src/README.md" "$tmp/q.gguf" Q4_K_M
test -s "$tmp/q.gguf"
# The installed imq reads what the example wrote.
info=$("$imq" info --tsv "$tmp/q.gguf")
[[ $info == *$'\tq4_K\t'* ]] || { echo "no q4_K tensor in the example's output" >&2; exit 1; }
echo "consumer project: OK"
