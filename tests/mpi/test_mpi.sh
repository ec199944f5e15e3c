#!/usr/bin/env bash
# test_mpi.sh: poolbench on an MPI job (issue 15, docs/mpi.md), on this one
# machine: mpirun with 3 to 5 ranks over shared memory (--mca btl self,vader)
# and over TCP loopback (--mca btl tcp,self: every message through the
# network stack).
#
#   tests/mpi/test_mpi.sh [--full] [POOLBENCH]    from the repo root
#
# Quick (make check runs it, a few seconds): P3 (get_placement) over shared
# memory and P7 (chunk_skew) over TCP pass their checks, with the report's
# structure (one worker per rank, each on this host, callbacks in rank 0);
# a pool's initializer (initargs, a failure: scenarios/rank_init.lua);
# worker clocks 5 s off corrected in the trace; the refusals (too few ranks, maxtasksperchild,
# a start method) say why; a worker rank that
# dies ends the job, bounded, and rank 0 says what that means; nothing is
# left behind. --full (make mpi-check): the checks of P1 (serialized_get),
# P3, P6 (overhead) and P7 on both media, the initializer once per rank
# and per pool (worker_init), and bench/mpi_overhead.sh's table.
#
# Every mpirun has --timeout (and timeout(1) around it): nothing hangs.
# Tests assert structure and the scenarios' own checks (ratios with their
# margins), never a speed. Without mpirun the script says SKIP and passes:
# make deps installs Open MPI.

set -u

FULL=
if [ "${1:-}" = "--full" ]; then
    FULL=1
    shift
fi
PB=${1:-build/poolbench}
. "$(dirname "$0")/../lib.sh"

if ! command -v mpirun >/dev/null; then
    echo "test_mpi: SKIP: mpirun is missing (make deps installs openmpi-bin)"
    finish
    exit
fi
# Under AddressSanitizer (make sanitize) LeakSanitizer is off for these
# runs: Open MPI leaves its own allocations at exit, some in components it
# has unloaded (dlclose), which no suppression can name. ASan's memory
# errors and UBSan stay on, and the engine's leaks are the engine tests'.
# Under ThreadSanitizer (make tsan), tsan.supp names what TSan reports inside
# Open MPI itself.
if [ -n "${SANITIZED:-}" ]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
    export TSAN_OPTIONS="${TSAN_OPTIONS:-} suppressions=$(cd "$(dirname "$0")" && pwd)/tsan.supp"
fi
# mpirun refuses root without these (Open MPI's rule); harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
HOST=$(hostname)

# mrun NP BTL ARGS...: poolbench on NP ranks over BTL (more ranks than cores:
# --oversubscribe); stdout, stderr and the status as run() keeps them.
mrun() {
    local np=$1 btl=$2
    shift 2
    timeout 120 mpirun --timeout 100 --oversubscribe -n "$np" --mca btl "$btl" \
        "$PB" "$@" --transport mpi >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

all_checks_pass() { run_ok && out_matches '^checks: ([0-9]+) of \1 passed$'; }

# The JSON's workers: each on this host, as many distinct pids as `want`.
workers_on_host() {
    local want=$1 n
    n=$(jq --arg h "$HOST" '[.results[].per_worker[] | select(.host == $h) | .pid] | unique | length' \
        "$tmp/r.json") || return 1
    [ "$n" -eq "$want" ] && [ "$(jq '[.results[].per_worker[] | select(.host == null)] | length' \
        "$tmp/r.json")" -eq 0 ]
}

# No rank of ours left: mpirun's children die with the job.
no_ranks_left() { [ -z "$(pids_here "$PB run .*--transport mpi")" ]; }

# ---- quick ---------------------------------------------------------------------------

# --repeat 3: the checks judge the median, which a preemption on a loaded
# machine (5 ranks on 2 cores, beside other test suites) does not move; and
# tasks of 50 ms rather than 20, so that a round trip delayed by the load
# stays inside the models' margins (1.5x + 50 ms; at a load average of 10
# the 20 ms runs missed them, once in a few).
mrun 5 self,vader run scenarios/get_placement.lua --quick --repeat 3 --set task_ms=50 \
    --json "$tmp/r.json"
check "P3 over shared memory, 5 ranks: the checks pass" all_checks_pass
check "P3: each rank says its host, pid and clock offset" \
    out_matches '^transport: mpi, 5 ranks: rank 0 \(the parent\) on ' \
    '^  rank 4 = worker slot 3 on .*, pid [0-9]+, clock [-+][0-9.]+ us from rank 0'"'"'s'
check "P3: the report names 4 workers, each on this host" workers_on_host 4

mrun 4 tcp,self run scenarios/chunk_skew.lua --quick --repeat 3 --set task_ms=50
check "P7 over TCP, 4 ranks: the checks pass (a chunk of 14 still idles the others)" \
    all_checks_pass
check "P7: [14, 2] on 2 and on 3 workers" \
    out_matches 'PASS  map_async: the per-worker counts are \[14, 2\]' \
    'PASS  map_async_w3: the per-worker counts are \[14, 2\]'

mrun 3 self,vader run scenarios/get_placement.lua --quick
check "a pool of 4 workers on 3 ranks is refused, naming the -n to ask for" \
    out_has "a pool of 4 workers needs 5 MPI ranks (rank 0 and one per worker); this job has 3: run mpirun -n 5"

mrun 5 self,vader run scenarios/worker_init.lua --quick --impl async_get_after_mt
check "maxtasksperchild is refused with the reason" \
    out_has "maxtasksperchild cannot mean anything on the mpi transport: a worker is not replaced"

mrun 5 self,vader run scenarios/get_placement.lua --quick --start-method fork
check "start method fork is refused on MPI, naming what works" \
    err_has "start method fork does not work with the mpi transport, whose workers are not forked (spawn works with socket; fork and forkserver with socket and shm; mpi with forkserver only"

# One machine has one clock; POOLBENCH_MPI_SKEW_US makes every worker rank
# read its clock 5 s ahead. The offset measured at the start must say so,
# and the trace must still be on rank 0's clock: each task starts after
# its submit and ends before its result is read (5 s off otherwise). Both
# are judged against the error bound each rank reports with its offset
# (half its best round trip): the bound is the measurement's own, so a
# busy machine widens it instead of failing the check (at a load of 2.7 on
# two cores an offset came out 1.4 ms off, inside its bound of 1.8 ms).
skew_bounds() { # prints each worker rank's |offset - 5 s| and bound, us
    sed -n 's/^  rank [0-9]* = worker slot .* clock \([-+][0-9.]*\) us from rank 0.s (within \([0-9.]*\) us.*/\1 \2/p' \
        "$tmp/out" | awk '{ d = $1 - 5000000; print (d < 0 ? -d : d), $2 }'
}
skew_measured() { # 4 ranks, each 5 s ahead within its bound (a bound far below 5 s)
    skew_bounds | awk '{ n++; if ($1 > $2 + 0.1 || $2 > 500000) bad++ }
                       END { exit !(n == 4 && bad == 0) }'
}
consistent_trace() {
    local tol
    tol=$(skew_bounds | awk '{ if ($2 > m) m = $2 } END { printf "%.6f", m / 1e6 }')
    awk -F, -v tol="$tol" 'NR > 1 && $7 != "" { n++; if ($7 + tol < $6 + 0 || ($9 != "" && $8 - tol > $9 + 0)) bad++ }
             END { exit !(n > 0 && bad == 0) }' "$tmp/skew.csv"
}
POOLBENCH_MPI_SKEW_US=5000000 mrun 5 self,vader run scenarios/serialized_get.lua --quick \
    --impl callback_chain --trace "$tmp/skew.csv"
check "a worker clock 5 s ahead is measured as such, within its bound (NTP-style, at the start)" \
    skew_measured
check "and the trace stays on rank 0's clock (start after submit, end before result, within the bound)" \
    consistent_trace

mrun 3 self,vader run tests/mpi/scenarios/rank_init.lua --quick
check "initargs travel to the ranks; a failed initializer breaks the pool as on one machine" \
    all_checks_pass

start=$(date +%s)
mrun 5 self,vader run scenarios/worker_death.lua --quick
took=$(($(date +%s) - start))
check "a worker rank's death ends the job (mpirun's rule), well before the timeout" \
    [ "$rc" -ne 0 -a "$rc" -ne 124 -a "$took" -lt 60 ]
check "mpirun's message names the rank that ended the job" \
    eval 'err_has "mpirun noticed that process rank" || err_has "The first process to do so was"'
# Rank 0's own line ("... BrokenProcessPool") comes from its SIGTERM handler;
# mpirun sends SIGKILL a moment after SIGTERM, so on a loaded machine rank 0
# may not run in between: docs/mpi.md says so, and the test does not bet on it.
check "no rank is left behind" no_ranks_left

run run scenarios/get_placement.lua --quick --transport mpi
check "without mpirun (a singleton job) a pool is refused, bounded" \
    out_has "needs 5 MPI ranks (rank 0 and one per worker); this job has 1"
run run scenarios/get_placement.lua --quick --transport shared
check "an unknown --transport names the valid ones, mpi among them" \
    fails_with 2 "unknown transport 'shared' (valid: socket, shm); and mpi under mpirun"

# ---- full ------------------------------------------------------------------------------

if [ -n "$FULL" ]; then
    for btl in self,vader tcp,self; do
        mrun 5 "$btl" run scenarios/serialized_get.lua --quick --repeat 3 --set a_ms=50 \
            --set b_ms=50
        check "P1 over $btl: the checks pass (callbacks in rank 0, one at a time)" all_checks_pass
        mrun 5 "$btl" run scenarios/get_placement.lua --quick --repeat 3 --set task_ms=50
        check "P3 over $btl: the checks pass" all_checks_pass
        # n=5000: imap's 5000 messages outweigh a preemption of map_async's
        # 16 by far more than the 3x the check asks (2000 did not, once,
        # at a load average of 11 on 2 cores).
        mrun 5 "$btl" run scenarios/overhead.lua --quick --set workers=4 --set n=5000
        check "P6 over $btl: the checks pass (messages per task decide)" all_checks_pass
        mrun 5 "$btl" run scenarios/chunk_skew.lua --quick --repeat 3 --set task_ms=50
        check "P7 over $btl: the checks pass" all_checks_pass
    done
    # Its _mt variants are refused (maxtasksperchild), so the run exits 1;
    # the other two pools, one after the other on the same ranks, pass.
    mrun 3 self,vader run scenarios/worker_init.lua --quick
    check "the initializer runs once per rank, and again for the next pool" \
        out_matches '^PASS  async_get_after: the initializer ran once in every worker' \
        '^PASS  executor_submit: the initializer ran once in every worker'
    POOLBENCH=$PB timeout 300 bench/mpi_overhead.sh -n 200 -w 2 >"$tmp/out" 2>"$tmp/err"
    rc=$?
    check "bench/mpi_overhead.sh: every API on the four media, and the MPI floors" eval \
        '[ "$rc" -eq 0 ] && [ "$(grep -cE "^[a-z_0-9]+( +[0-9]+\.[0-9]+){4}$" "$tmp/out")" -eq 9 ] &&
         [ "$(grep -c "^floor mpi-" "$tmp/out")" -eq 2 ]'
    check "no rank is left behind (full)" no_ranks_left
fi

finish
