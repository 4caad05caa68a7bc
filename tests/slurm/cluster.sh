#!/bin/bash
# A single-node Slurm on this machine, loopback only, for the sweep's array test:
#   cluster.sh start DIR   writes DIR/slurm.conf, starts munged, slurmctld and slurmd, and
#                          waits until the node takes jobs (prints the SLURM_CONF to use)
#   cluster.sh stop DIR    stops the three daemons started for DIR
# Needs Debian's slurm-wlm and munge, and root (slurmd runs jobs as their submitter).
set -euo pipefail
action=$1
dir=$(realpath -m "$2")
host=$(hostname -s)

stop() {
  for pid in slurmd slurmctld munged; do
    [ -f "$dir/$pid.pid" ] && kill "$(cat "$dir/$pid.pid")" 2>/dev/null || true
  done
}

start() {
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  chmod 700 "$dir/munge"
  key="$dir/munge/munge.key"
  [ -f "$key" ] || { head -c 1024 /dev/urandom > "$key"; chmod 400 "$key"; }
  munged --force --socket="$dir/munge/socket" --key-file="$key" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
  cpus=$(nproc)
  cat > "$dir/slurm.conf" <<CONF
ClusterName=relatent-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -i
  slurmd
  for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
      echo "SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 1
  done
  echo "the Slurm node did not come up; logs in $dir" >&2
  sinfo >&2 || true
  tail -5 "$dir"/*.log >&2 || true
  stop
  return 1
}

case $action in
  start) start ;;
  stop) stop ;;
  *) echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
