#!/usr/bin/env bash
# test_plots.sh: a quick run of the whole plot pipeline: plots/data.sh with
# QUICK=1 (the scenarios the figures read, with --quick, and short sweeps),
# then every plots/*.gp, each in an empty directory of its own, checking that
# each wrote at least one non-empty PNG and, beside each, a non-empty SVG.
#
#   tests/plots/test_plots.sh [POOLBENCH]      default build/poolbench; make check runs it
#
# What it checks, and why: that the data files every figure reads are
# written (data.sh's output is the scripts' only input, and a field renamed
# in poolbench's JSON would break a figure silently), and that every gnuplot
# script runs without error on them, as on a fresh machine where gnuplot
# comes from `make deps`. Nothing timed is asserted: whether a figure shows
# its phenomenon is for a person to judge (the scenarios' own checks test
# the phenomena). Everything goes to a temporary directory: plots/out/ and
# docs/img/ are left alone, and bench/results/ is not read (a made-up set of
# hyperfine results stands in). Takes about 20 seconds.
#
# One line per test ("ok - name" / "not ok - name", with the output that
# explains it indented), and exactly one summary line at the end:
# "N passed, N failed". Exit status 1 if any test failed.

set -euo pipefail

cd "$(dirname "$0")/../.."   # the repository's root: the scripts run from there

PB=${1:-build/poolbench}
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
# show FILE: the end of a log, indented under a "not ok" line.
show() { tail -n 25 "$1" | sed 's/^/#   /'; }

for tool in gnuplot jq; do
    if ! command -v "$tool" > /dev/null; then
        echo "test_plots: $tool is missing (make deps installs it)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
if [ ! -x "$PB" ]; then
    echo "test_plots: $PB is not an executable (build it first)"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---- the data ----------------------------------------------------------------
# hyperfine's results (bench/results/ after `make bench`) are replaced by a
# made-up set, so that the test does not depend on whether, or with what,
# make bench ran: serialized_get's async_get_loop timed with the quick
# parameters (it must be used), merged with another n (it must not be).
results=$tmp/results
mkdir -p "$results"
quick_params=$("$PB" show scenarios/serialized_get.lua | awk '
    /^parameters/ { on = 1; next } on && NF == 0 { exit } on && $1 != "name" { printf "%s%s=%s", sep, $1, $3; sep = " " }')
printf 'date 2026-01-02T03:04:05Z\ncores 2\npython Python 3.11.7 (/usr/bin/python3)\nARG runs 5\n' > "$results/machine.txt"
{
    echo "scenario,strategy,side,mean_s,stddev_s,median_s,user_s,system_s,min_s,max_s,runs,params"
    echo "serialized_get,async_get_loop,poolbench,0.3,0,0.3,0,0,0.29,0.31,5,$quick_params"
    echo "serialized_get,async_get_loop,cpython,0.4,0,0.4,0,0,0.39,0.41,5,$quick_params"
    echo "serialized_get,merged,poolbench,0.2,0,0.2,0,0,0.19,0.21,5,n=999"
} > "$results/summary.csv"
for l in async_get_loop merged; do
    cat > "$results/serialized_get-$l.json" <<JSON
{"results": [{"command": "poolbench serialized_get $l", "median": 0.3, "min": 0.29, "max": 0.31},
             {"command": "cpython serialized_get $l", "median": 0.4, "min": 0.39, "max": 0.41}]}
JSON
done

data=$tmp/data
# QUICK=1 exits 1 when a scenario's check fails on a busy machine: the data is
# still written, and the figures are what is tested here. 2 is a real error.
rc=0
QUICK=1 DATA=$data RESULTS=$results POOLBENCH=$PB plots/data.sh > "$tmp/data.log" 2>&1 || rc=$?
if [ "$rc" -le 1 ]; then
    ok "plots/data.sh QUICK=1 ran (exit $rc)"
else
    not_ok "plots/data.sh QUICK=1 ran (exit $rc)"
    show "$tmp/data.log"
fi

# Each scenario's own exit status (data.sh's status.txt): a check may fail on
# a busy machine (1), but not a bad scenario (2), a crash, or a sanitizer's
# report (99, make sanitize).
if [ -s "$data/status.txt" ] && awk '$2 != 0 && $2 != 1 { bad = 1 } END { exit bad }' "$data/status.txt"; then
    ok "every scenario run exited 0 or 1"
else
    not_ok "every scenario run exited 0 or 1"
    [ -f "$data/status.txt" ] && sed 's/^/#   /' "$data/status.txt"
fi

# The files the figures read, each with at least one data row.
for f in machine.txt serialized_get.results.dat serialized_get.tasks.dat serialized_get.callbacks.dat \
         get_placement.tasks.dat chunk_skew.tasks.dat early_stop.results.dat early_stop.tasks.dat \
         overhead.dat chunk_sweep.dat memory_sweep.dat scale_sweep.dat; do
    if [ -s "$data/$f" ] && grep -qv '^#' "$data/$f"; then
        ok "data file $f written"
    else
        not_ok "data file $f written"
        [ -f "$tmp/data.log" ] && grep -i "error\|fail\|exist" "$tmp/data.log" | head -5 | sed 's/^/#   /'
    fi
done
if grep -q '^label measured on this machine: [0-9]* cores, .*, [0-9-]*' "$data/machine.txt" 2> /dev/null; then
    ok "machine.txt says cores, OS and date"
else
    not_ok "machine.txt says cores, OS and date"
fi
# hyperfine's timings are used where they ran this run's parameters, only there.
hf=$data/serialized_get.hyperfine.dat
if [ -f "$hf" ] && [ "$(grep -cv '^#' "$hf")" = 1 ] \
    && awk '$2 == "async_get_loop" && $1 == 0 && $3 == 0.3 && $6 == 0.4 { f = 1 } END { exit !f }' "$hf"; then
    ok "hyperfine's timings used only where the parameters match"
else
    not_ok "hyperfine's timings used only where the parameters match"
    [ -f "$hf" ] && sed 's/^/#   /' "$hf"
fi
# callback_chain runs B in the parent: the callbacks lane of its timeline has bars.
if awk '$1 == "callback_chain" { c++ } END { exit !(c > 0) }' "$data/serialized_get.callbacks.dat" 2> /dev/null; then
    ok "serialized_get: callback_chain's callbacks are in the timeline data"
else
    not_ok "serialized_get: callback_chain's callbacks are in the timeline data"
fi

# ---- every figure ------------------------------------------------------------
for gp in plots/*.gp; do
    name=$(basename "$gp" .gp)
    out=$tmp/out/$name
    mkdir -p "$out"
    if ! gnuplot -e "datadir='$data'; outdir='$out'" "$gp" > "$tmp/$name.log" 2>&1; then
        not_ok "$gp runs without error"
        show "$tmp/$name.log"
        continue
    fi
    ok "$gp runs without error"
    pngs=$(find "$out" -name '*.png' | sort)
    good=1
    [ -n "$pngs" ] || good=0
    for png in $pngs; do
        svg=${png%.png}.svg
        # A PNG starts with its 8-byte signature; an SVG is XML with an <svg element.
        if [ ! -s "$png" ] || [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ] \
            || [ ! -s "$svg" ] || ! grep -q '<svg' "$svg"; then
            good=0
            echo "#   $(basename "$png"): $(stat -c %s "$png" 2> /dev/null || echo missing) bytes," \
                 "$(basename "$svg"): $(stat -c %s "$svg" 2> /dev/null || echo missing) bytes"
        fi
    done
    if [ "$good" = 1 ]; then
        ok "$gp wrote a non-empty PNG and SVG ($(echo "$pngs" | wc -l) figure(s))"
    else
        not_ok "$gp wrote a non-empty PNG and SVG"
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
