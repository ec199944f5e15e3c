#!/usr/bin/env bash
# test_compare.sh: `poolbench compare`, `make compare`'s script, the
# reproduction report's generator, the compare figure and `lab -c`'s CPython
# column.
#
#   tests/harness/test_compare.sh [POOLBENCH]      default build/poolbench; run from the repo root
#
# What is tested: compare on a real scenario and its real twin
# (serialized_get --quick: both columns, the ratios, both check lists, JSON
# read back by jq with the documented keys, the CSV); on a fake twin with
# fixed figures (tests/harness/compare/: CPython's ratio must be exactly
# 3.00, a `cannot` check n/a, a failing CPython check reported without
# failing the run); worker_death, quick_tasks and early_stop --quick (each
# engine's own figures in the checks, a `cannot` field makes a check n/a);
# without python3 (PYTHON=/nonexistent, a PATH without it)
# or without the twin, poolbench's side alone with a one-line notice; a twin
# that fails; bad usage (exit 2); bench/compare.sh QUICK=1 on one scenario
# (JSON, CSV, compare.dat, the figure, a report); bench/reproduction.py on
# that results directory; plots/compare.gp on test data; lab -c with and
# without python3. Tests assert structure, never which side of a margin a
# timing lands on. About 40 seconds. One line per test, and "N passed, N
# failed" at the end; exit status 1 if any failed.

set -u

PB=${1:-build/poolbench}
. "$(dirname "$0")/../lib.sh"
FAKE=tests/harness/compare
jq_ok() { jq -e "$@" > /dev/null; } # a jq condition, quietly

for tool in jq python3; do
    if ! command -v "$tool" > /dev/null; then
        echo "test_compare: $tool is missing (make deps installs jq; python3 runs the twins)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
if [ ! -x "$PB" ]; then
    echo "test_compare: $PB is not an executable (build it first)"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---- a real scenario and its twin ---------------------------------------------
run compare scenarios/serialized_get.lua --quick --repeat 2 --json "$tmp/sg.json" --csv "$tmp/sg.csv"
check "compare serialized_get --quick: runs, poolbench's checks judge the exit status" run_ok
check "compare: the twin and Python's version are echoed" \
    out_matches '^ARG twin .*bench/python/serialized_get\.py$' '^ARG python .* [0-9]+\.[0-9]+'
check "compare: every strategy has poolbench's, CPython's and the model's time" \
    out_matches '^  async_get_loop +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$' \
                '^  merged +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$' \
                '^  callback_chain +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$' \
                '^  map_async +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$'
check "compare: the key ratio for both engines and the model, and whether they agree" \
    out_matches '^  async_get_loop / merged +poolbench [0-9.]+ +CPython [0-9.]+ +model 2\.25 +(agree|DISAGREE)$'
check "compare: the checks ran on both sides" \
    out_matches '^checks, poolbench:' '^PASS  callbacks ran in the parent' \
                '^checks, CPython' '^  (PASS|FAIL)  callbacks ran in the parent' \
                '^CPython checks: [0-9]+ of 10 passed, [0-9]+ n/a$'
check "compare --json: parses, with the documented keys" jq_ok '
    (.poolbench | type == "string") and (.python | type == "string") and
    .scenario == "serialized_get" and (.twin | test("serialized_get.py$")) and
    .cpython_missing == null and .quick == true and .repeat == 2 and
    (.machine.cores > 0) and (.machine.os | length > 0) and (.date | length > 0) and
    .params.n == 8 and (.strategies | length == 4) and
    all(.strategies[]; (.poolbench_s > 0) and (.cpython_s > 0) and (.model_s > 0) and
        .cpython_min_s <= .cpython_s and .cpython_s <= .cpython_max_s and
        .poolbench_min_s <= .poolbench_s and .poolbench_s <= .poolbench_max_s) and
    .ratios[0].num == "async_get_loop" and .ratios[0].den == "merged" and .ratios[0].key and
    (.ratios[0].poolbench > 1) and (.ratios[0].cpython > 1) and
    (.ratios[0].agree | type == "boolean") and
    (.checks.poolbench | length == 10) and (.checks.cpython | length == 10) and
    all(.checks.cpython[]; has("name") and has("ok") and has("detail") and has("na"))' "$tmp/sg.json"
check "compare --csv: a header, 4 strategy rows, a key ratio row and a ratio row" \
    awk -F, 'NR == 1 { ok = $1 == "scenario" && $2 == "kind" && $12 == "python_version" }
             NR > 1 { k[$2]++ } END { exit !(ok && k["strategy"] == 4 && k["key_ratio"] == 1 && k["ratio"] == 1) }' "$tmp/sg.csv"

# ---- a fake twin with fixed figures ------------------------------------------------
POOLBENCH_PYTHON_DIR=$FAKE run compare $FAKE/fake_twin.lua --json "$tmp/fake.json"
check "fake twin: poolbench's checks hold, so exit 0 though CPython's fail" exits_with 0
check "fake twin: CPython's times are the twin's" \
    out_matches '^  map_async +[0-9.]+ +0\.100 ' '^  slow +[0-9.]+ +0\.300 '
check "fake twin: CPython's ratio computed from its figures (0.3 / 0.1)" \
    out_matches '^  slow / map_async +poolbench [0-9.]+ +CPython 3 +model 4 '
check "fake twin: a check the twin's cannot map covers is n/a, not FAIL" \
    out_matches '^  n/a for CPython: map_async: the error names the worker \(none here\): the fake twin names no worker$'
check "fake twin: a check that fails for CPython is reported FAIL" \
    out_matches '^  FAIL  no fact named x$' '^CPython checks: 1 of 3 passed, 1 n/a$'
check "fake twin: the JSON marks the n/a check with its reason" jq_ok '
    [.checks.cpython[] | select(.na != null)] | length == 1 and .[0].na == "the fake twin names no worker"' "$tmp/fake.json"

# ---- checks judge each engine by its own figures (r[label] and its facts) ---------
# worker_death: the items that came back are facts (pb.fact in the stop rule;
# the twin's own), so CPython's imap, which hangs at item k, shows its own.
run compare scenarios/worker_death.lua --quick --json "$tmp/wd.json"
check "compare worker_death --quick: runs, poolbench's checks hold" run_ok
check "worker_death: imap's 'items came back' is each engine's own (CPython hangs at k)" jq_ok '
    def imap(side): [side[] | select(.name | startswith("imap: only the job"))][0].detail;
    (imap(.checks.poolbench) | test("11 items came back")) and
    (imap(.checks.cpython) | test("[0-9]+ items came back")) and
    imap(.checks.cpython) != imap(.checks.poolbench)' "$tmp/wd.json"
run compare scenarios/quick_tasks.lua --quick --repeat 2 --json "$tmp/qt.json"
check "compare quick_tasks --quick: CPython's repeats check reads the twin's facts" jq_ok '
    def rep(side): [side[] | select(.name == "map_async: every repeat ran n tasks on at most `workers` processes")][0];
    (rep(.checks.poolbench).detail | startswith("2 repeats recorded of 2")) and
    (rep(.checks.cpython).detail | startswith("1 repeats recorded of 2")) and rep(.checks.cpython).ok' "$tmp/qt.json"
# CPython's checks judge the twin's own figures, never what poolbench's run
# left behind: its bytes on the task pipe (big_argument), its manager's
# dict and queue (shared_state); a fact CPython cannot have (a time limit)
# makes a check n/a, not an error in the checks (get_timeout).
run compare scenarios/big_argument.lua --quick --json "$tmp/ba.json"
check "compare big_argument --quick: CPython's bytes_sent is the twin's pipe count" jq_ok '
    def c(side; p): [side[] | select(.name | startswith(p))][0];
    (c(.checks.cpython; "per_task: the argument crossed").detail | capture("^(?<b>[0-9]+) bytes").b
       | tonumber) >= 524288 and
    (c(.checks.cpython; "per_task: the argument crossed").na | test("pickle memoizes")) and
    (c(.checks.cpython; "initializer: the argument never").detail
       != c(.checks.poolbench; "initializer: the argument never").detail)' "$tmp/ba.json"
run compare scenarios/shared_state.lua --quick --json "$tmp/ss.json"
check "compare shared_state --quick: CPython's checks read the twin's manager, not poolbench's" jq_ok '
    def c(side; p): [side[] | select(.name | startswith(p))][0];
    c(.checks.cpython; "queue_put").ok and c(.checks.cpython; "dict_set").ok and
    (c(.checks.cpython; "a manager access").detail != c(.checks.poolbench; "a manager access").detail)' \
    "$tmp/ss.json"
run compare scenarios/get_timeout.lua --quick --json "$tmp/gt.json"
check "compare get_timeout --quick: each check CPython fails is n/a (no time limit), none an error" jq_ok '
    ([.checks.cpython[] | select(.ok | not) | select(.na == null)] | length) == 0 and
    ([.checks.cpython[] | select(.name | startswith("limited:")) | select(.na != null)] | length) == 2' \
    "$tmp/gt.json"
# early_stop: the twin's `cannot` names the field messages_sent; the P5 check
# reads it (noted as the checks run), so for CPython it is n/a, never FAIL.
# CPython's twin of producer_consumer_long (a producer thread, then
# terminate()) hung once here in the pool's own shutdown: the twin's run is
# bounded (POOLBENCH_TWIN_TIMEOUT), so such a hang ends this test, never CI.
POOLBENCH_TWIN_TIMEOUT=60 run compare scenarios/early_stop.lua --quick --json "$tmp/es.json"
check "compare early_stop --quick: the P5 check that reads messages_sent is n/a for CPython" \
    eval '[ -s "$tmp/es.json" ] && ! grep -q "^  FAIL  P5: submit-all-then-check" "$tmp/out" &&
          jq -e "[.checks.cpython[] | select(.name | startswith(\"P5: submit-all\"))][0] |
                 .ok or (.na | test(\"messages\"))" "$tmp/es.json" > /dev/null'

FAKE_TWIN_FAIL=1 POOLBENCH_PYTHON_DIR=$FAKE run compare $FAKE/fake_twin.lua --json "$tmp/failed.json"
check "a twin that fails: said in a line, poolbench's side still judged" \
    exits_with 0 "CPython: a run of the twin failed: " "exited with status 3" "checks: 3 of 3 passed"
check "a twin that fails: cpython_missing says why" \
    jq_ok '.cpython_missing | test("exited with status 3")' "$tmp/failed.json"

FAKE_TWIN_SLEEP=30 FAKE_TWIN_PIDS=$tmp/pids POOLBENCH_TWIN_TIMEOUT=1 POOLBENCH_PYTHON_DIR=$FAKE \
    run compare $FAKE/fake_twin.lua
check "a twin that hangs: killed at its bound, said in a line, poolbench's side judged" \
    exits_with 0 "killed: no answer after 1 s" "checks: 3 of 3 passed"
sleep 0.5
# Gone or a zombie (a container's init may reap late); the twin ran once
# (after a run killed at its bound, compare starts no other).
check "a twin that hangs: it and the process it forked are gone, and it ran once" \
    eval '[ "$(wc -l < "$tmp/pids")" = 2 ] &&
          ! ps -o stat= -p "$(paste -sd, "$tmp/pids")" | grep -qv "^Z"'

# ---- without python3 or without the twin -----------------------------------------
PYTHON=/nonexistent run compare $FAKE/fake_twin.lua --json "$tmp/nopy.json"
check "PYTHON=/nonexistent: one line says so, poolbench's side runs" \
    exits_with 0 "checks: 3 of 3 passed"
check "PYTHON=/nonexistent: exactly one notice line, and CPython's column empty" \
    eval '[ "$(grep -c "^CPython: not measured: \$PYTHON (/nonexistent) is not an executable" "$tmp/out")" = 1 ] &&
          grep -qE "^  slow +[0-9.]+ +- " "$tmp/out" && ! grep -q "^checks, CPython" "$tmp/out"'
check "PYTHON=/nonexistent: the JSON has python null and cpython_missing" \
    jq_ok '.python == null and (.cpython_missing | test("PYTHON")) and (.checks.cpython | length == 0)
           and .ratios[0].cpython == null and .ratios[0].agree == null' "$tmp/nopy.json"
mkdir -p "$tmp/nopath"
PATH=$tmp/nopath run compare $FAKE/fake_twin.lua
check "PATH without python3: one line says so, poolbench's side runs" \
    exits_with 0 "CPython: not measured: python3 not found on PATH" "checks: 3 of 3 passed"
POOLBENCH_PYTHON_DIR=$tmp/nopath run compare $FAKE/fake_twin.lua
check "no twin for the scenario: one line says so, poolbench's side runs" \
    exits_with 0 "CPython: not measured: no CPython twin $tmp/nopath/fake_twin.py"

# ---- bad usage ------------------------------------------------------------------
run compare
check "compare without a file: exit 2 with the usage" fails_with 2 "compare needs a scenario file" "usage: poolbench compare"
run compare $FAKE/fake_twin.lua --bogus
check "compare --bogus: exit 2" fails_with 2 "unknown option '--bogus'"
run compare $FAKE/fake_twin.lua --repeat 0
check "compare --repeat 0: exit 2" fails_with 2 "--repeat expects a whole number"
run compare $FAKE/fake_twin.lua --set n
check "compare --set without =: exit 2" fails_with 2 "--set needs key=value"
run compare $FAKE/fake_twin.lua --set nope=1
check "compare --set unknown=1: exit 2, the valid names listed" fails_with 2 "nope"
run compare $tmp/missing.lua
check "compare on a missing file: exit 2" fails_with 2 "missing.lua"
run --help
check "--help lists compare" out_has "poolbench compare FILE"

# ---- make compare's script, the report, the figure ------------------------------
res=$tmp/results
POOLBENCH=$PB QUICK=1 SCENARIOS="serialized_get get_placement" OUT=$res DOC=$tmp/reproduction.md \
    FIGURES=$tmp/fig bench/compare.sh > "$tmp/out" 2> "$tmp/err"
rc=$?
check "bench/compare.sh QUICK=1 on two scenarios: exit 0" run_ok
check "bench/compare.sh: JSON, CSV and output per scenario, compare.dat with two rows" \
    eval 'for n in serialized_get get_placement; do [ -s "$res/$n.json" ] && [ -s "$res/$n.csv" ] && [ -s "$res/$n.txt" ] || exit 1; done;
          [ "$(grep -cv "^#" "$res/compare.dat")" = 2 ] && grep -q "^# label measured on this machine: [0-9]* cores" "$res/compare.dat"'
check "bench/compare.sh: the figure, PNG and SVG" eval '[ -s "$tmp/fig/compare.png" ] && [ -s "$tmp/fig/compare.svg" ]'
check "bench/reproduction.py: the report, generated from the results" \
    eval 'f=$tmp/reproduction.md; grep -q "^# Reproduction report" "$f" && grep -q "^\*\*Measured\*\* .* on this machine: [0-9]* cores" "$f" &&
          grep -q "^| P1, P2 | serialized_get | async_get_loop / merged | [0-9.]* | [0-9.]* | 2.25 | " "$f" &&
          grep -q "^| P3 | get_placement | async_get_loop / async_get_after | " "$f" &&
          grep -qF "n=8, w=4, a=b=50 ms: get-in-loop 0.478 s" "$f" &&
          grep -q "^| async_get_loop | [0-9.]* | [0-9.]* | 0.450 |$" "$f" &&
          grep -q "^### Notes (hand-written, 2026-11-24" "$f" && grep -q "Not in this .make compare. run" "$f"'
python3 bench/reproduction.py "$tmp/nopath" "$tmp/none.md" > "$tmp/out" 2> "$tmp/err"
rc=$?
check "bench/reproduction.py on a directory without results: exit 1, says so" \
    fails_with 1 "no compare results"
mkdir -p "$tmp/fig2"
gnuplot -e "datadir='$res'; outdir='$tmp/fig2'" plots/compare.gp > "$tmp/out" 2> "$tmp/err"
rc=$?
check "plots/compare.gp draws from test data" eval '[ $rc = 0 ] && [ -s "$tmp/fig2/compare.png" ] && [ -s "$tmp/fig2/compare.svg" ]'

# ---- lab -c -------------------------------------------------------------------
run lab serialized_get --seed 1 -c
check "lab -c: CPython measured with the drawn parameters, a CPython column" \
    eval 'run_ok && out_matches "^CPython: the twin, once, with the same parameters: " "^CPython [0-9]+\.[0-9]+.* measured it$" \
          "^  # +predicted +measured +CPython +ratio" "^  1 +[0-9.]+ s +[0-9.]+ s +[0-9.]+ s "'
PYTHON=/nonexistent run lab serialized_get --seed 1 -c
check "lab -c without python3: one line says so, the table as before (no CPython column)" \
    eval 'run_ok && [ "$(grep -c "^CPython: not measured: " "$tmp/out")" = 1 ] &&
          out_matches "^  1 +[0-9.]+ s +[0-9.]+ s +[0-9.]+ +async_get_loop$" && ! out_matches "^  # .*CPython"'

finish
