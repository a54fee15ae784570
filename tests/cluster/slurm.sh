#!/usr/bin/env bash
# Single-node Slurm on this machine (Debian packages, root, no systemd needed), then the small sweep
# through hydra-submitit-launcher, compared with the same sweep run locally.
source "$(dirname "$0")/common.sh"
BASE=$WORK/slurm
STATE=$WORK/slurm-daemons        # slurm.conf, state, spool, logs, pid files of the daemons we start
NODE=$(hostname -s)
export SLURM_CONF=$STATE/slurm.conf   # read by the daemons, sinfo/sbatch, and srun inside the jobs

# 1. Packages (once).
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sinfo >/dev/null \
   || ! command -v munged >/dev/null; then
  echo "installing slurmctld, slurmd, slurm-client and munge (log: $WORK/apt.log)"
  mkdir -p "$WORK"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      slurmctld slurmd slurm-client munge; } >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log"; exit 1; }
fi

# Daemons started by this script (or left by an earlier run of it): stopped by their pid files.
stop() {
  local pidfile pid
  for pidfile in "$@"; do
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    case $(cat "/proc/$pid/comm" 2>/dev/null) in slurm*|munged) ;; *) rm -f "$pidfile"; continue ;; esac
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}
stop_all() {
  # Jobs still in our private cluster (a sweep that failed or timed out) are cancelled first.
  if [ -s "$STATE/slurmctld.pid" ] && squeue -h -o %A 2>/dev/null | xargs -r scancel; then
    for _ in $(seq 30); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 1; done
  fi
  stop "$STATE/slurmd.pid" "$STATE/slurmctld.pid" ${STARTED_MUNGE:+/run/munge/munged.pid}
}
stop_all                     # whatever an interrupted earlier run left
trap stop_all EXIT

# 2. Munge (authentication between the Slurm parts): a key, and munged unless one already answers.
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
  STARTED_MUNGE=1
fi

# 3. A minimal cluster: one node with 2 CPUs, one default partition, no cgroups and no accounting
#    (submitit's sacct calls then fail harmlessly; it sees a job finish by its result file).
rm -rf "$STATE" && mkdir -p "$STATE/ctld" "$STATE/spool"
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
cat >"$SLURM_CONF" <<CONF
ClusterName=dagger-test
SlurmctldHost=$NODE
SlurmUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=2 RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

# 4. Wait for the node to be idle.
for _ in $(seq 60); do
  [ "$(sinfo -h -N -o %t 2>/dev/null)" = idle ] && break
  sleep 1
done
sinfo
[ "$(sinfo -h -N -o %t)" = idle ] || { echo "slurm node not idle"; tail -n 20 "$STATE"/*.log; exit 1; }

# 5. The sweep through Slurm, then locally, and the comparison.
rm -rf "$BASE" && mkdir -p "$BASE"
sweep slurm "$BASE/slurm" hydra/launcher=slurm
# The jobs really ran as Slurm jobs: one submitit result file per job.
[ "$(ls "$BASE"/slurm/.submitit/*/*_result.pkl 2>/dev/null | wc -l)" = 2 ] || { echo "the sweep did not run on Slurm"; exit 1; }
compare_with_local slurm
