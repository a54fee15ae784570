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
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
fi

# 2. Munge (authentication between the Slurm parts): a key, and munged unless one already answers.
STARTED_MUNGE=""
if ! munge -n </dev/null | unmunge >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
  STARTED_MUNGE=1
fi

# 3. A minimal cluster: one node with 2 CPUs, one default partition, no cgroups and no accounting
#    (submitit's sacct calls then fail harmlessly; it sees a job finish by its result file).
stop_slurm() {   # the daemons started by this script (or a previous run of it), by their pid files
  for pidfile in "$STATE"/slurmd.pid "$STATE"/slurmctld.pid; do
    if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    rm -f "$pidfile"
  done
  if [ -n "$STARTED_MUNGE" ] && [ -s /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" || true; fi
}
stop_slurm && sleep 1
trap stop_slurm EXIT
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
compare_with_local slurm
