#!/usr/bin/env bash
# slurm_test.sh — `sd batch --shard auto` under a real Slurm: a single-node cluster (munged, slurmctld, slurmd on
# 127.0.0.1, all of it in a temp folder with its own munge socket and ports, stopped at the end even on failure)
# runs the demo job file as a 4-task array; `sd batch merge` must find every image exactly once, byte for byte the
# images of a single-process run. Then one task is cancelled mid-run (scancel) and another requeued while it runs
# (scontrol requeue): the merge names the cancelled shard, a requeue of it completes the run, nothing is rendered twice.
# Recipe and pitfalls: the team's slurm-single-node notes (Slurm 22.05, no systemd, no cgroups, no database).
# Usage: tests/slurm_test.sh [path/to/sd]; prints "slurm: N passed, M failed". Needs root (SlurmUser=root) and Debian's
# slurmctld slurmd slurm-client munge (tools/install_deps.sh); without those binaries it says SKIP and why.
# SLURM_TEST_KEEP=1 keeps the temp folder (config, daemon logs, task logs, images) for a look after a failure.
set -u
SD=$(realpath "${1:-./sd}")
label=${TEST_LABEL:-slurm}
pass=0; fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
finish() { echo "$label: $pass passed, $fail failed"; [ $fail -eq 0 ]; exit $?; }

export PATH=$PATH:/usr/sbin   # the daemons live there, outside a non-root PATH
missing=""
for b in munged munge unmunge slurmctld slurmd sbatch squeue scancel scontrol sinfo; do command -v $b >/dev/null || missing+=" $b"; done
if [ -n "$missing" ]; then
    echo "SKIP slurm: not installed:$missing (tools/install_deps.sh installs slurmctld slurmd slurm-client munge)"
    finish
fi
if [ "$(id -u)" -ne 0 ]; then bad "root" "this test runs Slurm with SlurmUser=root and needs root"; finish; fi

D=$(mktemp -d "${TMPDIR:-/tmp}/sd-slurm.XXXXXX")
mkdir -p "$D/state" "$D/spool" "$D/log" "$D/munge"
export SLURM_CONF=$D/slurm.conf
# Teardown: cancel every job of this cluster and wait for them to go (a killed slurmd leaves slurmstepd behind),
# then stop the three daemons by the PIDs they wrote; only processes this test started are signalled.
teardown() {
    if [ -f "$D/slurmctld.pid" ]; then
        scancel --user=root 2>/dev/null
        for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
    fi
    for p in slurmd slurmctld munged; do [ -f "$D/$p.pid" ] && kill "$(cat "$D/$p.pid")" 2>/dev/null; done
    for p in slurmd slurmctld munged; do
        for _ in $(seq 30); do [ -f "$D/$p.pid" ] && kill -0 "$(cat "$D/$p.pid")" 2>/dev/null || break; sleep 0.1; done
        [ -f "$D/$p.pid" ] && kill -9 "$(cat "$D/$p.pid")" 2>/dev/null
    done
    if [ -n "${SLURM_TEST_KEEP:-}" ]; then echo "kept $D"; else rm -rf "$D"; fi
}
trap teardown EXIT
# dump LOG...: the last lines of the daemons' logs, for a failure's message
dump() { for f in "$@"; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done; }

# ---- the cluster: munged on a private socket with a fresh key, then slurmctld and slurmd on random ports ----
head -c 1024 /dev/urandom >"$D/munge/munge.key"; chmod 400 "$D/munge/munge.key"
chmod 700 "$D/munge"
munged --force --socket="$D/munge/sock" --key-file="$D/munge/munge.key" --pid-file="$D/munged.pid" \
    --log-file="$D/log/munged.log" --seed-file="$D/munge/seed" 2>"$D/log/munged.err"
if ! munge -S "$D/munge/sock" -n 2>/dev/null | unmunge -S "$D/munge/sock" >/dev/null 2>&1; then
    bad "munged" "does not start: $(cat "$D/log/munged.err")"; dump "$D/log/munged.log"; finish
fi
port=$((20000 + RANDOM % 20000))
cat >"$SLURM_CONF" <<EOF
ClusterName=sdtest
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
MinJobAge=30
KillWait=5
SchedulerParameters=batch_sched_delay=0
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF" 2>"$D/log/slurmctld.err" && slurmd -f "$SLURM_CONF" -N localhost 2>"$D/log/slurmd.err"
for _ in $(seq 100); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.1; done
if ! sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    bad "cluster" "the node is not idle after 10 s: $(sinfo -h 2>&1 | head -3)"
    dump "$D/log/slurmctld.err" "$D/log/slurmd.err" "$D/log/slurmctld.log" "$D/log/slurmd.log"; finish
fi
ok "single-node Slurm up ($(sinfo -V), port $port)"

# ---- a single-process run of the demo job file: the reference ----
JOBS=$(realpath samples/jobs/shapes.jsonl)
FLAGS=(--size 32x32 --steps 2 -q)   # the bundled demo model; small and few steps
"$SD" batch "$JOBS" -o "$D/single" "${FLAGS[@]}" 2>"$D/single.err" || { bad "single run" "$(cat "$D/single.err")"; finish; }
N=$(grep -c '' "$D/single/manifest.jsonl")
# same_images DIR: every image of the single run is in DIR with the same bytes (so the same pixels), nothing else
same_images() {
    cmp -s <(cd "$D/single" && find . -name '*.png' | sort | xargs sha256sum) <(cd "$1" && find . -name '*.png' | sort | xargs sha256sum)
}
# once DIR: the shard manifests of DIR hold exactly N lines, N different files (no image rendered twice)
once() {
    [ "$(cat "$1"/manifest.shard-*-of-4.jsonl | grep -c '')" -eq "$N" ] &&
    [ "$(cat "$1"/manifest.shard-*-of-4.jsonl | grep -o '"file":"[^"]*"' | sort -u | grep -c '')" -eq "$N" ]
}
# array_done JOBID: waits (at most 120 s) until no task of the array is left in the queue
array_done() { for _ in $(seq 600); do [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0; sleep 0.2; done; return 1; }

# ---- a 4-task array with --shard auto, then merge ----
# OMP_NUM_THREADS=1: two tasks share the node's 2 CPUs
TASK="OMP_NUM_THREADS=1 exec '$SD' batch '$JOBS' -o '$D/out' ${FLAGS[*]} --shard auto"
sbatch --wait --array=0-3 -o "$D/log/task-%a.out" -e "$D/log/task-%a.err" --wrap "$TASK" >"$D/sbatch.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && [ "$(ls "$D/out"/manifest.shard-*-of-4.jsonl 2>/dev/null | wc -l)" -eq 4 ]; then
    ok "sbatch --wait --array=0-3 ... --shard auto: 4 shard manifests"
else bad "array" "rc $rc: $(cat "$D/sbatch.out"; cat "$D"/log/task-*.err 2>/dev/null | head)"; fi
"$SD" batch merge "$D/out" "$JOBS" "${FLAGS[@]}" >"$D/merge.out" 2>"$D/merge.err"; rc=$?
if [ $rc -eq 0 ] && [ ! -s "$D/merge.err" ] && [ "$(grep -c '' "$D/out/merged.jsonl")" -eq "$N" ] && once "$D/out"; then
    ok "merge: all $N images, each exactly once"; else bad "merge" "rc $rc: $(cat "$D/merge.out" "$D/merge.err")"; fi
same_images "$D/out" && ok "the array's images are byte-identical to a single-process run" || bad "pixels" "differ from the single run"

# ---- cancel one task mid-run and requeue another while it runs; nothing rendered twice ----
# Tasks 0 and 1 stop themselves (SIGSTOP, the test hook) after their first image on their first run, so the
# scancel and the requeue land mid-run at a known point whatever the machine's speed.
# stopped JOBID TASK: that array task's sd process (found by the Slurm variables in its environment) is stopped
stopped() {
    local e
    for e in /proc/[0-9]*/environ; do
        [ "$(cat "${e%environ}comm" 2>/dev/null)" = sd ] || continue
        tr '\0' '\n' <"$e" 2>/dev/null | grep -qxF "SD_SLURM_TEST=$D" || continue
        tr '\0' '\n' <"$e" 2>/dev/null | grep -qx "SLURM_ARRAY_JOB_ID=$1" || continue
        tr '\0' '\n' <"$e" 2>/dev/null | grep -qx "SLURM_ARRAY_TASK_ID=$2" || continue
        [ "$(sed -E 's/^[0-9]+ \([^)]*\) (.).*/\1/' "${e%environ}stat" 2>/dev/null)" = T ] && return 0
    done
    return 1
}
# Job ids start at 1 in every test cluster: this run's tasks are told apart from another make test's (its own
# cluster, same ids) by a variable sbatch passes on (--export=ALL, Slurm's default).
export SD_SLURM_TEST="$D"
TASK="if [ \"\${SLURM_RESTART_COUNT:-0}\" = 0 ] && [ \$SLURM_ARRAY_TASK_ID -le 1 ]; then export SD_BATCH_TEST_KILL=stop-after:1; fi
OMP_NUM_THREADS=1 exec '$SD' batch '$JOBS' -o '$D/out2' ${FLAGS[*]} --shard auto"
# --open-mode=append: slurmstepd writes its "CANCELLED" line through a descriptor of its own, which in truncate
# mode starts at offset 0 and can overwrite what sd wrote
jid=$(sbatch --parsable --requeue --open-mode=append --array=0-3 -o "$D/log/c-%a.out" -e "$D/log/c-%a.err" --wrap "$TASK")
for _ in $(seq 1200); do stopped "$jid" 0 && stopped "$jid" 1 && break; sleep 0.1; done
if stopped "$jid" 0 && stopped "$jid" 1; then ok "tasks 0 and 1 are mid-run (one image each)"
else bad "mid-run" "tasks 0 and 1 did not stop after their first image: $(squeue -h -j "$jid"; cat "$D"/log/c-*.err)"; fi
scancel "${jid}_1"
scontrol requeue "${jid}_0" 2>"$D/requeue.err" || bad "requeue of a running task" "$(cat "$D/requeue.err")"
# the requeue is asynchronous and holds the task 120 s: wait for it to be pending again, then lift the hold.
# Not within the second of the requeue: slurmd refuses a launch whose credential is not newer (in whole seconds)
# than the revocation of the task's previous one ("Killing non-startable batch JobId=...: Job credential
# revoked"), and the task then ends without running: seen under load, as an image missing from shard 0.
for _ in $(seq 100); do squeue -h -t PD -j "${jid}_0" 2>/dev/null | grep -q . && break; sleep 0.1; done
sleep 2
scontrol update JobId="${jid}_0" StartTime=now
array_done "$jid" || bad "array 2" "still queued after 120 s: $(squeue -h)"
"$SD" batch merge "$D/out2" "$JOBS" "${FLAGS[@]}" >"$D/merge.out" 2>"$D/merge.err"; rc=$?
if [ $rc -eq 1 ] && grep -q "shard 1/4 must run again (--shard 1/4)" "$D/merge.err" && ! grep -q "shard [023]/4 must" "$D/merge.err" &&
   [ ! -e "$D/out2/merged.jsonl" ]; then ok "task 1 cancelled (scancel) after 1 image: merge exits 1 and names shard 1/4 alone"
else bad "merge after scancel" "rc $rc: $(cat "$D/merge.out" "$D/merge.err")"; fi
grep -q "^interrupted: 1 images rendered" "$D/log/c-1.err" && ok "the cancelled task stopped cleanly on SIGTERM" ||
    bad "scancel" "$(cat "$D/log/c-1.err")"
# the cancelled task, requeued: it renders what it had left
if scontrol requeue "${jid}_1" 2>"$D/requeue.err"; then
    for _ in $(seq 100); do squeue -h -t PD -j "${jid}_1" 2>/dev/null | grep -q . && break; sleep 0.1; done
    sleep 2   # as above: not within the second of the revocation
    scontrol update JobId="${jid}_1" StartTime=now
    array_done "$jid" || bad "requeued task 1" "still queued after 120 s"
    ok "the cancelled task requeued (scontrol requeue) and run again"
else
    bad "requeue of the cancelled task" "$(cat "$D/requeue.err")"
fi
"$SD" batch merge "$D/out2" "$JOBS" "${FLAGS[@]}" >"$D/merge.out" 2>"$D/merge.err"; rc=$?
if [ $rc -eq 0 ] && [ ! -s "$D/merge.err" ] && [ "$(grep -c '' "$D/out2/merged.jsonl")" -eq "$N" ] && once "$D/out2"; then
    ok "after the requeues the merge is complete: $N images, none rendered twice"
else bad "merge after requeue" "rc $rc: $(cat "$D/merge.out" "$D/merge.err"; cat "$D"/out2/manifest.shard-* | wc -l)"; fi
same_images "$D/out2" && ok "... byte-identical to a single-process run" || bad "pixels after requeue" "differ from the single run"
finish
