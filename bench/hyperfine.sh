#!/usr/bin/env bash
# hyperfine.sh: times every scenario x strategy as a whole command with
# hyperfine, poolbench (C) and CPython side by side. `make bench` runs it.
#
#   bench/hyperfine.sh                          every row of the table below
#   SCENARIOS=serialized_get,overhead bench/hyperfine.sh
#   QUICK=1 RUNS=2 SCENARIOS=serialized_get bench/hyperfine.sh
#
# Why whole commands: a user compares what a program costs from start to
# exit, start-up included, and so does hyperfine, with a warm-up and several
# runs for a median. Why CPython in the same hyperfine invocation: the
# machines are shared and noisy, so C and CPython are only comparable when
# measured on one machine at one time, run after run. For each pair,
#
#   build/poolbench run scenarios/X.lua --impl Y --repeat 1 --set k=v ...
#   python3 bench/python/X.py --impl Y --set k=v ...
#
# are timed together. The CPython side runs where python3 (3.9 or later) is
# present and bench/python/X.py has a variant named Y; otherwise that side is
# skipped with a message. The parameters of each scenario are fixed in the
# table below, the same for both sides, chosen small enough that the whole
# default run takes a few minutes on a 2-core machine (4 min 20 s measured).
#
# Environment (every value is echoed first, OSTEP style):
#   RUNS        timed runs per command (default 5; 2 with QUICK=1)
#   WARMUP      warm-up runs per command (default 1; 0 with QUICK=1)
#   QUICK=1     the table's quick parameters: a smoke test, not figures
#   SCENARIOS   scenarios to run, comma- or space-separated (default: all)
#   STRATEGIES  strategies (labels) to run, the same way (default: as in the table)
#   RESULTS     where the files go (default bench/results, ignored by git;
#               a relative path is taken from the repository's root)
#   POOLBENCH   the C command (default build/poolbench)
#   PYTHON      the CPython interpreter (default python3; NONE to skip it)
#
# Output, in RESULTS: X-Y.csv and X-Y.json (hyperfine's exports, one pair
# each), summary.csv (one row per command of this run: scenario, strategy,
# side, hyperfine's figures, parameters), commands.txt (every command line
# timed) and machine.txt (cores, uname, date, versions, the parameters).
#
# A poolbench run whose scenario check fails exits 1; hyperfine is told to
# ignore that (-i: on a noisy machine a ratio check can miss, and the figures
# are still figures), and this script warns. Any other non-zero exit (2 for
# bad usage, a crash) is an error: the script goes on with the next pair and
# exits 1 at the end.

set -euo pipefail

cd "$(dirname "$0")/.."   # the repository's root: paths below are relative to it

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then RUNS=${RUNS:-2}; WARMUP=${WARMUP:-0}; fi
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
SCENARIOS=${SCENARIOS:-}
STRATEGIES=${STRATEGIES:-}
RESULTS=${RESULTS:-bench/results}
POOLBENCH=${POOLBENCH:-build/poolbench}
PYTHON=${PYTHON:-python3}

# The benchmark table. One row per scenario:
#   scenario | strategies | parameters for make bench | parameters for QUICK=1
# strategies: labels, comma-separated, or "all" for every label the scenario
# lists (`poolbench show`). Parameters: key=value, passed to poolbench as
# --set key=value to both sides (every scenario has a CPython twin with the
# same parameters, bench/python/X.py); the single word "quick" means both
# sides' --quick (the twin has the scenario's quick values). Sizes, and why:
#   serialized_get, get_placement, chunk_skew, quick_tasks: the scenarios'
#     defaults (the documents' settings: n=8, w=4, 50 ms; 16 tasks, chunksize
#     14, pool 2; 16 quick tasks on 4 workers).
#   early_stop: the scenario's default (a tenth of document 001's 50 000
#     tasks, same k/n), with n_long, the P5 variants' input, at document 001's
#     50 000 instead of the scenario's 600 000: CPython's submit loop (tens of
#     microseconds a task) is already far longer than the answer at 50 000,
#     and 600 000 handles would cost it over ten seconds a run.
#   overhead: document 002's 20 000 trivial tasks on 6 workers, as in
#     PHENOMENA.md (the longest row: apply (sync) alone takes 6 s in CPython).
#   pool_vs_fork: PHENOMENA.md's 500 trivial tasks, pool of 4.
#   imap_memory: the scenario's default (2 000 results of 8 KiB, and 4x that).
#   worker_init (P14, the cost of maxtasksperchild): the scenario's default,
#     a throughput figure (about 3 s in all).
#   errors, one_file, lifecycle, worker_death: behaviour, not speed: timed
#     with their quick settings (CPython's worker_death waits out its bound,
#     a few seconds: its Pool never notices the dead worker, gh-66587).
# hyperfine times each twin as a whole command, start-up included, as a
# user would; the twin's own --json gives the figures timed inside the
# process (bench/python/ports.py), the ones `poolbench compare` uses.
TABLE=$(cat <<'EOF'
serialized_get | all | n=8 workers=4 a_ms=50 b_ms=50        | n=8 workers=4 a_ms=20 b_ms=20
get_placement  | all | n=8 workers=4 task_ms=50              | n=8 workers=4 task_ms=20
early_stop     | all | n=5000 k=1000 task_ms=1 workers=10 n_long=50000 k_long=1000 | n=1000 k=200 task_ms=1 workers=10 n_long=5000 k_long=200
overhead       | all | n=20000 workers=6                      | n=500 workers=2
chunk_skew     | all | n=16 task_ms=50 workers=2 chunksize=14 | n=16 task_ms=10 workers=2 chunksize=14
quick_tasks    | all | n=16 workers=4                         | n=16 workers=4
pool_vs_fork   | all | n=500 workers=4                        | n=50 workers=2
imap_memory    | all | n=2000 payload=8192 workers=2          | n=500 payload=8192 workers=2
errors         | all | quick                                  | quick
one_file       | all | quick                                  | quick
lifecycle      | all | quick                                  | quick
worker_init    | all | n=10000 workers=2                      | quick
worker_death   | all | quick                                  | quick
EOF
)

die() { echo "hyperfine.sh: $*" >&2; exit 1; }

# "a,b c" -> "a b c"
words() { echo "${1//,/ }"; }

# True when word $1 is among the words of $2 (or $2 is empty: no filter).
wanted() {
    [ -z "$2" ] && return 0
    local w
    for w in $(words "$2"); do [ "$w" = "$1" ] && return 0; done
    return 1
}

# The variants a scenario compares, from `poolbench show`: "label strategy"
# per line, from the lines after "strategies and the model's predictions"
# and their header.
scenario_variants() {
    "$POOLBENCH" show "$1" | awk '
        /^strategies/ { on = 1; next }
        on && NF == 0 { exit }
        on && $1 != "label" { print $1, $2 }'
}

# Warns about hyperfine's exit codes for one pair; returns 1 when a run ended
# with anything but 0 or 1 (1: a scenario check failed, timing kept).
check_exit_codes() {
    local json=$1 bad
    bad=$(tr -d ' \n' < "$json" | grep -o '"command":"[^"]*"\|"exit_codes":\[[^]]*\]' | awk -F'[][]' '
        /^"command"/ { split($0, a, "\""); name = a[4]; next }
        {
            n = split($2, c, ",")
            ones = 0; other = 0
            for (i = 1; i <= n; i++) { if (c[i] == "1") ones++; else if (c[i] != "0") other++ }
            if (ones) printf "warn %s: a check failed in %d of %d runs (timing kept)\n", name, ones, n
            if (other) printf "error %s: exit codes %s\n", name, $2
        }')
    [ -z "$bad" ] && return 0
    # shellcheck disable=SC2001 # sed indents every line of the list
    echo "$bad" | sed 's/^/  /' >&2
    ! echo "$bad" | grep -q '^error'
}

# ---- what to run with --------------------------------------------------------

command -v hyperfine > /dev/null ||
    die "hyperfine not found: run 'make deps' (or apt-get install hyperfine)"
[ -x "$POOLBENCH" ] || die "$POOLBENCH not found: run 'make' first"

# The CPython side. The interpreter is resolved to its real executable, so
# that a wrapper such as pyenv's shim (a shell script that costs ~80 ms per
# start) is not timed as CPython's start-up.
PY=""
py_note=""
if [ "$PYTHON" = NONE ]; then
    py_note="CPython side skipped: PYTHON=NONE"
elif ! command -v "$PYTHON" > /dev/null; then
    py_note="CPython side skipped: $PYTHON not found (install python3 to compare)"
elif ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2> /dev/null; then
    py_note="CPython side skipped: $PYTHON is older than 3.9"
else
    PY=$("$PYTHON" -c 'import sys; print(sys.executable)')
fi

table_names=$(echo "$TABLE" | awk -F'|' '{ gsub(/ /, "", $1); print $1 }')
for s in $(words "$SCENARIOS"); do
    echo "$table_names" | grep -qx "$s" ||
        die "SCENARIOS: no scenario '$s' in the table (known: $(echo "$table_names" | tr '\n' ' '))"
done

mkdir -p "$RESULTS"
cores=$(nproc)
params_echo=$(cat <<EOF
ARG runs $RUNS
ARG warmup $WARMUP
ARG quick $QUICK
ARG scenarios ${SCENARIOS:-all}
ARG strategies ${STRATEGIES:-as in the table}
ARG results $RESULTS
ARG poolbench $POOLBENCH
ARG python ${PY:-none}
ARG cores $cores
EOF
)
echo "$params_echo"
[ -n "$py_note" ] && echo "$py_note"

{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cores $cores"
    echo "uname $(uname -a)"
    echo "cpu $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2> /dev/null)"
    echo "hyperfine $(hyperfine --version | awk '{ print $2 }')"
    "$POOLBENCH" --version 2>&1 | head -1
    if [ -n "$PY" ]; then echo "python $("$PY" --version 2>&1) ($PY)"; else echo "python none: $py_note"; fi
    echo "$params_echo"
} > "$RESULTS/machine.txt"

summary=$RESULTS/summary.csv
echo "scenario,strategy,side,mean_s,stddev_s,median_s,user_s,system_s,min_s,max_s,runs,params" > "$summary"
: > "$RESULTS/commands.txt"

# ---- the pairs ---------------------------------------------------------------

failures=()
notes=()
npairs=0
while IFS='|' read -r scenario strategies params quick_params; do
    scenario=$(echo "$scenario" | xargs)
    [ -z "$scenario" ] && continue
    wanted "$scenario" "$SCENARIOS" || continue
    [ "$QUICK" = 1 ] && params=$quick_params
    params=$(echo "$params" | xargs)
    strategies=$(echo "$strategies" | xargs)
    file=scenarios/$scenario.lua
    if [ ! -f "$file" ]; then
        echo "== $scenario: skipped, $file does not exist (yet)"
        continue
    fi
    variants=$(scenario_variants "$file")
    if [ "$strategies" = all ]; then
        strategies=$(echo "$variants" | awk '{ print $1 }' | tr '\n' ' ')
    fi

    # The same parameters, as each side spells them.
    c_args=(--repeat 1)
    py_args=()
    for kv in $params; do
        if [ "$kv" = quick ]; then
            c_args+=(--quick)
            py_args+=(--quick)   # the twin has the scenario's quick values
        else
            c_args+=(--set "$kv")
            py_args+=(--set "$kv")
        fi
    done

    # Whether this scenario has a CPython side, and why not when it has none.
    pyfile=bench/python/$scenario.py
    py_impls=""
    py_why=""
    if [ -z "$PY" ]; then
        py_why=$py_note
    elif [ ! -f "$pyfile" ]; then
        py_why="C only: no CPython counterpart"
    else
        py_impls=$("$PY" "$pyfile" --list)
    fi

    echo "== $scenario ($params)${py_why:+; $py_why}"
    for label in $(words "$strategies"); do
        wanted "$label" "$STRATEGIES" || continue
        npairs=$((npairs + 1))
        c_cmd="$POOLBENCH run $file --impl $label ${c_args[*]}"
        names=(-n "poolbench $scenario $label")
        cmds=("$c_cmd")
        if echo "$py_impls" | grep -qx "$label"; then
            py_cmd="$PY $pyfile --impl $label ${py_args[*]}"
            # --list parses every argument first: a parameter the program
            # does not know is a usage error here, not a timed failure.
            if $py_cmd --list > /dev/null; then
                names+=(-n "cpython $scenario $label")
                cmds+=("$py_cmd")
            else
                failures+=("$scenario $label: $pyfile rejects its parameters")
            fi
        elif [ -z "$py_why" ]; then
            echo "   ($label: $pyfile has no variant $label; C only)"
        fi
        # Every row is a label, and --impl LABEL runs that variant alone.
        printf '%s\n' "${cmds[@]}" >> "$RESULTS/commands.txt"

        out=$RESULTS/$scenario-$label
        # -N: the commands need no shell, so none is started and corrected for.
        if ! hyperfine -N -i --warmup "$WARMUP" --runs "$RUNS" \
                --export-csv "$out.csv" --export-json "$out.json" \
                "${names[@]}" "${cmds[@]}"; then
            failures+=("$scenario $label: hyperfine failed")
            continue
        fi
        check_exit_codes "$out.json" || failures+=("$scenario $label: a command failed (see above)")

        # Hyperfine's CSV rows come in the order of the commands: C, then CPython.
        tail -n +2 "$out.csv" | awk -F, -v OFS=, -v s="$scenario" -v l="$label" \
                -v runs="$RUNS" -v p="$params" '
            { side = NR == 1 ? "poolbench" : "cpython"
              print s, l, side, $2, $3, $4, $5, $6, $7, $8, runs, p }' >> "$summary"
    done
done <<< "$TABLE"

echo
echo "results: $RESULTS/ ($npairs pairs; summary.csv, machine.txt, commands.txt)"
if [ ${#notes[@]} -gt 0 ]; then
    echo "notes:"
    printf '  %s\n' "${notes[@]}"
fi
if [ ${#failures[@]} -gt 0 ]; then
    echo "hyperfine.sh: ${#failures[@]} pair(s) failed:" >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi
