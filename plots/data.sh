#!/usr/bin/env bash
# data.sh: runs every scenario once and writes the data files the figures
# read (plots/*.gp), into plots/out/data/. `make plots` and `make run` run it.
#
#   plots/data.sh                 every scenarios/*.lua, --repeat 5, full sweeps
#   QUICK=1 plots/data.sh         --quick, --repeat 2, short sweeps (tests/plots/test_plots.sh)
#   SCENARIOS="chunk_skew overhead" plots/data.sh     only these (and the sweeps they feed)
#
# Why one script for every figure's data: `make run` must run each scenario
# once, not once for its table and again for the plots. So each scenario runs
# here, once, with its table on stdout as it goes (the same table `poolbench
# run` prints) and --json, --csv and --trace written beside it; the figures
# are then drawn from those files alone. Two sweeps (bench/sweep.sh) add the
# runs a sweep figure needs: chunk_skew over chunksize, imap_memory over n.
#
# Why .dat files: gnuplot reads whitespace-separated columns best, so jq and
# awk turn poolbench's JSON and CSV into small tables, one per need, each
# opening with a "# column names" line (gnuplot skips it). "NaN" stands for
# an absent number (a strategy without a model): gnuplot leaves it out.
#
# Files written (NAME is a scenario):
#   machine.txt           cores, OS, date, and the one-line label every figure carries
#   NAME.json .csv .trace.csv   poolbench's own outputs
#   NAME.results.dat      one row per strategy: wall times, model, counts (from the JSON)
#   NAME.tasks.dat        one row per task execution: label, slot, t_start, t_end, stage
#   NAME.callbacks.dat    one row per callback run in the parent: label, t_result, t_callback
#   NAME.hyperfine.dat    hyperfine's whole-command timings from bench/results/, where they
#                         were measured with this run's parameters (else not written)
#   overhead.dat          per-task cost of each API in microseconds, poolbench and CPython
#   shared_state.dat      per-access cost (us) and increments landed (%), poolbench and CPython
#   start_method.dat      start-up per pool (ms) and CPU per worker (ms) by start method and
#                         workers, poolbench and CPython
#   chunk_sweep.csv .dat  chunk_skew over chunksize 1..16 (bench/sweep.sh)
#   memory_sweep.csv .dat imap_memory over n, one strategy per process
#   scale_sweep.csv .dat  bench/scale.lua over n: time and peak memory (bench/scale.sh)
#   status.txt            each run's exit status (0 checks held, 1 a check failed, 2 bad scenario)
#
# A scenario whose checks fail keeps its data (a figure of a phenomenon that
# did not show is still a figure); the script goes on and exits 1 at the end,
# naming it. Environment (echoed first): QUICK, REPEAT (default 5, quick 2),
# SCENARIOS, DATA (default plots/out/data), RESULTS (hyperfine's directory,
# default bench/results), POOLBENCH (default build/poolbench).

set -euo pipefail

cd "$(dirname "$0")/.."   # the repository's root: paths below are relative to it

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then REPEAT=${REPEAT:-2}; fi
REPEAT=${REPEAT:-5}
DATA=${DATA:-plots/out/data}
RESULTS=${RESULTS:-bench/results}
POOLBENCH=${POOLBENCH:-build/poolbench}
export POOLBENCH   # bench/sweep.sh runs the same binary
# The quick run feeds the tests: only the scenarios the figures read.
if [ "$QUICK" = 1 ]; then
    SCENARIOS=${SCENARIOS:-serialized_get get_placement chunk_skew early_stop overhead imap_memory oversubscription start_method}
fi
SCENARIOS=${SCENARIOS:-}

die() { echo "data.sh: $*" >&2; exit 2; }
command -v jq > /dev/null || die "jq is missing: run 'make deps'"
[ -x "$POOLBENCH" ] || die "$POOLBENCH not found: run 'make' first"

quick_opt=()
[ "$QUICK" = 1 ] && quick_opt=(--quick)

mkdir -p "$DATA"
rm -f "$DATA"/*.dat "$DATA"/*.json "$DATA"/*.csv "$DATA"/status.txt

# ---- the machine -------------------------------------------------------------
# Every figure says where and when it was measured; they read the "label" line.
cores=$(nproc)
os=$(uname -sr)
day=$(date +%F)
{
    echo "cores $cores"
    echo "os $os"
    echo "date $day"
    echo "time $(date +%Y-%m-%dT%H:%M:%S%z)"
    echo "quick $QUICK"
    echo "repeat $REPEAT"
    echo "label measured on this machine: $cores cores, $os, $day$([ "$QUICK" = 1 ] && echo ' (quick parameters: a test run)')"
    if [ -f "$RESULTS/machine.txt" ]; then
        echo "hyperfine_python $(awk '/^python Python/ { print $3 }' "$RESULTS/machine.txt")"
        echo "hyperfine $(awk '/^date / { print substr($2, 1, 10) }' "$RESULTS/machine.txt"), $(awk '/^cores / { print $2 }' "$RESULTS/machine.txt") cores, $(awk '/^ARG runs / { print $3 }' "$RESULTS/machine.txt") runs each ($RESULTS/)"
    else
        echo "hyperfine none"
    fi
} > "$DATA/machine.txt"

echo "ARG quick $QUICK"
echo "ARG repeat $REPEAT"
echo "ARG scenarios ${SCENARIOS:-every scenarios/*.lua}"
echo "ARG data $DATA"
echo "ARG results $RESULTS"
echo "ARG poolbench $POOLBENCH"
echo "ARG cores $cores"
echo "ARG os $os"
echo "ARG date $day"

# ---- converters --------------------------------------------------------------

# results_dat JSON OUT: one row per strategy. Columns (1-based, as gnuplot counts):
#  1 index  2 label  3 impl  4 wall_s  5 wall_min_s  6 wall_max_s  7 model_s
#  8 answer_s  9 stopped_s  10 tasks_run  11 tasks_total  12 tasks_after_stop
#  13 results  14 errors  15 peak_rss_kb  16 messages_sent  17 n  18 k  19 workers
#  20 chunksize (17-20: the label's own parameters). NaN where a value is
#  absent (no model; a parameter the scenario does not have).
results_dat() {
    {
        echo "# index label impl wall_s wall_min_s wall_max_s model_s answer_s stopped_s" \
             "tasks_run tasks_total tasks_after_stop results errors peak_rss_kb messages_sent" \
             "n k workers chunksize"
        jq -r 'def num: if . == null then "NaN" else . end;
            .results | to_entries[] | .key as $i | .value |
            [$i, .label, .impl] + ([.wall_s, .wall_min_s, .wall_max_s, .model_s, .answer_s,
              .stopped_s, .tasks_run, .tasks_total, .tasks_after_stop, .results, .errors,
              .peak_rss_kb, .messages_sent, .params.n, .params.k, .params.workers,
              .params.chunksize] | map(num)) | @tsv' "$1"
    } > "$2"
}

# trace_dats TRACE TASKS CALLBACKS: the --trace CSV split for the timelines.
# Executions that never started or never ended (a dead worker) have no bar.
trace_dats() {
    {
        echo "# label slot t_start t_end stage task"
        awk -F, 'NR > 1 && $4 >= 0 && $7 != "" && $8 != "" { print $1, $4, $7, $8, $3, $2 }' "$1"
    } > "$2"
    {
        echo "# label t_result t_callback stage"
        awk -F, 'NR > 1 && $9 != "" && $10 != "" { print $1, $9, $10, $3 }' "$1"
    } > "$3"
}

# hyperfine_dat NAME JSON OUT: bench/hyperfine.sh's timings of this scenario,
# one row per label: its index in the JSON (the x of its bars), poolbench's
# and CPython's whole-command median, min and max (seconds), and the n they
# ran with. A side is NaN when hyperfine did not time it, when it ran other
# parameters than this run (summary.csv's params column against the JSON's),
# or, for poolbench, when its time cannot be this label's alone (below).
# Nothing is written when nothing matches.
hyperfine_dat() {
    local name=$1 json=$2 out=$3 label params same f c py n i=-1 rows=""
    [ -f "$RESULTS/summary.csv" ] || return 0
    for label in $(jq -r '.results[].label' "$json"); do
        i=$((i + 1))
        f=$RESULTS/$name-$label.json
        [ -f "$f" ] || continue
        params=$(awk -F, -v s="$name" -v l="$label" \
            '$1 == s && $2 == l && $3 == "poolbench" { p = $NF } END { print p }' "$RESULTS/summary.csv")
        [ -n "$params" ] || continue
        # Every key=value hyperfine set must be this run's value ("quick" never is).
        same=$(jq -r --arg p "$params" '. as $r | [$p | split(" ")[] | select(length > 0)
            | split("=") | length == 2 and $r.params[.[0]] != null
              and (($r.params[.[0]] | tostring) == (.[1] | tonumber | tostring))] | all' "$json")
        [ "$same" = true ] || continue
        c=$(jq -r --arg c "poolbench $name $label" \
            '[.results[] | select(.command == $c)][0] | if . == null then "NaN NaN NaN"
             else "\(.median) \(.min) \(.max)" end' "$f")
        # A label that is also the name of a strategy with other variants
        # here (chunk_skew's map_async beside map_async_w3): before poolbench
        # made `--impl LABEL` select that label alone, it ran every variant,
        # and hyperfine timed them together. Such a time is far longer than
        # the label's own in process (1.5x + 0.1 s leaves room for start-up
        # and noise): left out, with a warning.
        if [ "$c" != "NaN NaN NaN" ] && jq -e --arg l "$label" --argjson m "${c%% *}" \
                '([.results[] | select(.impl == $l and .label != $l)] | length > 0) and
                 ([.results[] | select(.label == $l) | $m > 1.5 * .wall_max_s + 0.1] | any)' \
                "$json" > /dev/null; then
            echo "data.sh: $RESULTS/$name-$label.json: poolbench took ${c%% *} s as a whole command," \
                 "far more than in process; stale results? (make bench): left out" >&2
            c="NaN NaN NaN"
        fi
        py=$(jq -r --arg c "cpython $name $label" \
            '[.results[] | select(.command == $c)][0] | if . == null then "NaN NaN NaN"
             else "\(.median) \(.min) \(.max)" end' "$f")
        n=$(echo "$params" | tr ' ' '\n' | awk -F= '$1 == "n" { print $2 }')
        [ "$c $py" = "NaN NaN NaN NaN NaN NaN" ] && continue
        rows+="$i $label $c $py ${n:-NaN}"$'\n'
    done
    [ -n "$rows" ] || return 0
    {
        echo "# index label c_median_s c_min_s c_max_s py_median_s py_min_s py_max_s n   (hyperfine, whole command)"
        printf '%s' "$rows"
    } > "$out"
}

# ---- every scenario, once ----------------------------------------------------

if [ -n "$SCENARIOS" ]; then
    files=()
    for s in $SCENARIOS; do
        if [ -f "scenarios/$s.lua" ]; then files+=("scenarios/$s.lua")
        else echo "data.sh: scenarios/$s.lua does not exist (yet): skipped" >&2; fi
    done
else
    files=(scenarios/*.lua)
fi

failed=()
for file in "${files[@]}"; do
    name=$(basename "$file" .lua)
    echo
    echo "==> $POOLBENCH run $file ${quick_opt[*]} --repeat $REPEAT --json --csv --trace"
    rc=0
    "$POOLBENCH" run "$file" "${quick_opt[@]}" --repeat "$REPEAT" \
        --json "$DATA/$name.json" --csv "$DATA/$name.csv" --trace "$DATA/$name.trace.csv" || rc=$?
    echo "$name $rc" >> "$DATA/status.txt"
    [ "$rc" = 0 ] || failed+=("$name (exit $rc)")
    if [ -s "$DATA/$name.json" ]; then
        results_dat "$DATA/$name.json" "$DATA/$name.results.dat"
        hyperfine_dat "$name" "$DATA/$name.json" "$DATA/$name.hyperfine.dat"
    fi
    if [ -s "$DATA/$name.trace.csv" ]; then
        trace_dats "$DATA/$name.trace.csv" "$DATA/$name.tasks.dat" "$DATA/$name.callbacks.dat"
    fi
done

# ---- per-task overhead, poolbench against CPython ------------------------------
# CPython 3.11's figures on a 2-core machine, quoted from PHENOMENA.md (row
# P6, n = 20 000 trivial tasks, 6 workers; async_get_after was not timed):
# shown beside what hyperfine measured here, or alone when it did not.
if [ -s "$DATA/overhead.results.dat" ]; then
    hf=$DATA/overhead.hyperfine.dat
    [ -f "$hf" ] || hf=/dev/null
    {
        echo "# index label us_per_task us_min us_max hf_c_us hf_c_min hf_c_max hf_py_us hf_py_min hf_py_max quoted_py_us" \
             "messages_sent n quoted_where_not_measured quoted_where_measured"
        echo "# poolbench: wall_s / n from --repeat $REPEAT (pool start-up excluded); hf_*: hyperfine," \
             "whole command (start-up included) / its n; quoted: PHENOMENA.md, CPython 3.11, n = 20000"
        awk -v quoted="apply_sync=5.69 callback_chain=0.652 map_async=0.037 imap=0.528 imap_unordered=0.562 executor_submit=2.31 executor_map_c1=2.08 executor_map_c834=0.024" '
            BEGIN { m = split(quoted, q, " ")
                    for (i = 1; i <= m; i++) { split(q[i], kv, "="); cp[kv[1]] = kv[2] * 1e6 / 20000 } }
            FILENAME == ARGV[1] { if (!/^#/) h[$2] = $0; next }   # hyperfine rows, by label
            /^#/ { next }
            {
                n = $17; line = $1 " " $2 " " 1e6 * $4 / n " " 1e6 * $5 / n " " 1e6 * $6 / n
                delete f
                if ($2 in h) {
                    split(h[$2], f, " "); hn = f[9]
                    for (i = 3; i <= 8; i++) line = line " " (f[i] == "NaN" ? "NaN" : 1e6 * f[i] / hn)
                } else line = line " NaN NaN NaN NaN NaN NaN"
                qv = ($2 in cp) ? cp[$2] : "NaN"
                measured = ($2 in h) && f[6] != "NaN"   # hyperfine timed CPython for this API
                print line, qv, $16, n, (measured ? "NaN" : qv), (measured ? qv : "NaN")
            }' "$hf" "$DATA/overhead.results.dat"
    } > "$DATA/overhead.dat"
fi

# ---- shared state: per-access cost and lost updates, poolbench and CPython ----
# poolbench's figures are in shared_state's check details (measured in the
# run above); CPython's come from its twin, run here with the same
# parameters (facts per_access_s, rtt_s, final). Read by plots/shared_state.gp.
if [ -s "$DATA/shared_state.json" ]; then
    py_json=$DATA/shared_state.cpython.json
    sets=$(jq -r '.params | to_entries[] | select(.key != "tag") | "--set \(.key)=\(.value)"' \
        "$DATA/shared_state.json")
    # shellcheck disable=SC2086  # one word per --set
    python3 bench/python/shared_state.py $sets --json "$py_json" > /dev/null 2>&1 ||
        { echo "data.sh: bench/python/shared_state.py failed: CPython left out" >&2; rm -f "$py_json"; }
    jq -r --slurpfile py <(cat "$py_json" 2> /dev/null || echo '{}') -f plots/lib/shared_state.jq \
        "$DATA/shared_state.json" > "$DATA/shared_state.dat"
fi

# ---- start methods: start-up per pool and per worker, poolbench and CPython ----
# poolbench's facts (up_ms, cpu_ms per label METHOD_wW) from the run above;
# CPython's from its twin, run here (bench/python/start_method.py, the same
# labels). One row per (method, workers): method workers pb_up_ms py_up_ms
# pb_cpu_ms py_cpu_ms. Read by plots/start_method.gp.
if [ -s "$DATA/start_method.json" ]; then
    py_json=$DATA/start_method.cpython.json
    python3 bench/python/start_method.py --json "$py_json" > /dev/null 2>&1 ||
        { echo "data.sh: bench/python/start_method.py failed: CPython left out" >&2; rm -f "$py_json"; }
    {
        echo "# method workers pb_up_ms py_up_ms pb_cpu_ms py_cpu_ms"
        jq -r --slurpfile py <(cat "$py_json" 2> /dev/null || echo '{}') '
            def num: if . == null then "NaN" else . end;
            ([$py[0].results // [] | .[] | {(.label): .facts}] | add // {}) as $c
            | .results[] | (.label | split("_w")) as $m
            | [$m[0], $m[1], .facts.up_ms, $c[.label].up_ms, .facts.cpu_ms, $c[.label].cpu_ms]
            | map(num) | @tsv' "$DATA/start_method.json"
    } > "$DATA/start_method.dat"
fi

# ---- the sweeps -------------------------------------------------------------

# csv_cols CSV NAME...: prints the named columns of a sweep CSV (poolbench's
# --csv columns, the swept parameter first), space-separated, "NaN" for empty.
# poolbench quotes no field of these columns (labels, numbers, params).
csv_cols() {
    local csv=$1
    shift
    awk -F, -v want="$*" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; n = split(want, w, " "); next }
        { line = ""
          for (i = 1; i <= n; i++) { v = $(col[w[i]]); line = line (i > 1 ? " " : "") (v == "" ? "NaN" : v) }
          print line }' "$csv"
}

# wanted NAME: the sweeps follow SCENARIOS when it is given.
wanted() { [ -z "$SCENARIOS" ] || [[ " $SCENARIOS " == *" $1 "* ]]; }

# chunk_skew over chunksize. Its three variants all run at each value:
# map_async (2 workers) and map_async_w3 (3) follow the sweep; map_async_default
# keeps chunksize 0 (CPython's default, ceil(n/(4w))), a flat reference line.
# The model is the scenario's (model_s); if it had none, the same schedule is
# computed here: chunks of c tasks go, in order, to the worker that frees
# first, and the makespan is the busiest worker's tasks * t.
if wanted chunk_skew && [ -f scenarios/chunk_skew.lua ]; then
    if [ "$QUICK" = 1 ]; then range=(1 16 5); else range=(1 16 1); fi
    echo
    echo "==> bench/sweep.sh chunk_skew chunksize ${range[*]} ${quick_opt[*]}"
    if bench/sweep.sh chunk_skew chunksize "${range[@]}" "${quick_opt[@]}" > "$DATA/chunk_sweep.csv"; then
        {
            echo "# chunksize label workers wall_s wall_min_s wall_max_s model_s effective_chunksize"
            csv_cols "$DATA/chunk_sweep.csv" chunksize label wall_s wall_min_s wall_max_s model_s params |
            awk '{
                delete p
                for (i = 7; i <= NF; i++) { split($i, kv, "="); p[kv[1]] = kv[2] }
                w = p["workers"]; n = p["n"]; c = p["chunksize"] + 0
                if (c == 0) c = int((n + 4 * w - 1) / (4 * w))   # CPython: ceil(n/(4w))
                model = $6
                if (model == "NaN") {
                    for (i = 1; i <= w; i++) load[i] = 0
                    for (first = 1; first <= n; first += c) {
                        k = 1; for (i = 2; i <= w; i++) if (load[i] < load[k]) k = i
                        load[k] += (n - first + 1 < c) ? n - first + 1 : c
                    }
                    max = 0; for (i = 1; i <= w; i++) if (load[i] > max) max = load[i]
                    model = max * p["task_ms"] / 1000
                }
                print $1, $2, w, $3, $4, $5, model, c
            }' | sort -s -k2,2 -k1,1n   # each label's rows together: one line per label
        } > "$DATA/chunk_sweep.dat"
    else
        failed+=("the chunksize sweep")
    fi
fi

# imap_memory over n: the parent's peak memory (peak_rss_kb) against the
# items it went through. One sweep per label (--impl LABEL), so that each
# process holds one strategy's memory only: poolbench resets the kernel's
# high-water mark before each strategy, but memory another strategy left
# with the allocator would still count. x is the items (n * scale: the *_4n
# variants run 4n); the rows are grouped by strategy, one block each, for
# gnuplot's `index`.
if wanted imap_memory; then
    if [ ! -f scenarios/imap_memory.lua ]; then
        echo "data.sh: scenarios/imap_memory.lua does not exist (yet): no memory sweep" >&2
        failed+=("the memory sweep (no scenarios/imap_memory.lua)")
    else
        if [ "$QUICK" = 1 ]; then range=(250 500 x2); else range=(250 4000 x2); fi
        labels=$("$POOLBENCH" show scenarios/imap_memory.lua | awk '
            /^strategies/ { on = 1; next } on && NF == 0 { exit } on && $1 != "label" { print $1 }')
        : > "$DATA/memory_sweep.csv"
        ok=1
        for label in $labels; do
            echo
            echo "==> bench/sweep.sh imap_memory n ${range[*]} --impl $label ${quick_opt[*]}"
            if bench/sweep.sh imap_memory n "${range[@]}" --impl "$label" "${quick_opt[@]}" > "$DATA/sweep.tmp"; then
                # One header; this label's rows only.
                [ -s "$DATA/memory_sweep.csv" ] || head -1 "$DATA/sweep.tmp" > "$DATA/memory_sweep.csv"
                awk -F, -v l="$label" 'NR > 1 && $4 == l' "$DATA/sweep.tmp" >> "$DATA/memory_sweep.csv"
            else
                ok=0
            fi
        done
        rm -f "$DATA/sweep.tmp"
        if [ "$ok" = 1 ] && [ -s "$DATA/memory_sweep.csv" ]; then
            {
                echo "# n label impl items peak_rss_kb wall_s   (one block per strategy, sorted by items)"
                csv_cols "$DATA/memory_sweep.csv" n label impl peak_rss_kb wall_s params |
                awk '{ scale = 1
                       for (i = 6; i <= NF; i++) if ($i ~ /^scale=/) scale = substr($i, 7)
                       print $1, $2, $3, $1 * scale, $4, $5 }' |
                sort -k3,3 -k4,4n |
                awk 'NR > 1 && $3 != prev { print ""; print "" } { print; prev = $3 }'
            } > "$DATA/memory_sweep.dat"
        else
            failed+=("the memory sweep")
        fi
    fi
fi

# ---- the scale sweep ------------------------------------------------------------
# Time and peak memory against n (bench/scale.sh, bench/scale.lua): to 10^5
# here (seconds), to 10^7 with `make bench-scale`. The figure: plots/scale.gp.
# bench/scale.lua is no scenario of scenarios/: SCENARIOS="... scale" asks for
# it; the quick run (the tests') always has it.
if [ -z "$SCENARIOS" ] || wanted scale || [ "$QUICK" = 1 ]; then
    if [ "$QUICK" = 1 ]; then smax=10000; else smax=100000; fi
    echo
    echo "==> bench/scale.sh --max $smax --out $DATA"
    bench/scale.sh --max "$smax" --out "$DATA" || failed+=("the scale sweep")
fi

echo
echo "data: $DATA/ ($(find "$DATA" -maxdepth 1 -type f | wc -l) files)"
if [ ${#failed[@]} -gt 0 ]; then
    echo "data.sh: not every run held its checks (their data is kept): ${failed[*]}"
    exit 1
fi
