#!/usr/bin/env bash
# scale.sh: time and the parent's peak memory against n, from 10^3 trivial
# tasks up to MAX, for imap (bounded buffer), imap_unordered (bounded) and
# map_async, and imap again with --trace (every row written), as the data of
# the log-log figure plots/scale.gp (issue 14: flat memory, linear time).
#
#   bench/scale.sh [--max N] [--out DIR]
#
#   bench/scale.sh                              10^3 .. 10^5, into plots/out/data (make plots)
#   bench/scale.sh --max 10000000 --out bench/results/scale      10^3 .. 10^7 (make bench-scale)
#
# The points: 1, 3 times each power of ten from 10^3, up to MAX. Each
# strategy is its own sweep (bench/sweep.sh bench/scale.lua n ... --impl
# LABEL), so each process holds one strategy's memory only: poolbench resets
# the kernel's high-water mark (VmHWM) before each strategy, but memory
# another strategy left with the allocator would still count. peak_rss_kb is
# that high-water mark of the parent, read from /proc/self/status after the
# run (runner.c). The --trace series cannot go through sweep.sh (its own
# --trace is refused there), so it is a loop here, with the rows counted:
# a trace that lost a row fails the script.
#
# Writes into DIR: machine.txt (the label the figure carries, if DIR has none
# yet), scale_sweep.csv (poolbench's CSV columns, n first, one row per run)
# and scale_sweep.dat (n label wall_s peak_rss_kb us_per_task, one block per
# series, for gnuplot's `index`). About 2 minutes to 10^7 on 2 cores (map_async
# then holds ~2 GB: its line is the contrast); seconds to 10^5.
# Environment: POOLBENCH (default build/poolbench).

set -euo pipefail

cd "$(dirname "$0")/.."   # the repository's root: paths below are relative to it
POOLBENCH=${POOLBENCH:-build/poolbench}
export POOLBENCH

max=100000
out=plots/out/data
while [ $# -gt 0 ]; do
    case $1 in
        --max) max=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: bench/scale.sh [--max N] [--out DIR]" >&2; exit 2 ;;
    esac
done
[[ $max =~ ^[0-9]+$ ]] && [ "$max" -ge 1000 ] || { echo "scale.sh: --max must be >= 1000" >&2; exit 2; }
[ -x "$POOLBENCH" ] || { echo "scale.sh: $POOLBENCH not found: run 'make' first" >&2; exit 2; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -s "$out/machine.txt" ]; then
    echo "label measured on this machine: $(nproc) cores, $(uname -sr), $(date +%F)" > "$out/machine.txt"
fi

csv=$out/scale_sweep.csv
: > "$csv"
# One sweep from 1000 and one from 3000, each x10: 1k 3k 10k 30k ... up to max.
for label in imap imap_unordered map_async; do
    for from in 1000 3000; do
        [ "$from" -le "$max" ] || continue
        echo "==> bench/sweep.sh bench/scale.lua n $from $max x10 --impl $label" >&2
        bench/sweep.sh bench/scale.lua n "$from" "$max" x10 --impl "$label" > "$tmp/sweep.csv"
        [ -s "$csv" ] || head -1 "$tmp/sweep.csv" > "$csv"
        tail -n +2 "$tmp/sweep.csv" >> "$csv"
    done
done

# imap with --trace: the rows streamed to a file, counted.
for from in 1000 3000; do
    for ((n = from; n <= max; n *= 10)); do
        echo "==> $POOLBENCH run bench/scale.lua --impl imap --set n=$n --trace (rows counted)" >&2
        rc=0
        "$POOLBENCH" run bench/scale.lua --impl imap --set "n=$n" --csv "$tmp/run.csv" \
            --trace "$tmp/run.trace" > /dev/null || rc=$?
        [ "$rc" -le 1 ] || { echo "scale.sh: poolbench exited $rc at n=$n" >&2; exit 1; }
        rows=$(($(wc -l < "$tmp/run.trace") - 1))
        [ "$rows" -eq "$n" ] || { echo "scale.sh: --trace wrote $rows rows for $n tasks" >&2; exit 1; }
        tail -n +2 "$tmp/run.csv" | sed "s/^/$n,/; s/,imap,imap,/,imap,imap_trace,/" >> "$csv"
        rm -f "$tmp/run.trace"
    done
done

# The .dat: n label wall_s peak_rss_kb us_per_task, sorted, one block per label.
{
    echo "# n label wall_s peak_rss_kb us_per_task   (one block per series, sorted by n)"
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
             { n = $1; print n, $(col["label"]), $(col["wall_s"]), $(col["peak_rss_kb"]),
                     1e6 * $(col["wall_s"]) / n }' "$csv" |
    sort -k2,2 -k1,1n |
    awk 'NR > 1 && $2 != prev { print ""; print "" } { print; prev = $2 }'
} > "$out/scale_sweep.dat"
echo "scale.sh: $out/scale_sweep.csv and .dat ($(grep -cv '^#' "$out/scale_sweep.dat") points)" >&2
