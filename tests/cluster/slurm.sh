#!/usr/bin/env bash
# A single-node SLURM on localhost for testing the workflow's SLURM profile (tests/cluster/).
#
#   bash tests/cluster/slurm.sh start    install (Debian packages) if needed, configure, start, wait for idle
#   bash tests/cluster/slurm.sh status   exit 0 when the node answers and is idle or busy, else 1
#   bash tests/cluster/slurm.sh stop     cancel this cluster's jobs, stop exactly the daemons `start` started
#
# Needs root on Debian 12 (or similar) without systemd: the daemons run as plain background
# processes. No accounting (no slurmdbd): the profile polls job states with squeue, which needs
# MinJobAge >= 3 x slurm-init-seconds-before-status-checks (see profiles/slurm/config.yaml).
# Both commands are idempotent: `start` on a running cluster checks it and returns, `stop` on a
# stopped one does nothing. Daemons this script did not start (e.g. a munged that was already
# running) are left alone. It refuses to overwrite a /etc/slurm/slurm.conf it did not write.
#
# Settings (environment): RKN_SLURM_PARTITION (partition name, default "cpu"),
# RKN_SLURM_MIN_JOB_AGE (seconds finished jobs stay visible to squeue, default 600).
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

STATE=/run/rkn-slurm                  # pid files of the daemons this script started
SPOOL=/var/spool/rkn-slurm
LOGDIR=/var/log/rkn-slurm
CONF=/etc/slurm/slurm.conf
MARKER="# written by tests/cluster/slurm.sh (rkn benchmark test cluster)"
PARTITION=${RKN_SLURM_PARTITION:-cpu}
MIN_JOB_AGE=${RKN_SLURM_MIN_JOB_AGE:-600}
PACKAGES=(slurmctld slurmd slurm-client munge)

log() { echo "slurm.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A pid file whose process exists and is not a zombie.
alive() {
    local pidfile=$1 pid st
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    st=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

# Stop the process of a pid file: SIGTERM, wait up to 20 s, then SIGKILL; remove the pid file.
stop_pidfile() {
    local pidfile=$1 name=$2 pid
    if alive "$pidfile"; then
        pid=$(cat "$pidfile")
        log "stopping $name (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 40); do
            alive "$pidfile" || break
            sleep 0.5
        done
        if alive "$pidfile"; then
            log "$name did not stop after 20 s: SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

install_packages() {
    if dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
        return 0
    fi
    command -v apt-get >/dev/null || die "SLURM is not installed and apt-get is not available: install ${PACKAGES[*]}"
    [ "$(id -u)" = 0 ] || die "SLURM is not installed; installing it needs root"
    log "installing ${PACKAGES[*]} (apt-get)"
    timeout 300 apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" \
        >"$LOGDIR/apt.log" 2>&1 || { tail -20 "$LOGDIR/apt.log" >&2; die "apt-get install ${PACKAGES[*]} failed"; }
}

write_config() {
    if [ -e "$CONF" ] && ! grep -qxF "$MARKER" "$CONF"; then
        die "$CONF exists and was not written by this script: refusing to overwrite a real cluster's configuration"
    fi
    local cpus mem
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF.tmp" <<EOF
$MARKER
ClusterName=rkn-ci
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue this long; the plugin needs >= 3 x its first status delay.
MinJobAge=$MIN_JOB_AGE
# A job past its time limit gets SIGTERM, then SIGKILL after KillWait seconds.
KillWait=5
OverTimeLimit=0
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

node_ready() {
    local state
    state=$(timeout 10 sinfo -h -n localhost -o %T 2>/dev/null | head -1) || return 1
    case "$state" in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac
}

start() {
    mkdir -p "$STATE" "$SPOOL/ctld" "$SPOOL/d" "$LOGDIR"
    install_packages
    if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid" && node_ready; then
        log "already running: $(sinfo -h -o '%P %a %D %T %N' | head -1)"
        return 0
    fi
    write_config
    if ! timeout 10 bash -c 'munge -n | unmunge' >/dev/null 2>&1; then
        [ -s /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing (reinstall munge)"
        install -d -o munge -g munge -m 0755 /run/munge
        log "starting munged"
        runuser -u munge -- munged
        # munged daemonises and writes its own pid file; remember that this script started it.
        for _ in $(seq 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.25; done
        cp /run/munge/munged.pid "$STATE/munged.pid"
        timeout 10 bash -c 'munge -n | unmunge' >/dev/null 2>&1 || die "munge does not work (see /var/log/munge/munged.log)"
    fi
    if ! alive "$STATE/slurmctld.pid"; then
        log "starting slurmctld"
        slurmctld || die "slurmctld did not start (see $LOGDIR/slurmctld.log)"
    fi
    if ! alive "$STATE/slurmd.pid"; then
        log "starting slurmd"
        slurmd -N localhost || die "slurmd did not start (see $LOGDIR/slurmd.log)"
    fi
    for _ in $(seq 120); do
        node_ready && break
        sleep 0.5
    done
    node_ready || { tail -5 "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" >&2 || true; die "the node did not become idle within 60 s"; }
    # Smoke test: a job really runs (catches a slurmd that is registered but dead).
    timeout 60 srun -p "$PARTITION" -t 1 -N 1 -n 1 true || die "srun smoke test failed (see $LOGDIR/)"
    log "up: $(sinfo -h -o '%P %a %D %T %N' | head -1)"
}

stop() {
    if alive "$STATE/slurmctld.pid"; then
        # Cancel whatever is still queued or running on this test cluster, so no job outlives slurmd.
        timeout 10 scancel --partition "$PARTITION" 2>/dev/null || true
        for _ in $(seq 40); do
            [ -z "$(timeout 5 squeue -h -t PD,R,CG,S 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    stop_pidfile "$STATE/slurmd.pid" slurmd
    stop_pidfile "$STATE/slurmctld.pid" slurmctld
    stop_pidfile "$STATE/munged.pid" munged
    log "stopped"
}

status() {
    if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid" && node_ready; then
        sinfo
        return 0
    fi
    log "not running"
    return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
