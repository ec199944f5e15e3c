#!/usr/bin/env bash
# test_bench_scripts.sh: a quick test of the benchmark drivers and of the
# CPython programs, run against whatever exists (make test calls it).
#
#   tests/bench/test_bench_scripts.sh
#
# What it checks, and why:
#   - bench/sweep.sh computes its ranges right (additive, multiplicative,
#     fractions), refuses bad usage with exit 2, and, on
#     scenarios/serialized_get.lua --quick over workers 1..2, writes a CSV
#     with one header whose first column is the parameter and two rows per
#     strategy: what the sweep plots read.
#   - every scenario has a CPython twin, bench/python/NAME.py (and every
#     twin a scenario), whose docstring names the document it ports; its
#     --list is the scenario's labels and its --params the scenario's
#     parameters with the same defaults and quick values (`poolbench show`);
#     unknown labels and parameters are bad usage (exit 2); it runs every
#     label with --quick --json -, and the JSON parses, mirrors poolbench's
#     top level and result keys with sane values (per-worker counts sum to
#     tasks_run, callbacks in the parent one at a time, ...), shows the
#     scenario's phenomenon as CPython gives it (worker_death: the Pool hangs
#     and is given up at its bound, gh-66587), and leaves no process and no
#     temporary file behind.
#   - bench/hyperfine.sh in its quick mode (QUICK=1 RUNS=2, one scenario)
#     writes hyperfine's CSV and JSON for each strategy, the summary and
#     machine.txt, with a CPython row beside each C row where python3 is
#     present; and with PYTHON=NONE it still succeeds, C only.
#   - bench/overhead (-n 300, shm, apply and map_async, no CPython) exits 0,
#     its rows show every result right, and it prints issue 14's map_async
#     target as the median of five fresh pools against the start-up's (its
#     verdict either way: speed is the benchmark's); an unknown API is bad
#     usage (exit 2).
# Parts whose tools are missing (build/poolbench, build/overhead, a scenario,
# python3, hyperfine) are skipped with a message, not failed: the test runs on a
# tree where other parts are still being written.
#
# Prints one "ok - ..." or "not ok - ..." line per check ("skip - ..." for
# skipped parts, not counted), ends with exactly one line "N passed, N
# failed", and exits 1 when anything failed. Nothing timed is asserted:
# speed belongs to the benchmarks, not to tests. Takes about 45 seconds
# (the twins' quick runs about 25 of them).
# Environment: POOLBENCH (default build/poolbench), PYTHON (default python3).

set -euo pipefail

cd "$(dirname "$0")/../.."   # the repository's root: paths below are relative to it

POOLBENCH=${POOLBENCH:-build/poolbench}
PYTHON=${PYTHON:-python3}
LIMIT=120   # seconds any one command may take: a hang fails, not blocks

passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
skip() { echo "skip - $*"; }
# check NAME COMMAND...: ok when the command succeeds.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have_poolbench=0
[ -x "$POOLBENCH" ] && have_poolbench=1
PY=""
if command -v "$PYTHON" > /dev/null &&
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2> /dev/null; then
    PY=$("$PYTHON" -c 'import sys; print(sys.executable)')
fi

# The labels of a scenario and its parameters, from `poolbench show`.
labels_of() {
    "$POOLBENCH" show "$1" | awk '/^strategies/ { on = 1; next }
        on && NF == 0 { exit } on && $1 != "label" { print $1 }'
}
params_of() {
    "$POOLBENCH" show "$1" | awk '/^parameters/ { on = 1; next }
        on && NF == 0 { exit } on && $1 != "name" { print $1 }'
}

# ---- the scripts themselves ----------------------------------------------------

syntax_ok() { test -x "$1" && bash -n "$1"; }
for s in bench/sweep.sh bench/hyperfine.sh; do
    check "$s is executable and parses (bash -n)" syntax_ok "$s"
done

# ---- sweep.sh ------------------------------------------------------------------

values() { bench/sweep.sh --dry-run s p "$@" 2> /dev/null | tr '\n' ' '; }
check "sweep: 1..16 by 1 gives 16 values" test "$(values 1 16 | wc -w)" = 16
check "sweep: 1..16 x2 gives 1 2 4 8 16" test "$(values 1 16 x2)" = "1 2 4 8 16 "
check "sweep: 10^3..10^6 x10 gives four values" \
    test "$(values 1e3 1e6 x10)" = "1000 10000 100000 1000000 "
check "sweep: fractions (0.5..2 by 0.5)" test "$(values 0.5 2 0.5)" = "0.5 1 1.5 2 "
usage_rc() { local rc=0; bench/sweep.sh "$@" > /dev/null 2>&1 || rc=$?; echo $rc; }
check "sweep: FROM above TO is bad usage (exit 2)" test "$(usage_rc --dry-run s p 5 1)" = 2
check "sweep: a factor of 1 is bad usage (exit 2)" test "$(usage_rc --dry-run s p 1 9 x1)" = 2
check "sweep: too few arguments is bad usage (exit 2)" test "$(usage_rc serialized_get)" = 2
check "sweep: --csv is refused (exit 2)" test "$(usage_rc serialized_get workers 1 2 --csv x)" = 2

scn=scenarios/serialized_get.lua
if [ "$have_poolbench" = 0 ] || [ ! -f "$scn" ]; then
    skip "sweep on $scn: $POOLBENCH or the scenario is missing"
else
    rc=0
    timeout $LIMIT bench/sweep.sh serialized_get workers 1 2 --quick \
        > "$tmp/sweep.csv" 2> "$tmp/sweep.err" || rc=$?
    k=$(labels_of "$scn" | wc -l)
    # Exit 1 (a check failed at some value, rows kept) is a sweep's right.
    check "sweep: serialized_get workers 1..2 --quick ran (exit $rc)" test "$rc" -le 1
    check "sweep: the header comes once, first column 'workers'" \
        test "$(grep -c '^workers,scenario,' "$tmp/sweep.csv")" = 1 -a \
        "$(head -1 "$tmp/sweep.csv" | cut -d, -f1)" = workers
    check "sweep: 2 rows per strategy ($k strategies)" \
        test "$(tail -n +2 "$tmp/sweep.csv" | wc -l)" = $((2 * k)) -a "$k" -gt 0
    check "sweep: $k rows for workers=1, $k for workers=2" \
        test "$(grep -c '^1,serialized_get,' "$tmp/sweep.csv")" = "$k" -a \
        "$(grep -c '^2,serialized_get,' "$tmp/sweep.csv")" = "$k"
    check "sweep: progress on stderr" grep -q '^sweep: workers=2' "$tmp/sweep.err"
fi

# ---- the CPython twins -------------------------------------------------------

# The parameters of a scenario as "name default quick", numbers as %g, from
# `poolbench show`; and the same from a twin's --params.
params_full_of() {
    "$POOLBENCH" show "$1" | awk '/^parameters/ { on = 1; next }
        on && NF == 0 { exit } on && $1 != "name" { printf "%s %g %g\n", $1, $2, $3 }'
}
twin_params() {
    "$PY" "$1" --params | awk '{ printf "%s %g %g\n", $1, $2, $3 }'
}

# What every result of a twin's JSON must hold (jq, on one result .r): the
# keys poolbench's report has, and sane values.
RESULT_OK='
  (["impl","label","wall_s","wall_min_s","wall_max_s","repeats","startup_s","answer_s",
    "stopped_s","tasks_run","tasks_total","tasks_after_stop","results","errors",
    "errors_unobserved","first_error","callbacks","callback_pid","callbacks_max_overlap",
    "parent_pid","stopped_early","run_failed","peak_rss_kb","per_worker","facts","cores",
    "params","start_method","cannot"] - keys == [])
  and (.run_failed or
       (.wall_s > 0 and .wall_min_s <= .wall_s and .wall_s <= .wall_max_s
        and .startup_s >= 0 and .repeats == 1 and .parent_pid > 0 and .peak_rss_kb > 0
        and .tasks_run <= .tasks_total
        and ([.per_worker[].tasks] | add // 0) == .tasks_run
        and (.callbacks == 0 or (.callback_pid == .parent_pid and .callbacks_max_overlap == 1))
        and (.answer_s == 0 or (.stopped_early and .stopped_s >= .answer_s))))'

# What each scenario's twin must show at its quick values (jq, on the whole
# report; $p is .params): its phenomenon's figures, as CPython gives them.
# shellcheck disable=SC2016 # jq's $-variables, not the shell's
# The expectation holds on the twin's JSON; if not, what it judged (the
# figures of each label) goes to the log, for a failure seen once.
phenomenon_shown() {
    jq_ok "$1" "$2" && return 0
    jq -c '.results[] | {label: .label, results, errors, first_error, run_failed, bytes_sent, facts}' "$2" |
        cut -c1-600 | sed 's/^/#   /'
    return 1
}

twin_expect() {
    case $1 in
        serialized_get|get_placement)
            echo '.params as $p | all(.results[]; .results == $p.n and .errors == 0)' ;;
        chunk_skew)
            echo '.results[0] | [.per_worker[].tasks] | sort == [2, 14]' ;;
        overhead)
            echo '.params as $p | all(.results[]; .results == $p.n and .tasks_run == $p.n)' ;;
        quick_tasks)
            echo '.params as $p | all(.results[]; .results == $p.n and .tasks_run == $p.n
                  and .facts.repeats_recorded == 1 and .facts.repeats_good == 1)' ;;
        pool_vs_fork)
            echo '.params as $p | all(.results[]; .results == $p.n)
                  and (.results[] | select(.label == "process_per_task") | .workers_started) == $p.n
                  and (.results[] | select(.label == "process_per_task") | .facts.distinct_pids) == $p.n
                  and all(.results[] | select(.label != "process_per_task");
                          .facts.distinct_pids >= 1 and .facts.distinct_pids <= $p.workers)' ;;
        imap_memory)
            echo '.params as $p | all(.results[]; .results == $p.n * .params.scale)
                  and ([.results[] | {(.label): .peak_rss_kb}] | add
                       | (.map_async_4n - .map_async) > 0.4 * 3 * $p.n * $p.payload / 1024
                         and (.map_async_4n - .map_async) > (.imap_4n - .imap))' ;;
        early_stop)
            echo '.params as $p | (.results[0].results == $p.n)
                  and all(.results[1:][]; .stopped_early and .answer_s > 0 and .tasks_run < .tasks_total)
                  and ([.results[] | select(.label == "async_get_after_long") | .facts.submitted] == [$p.n_long])' ;;
        errors)
            echo '.params as $p | ([.results[] | [.label, .errors, .errors_unobserved]] ==
                  [["map_async", $p.n, 0], ["async_get_after_forget", 0, ($p.n / 2)],
                   ["executor_submit_forget", 0, ($p.n / 2)], ["callback_chain", ($p.n / 2), 0],
                   ["imap", ($p.n / 2), 0], ["executor_submit", ($p.n / 2), 0]])' ;;
        one_file)
            echo '.params as $p | all(.results[]; .results == $p.n and .facts.size == .facts.expected_size)
                  and .results[0].facts.torn == 0 and .results[0].callbacks == $p.n' ;;
        lifecycle)
            echo '.params as $p | .results[0].facts | .join_before_close_refused == 1
                  and .submit_after_close_refused == 1 and .done_after_close == $p.n
                  and .done_before_terminate + .terminated_jobs == $p.n' ;;
        worker_init)
            echo '.params as $p | all(.results[] | select(.run_failed | not);
                      .facts.not_one == 0 and .facts.values_seen == $p.n)
                  and ([.results[] | select(.label == "async_get_after_mt") | [.per_worker[].tasks] | max] == [25])
                  and ([.results[] | select(.label == "executor_submit_mt") | .run_failed] == [true])' ;;
        worker_death)
            echo '.params as $p | all(.results[] | select(.impl != "executor_submit");
                      .hung and (.first_error | test("hung: .*gh-66587")) and .worker_deaths >= 1)
                  and all(.results[] | select(.impl == "executor_submit");
                      .errors >= 1 and (.first_error | test("BrokenProcessPool")))
                  and all(.results[] | select(.impl == "async_get_after");
                      .facts.values_back == $p.n - 1
                      and .facts.items_back_sum == $p.n * ($p.n + 1) / 2 - $p.k)
                  and ([.results[] | select(.impl == "imap") | .facts.values_back] == [$p.k - 1])' ;;
        big_argument)
            echo '.params as $p | all(.results[]; .results == $p.n and .facts.all_read == 1)
                  and ([.results[] | {(.label): .bytes_sent}] | add
                       | .per_task >= $p.size_kb * 1024 and .initializer < $p.size_kb * 1024
                         and .fork < $p.size_kb * 1024)' ;;
        get_timeout)
            echo '.results[0].facts | .timed_out == 1 and .long_done == 1
                  and .later_start_ms >= .long_end_ms - 5' ;;
        eager_input)
            echo '.params as $p | all(.results[] | select(.run_failed | not); .results == $p.n * .params.scale)
                  and all(.results[] | select(.label | test("buffered")); (.run_failed | not) or .cannot[.label] != null)
                  and ([.results[] | {(.label): .peak_rss_kb}] | add
                       | (.imap_4n - .imap) > 0.4 * 3 * $p.n * $p.payload / 1024
                         and (.executor_map_4n - .executor_map) > 0.4 * 3 * $p.n * $p.payload / 1024)' ;;
        straggler)
            echo '.params as $p | all(.results[]; .results == $p.n and .errors == 0)
                  and ([.results[] | select(.label == "map_async_nw") | [.per_worker[].tasks] | max]
                       == [(($p.n + $p.workers - 1) / $p.workers | floor)])' ;;
        oversubscription)
            echo '.machine.cores as $c | all(.results[]; .results == .params.n and .cores == $c)
                  and ([.results[] | .params.workers] == [1, $c, 2 * $c, 4 * $c])
                  and (.results[0].per_worker | length) == 1' ;;
        interrupt)
            echo '.params as $p | all(.results[0:3][]; .results == $p.n and .errors == 0)
                  and .results[3].errors == $p.n
                  and all(.results[4:][]; .facts.hung == 0 and .facts.exit_code > 0
                          and .facts.tracebacks >= 1 and (.facts.hung_init | type) == "number")' ;;
        shared_state)
            echo '.params as $p | ([.results[] | {(.label): .facts}] | add) as $f
                  | $f.dict_set.keys == $p.n and $f.append_copy.values_in_lists == 0
                    and $f.append_reassign.values_in_lists == $p.n
                    and $f.counter_locked.lost == 0 and $f.counter_manager.lost == 0
                    and $f.queue_put.drained == $p.n and $f.queue_put.each_once == 1' ;;
        orphans)
            echo '.params as $p | all(.results[0:2][]; .results == $p.n and .errors == 0)
                  and all(.results[2:][]; .facts.processes_before >= $p.workers + 1
                          and .facts.survivors >= 1)' ;;
        start_method)
            echo '([.results[] | {(.label): .facts}] | add) as $f
                  | all(.results[]; .facts.workers_up == .params.workers
                                    and .start_method == (.label | split("_w")[0]))
                    and $f.fork_w4.inherited == 1 and $f.spawn_w4.inherited == 0
                    and $f.spawn_w4.fds < $f.fork_w4.fds' ;;
        fork_with_threads)
            echo '.params as $p | ([.results[] | {(.label): .facts}] | add) as $f
                  | $f.fork.deadlocked >= 1 and $f.fork.deadlocked + $f.fork.logged == $p.n
                    and $f.forkserver.deadlocked == 0 and $f.spawn.deadlocked == 0
                    and ([.results[].start_method] == ["fork", "forkserver", "spawn"])' ;;
        *) return 1 ;;
    esac
}

# jq -e, quietly: true when the filter gives true.
jq_ok() { jq -e "$@" > /dev/null; }

# The processes of a twin still alive (its workers would be its children,
# and carry its command line).
# leftovers NAME: the twin's processes still alive, counted only when they
# run in this checkout (their cwd), so that a make test in another copy,
# beside this one, is not taken for ours.
leftovers() {
    local n=0 pid
    for pid in $(pgrep -f "bench/python/$1.py"); do
        [ "$pid" = $$ ] && continue
        [ "$(readlink "/proc/$pid/cwd" 2> /dev/null)" = "$PWD" ] && n=$((n + 1))
    done
    echo $n
}

if [ -z "$PY" ]; then
    skip "bench/python/*.py: $PYTHON (3.9 or later) not found"
elif [ "$have_poolbench" = 0 ]; then
    skip "bench/python/*.py: $POOLBENCH is missing (the twins are checked against it)"
else
    # CPython's terminate() can hang for good (python/cpython#78178): a worker
    # started after the task handler's sentinels holds the inqueue's read
    # lock. Made to happen on purpose; ports.Run.terminate must end it.
    term_out=$(cd bench/python && timeout 60 "$PY" -c '
import time, ports
pool = ports.CountingPool(2, context=ports.CTX)
pool.close(); time.sleep(0.5)
pool._pool.clear(); pool._repopulate_pool(); time.sleep(0.5)
r = ports.Run("x", "x", None, 30.0); r.TERMINATE_BOUND_S = 1.0
r.terminate(pool); pool.join()
print(r.note is not None and "#78178" in r.note, r.hung, len(pool._pool))' 2>&1)
    check "ports.py: a terminate() hung as in python/cpython#78178 is unblocked ($term_out)" \
        test "$term_out" = "True False 2"
    for f in bench/python/*.py; do
        [ "$f" = bench/python/ports.py ] && continue
        check "$(basename "$f"): has a scenario of its name" test -f "scenarios/$(basename "$f" .py).lua"
    done
    for scenario in scenarios/*.lua; do
        name=$(basename "$scenario" .lua)
        f=bench/python/$name.py
        if [ ! -f "$f" ]; then
            not_ok "$name: a CPython twin $f"
            continue
        fi
        ok "$name: a CPython twin $f"
        check "$name.py: the docstring names the document it ports" \
            grep -q '^Ports document 00[0-4] (seeds/' "$f"
        if ! labels=$(labels_of "$scenario" 2> /dev/null) || [ -z "$labels" ]; then
            skip "$name.py: '$POOLBENCH show $scenario' failed (an older build?)"
            continue
        fi
        check "$name.py --list: the scenario's labels, in its order" \
            test "$(timeout $LIMIT "$PY" "$f" --list 2> /dev/null)" = "$labels"
        want=$(params_full_of "$scenario")
        got=$(twin_params "$f" 2> /dev/null || true)
        check "$name.py: the scenario's parameters, defaults and quick values${got:+}" \
            test "$got" = "$want"
        rc=0
        "$PY" "$f" --impl no_such_label > /dev/null 2>&1 || rc=$?
        check "$name.py: an unknown --impl is bad usage (exit 2)" test "$rc" = 2
        rc=0
        "$PY" "$f" --set no_such_param=1 --list > /dev/null 2>&1 || rc=$?
        check "$name.py: an unknown --set is bad usage (exit 2)" test "$rc" = 2

        # The twin's temporary files go to a directory of its own, which
        # must be empty afterwards (a make test beside this one has its own).
        twin_tmp=$tmp/twin_tmp.$name
        mkdir -p "$twin_tmp"
        t=$(date +%s.%N)
        rc=0
        TMPDIR=$twin_tmp timeout $LIMIT "$PY" "$f" --quick --json - > "$tmp/$name.json" \
            2> "$tmp/$name.err" || rc=$?
        secs=$(echo "$(date +%s.%N) - $t" | bc)
        check "$name.py --quick --json - ran every label (exit $rc, $(printf '%.1f' "$secs") s)" \
            test "$rc" = 0
        check "$name.py: the JSON parses" jq_ok . "$tmp/$name.json"
        # shellcheck disable=SC2016 # jq's $-variables
        check "$name.py: the top level mirrors poolbench's (engine, python, start method, params...)" \
            jq_ok --arg s "$name" --argjson labels "$(echo "$labels" | jq -R . | jq -s .)" \
            '.engine == "CPython" and (.python | startswith("3.")) and .start_method == "fork"
             and .scenario == $s and .quick == true and .repeat == 1 and .machine.cores > 0
             and (.date | length > 0) and ([.results[].label] == $labels)' \
            "$tmp/$name.json"
        check "$name.py: the scenario's parameters, resolved" \
            test "$(jq -r '.params | to_entries[] | "\(.key) \(.value)"' "$tmp/$name.json" |
                    awk '{ printf "%s %g\n", $1, $2 }')" = "$(echo "$want" | awk '{ print $1, $3 }')"
        bad=$(jq -r ".results[] | select(($RESULT_OK) | not) | .label" "$tmp/$name.json" 2> /dev/null |
              tr '\n' ' ')
        check "$name.py: every result has poolbench's keys and sane values${bad:+ (not: $bad)}" \
            test -z "$bad" -a -s "$tmp/$name.json"
        # The facts the scenario's hooks record (pb.fact("NAME", ...)), which
        # its checks read: the twin reports each under the same name, so
        # `poolbench compare` judges CPython by its own figures.
        missing=
        for k in $(grep -o 'pb\.fact("[A-Za-z0-9_]*"' "$scenario" | sed 's/.*("//; s/"$//' | sort -u); do
            jq_ok --arg k "$k" 'any(.results[]; .facts | has($k))' "$tmp/$name.json" ||
                missing="$missing $k"
        done
        check "$name.py: reports every fact the scenario records with pb.fact${missing:+ (missing:$missing)}" \
            test -z "$missing"
        if expect=$(twin_expect "$name"); then
            check "$name.py: CPython's figures show the phenomenon" \
                phenomenon_shown "$expect" "$tmp/$name.json"
        else
            not_ok "$name.py: no expectation for it in $0"
        fi
        sleep 0.2
        check "$name.py: no process left behind" test "$(leftovers "$name")" = 0
        check "$name.py: no temporary file left behind" \
            test -z "$(ls -A "$twin_tmp")"
    done
fi

# ---- hyperfine.sh --------------------------------------------------------------

if ! command -v hyperfine > /dev/null; then
    skip "bench/hyperfine.sh: hyperfine not installed (make deps)"
elif [ "$have_poolbench" = 0 ] || [ ! -f "$scn" ]; then
    skip "bench/hyperfine.sh: $POOLBENCH or $scn is missing"
else
    res=$tmp/results
    rc=0
    QUICK=1 RUNS=2 SCENARIOS=serialized_get RESULTS=$res PYTHON=${PY:-NONE} \
        timeout $LIMIT bench/hyperfine.sh > "$tmp/hf.out" 2>&1 || rc=$?
    check "hyperfine.sh QUICK=1 RUNS=2 SCENARIOS=serialized_get (exit $rc)" test "$rc" = 0
    check "hyperfine.sh echoes its parameters first" \
        test "$(head -1 "$tmp/hf.out")" = "ARG runs 2"
    labels=$(labels_of "$scn")
    for l in $labels; do
        check "hyperfine.sh: CSV and JSON for $l" \
            test -s "$res/serialized_get-$l.csv" -a -s "$res/serialized_get-$l.json"
    done
    check "hyperfine.sh: machine.txt records the core count" \
        grep -qx "cores $(nproc)" "$res/machine.txt"
    k=$(echo "$labels" | wc -w)
    sides=1
    [ -n "$PY" ] && sides=2
    check "hyperfine.sh: summary.csv has $((k * sides)) rows ($k strategies x $sides sides)" \
        test "$(tail -n +2 "$res/summary.csv" | wc -l)" = $((k * sides))
    if [ -n "$PY" ]; then
        check "hyperfine.sh: a CPython row beside each C row" \
            test "$(grep -c ',cpython,' "$res/summary.csv")" = "$k"
    fi

    rc=0
    QUICK=1 RUNS=2 SCENARIOS=serialized_get STRATEGIES=merged RESULTS=$tmp/nopy PYTHON=NONE \
        timeout $LIMIT bench/hyperfine.sh > "$tmp/hf2.out" 2>&1 || rc=$?
    check "hyperfine.sh without python: C only, with a message, exit 0 (exit $rc)" \
        test "$rc" = 0 -a "$(grep -c 'CPython side skipped' "$tmp/hf2.out")" -ge 1 -a \
        "$(tail -n +2 "$tmp/nopy/summary.csv" | wc -l)" = 1
fi

# ---- bench/overhead ------------------------------------------------------------

OVERHEAD=${OVERHEAD:-build/overhead}
if [ ! -x "$OVERHEAD" ]; then
    skip "bench/overhead: $OVERHEAD is missing"
else
    rc=0
    timeout $LIMIT "$OVERHEAD" -n 300 -a apply,map_async -t shm -p none > "$tmp/ovh.out" \
        2> "$tmp/ovh.err" || rc=$?
    check "overhead -n 300 -a apply,map_async -t shm: exit 0, no error (exit $rc)" \
        test "$rc" = 0 -a ! -s "$tmp/ovh.err"
    # A row: label (one or more words), medium, wall, us/task, loop, messages,
    # errors, and CPython's two columns ("-" with -p none).
    check "overhead: both APIs ran, every result checked and right (errors column 0)" \
        test "$(awk '/^(apply \(sync\)|map_async \(chunk 0\)) +shm / { print $(NF - 2) }' "$tmp/ovh.out" |
                tr '\n' ' ')" = "0 0 "
    check "overhead: map_async against the start-up, each the median of 5 fresh pools" \
        eval "grep -A1 'map_async wall .*<= 1.5x pool start-up: .*x (.* ms vs .* ms)  \(PASS\|MISS\)' \
              '$tmp/ovh.out' | grep -q 'each the median of 5 fresh pools; the map.s .*\.\..* ms'"
    rc=0
    "$OVERHEAD" -a no_such_api > /dev/null 2>&1 || rc=$?
    check "overhead: an unknown API is bad usage (exit 2)" test "$rc" = 2
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
