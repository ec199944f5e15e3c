#!/usr/bin/env bash
# run.sh: `make chaos`, fault injection on the engine and on poolbench.
#
#   tests/chaos/run.sh [--quick] [--case GLOB]
#
# Why: the engine promises that nothing hangs, nothing crashes and every item
# ends with a value or an error that says what happened to it; only faults
# injected at random times show whether that holds. Five families of cases:
#   engine:API:FAULT     the C driver (chaos_engine.c) on one API, item by item
#   kill:STRATEGY:FAULT  poolbench on tests/chaos/load.lua --impl STRATEGY while
#                        workers or the fork server get SIGKILL / SIGSTOP
#   signal:SCENARIO:SIG  SIGINT / SIGTERM to poolbench mid-run (want 130 / 143)
#   hang:STRATEGY:MODE   tests/chaos/hang.lua: a task sleeps or spins forever
#   mutant:K             scenarios/*.lua through tests/chaos/mutate.sh
# Every run is under timeout(1), in a session of its own (setsid), so that a
# hang is a FAILURE with a bound and every process it left is found (same
# session id) and killed. After each run: no process of its session, no
# /dev/shm entry, no temp file it had open (/tmp, and its private TMPDIR).
#
# Environment: POOLBENCH (default build/poolbench), CHAOS_ENGINE (default
# build/tests/chaos/chaos_engine), CHAOS_SEED (default 1: every random choice
# follows from it and the case's name), CHAOS_QUICK=1 (same as --quick: a few
# cases, under 30 s), CHAOS_START_METHOD (fork, forkserver or spawn: added to
# every `poolbench run` as --start-method; the C driver's pools keep the fork
# server, since it kills the fork server on purpose). Output: each failure with the command that reproduces
# it, the counts, the failures by category, then "N passed, N failed"; exit 1
# if any failed, 2 on bad usage. POOLBENCH_TRANSPORT (socket, shm) is every
# pool's transport, the engine driver's and poolbench's alike (make
# chaos-quick runs once on each).

set -u

POOLBENCH=${POOLBENCH:-build/poolbench}
CHAOS_ENGINE=${CHAOS_ENGINE:-build/tests/chaos/chaos_engine}
SEED=${CHAOS_SEED:-1}
SM=()
[ -n "${CHAOS_START_METHOD:-}" ] && SM=(--start-method "$CHAOS_START_METHOD")
QUICK=${CHAOS_QUICK:-0}
ONLY='*'
HERE=$(dirname "$0")

while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --case) ONLY=${2:?--case needs a GLOB}; shift ;;
        *) echo "usage: $0 [--quick] [--case GLOB]" >&2; exit 2 ;;
    esac
    shift
done
for b in "$POOLBENCH" "$CHAOS_ENGINE"; do
    [ -x "$b" ] || { echo "run.sh: $b: not built (make build, or set POOLBENCH / CHAOS_ENGINE)" >&2; exit 2; }
done

# Generous bounds: a run that needs them is a hang, not a slow machine or a
# scenario whose own bounded waits add up (make test
# runs the quick mode beside other load; an engine run breaks a stopped fork
# server after 2 s, so its deadline must be well past that).
if [ "$QUICK" = 1 ]; then LIMIT=30; DEADLINE=6; MUTANTS=10; else LIMIT=30; DEADLINE=6; MUTANTS=80; fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/poolbench-chaos.XXXXXX")
ln -s "$PWD/scenarios/lib" "$WORK/lib" # what mutants load beside them (dofile "lib/...")
STRATEGIES=$("$POOLBENCH" list | sed -n '/^strategies/,$p' | awk 'NF > 1 && /^  / {print $1}')

passed=0 failed=0 runs=0 kills=0 stops=0 signals=0 mutants=0
declare -A FAILS=()   # category -> report lines
CASE='' REPRO='' RUN_PID=0 SID=0 RC=0 N=0

# ---- bookkeeping -------------------------------------------------------------

# Starts case $1 if it matches --case; seeds RANDOM from the seed and the name.
case_begin() {
    CASE=$1
    # shellcheck disable=SC2053
    [[ $CASE == $ONLY ]] || return 1
    RANDOM=$(printf '%s:%s' "$SEED" "$CASE" | cksum | cut -d' ' -f1)
    REPRO="CHAOS_SEED=$SEED POOLBENCH=$POOLBENCH CHAOS_ENGINE=$CHAOS_ENGINE $0 --case '$CASE'"
    CASE_FAILED=0
    return 0
}

# Records a failure of the current case: category $1, message $2.
fail() {
    local line="$CASE: $2"$'\n'"    reproduce: $REPRO"
    echo "FAIL [$1] $line"
    FAILS[$1]+="  $line"$'\n'
    CASE_FAILED=1
}

case_end() {
    if [ "$CASE_FAILED" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

# ---- one run -------------------------------------------------------------------

# Runs "$@" in the background, in a session of its own, under timeout $LIMIT.
start_run() {
    N=$((N + 1)); runs=$((runs + 1))
    OUT=$WORK/$N.out ERR=$WORK/$N.err RTMP=$WORK/tmp.$N OPEN=$WORK/$N.open
    mkdir -p "$RTMP"; : > "$OPEN"
    ls /dev/shm > "$WORK/$N.shm0" 2>/dev/null
    ls /tmp | grep '^lua_' > "$WORK/$N.tmp0"   # Lua's os.tmpname() names
    TMPDIR=$RTMP setsid timeout -k 2 "$LIMIT" "$@" > "$OUT" 2> "$ERR" &
    RUN_PID=$!
    SID=$RUN_PID
}

# Pids of the processes in session $SID: live ones, and zombies whose parent
# is still alive and not init (pid 1 here reaps orphans late: not a leak).
session_pids() {
    local f rest
    for f in /proc/[0-9]*/stat; do
        read -r rest 2>/dev/null < "$f" || continue
        rest=${rest##*) }
        set -- $rest   # state ppid pgrp session
        [ "${4:-}" = "$SID" ] || continue
        [ "$1" = Z ] && { [ "$2" = 1 ] || [ ! -e "/proc/$2" ]; } && continue
        f=${f#/proc/}; echo "${f%/stat}"
    done
}

# Children of pid $1.
children() { pgrep -P "$1" 2>/dev/null; }

# Notes which files under /tmp the run's processes hold open now.
sample_open() {
    local p
    for p in $(session_pids); do
        find "/proc/$p/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null
    done | grep '^/tmp/' | grep -v "^$WORK" >> "$OPEN"
}

# poolbench's pid (timeout's child), waiting up to 2 s for it.
poolbench_pid() {
    local i c
    for i in $(seq 20); do
        c=$(children "$RUN_PID" | head -1)
        [ -n "$c" ] && { echo "$c"; return; }
        sleep 0.1
    done
}

# The fork server: poolbench's child that has children (else its first child).
forkserver_of() {
    local c best=''
    for c in $(children "$1"); do
        [ -z "$best" ] && best=$c
        [ -n "$(children "$c")" ] && { echo "$c"; return; }
    done
    echo "$best"
}

# Workers: the fork server's children, or poolbench's other children.
workers_of() {
    local fs c
    fs=$(forkserver_of "$1")
    [ -n "$fs" ] && children "$fs"
    for c in $(children "$1"); do [ "$c" != "$fs" ] && echo "$c"; done
}

random_of() { local a=($*); [ ${#a[@]} -gt 0 ] && echo "${a[RANDOM % ${#a[@]}]}"; }
nap() { sleep "0.$(printf '%03d' $((RANDOM % ${1:-400} + 50)))"; }

# Waits for the run; checks the exit status class, leftovers and temp files.
finish_run() {
    wait "$RUN_PID"; RC=$?
    if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
        fail hang "no end after ${LIMIT} s (timeout killed it, status $RC)"
    elif grep -q PANIC "$ERR"; then
        fail crash "PANIC on stderr: $(grep -m1 PANIC "$ERR")"
    fi
    check_leftovers
}

check_leftovers() {
    local left i f
    for i in $(seq 15); do
        left=$(session_pids)
        [ -z "$left" ] && break
        sleep 0.1
    done
    if [ -n "$left" ]; then
        left=$(for p in $left; do ps -o pid=,stat=,args= -p "$p" 2>/dev/null | head -c 60; echo; done | grep . | tr -s ' \n' ' ')
        [ -n "$left" ] && fail leftover "processes left behind (pid stat args): $left"
        for p in $(session_pids); do kill -9 "$p" 2>/dev/null; done
    fi
    ls /tmp | grep '^lua_' | comm -13 "$WORK/$N.tmp0" - | sed 's|^|/tmp/|' >> "$OPEN"
    for f in $(sort -u "$OPEN"); do
        [ -e "$f" ] && { fail leftover "temp file left behind: $f ($(du -h "$f" | cut -f1))"; rm -f "$f"; }
    done
    if [ -n "$(ls -A "$RTMP")" ]; then
        fail leftover "files left in its TMPDIR: $(ls "$RTMP" | head -3 | tr '\n' ' ')"
    fi
    ls /dev/shm 2>/dev/null | comm -13 "$WORK/$N.shm0" - | grep -i 'pool\|chaos' > "$WORK/$N.shm1"
    [ -s "$WORK/$N.shm1" ] && fail leftover "/dev/shm entries left: $(tr '\n' ' ' < "$WORK/$N.shm1")"
}

# The JSON's results against n for every strategy (lost or duplicated items).
check_json() {
    local json=$1 n=$2 bad
    [ -s "$json" ] || { fail lost-or-duplicated "no JSON report written (exit $RC)"; return; }
    bad=$(jq -r --argjson n "$n" '.results[] | select(.results != $n)
          | "\(.label): \(.results) results (\(.errors) errors) of \($n) items"' "$json" 2>&1)
    [ -n "$bad" ] && fail lost-or-duplicated "$bad"
}

# Failed checks printed by poolbench, on one line.
failed_checks() { grep -E '^FAIL' "$OUT" | head -3 | tr '\n' ';'; }

# ---- the families ----------------------------------------------------------------

# engine:API:FAULT: the C driver does its own injection and item counts.
engine_case() {
    local api=$1 fault=$2 s=$RANDOM
    REPRO="CHAOS_DEADLINE=$DEADLINE $CHAOS_ENGINE $api $fault $s"
    LIMIT_SAVED=$LIMIT; LIMIT=$((DEADLINE + 8))
    start_run env CHAOS_DEADLINE="$DEADLINE" "$CHAOS_ENGINE" "$api" "$fault" "$s"
    finish_run
    LIMIT=$LIMIT_SAVED
    local sum; sum=$(grep '^chaos_engine:' "$OUT")
    kills=$((kills + $(sed -n 's/.* \([0-9]*\) kills.*/\1/p' <<< "$sum" | head -1) + 0))
    stops=$((stops + $(sed -n 's/.* \([0-9]*\) stops.*/\1/p' <<< "$sum" | head -1) + 0))
    while read -r _ cat rest; do
        fail "${cat%:}" "$rest"
    done < <(grep '^FAIL ' "$OUT")
    if [ "$RC" -ne 0 ] && [ "$RC" -ne 1 ] && [ "$RC" -ne 124 ] && [ "$RC" -ne 137 ]; then
        fail crash "chaos_engine exited $RC: $(tail -2 "$ERR" | tr '\n' ' ')"
    fi
}

# One fault on a live poolbench run: kills or stops workers or the fork server.
inject() {
    local pb=$1 fault=$2 i pid
    for i in 1 2 3; do
        nap 300
        kill -0 "$pb" 2>/dev/null || return
        sample_open
        case $fault in
            kill_worker) pid=$(random_of "$(workers_of "$pb")")
                [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && kills=$((kills + 1)) ;;
            stop_worker) pid=$(random_of "$(workers_of "$pb")")
                [ -n "$pid" ] && kill -STOP "$pid" 2>/dev/null && stops=$((stops + 1)) && nap 300 &&
                    if [ $((RANDOM % 2)) = 0 ]; then kill -CONT "$pid"; else kill -9 "$pid" && kills=$((kills + 1)); fi ;;
            stop_worker_hold) pid=$(random_of "$(workers_of "$pb")")
                [ -n "$pid" ] && kill -STOP "$pid" 2>/dev/null && stops=$((stops + 1)); return ;;
            kill_forkserver) pid=$(forkserver_of "$pb")
                [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && kills=$((kills + 1)); return ;;
        esac
    done
}

# kill:STRATEGY:FAULT on tests/chaos/load.lua.
kill_case() {
    local impl=$1 fault=$2 json=$WORK/kill.$N.json pb
    # --task-timeout: a worker stopped for good (stop_worker_hold) costs its
    # task a time-limit error, not the run a hang
    local cmd=("$POOLBENCH" run "$HERE/load.lua" --quick --impl "$impl" --task-timeout 1 --json "$json" "${SM[@]}")
    REPRO="$REPRO   # runs: ${cmd[*]} with $fault"
    start_run "${cmd[@]}"
    pb=$(poolbench_pid)
    [ -n "$pb" ] && inject "$pb" "$fault"
    finish_run
    [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ] && return
    [ "$RC" -ge 128 ] && fail crash "poolbench died of signal $((RC - 128))"
    [ "$RC" -eq 2 ] && fail exit-code "exit 2 (bad usage/scenario) under $fault: $(head -2 "$ERR" | tr '\n' ' ')"
    [ "$RC" -eq 1 ] && fail lost-or-duplicated "checks failed (exit 1): $(failed_checks)"
    check_json "$json" 60
}

# signal:SCENARIO:SIG: SIGINT wants 130, SIGTERM 143, and nothing left behind.
signal_case() {
    local file=$1 sig=$2 want pb
    [ "$sig" = INT ] && want=130 || want=143
    # one_file --quick ends too soon to be signalled: it runs with its defaults
    local cmd=("$POOLBENCH" run "$file" "${SM[@]}")
    [ "$file" = scenarios/one_file.lua ] || cmd+=(--quick)
    REPRO="$REPRO   # runs: ${cmd[*]}, SIG$sig mid-run"
    start_run "${cmd[@]}"
    pb=$(poolbench_pid)
    nap 250
    sample_open
    if [ -n "$pb" ] && kill -"$sig" "$pb" 2>/dev/null; then
        signals=$((signals + 1))
    else
        fail exit-code "poolbench ended before SIG$sig could be sent (no test; rerun)"
    fi
    finish_run
    [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ] && return
    [ "$RC" -ne "$want" ] && fail exit-code "SIG$sig: exit $RC, want $want"
    [ "$RC" -eq "$want" ] && ! grep -qi interrupt "$OUT" "$ERR" &&
        fail exit-code "SIG$sig: no report marked as interrupted"
}

# hang:STRATEGY:MODE: a task never ends; the run must end with its error.
hang_case() {
    local impl=$1 mode=$2 json=$WORK/hang.$N.json
    # --task-timeout: the stuck task fails with a time-limit error, the run ends
    local cmd=("$POOLBENCH" run "$HERE/hang.lua" --quick --impl "$impl" --set mode="$mode" --task-timeout 1 --json "$json" "${SM[@]}")
    REPRO="$REPRO   # runs: timeout $LIMIT ${cmd[*]}"
    start_run "${cmd[@]}"
    sleep 0.5; sample_open
    finish_run
    [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ] && return
    [ "$RC" -gt 1 ] && fail exit-code "exit $RC, want 0 or 1"
    check_json "$json" 6
}

# mutant:K: a mutated scenario must run or fail with exit 2 and file:line.
mutant_case() {
    local k=$1 files=(scenarios/*.lua) src m s what
    src=${files[RANDOM % ${#files[@]}]}
    s=$((SEED * 100000 + k))
    m=$WORK/mutant_$k.lua
    what=$("$HERE/mutate.sh" "$s" "$src" 2>&1 > "$m")
    mutants=$((mutants + 1))
    REPRO="mkdir -p /tmp/m && ln -sfn $PWD/scenarios/lib /tmp/m/lib && $HERE/mutate.sh $s $src > /tmp/m/m.lua && timeout $LIMIT $POOLBENCH run /tmp/m/m.lua --quick   # ${what#mutate: }"
    start_run "$POOLBENCH" run "$m" --quick "${SM[@]}"
    sleep 0.2; sample_open
    finish_run
    [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ] && return
    if [ "$RC" -ge 128 ]; then
        grep -q PANIC "$ERR" || fail crash "exit $RC (signal $((RC - 128))): $(tail -1 "$ERR")"
    elif [ "$RC" -gt 2 ]; then
        fail exit-code "exit $RC, want 0, 1 or 2"
    elif [ "$RC" -eq 2 ] && ! grep -q "mutant_$k.lua:[0-9]*:" "$ERR"; then
        fail exit-code "exit 2 without file:line: $(head -1 "$ERR")"
    fi
}

# ---- the plan ----------------------------------------------------------------------

run_engine() {
    local apis=(apply_async map_async imap imap_unordered executor_map submit) a f
    local faults=(kill_worker stop_worker stop_worker_hold kill_forkserver stop_forkserver
                  kill_forkserver_first kill_forkserver_then_worker)
    for a in "${apis[@]}"; do
        for f in "${faults[@]}"; do
            if [ "$QUICK" = 1 ]; then  # 3 APIs, one fault each, chosen by the seed
                case $a in apply_async|imap|submit) ;; *) break ;; esac
                RANDOM=$(printf '%s:%s' "$SEED" "$a" | cksum | cut -d' ' -f1)
                f=${faults[RANDOM % ${#faults[@]}]}
                case_begin "engine:$a:$f" && { engine_case "$a" "$f"; case_end; }
                break
            fi
            case_begin "engine:$a:$f" && { engine_case "$a" "$f"; case_end; }
        done
    done
}

run_kills() {
    local faults=(kill_worker stop_worker stop_worker_hold kill_forkserver) s f i=0
    for s in $STRATEGIES; do
        for f in "${faults[@]}"; do
            # quick: one strategy in five, one fault each
            if [ "$QUICK" = 1 ]; then
                i=$((i + 1)); [ $((i % 5)) = 1 ] || break
                f=${faults[(i / 5 + SEED) % ${#faults[@]}]}
            fi
            case_begin "kill:$s:$f" && { kill_case "$s" "$f"; case_end; }
            [ "$QUICK" = 1 ] && break
        done
    done
}

run_signals() {
    local f g
    for f in scenarios/one_file.lua "$HERE/load.lua"; do
        for g in INT TERM; do
            # quick: SIGINT to one_file (its temp files), SIGTERM to load
            [ "$QUICK" = 1 ] && [ "$f:$g" != scenarios/one_file.lua:INT ] &&
                [ "$f:$g" != "$HERE/load.lua:TERM" ] && continue
            case_begin "signal:$(basename "$f" .lua):$g" && { signal_case "$f" "$g"; case_end; }
        done
    done
}

run_hangs() {
    local impls=(async_get_after map_async imap imap_unordered executor_submit callback_chain process_per_task)
    local s mode
    for s in "${impls[@]}"; do
        for mode in 1 2; do
            [ "$QUICK" = 1 ] && { [ "$s" = imap ] || continue; }
            [ "$QUICK" = 1 ] && [ $mode = 2 ] && continue
            case_begin "hang:$s:$mode" && { hang_case "$s" "$mode"; case_end; }
        done
    done
}

run_mutants() {
    local k
    for k in $(seq "$MUTANTS"); do
        case_begin "mutant:$k" && { mutant_case "$k"; case_end; }
    done
}

# Kills whatever a run left (if this script is interrupted) and removes WORK.
cleanup() {
    [ "$RUN_PID" -gt 0 ] && kill -9 -- -"$RUN_PID" 2>/dev/null
    for p in $(session_pids); do kill -9 "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
echo "chaos: seed $SEED (CHAOS_SEED), $([ "$QUICK" = 1 ] && echo quick || echo full) mode, poolbench $POOLBENCH, driver $CHAOS_ENGINE, limit ${LIMIT} s per run, start method ${CHAOS_START_METHOD:-forkserver (the default)}, transport ${POOLBENCH_TRANSPORT:-socket} (POOLBENCH_TRANSPORT)"
run_engine
run_kills
run_signals
run_hangs
run_mutants

echo
echo "chaos: seed $SEED: $runs runs, $kills kills, $stops stops, $signals signals, $mutants mutants, $failed failures, $((SECONDS - start)) s"
for c in hang crash lost-or-duplicated wrong-value error-message exit-code leftover api; do
    [ -n "${FAILS[$c]:-}" ] || continue
    echo "== $c: $(grep -c '^  [a-z]' <<< "${FAILS[$c]}") failures"
    printf '%s' "${FAILS[$c]}"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
