#!/usr/bin/env bash
# draw.sh: draws every figure from the data plots/data.sh wrote: runs each
# plots/*.gp with gnuplot, checks that it wrote a PNG and an SVG, and prints
# where the figures are. `make plots` and `make run` run it after data.sh.
#
#   plots/draw.sh                      plots/out/data -> plots/out/*.png, *.svg
#   plots/draw.sh --copy docs/img      and copy the PNGs there (make docs-img copies the last ones)
#
# Why a script and not a make rule per figure: one gnuplot script may write
# several figures (walls.gp writes one per scenario), and which ones depends
# on the data; this runs them all, says which failed, and goes on.
# Environment: DATA (default plots/out/data), OUT (default plots/out).
# Exit status 1 when a script failed or wrote no PNG or SVG.

set -euo pipefail

cd "$(dirname "$0")/.."   # the repository's root: the .gp files load plots/lib/ from here

DATA=${DATA:-plots/out/data}
OUT=${OUT:-plots/out}
copy=""
if [ "${1:-}" = --copy ]; then
    [ $# -ge 2 ] || { echo "usage: plots/draw.sh [--copy DIR]" >&2; exit 2; }
    copy=$2
fi

command -v gnuplot > /dev/null || { echo "draw.sh: gnuplot is missing: run 'make deps'" >&2; exit 1; }
[ -f "$DATA/machine.txt" ] || { echo "draw.sh: no data in $DATA: run plots/data.sh first" >&2; exit 1; }
mkdir -p "$OUT"

failed=()
figures=()
echo
echo "==> drawing the figures with gnuplot $(gnuplot --version | awk '{ print $2 "." $4 }'): $DATA -> $OUT"
for gp in plots/*.gp; do
    # A figure is what this script wrote: the files newer than a mark made before it.
    mark=$(mktemp)
    if ! gnuplot -e "datadir='$DATA'; outdir='$OUT'" "$gp" 2> "$mark.err"; then
        echo "  FAILED  $gp:"
        sed 's/^/      /' "$mark.err"
        failed+=("$gp")
        rm -f "$mark" "$mark.err"
        continue
    fi
    # gnuplot's warnings (a missing point) are shown, not fatal.
    [ -s "$mark.err" ] && sed "s|^|  $gp: |" "$mark.err"
    pngs=$(find "$OUT" -maxdepth 1 -name '*.png' -newer "$mark" | sort)
    svgs=$(find "$OUT" -maxdepth 1 -name '*.svg' -newer "$mark" | sort)
    rm -f "$mark" "$mark.err"
    if [ -z "$pngs" ] || [ -z "$svgs" ]; then
        echo "  FAILED  $gp wrote no PNG or no SVG"
        failed+=("$gp")
        continue
    fi
    for f in $pngs; do
        if [ ! -s "$f" ] || [ ! -s "${f%.png}.svg" ]; then
            echo "  FAILED  $gp: $f or its SVG is empty or missing"
            failed+=("$gp")
        fi
        figures+=("$f")
    done
    echo "  ok  $gp -> $(echo "$pngs" | xargs -n1 basename | sed 's/\.png$//' | tr '\n' ' ')"
done

if [ -n "$copy" ] && [ ${#figures[@]} -gt 0 ]; then
    mkdir -p "$copy"
    cp "${figures[@]}" "$copy/"
fi

echo
echo "figures: ${#figures[@]} in $OUT/ (PNG and SVG)$([ -n "$copy" ] && echo ", PNG copies in $copy/")"
for f in "${figures[@]}"; do echo "  $f"; done
# The runs behind them, if a check failed (data.sh's status.txt).
if [ -f "$DATA/status.txt" ] && awk '$2 != 0 { bad = 1 } END { exit !bad }' "$DATA/status.txt"; then
    echo "scenarios whose checks did not all hold (their figures are drawn all the same):"
    awk '$2 != 0 { print "  " $1 " (exit " $2 ")" }' "$DATA/status.txt"
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "draw.sh: ${#failed[@]} script(s) failed: ${failed[*]}" >&2
    exit 1
fi
