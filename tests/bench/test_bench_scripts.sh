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
#   - every bench/python/*.py port (all but ports.py, their shared command
#     line) opens with the docstring naming the document
#     it ports, accepts every parameter of its scenario under the same name,
#     and runs every variant it lists with tiny parameters and --check.
#   - bench/hyperfine.sh in its quick mode (QUICK=1 RUNS=2, one scenario)
#     writes hyperfine's CSV and JSON for each strategy, the summary and
#     machine.txt, with a CPython row beside each C row where python3 is
#     present; and with PYTHON=NONE it still succeeds, C only.
# Parts whose tools are missing (build/poolbench, a scenario, python3,
# hyperfine) are skipped with a message, not failed: the test runs on a
# tree where other parts are still being written.
#
# Prints one "ok - ..." or "not ok - ..." line per check ("skip - ..." for
# skipped parts, not counted), ends with exactly one line "N passed, N
# failed", and exits 1 when anything failed. Nothing timed is asserted:
# speed belongs to the benchmarks, not to tests. Takes about 15 seconds.
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

# ---- the CPython programs -----------------------------------------------------

# Tiny parameters per program: a fraction of a second each.
tiny_args() {
    case $1 in
        serialized_get) echo "--n 4 --workers 2 --a-ms 5 --b-ms 5" ;;
        get_placement) echo "--n 4 --workers 2 --task-ms 5" ;;
        early_stop) echo "--n 200 --k 50 --task-ms 1 --workers 4 --n-long 400 --k-long 100" ;;
        overhead) echo "--n 200 --workers 2" ;;
        chunk_skew) echo "--n 16 --task-ms 5 --workers 2 --chunksize 14" ;;
        quick_tasks) echo "--n 16 --workers 4" ;;
        pool_vs_fork) echo "--n 20 --workers 2" ;;
        imap_memory) echo "--n 200 --payload 100 --workers 2" ;;
        *) return 1 ;;
    esac
}

if [ -z "$PY" ]; then
    skip "bench/python/*.py: $PYTHON (3.9 or later) not found"
else
    for f in bench/python/*.py; do
        # ports.py is the command line the ports share, not a port itself.
        [ "$f" = bench/python/ports.py ] && continue
        name=$(basename "$f" .py)
        check "$name.py: the docstring names the document it ports" \
            grep -q '^Ports document 00[0-4] (seeds/' "$f"
        if ! args=$(tiny_args "$name"); then
            not_ok "$name.py: no tiny parameters for it in $0"
            continue
        fi
        impls=$(timeout $LIMIT "$PY" "$f" --list 2> /dev/null || true)
        check "$name.py --list names its variants" test -n "$impls"
        if [ "$have_poolbench" = 1 ] && [ -f "scenarios/$name.lua" ]; then
            missing=""
            help=$("$PY" "$f" --help)
            for p in $(params_of "scenarios/$name.lua"); do
                echo "$help" | grep -Eq -- "--${p//_/-}([^-a-z0-9_]|\$)" || missing="$missing $p"
            done
            check "$name.py takes every parameter of scenarios/$name.lua${missing:+ (missing:$missing)}" \
                test -z "$missing"
            others=""
            for l in $(labels_of "scenarios/$name.lua"); do
                echo "$impls" | grep -qx "$l" || others="$others $l"
            done
            [ -n "$others" ] && echo "# $name.py: no CPython variant for$others (C only)"
        fi
        for impl in $impls; do
            # shellcheck disable=SC2086 # $args is a list of words
            out=$(timeout $LIMIT "$PY" "$f" --impl "$impl" $args --check 2>&1) && rc=0 || rc=$?
            check "$name.py --impl $impl $args --check: ${out##*$'\n'}" test "$rc" = 0
        done
        rc=0
        "$PY" "$f" --impl no_such_variant > /dev/null 2>&1 || rc=$?
        check "$name.py: an unknown --impl is bad usage (exit 2)" test "$rc" = 2
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

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
