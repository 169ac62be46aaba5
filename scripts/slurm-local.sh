#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for `shiftkit sweep run --slurm` and its CI test.
#   scripts/slurm-local.sh start   install slurmctld, slurmd and munge when missing, write
#                                  /etc/slurm/slurm.conf for this host, start the daemons, wait
#                                  until the node is idle
#   scripts/slurm-local.sh stop    stop the daemons this script started
# Both are idempotent. Needs root (or sudo). No systemd: the daemons are started directly,
# with proctrack/linuxproc, task/none and no accounting, so no cgroups and no slurmdbd.
# Daemon liveness is checked through munge/scontrol or the PID files, never with pgrep: daemonizing
# leaves zombies with the daemons' names for a few seconds on machines whose PID 1 reaps late.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "error: scripts/slurm-local.sh needs root (or sudo) to install and start Slurm" >&2
    exit 1
  fi
fi

# Whether the process in PID file $1 is alive (a zombie counts as gone).
alive() {
  local pid s
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] || return 1
  s=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "${s:0:1}" != Z ]
}

install_packages() {
  local need=()
  command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
  command -v slurmd    >/dev/null 2>&1 || need+=(slurmd)
  command -v sbatch    >/dev/null 2>&1 || need+=(slurm-client)
  command -v munged    >/dev/null 2>&1 || need+=(munge)
  [ ${#need[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing ${need[*]} and apt-get is not available: install Slurm and munge by hand" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The postinst scripts cannot start services without an init system ("policy-rc.d denied"):
  # expected, the daemons are started below.
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

write_conf() {
  local node nodeline
  node=$(hostname -s)
  nodeline=$(slurmd -C | head -1)   # CPUs and RealMemory exactly as slurmd sees them
  $sudo mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  $sudo tee /etc/slurm/slurm.conf >/dev/null <<CONF
# Written by shiftkit scripts/slurm-local.sh: one node, no accounting, no cgroups.
ClusterName=shiftkit-local
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
${nodeline} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  install_packages
  # munge: the Debian postinst creates the key; this covers a machine where it is missing.
  [ -s /etc/munge/munge.key ] || $sudo mungekey --create --keyfile=/etc/munge/munge.key
  $sudo chown munge:munge /etc/munge/munge.key
  $sudo chmod 0400 /etc/munge/munge.key
  $sudo install -d -o munge -g munge -m 0755 /run/munge   # systemd's RuntimeDirectory otherwise
  munge -n >/dev/null 2>&1 || $sudo runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null 2>&1 || { echo "error: munged did not start" >&2; exit 1; }

  [ -f /etc/slurm/slurm.conf ] && grep -q 'scripts/slurm-local.sh' /etc/slurm/slurm.conf || write_conf
  local node st end
  node=$(hostname -s)
  timeout 5 scontrol ping 2>/dev/null | grep -q UP || $sudo /usr/sbin/slurmctld
  alive /run/slurmd.pid || $sudo /usr/sbin/slurmd
  st=none; end=$((SECONDS + 60))   # bounded by wall time: sinfo retries for seconds when down
  while [ $SECONDS -lt $end ]; do
    st=$(timeout 5 sinfo -h -n "$node" -o '%t' 2>/dev/null || true)
    [ "$st" = idle ] && break
    sleep 0.5
  done
  if [ "$st" != idle ]; then
    echo "error: the Slurm node is '$st', not idle, after 60 s; logs:" >&2
    tail -n 30 /var/log/slurm/*.log >&2 || true
    exit 1
  fi
  echo "slurm: node $node idle (partition debug); stop with scripts/slurm-local.sh stop"
}

stop() {
  local pids="" f
  for f in /run/slurmctld.pid /run/slurmd.pid /run/munge/munged.pid; do
    alive "$f" && pids="$pids $(cat "$f")"
  done
  if alive /run/slurmctld.pid; then timeout 10 scontrol shutdown >/dev/null 2>&1 || true; fi
  # scontrol shutdown stops slurmd too; without slurmctld, stop slurmd by its PID.
  sleep 0.2
  alive /run/slurmd.pid && $sudo kill "$(cat /run/slurmd.pid)" 2>/dev/null || true
  alive /run/munge/munged.pid && $sudo kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
  local p s
  for p in $pids; do
    for _ in $(seq 60); do
      s=$(ps -o stat= -p "$p" 2>/dev/null || true)
      { [ -z "$s" ] || [ "${s:0:1}" = Z ]; } && break
      sleep 0.25
    done
  done
  echo "slurm: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: scripts/slurm-local.sh start|stop" >&2; exit 2 ;;
esac
