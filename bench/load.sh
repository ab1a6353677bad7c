#!/usr/bin/env bash
# Load: imatrix collection and quantization of a synthetic model larger than half the machine's
# memory. Each step runs under /usr/bin/time -v (peak RSS, wall time, file system inputs) while
# /proc/PID/status and /proc/PID/io are sampled every 0.5 s, so that peak RSS splits into its
# anonymous part (heap: what imq allocates) and its file-backed part (pages of the mapped model,
# which the kernel may drop at any time), and the bytes read from disk can be compared with the
# model's size. The model's pages are evicted from the page cache before each step
# (dd iflag=nocache), so that its reads come from the disk and are counted.
#   bench/load.sh IMQ DIR [LAYERS]     (DIR: a folder with room for ~2.3x the model; default 38
#                                      layers of 4096/11008 = 13.0 GiB in F16)
set -euo pipefail
imq=$(readlink -f "$1") dir=$2 layers=${3:-38}
threads=$(nproc)
mkdir -p "$dir" && cd "$dir"
model=model-f16.gguf

# measure NAME COMMAND...: runs COMMAND, prints one table row.
measure() {
  local name=$1; shift
  [ -f "$model" ] && dd if="$model" iflag=nocache count=0 status=none
  /usr/bin/time -v -o "$name.time" "$@" >"$name.log" 2>&1 &
  local tpid=$! pid="" anon=0 file=0 rb=0
  while kill -0 "$tpid" 2>/dev/null; do
    [ -n "$pid" ] || pid=$(pgrep -P "$tpid" | head -n 1 || true)
    if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
      local a f r
      a=$(awk '/^RssAnon:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      f=$(awk '/^RssFile:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      r=$(awk '/^read_bytes:/{print $2}' "/proc/$pid/io" 2>/dev/null || echo 0)
      [ "${a:-0}" -gt $anon ] && anon=$a
      [ "${f:-0}" -gt $file ] && file=$f
      [ "${r:-0}" -gt $rb ] && rb=$r
    fi
    sleep 0.5
  done
  wait "$tpid" || { cat "$name.log"; echo "$name failed" >&2; exit 1; }
  local rss wall cpu inputs
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$name.time")
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$name.time")
  cpu=$(awk -F': ' '/User time|System time/{s += $2} END{printf "%.0f s", s}' "$name.time")
  inputs=$(sed -n 's/.*File system inputs: //p' "$name.time")
  printf '| %s | %s | %s | %.2f GiB | %.2f GiB | %.2f GiB | %.2f GiB |\n' "$name" "$wall" "$cpu" \
    "$(bc -l <<<"$rss/1048576")" "$(bc -l <<<"$anon/1048576")" "$(bc -l <<<"$file/1048576")" \
    "$(bc -l <<<"$inputs*512/1073741824")"
}

echo "| step | wall | CPU (user+sys) | peak RSS | peak RssAnon | peak RssFile | read from disk |"
echo "|---|---:|---:|---:|---:|---:|---:|"
if [ ! -f "$model" ]; then
  measure synth "$imq" synth -o "$model" --type f16 --n-embd 4096 --n-ff 11008 --n-layer "$layers" \
    --n-head 32 --n-head-kv 8 --vocab 32000 --ctx 4096
fi
# Calibration text: the synthetic vocabulary's byte tokens; 4 chunks of 32 tokens.
python3 -c 'print(" ".join(f"the quick brown fox {i} jumps over the lazy dog" for i in range(200)))' >text.txt
measure imatrix "$imq" imatrix -m "$model" -f text.txt -c 32 --chunks 4 -t "$threads" --no-ppl -o imatrix.gguf
measure quantize "$imq" quantize --imatrix imatrix.gguf "$model" model-q4_k_m.gguf Q4_K_M "$threads"
echo "model: $(stat -c %s "$model") bytes ($(printf %.2f "$(bc -l <<<"$(stat -c %s "$model")/1073741824")") GiB)," \
  "Q4_K_M: $(stat -c %s model-q4_k_m.gguf) bytes; $threads threads; $(nproc) CPUs, $(free -g | awk '/^Mem:/{print $2}') GiB RAM"
