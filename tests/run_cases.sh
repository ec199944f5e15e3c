#!/usr/bin/env bash
# run_cases.sh: runs every case of every cmocka test binary given, each case in
# a process of its own with a time limit, and ends with one line
# "N passed, N failed" (exit status 1 if any failed, 2 on bad usage).
#
#   tests/run_cases.sh build/tests/engine/test_pool_api build/tests/engine/test_pool_failures ...
#
# Why one process per case: a case that crashes or hangs the engine cannot
# take the others down, and pool_create() wants a single-threaded caller.
# Each binary lists its cases with --list and runs one when given its name
# (tests/test_helpers.h).
#
# Environment: CASE_TIMEOUT (seconds per case, default 60); VALGRIND, a
# command prefix such as "valgrind -q --error-exitcode=99" (make valgrind):
# the cases then run under it, with CASE_TIMEOUT 600 and TEST_TIME_SCALE 10
# (the factor the cases apply to their own upper time bounds) by default.
#
# A case runs under timeout(1), which makes itself a process group leader and
# signals the whole group on expiry. When the case has exited, any process
# still alive in that group was left behind by it (pool_destroy() promises
# none): the case counts as failed and the leftovers are killed, so that they
# cannot hold the terminal or a pipe open after this script ends.

set -u

if [ $# -eq 0 ]; then
    echo "usage: $0 TEST_BINARY..." >&2
    exit 2
fi

VALGRIND=${VALGRIND:-}
if [ -n "$VALGRIND" ]; then
    limit=${CASE_TIMEOUT:-600}
    export TEST_TIME_SCALE=${TEST_TIME_SCALE:-10}
else
    limit=${CASE_TIMEOUT:-60}
fi
passed=0
failed=0
failures=()

# Pids of the live (not zombie) processes in process group $1.
group_members() {
    local stat rest
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null < "$f" || continue
        rest=${stat##*) }          # the name may contain spaces and parens
        set -- "$1" $rest          # $2 state, $3 ppid, $4 pgrp
        if [ "${4:-}" = "$1" ] && [ "$2" != Z ] && [ "$2" != X ]; then
            f=${f#/proc/}
            echo "${f%/stat}"
        fi
    done
}

for bin in "$@"; do
    if ! names=$("$bin" --list); then
        echo "run_cases: $bin --list failed"
        failed=$((failed + 1))
        failures+=("$bin")
        continue
    fi
    for name in $names; do
        # In the background, so that $! is timeout's pid, hence its group.
        # $VALGRIND is unquoted on purpose: a command and its options.
        timeout -k 5 "$limit" $VALGRIND "$bin" "$name" 2>&1 &
        tpid=$!
        wait "$tpid"
        rc=$?
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "[  TIMEOUT ] $name: killed after ${limit} s"
        elif [ "$rc" -gt 128 ]; then
            echo "[  CRASH   ] $name: killed by signal $((rc - 128))"
        fi
        # Orphans may take a moment to exit after a clean destroy.
        left=""
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            left=$(group_members "$tpid")
            [ -z "$left" ] && break
            sleep 0.2
        done
        if [ -n "$left" ]; then
            echo "[  LEAK    ] $name: left processes behind:" $left
            kill -KILL $left 2>/dev/null
            [ "$rc" -eq 0 ] && rc=1
        fi
        if [ "$rc" -eq 0 ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            failures+=("$(basename "$bin") $name")
        fi
    done
done

for f in "${failures[@]+"${failures[@]}"}"; do
    echo "FAILED: $f"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
