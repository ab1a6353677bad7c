#!/usr/bin/env bash
# docs/DISTRIBUTED.md's Slurm recipe, run for real on a one-node Slurm started here: the array
# job, the dependent merge and the recovery of a failed task exactly as the doc writes them (its
# ```sh blocks are extracted, so the doc and this test cannot drift). Each task is stopped after
# its first save, one way each:
#   task 0: scancel --signal=TERM (what --signal=TERM@120 does at the time limit): the script
#           requeues the task itself;
#   task 1: scontrol requeue (what preemption does): Slurm requeues it (--requeue);
#   task 2: kill -KILL of its imq (what the out-of-memory killer does): the task fails and the
#           merge can never run; the doc's recovery block requeues the task and submits the merge
#           again.
# All three resume from their saves; the merged imatrix must equal one run over the same chunks
# (chunk and token counts exact, sums within the doc's 1e-6 relative bound).
#   slurm_recipe.sh SOURCE_DIR IMQ_BINARY
#
# Only the sizes that do not fit a 2-core machine are substituted in the doc's collect.sbatch:
#   --array=0-15 -> 0-2, --cpus-per-task=16 -> 1, CHUNKS=64 -> 16 (-c 512 is kept).
# model.gguf is dense-spm4k-f16 and calibration.txt calibration_datav3.txt from ../shared.
#
# The cluster: slurmctld + slurmd on 127.0.0.1, free ports, AuthType=auth/none (no munged),
# proctrack/linuxproc + task/none (no cgroups), state and spool in a temporary folder,
# AuthInfo=cred_expire=5 and SchedulerParameters=sched_interval=1: a requeued job may start again
# after 5 s, and the scheduler's periodic pass looks at it within 1 s (defaults: 120 s and 60 s).
# Needs root and the Debian packages slurmctld slurmd slurm-client; without them the test skips
# (exit 77), and fails where IMQ_REQUIRE_SHARED=1 (CI).
set -euo pipefail
src=$(cd "$1" && pwd) imq=$(readlink -f "$2")
shared=${IMQ_SHARED:-$src/../shared}
PATH=$PATH:/usr/sbin:/sbin
unset $(compgen -e | grep '^SLURM_') || true  # nothing from an outer Slurm job leaks into this one

skip() {
  if [ "${IMQ_REQUIRE_SHARED:-}" = 1 ]; then echo "FAIL (IMQ_REQUIRE_SHARED=1): $*" >&2; exit 1; fi
  echo "SKIP: $*"; exit 77
}
for c in slurmctld slurmd sbatch srun scontrol scancel squeue sinfo python3; do
  command -v "$c" >/dev/null || skip "$c not found (apt-get install slurmctld slurmd slurm-client)"
done
[ "$(id -u)" -eq 0 ] || skip "needs root (slurmd starts job steps as their user)"
model=$shared/models/dense-spm4k-f16.gguf text=$shared/data/calibration_datav3.txt
[ -f "$model" ] && [ -f "$text" ] || skip "shared data not found: $model, $text (set IMQ_SHARED)"

tmp=$(mktemp -d /tmp/imq-slurm.XXXXXX)
conf=$tmp/slurm.conf
ctld_pid="" slurmd_pid=""
sl() { SLURM_CONF=$conf timeout 30 "$@"; }  # every Slurm client call, bounded

# Stops what this test started: its jobs, the daemons (by pid), then any process still carrying
# this cluster's SLURM_CONF in its environment (slurmstepd, imq of a cancelled job).
teardown() {
  local rc=$?
  trap - EXIT
  set +e
  if [ -n "$ctld_pid" ]; then
    sl scancel --quiet --user=root >/dev/null 2>&1
    for _ in $(seq 50); do [ -z "$(sl squeue -h -t R,CG 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for p in $slurmd_pid $ctld_pid; do kill -TERM "$p" 2>/dev/null; done
  for p in $slurmd_pid $ctld_pid; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  for e in /proc/[0-9]*/environ; do
    p=${e#/proc/}; p=${p%/environ}
    [ "$p" = $$ ] && continue
    tr '\0' '\n' 2>/dev/null <"$e" | grep -qx "SLURM_CONF=$conf" && kill -KILL "$p" 2>/dev/null
  done
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    for f in "$tmp"/slurmctld.log "$tmp"/slurmd.log "$tmp"/job/slurm-*.out; do
      [ -f "$f" ] && { echo "== $f"; tail -n 30 "$f"; }
    done
  fi
  rm -rf "$tmp"
  exit $rc
}
trap teardown EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
  local limit=$1 what=$2; shift 2
  local end=$(( SECONDS + limit ))
  until "$@"; do
    [ $SECONDS -lt $end ] || fail "timed out after ${limit}s waiting for $what"
    sleep 0.1
  done
}

# --- a one-node cluster -------------------------------------------------------------------------
read -r ctld_port slurmd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
host=$(uname -n); host=${host%%.*}
mkdir -p "$tmp/state" "$tmp/spool" "$tmp/job/bin"
: >"$tmp/plugstack.conf"
node=$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/")
cat >"$conf" <<EOF
ClusterName=imqtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=5
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
PlugStackConfig=$tmp/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=10
SlurmdParameters=config_overrides
$node
PartitionName=imq Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
# Under `timeout`, so that even a test killed with SIGKILL leaves no daemon behind for long.
SLURM_CONF=$conf setsid timeout -s KILL 600 slurmctld -D -i >"$tmp/slurmctld.out" 2>&1 </dev/null &
ctld_pid=$!
SLURM_CONF=$conf setsid timeout -s KILL 600 slurmd -D -N "$host" >"$tmp/slurmd.out" 2>&1 </dev/null &
slurmd_pid=$!
node_idle() { [ "$(sl sinfo -h -n "$host" -o %t 2>/dev/null)" = idle ]; }
wait_for 30 "the node to be idle in sinfo" node_idle
echo "slurm: up on ports $ctld_port/$slurmd_port ($SECONDS s)"

# --- the doc's recipe ---------------------------------------------------------------------------
cd "$tmp/job"
ln -s "$model" model.gguf
ln -s "$text" calibration.txt
ln -s "$imq" bin/imq
tasks=3 chunks=16
python3 - "$src/docs/DISTRIBUTED.md" <<'PY'
import re, sys
doc = open(sys.argv[1]).read()
section = doc.split("## Slurm", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
if len(blocks) != 3:
    sys.exit(f"DISTRIBUTED.md: expected 3 sh blocks under '## Slurm' (script, submit, recovery), found {len(blocks)}")
script, submit, recover = blocks
if not script.startswith("#!/bin/bash\n# collect.sbatch"):
    sys.exit("DISTRIBUTED.md: the first sh block under '## Slurm' is not collect.sbatch")
# The sizes of a 16-machine run, made to fit 2 cores; each must be found exactly once.
for old, new in [("#SBATCH --array=0-15\n", "#SBATCH --array=0-2\n"),
                 ("#SBATCH --cpus-per-task=16\n", "#SBATCH --cpus-per-task=1\n"),
                 ("\nCHUNKS=64\n", "\nCHUNKS=16\n")]:
    if script.count(old) != 1:
        sys.exit(f"DISTRIBUTED.md: {old.strip()!r} not found exactly once in collect.sbatch")
    script = script.replace(old, new)
open("collect.sbatch", "w").write(script)
# The blocks' shell variables (JOB, MERGE) are printed for the test to read.
open("submit.sh", "w").write(submit + 'echo "JOB=$JOB MERGE=$MERGE"\n')
open("recover.sh", "w").write(recover + 'echo "MERGE=$MERGE"\n')
PY
grep -q -- '-c 512' collect.sbatch || fail "collect.sbatch does not use -c 512"

# Runs a block of the doc as written, in the job folder, with imq and this cluster.
run_block() { PATH=$tmp/job/bin:$PATH SLURM_CONF=$conf timeout 60 env "${@:2}" bash -e "$1"; }
out=$(run_block submit.sh) || fail "the submit block failed: $out"
echo "$out"
job=$(sed -n 's/^JOB=\([0-9]*\) MERGE=[0-9]*$/\1/p' <<<"$out")
merge=$(sed -n 's/^JOB=[0-9]* MERGE=\([0-9]*\)$/\1/p' <<<"$out")
[ -n "$job" ] && [ -n "$merge" ] || fail "could not read JOB and MERGE from the submit block"

job_field() {  # job_field ID FIELD: one field of `scontrol show job`
  sl scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
saved() { [ -f "shards/shard-$(printf %04d "$1").gguf" ]; }

# Two tasks run at a time on 2 CPUs. Once 0 and 1 have saved (their shards exist:
# --output-frequency 1), both are stopped; task 2 starts in their place.
both_saved() { saved 0 && saved 1; }
wait_for 60 "the first saves of tasks 0 and 1" both_saved
sl scancel --signal=TERM "${job}_0"
sl scontrol requeue "${job}_1"
echo "slurm: task 0 sent SIGTERM, task 1 requeued ($SECONDS s)"
wait_for 60 "the first save of task 2" saved 2
# What the out-of-memory killer does: SIGKILL to imq itself (scancel --signal=KILL would cancel
# the job instead). Its pid: the imq process of this cluster's task 2.
imq_of_task() {
  local e p
  for e in /proc/[0-9]*/environ; do
    p=${e#/proc/}; p=${p%/environ}
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = imq ] || continue
    tr '\0' '\n' 2>/dev/null <"$e" | grep -qx "SLURM_CONF=$conf" || continue
    tr '\0' '\n' 2>/dev/null <"$e" | grep -qx "SLURM_ARRAY_TASK_ID=$1" && { echo "$p"; return 0; }
  done
  return 1
}
pid=$(imq_of_task 2) || fail "task 2's imq process not found"
kill -KILL "$pid"
failed() { [ "$(job_field "${job}_2" JobState)" = FAILED ]; }
wait_for 30 "task 2 to fail" failed
never() { [ "$(job_field "$merge" Reason)" = DependencyNeverSatisfied ]; }
wait_for 30 "the merge to be marked DependencyNeverSatisfied" never
out=$(run_block recover.sh JOB="$job" TASK=2 MERGE="$merge") || fail "the recovery block failed: $out"
old_merge=$merge
merge=$(sed -n 's/^MERGE=\([0-9]*\)$/\1/p' <<<"$out")
[ -n "$merge" ] || fail "could not read MERGE from the recovery block"
echo "slurm: task 2 killed (SIGKILL), requeued by the recovery block, merge $old_merge -> $merge ($SECONDS s)"

# The single-machine reference over the same chunks, while the tasks wait to run again.
"$imq" imatrix -m model.gguf -f calibration.txt -c 512 -t 1 --chunks $(( tasks * chunks )) \
  --no-ppl --verbosity 1 -o single.gguf >single.log 2>&1 || { cat single.log; fail "single run"; }

merge_done() {
  local s
  s=$(job_field "$merge" JobState)
  if [ "$(job_field "$merge" Reason)" = DependencyNeverSatisfied ]; then
    sl squeue -h -o '%i %T %r'; fail "the merge will never run: a task failed"
  fi
  case $s in
    COMPLETED) return 0 ;;
    PENDING|RUNNING|CONFIGURING|COMPLETING|"") return 1 ;;
    *) sl scontrol show job "$merge" | head -n 5; fail "merge job $merge: $s" ;;
  esac
}
wait_for 150 "the merge job" merge_done
echo "slurm: merge done ($SECONDS s)"
[ "$(job_field "$old_merge" JobState)" = CANCELLED ] || fail "the first merge job was not cancelled"

# Each task ran twice: stopped after a save, then requeued and resumed over the remaining chunks.
# Its log (--open-mode=append) holds both runs.
for t in $(seq 0 $(( tasks - 1 ))); do
  state=$(job_field "${job}_$t" JobState)
  [ "$state" = COMPLETED ] || fail "task $t: $state"
  [ "$(job_field "${job}_$t" Restarts)" -ge 1 ] || fail "task $t was not requeued"
  log=slurm-${job}_$t.out
  n=$(sed -n 's/.*computing over \([0-9]*\) chunks.*/\1/p' "$log" | tail -n 1)
  [ "${n:-$chunks}" -lt $chunks ] || fail "$log: the second run did not resume (computing over ${n:-?} chunks)"
  if [ $t -lt 2 ]; then
    stop=$(grep -o "stopped by signal 15 after [0-9]* chunks" "$log") || fail "$log: no SIGTERM stop after a save"
  else
    stop="killed (SIGKILL)"
  fi
  echo "task $t: $stop, resumed over $n chunks"
done

# The merged file equals the single run: chunk counts and token counts exact, sums within 1e-6.
python3 - imatrix.gguf single.gguf $(( tasks * chunks )) <<'EOF'
import math, struct, sys
from array import array

def read_gguf(path):
    """The tensors (f32 only) and scalar metadata of a GGUF file."""
    b = open(path, "rb").read()
    pos = 0
    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, b, pos); pos += struct.calcsize("<" + fmt)
        return v[0]
    def string():
        nonlocal pos
        n = take("Q"); s = b[pos:pos + n].decode(); pos += n
        return s
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    def value(t):
        if t == 8: return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])
    assert b[:4] == b"GGUF", path
    pos = 4; take("I")
    n_tensors, n_kv = take("Q"), take("Q")
    kv = {}
    for _ in range(n_kv):
        k = string(); kv[k] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string(); dims = [take("Q") for _ in range(take("I"))]
        typ, off = take("I"), take("Q")
        infos.append((name, dims, typ, off))
    align = kv.get("general.alignment", 32)
    base = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, typ, off in infos:
        assert typ == 0, f"{path}: {name} is not f32"
        a = array("f"); a.frombytes(b[base + off:base + off + 4 * math.prod(dims)])
        tensors[name] = a
    return kv, tensors

(mkv, m), (skv, s) = read_gguf(sys.argv[1]), read_gguf(sys.argv[2])
want = int(sys.argv[3])
assert mkv["imatrix.chunk_count"] == skv["imatrix.chunk_count"] == want, \
    (mkv["imatrix.chunk_count"], skv["imatrix.chunk_count"], want)
assert mkv["imatrix.chunk_size"] == skv["imatrix.chunk_size"] == 512
assert sorted(m) == sorted(s), "different tensors"
worst = 0.0
for name in sorted(s):
    if name.endswith(".counts"):
        assert list(m[name]) == list(s[name]), f"{name}: token counts differ: {list(m[name])} vs {list(s[name])}"
    else:
        num = sum((x - y) ** 2 for x, y in zip(m[name], s[name]))
        den = sum(y * y for y in s[name])
        rel = math.sqrt(num / den) if den else math.sqrt(num)
        assert rel < 1e-6, f"{name}: sums differ by {rel:.3g} relative (L2), above 1e-6"
        worst = max(worst, rel)
print(f"merged == single run: {want} chunks, {len(s) // 2} weights, token counts exact, "
      f"sums within {worst:.3g} relative (L2; bound 1e-6)")
EOF
echo "slurm recipe: OK ($SECONDS s)"
