#!/usr/bin/env bash
# Stop the test cluster started by start.sh in DIR: cancel its jobs, then signal only the daemons
# whose PIDs start.sh recorded (and only if the process still has that name).
#   tests/slurm/stop.sh [DIR]
set -uo pipefail
DIR=$(realpath -m "${1:-${INFSCALE_SLURM_DIR:-/tmp/infscale-slurm}}")
export SLURM_CONF="$DIR/slurm.conf"
[ -f "$SLURM_CONF" ] && timeout 10 scancel --full --user="$(id -un)" 2>/dev/null
for pidfile in "$DIR"/slurmd-n1.pid "$DIR"/slurmd-n2.pid "$DIR"/slurmd.pid "$DIR"/slurmctld.pid \
               "$DIR"/munged.pid; do
    name=$(basename "$pidfile" .pid)
    name=${name%%-*}
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$name" ]; then
        kill "$pid"
        for _ in $(seq 50); do
            [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = "" ] && break
            [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = "Z" ] && break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
done
# The /etc/slurm/slurm.conf link start.sh made, if it is still the link to this cluster's config.
if [ -s "$DIR/etc-link" ]; then
    link=$(cat "$DIR/etc-link")
    [ -L "$link" ] && [ "$(readlink "$link")" = "$SLURM_CONF" ] && rm -f "$link"
    rm -f "$DIR/etc-link"
fi
exit 0
