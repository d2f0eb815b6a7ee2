#!/usr/bin/env bash
# Start a two-node, loopback-only SLURM test cluster (Debian's slurmctld/slurmd/munge).
# The nodes n1 and n2 are two slurmd on this machine (`slurmd -N`), both at 127.0.0.1, each with
# its own port (6818, 6819), spool directory and log: multi-node jobs (`--nodes=2`) and their
# rendezvous run as on a real cluster, on one machine's cores.
#   tests/slurm/start.sh [DIR]     DIR defaults to $INFSCALE_SLURM_DIR or /tmp/infscale-slurm
# Installs the packages with apt when missing (root only), writes DIR/slurm.conf (nothing outside
# DIR is configured), starts munged (unless one already runs), slurmctld and slurmd, and records
# the PIDs it started in DIR/*.pid for stop.sh. Prints `export SLURM_CONF=DIR/slurm.conf`.
# No slurmdbd (it always binds 0.0.0.0): sacct -c reads the jobcomp file instead.
set -euo pipefail
DIR=$(realpath -m "${1:-${INFSCALE_SLURM_DIR:-/tmp/infscale-slurm}}")
mkdir -p "$DIR"/state "$DIR"/spool/n1 "$DIR"/spool/n2 "$DIR"/log

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "start.sh: SLURM is not installed and cannot be (needs root and apt-get)" >&2
        exit 3
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
        >"$DIR/log/apt.log" 2>&1 \
    || { apt-get update -qq >>"$DIR/log/apt.log" 2>&1 &&
         apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
             >>"$DIR/log/apt.log" 2>&1; } \
    || { echo "start.sh: apt-get install failed, see $DIR/log/apt.log" >&2; exit 3; }
fi

# The machine's CPUs as this process may use them, not as OMP_NUM_THREADS would have it (nproc
# reads it, and a caller's latency setting may have set it).
CPUS=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
cat >"$DIR/slurm.conf" <<CONF
# Written by tests/slurm/start.sh: two nodes on this machine, loopback only, no accounting daemon.
ClusterName=infscale-test
SlurmctldHost=localhost(127.0.0.1)
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmctldPort=6817
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
MinJobAge=600
KillWait=10
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.daemon.pid
SlurmdPidFile=$DIR/slurmd.%n.daemon.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.%n.log
# Each node offers all of this machine's cores: jobs are tiny, and a two-node job needs both.
NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 Port=6818 CPUs=$CPUS RealMemory=$((CPUS * 2000)) State=UNKNOWN
NodeName=n2 NodeHostname=localhost NodeAddr=127.0.0.1 Port=6819 CPUs=$CPUS RealMemory=$((CPUS * 2000)) State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=500
CONF
export SLURM_CONF="$DIR/slurm.conf"

# Inside a job, the executor plugin deletes every SLURM_* variable (SLURM_CONF too) before it
# calls srun, so the job steps need the config at the default path. Link it there only when
# nothing is there yet (or a link of ours is); stop.sh removes the link.
ETC=/etc/slurm/slurm.conf
if [ -L "$ETC" ] && [ "$(readlink "$ETC")" = "$SLURM_CONF" ]; then
    :
elif [ -e "$ETC" ] || [ -L "$ETC" ]; then
    echo "start.sh: $ETC exists; jobs would read it instead of $SLURM_CONF, so not starting" >&2
    exit 5
else
    mkdir -p /etc/slurm
    ln -s "$SLURM_CONF" "$ETC"
    echo "$ETC" >"$DIR/etc-link"
fi

running() { # running NAME PIDFILE: the PID in PIDFILE is alive and is NAME
    [ -s "$2" ] && [ "$(ps -o comm= -p "$(cat "$2")" 2>/dev/null)" = "$1" ]
}

# munged: refuses to run as root; reuse one that already runs (then stop.sh leaves it alone).
if ! running munged "$DIR/munged.pid" && ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    su -s /bin/sh munge -c "munged --pid-file=/run/munge/infscale-munged.pid"
    for _ in $(seq 50); do [ -s /run/munge/infscale-munged.pid ] && break; sleep 0.1; done
    cp /run/munge/infscale-munged.pid "$DIR/munged.pid"
fi

if ! running slurmctld "$DIR/slurmctld.pid"; then
    slurmctld -i
    for _ in $(seq 50); do [ -s "$DIR/slurmctld.daemon.pid" ] && break; sleep 0.1; done
    cp "$DIR/slurmctld.daemon.pid" "$DIR/slurmctld.pid"
fi
for node in n1 n2; do
    if ! running slurmd "$DIR/slurmd-$node.pid"; then
        slurmd -N "$node"
        for _ in $(seq 50); do [ -s "$DIR/slurmd.$node.daemon.pid" ] && break; sleep 0.1; done
        cp "$DIR/slurmd.$node.daemon.pid" "$DIR/slurmd-$node.pid"
    fi
done

# Ready when both nodes accept work.
ready() { [ "$(sinfo -h -N -o %t 2>/dev/null | grep -cE '^(idle|mix|alloc)')" = 2 ]; }
for _ in $(seq 100); do ready && break; sleep 0.2; done
if ! ready; then
    echo "start.sh: nodes not ready ($(sinfo -h -N -o '%N %t' 2>&1 | tr '\n' ' ')), see $DIR/log" >&2
    exit 4
fi
echo "export SLURM_CONF=$SLURM_CONF"
