#!/usr/bin/env bash
# mpi_overhead.sh: the cost of one message on MPI beside the other transports
# (issue 15; P6 across a network). bench/overhead cannot host MPI: its pools
# on the socket and shm transports fork, and a process that has called
# MPI_Init must not (docs/mpi.md), so this is a run of its own. It runs the
# same scenario, scenarios/overhead.lua (every API, n trivial tasks), through
# the same harness on four media, so that every figure means the same thing:
#
#   socket    the engine's socket transport (a shared socket, a pipe per worker)
#   shm       the shared-memory transport (rings, futex wake-ups)
#   mpi-sm    MPI ranks over Open MPI's shared memory (--mca btl self,vader)
#   mpi-tcp   MPI ranks over TCP loopback (--mca btl tcp,self): every message
#             through the network stack, a network's costs without its wire
#
# and prints microseconds per task for each API, then the floors: one MPI
# round trip (the best of 16, measured at the job's start by the clock
# exchange) on each MPI medium. Figures, not a test: they vary with the load;
# the command and the load average are printed with them.
#
#   bench/mpi_overhead.sh [-n TASKS] [-w WORKERS]     (defaults 2000 and 4)
#   POOLBENCH=build/poolbench, MPIRUN=mpirun

set -u
N=2000
W=4
while getopts "n:w:h" c; do
    case $c in
    n) N=$OPTARG ;;
    w) W=$OPTARG ;;
    *) echo "usage: bench/mpi_overhead.sh [-n TASKS] [-w WORKERS]"; exit 2 ;;
    esac
done
PB=${POOLBENCH:-build/poolbench}
MPIRUN=${MPIRUN:-mpirun}
command -v "$MPIRUN" >/dev/null || { echo "mpi_overhead: $MPIRUN is missing (make deps)"; exit 2; }
command -v jq >/dev/null || { echo "mpi_overhead: jq is missing (make deps)"; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ARGS=(run scenarios/overhead.lua --set "n=$N" --set "workers=$W" --repeat 1)
echo "# $PB ${ARGS[*]} --transport T; MPI: $MPIRUN --oversubscribe -n $((W + 1)) --mca btl B"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
rc=0
for t in socket shm; do
    timeout 600 "$PB" "${ARGS[@]}" --transport "$t" --json "$tmp/$t.json" >"$tmp/$t.out" 2>&1 || true
done
for m in sm:self,vader tcp:tcp,self; do
    name=mpi-${m%%:*}
    timeout 600 "$MPIRUN" --timeout 580 --oversubscribe -n $((W + 1)) --mca btl "${m#*:}" \
        "$PB" "${ARGS[@]}" --transport mpi --json "$tmp/$name.json" >"$tmp/$name.out" 2>&1 || true
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

MEDIA="socket shm mpi-sm mpi-tcp"
printf "%-18s" "us per task"
for m in $MEDIA; do printf " %10s" "$m"; done
echo
# The scenario's _shm variants pin the shm transport (issue 14's three-way
# P6); here each column is one medium already, so they are left out.
labels=$(jq -r '.results[].label | select(endswith("_shm") | not)' "$tmp/socket.json" 2>/dev/null)
[ -n "$labels" ] || { echo "mpi_overhead: the socket run gave no results:"; cat "$tmp/socket.out"; exit 1; }
for l in $labels; do
    printf "%-18s" "$l"
    for m in $MEDIA; do
        v=$(jq -r --arg l "$l" '.results[] | select(.label == $l and .errors == 0 and .results > 0)
            | .wall_s / .tasks_total * 1e6' "$tmp/$m.json" 2>/dev/null)
        if [ -n "$v" ]; then printf " %10.2f" "$v"; else printf " %10s" "-"; rc=1; fi
    done
    echo
done
# The floors: each worker rank's best round trip with rank 0 (its clock
# line says "within X us", half of it).
for m in mpi-sm mpi-tcp; do
    rtt=$(sed -n 's/.*within \([0-9.]*\) us: half the best.*/\1/p' "$tmp/$m.out" |
        awk '{s += 2 * $1; n++} END {if (n) printf "%.1f", s / n}')
    echo "floor $m: one MPI round trip between rank 0 and a worker rank ${rtt:-?} us (mean over the ranks of the best of 16)"
done
[ "$rc" -eq 0 ] || echo "mpi_overhead: some runs failed (-): their output is in the runs above"
exit "$rc"
