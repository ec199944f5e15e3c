#!/usr/bin/env bash
# compare_data.sh: the data of plots/compare.gp, from `make compare`'s results.
#
#   plots/compare_data.sh [RESULTS_DIR [OUT]]
#       defaults: bench/results/compare  RESULTS_DIR/compare.dat
#
# Reads every RESULTS_DIR/*.json that `poolbench compare --json` wrote
# (docs/report-format.md, "What `poolbench compare` writes") and writes one
# row per scenario: its key ratio (the first of the scenario's `ratios`) for
# poolbench and CPython, both measured in the same run. Why a file of its own
# and not a step of plots/data.sh: the compare runs are `make compare`'s
# (minutes: every scenario on both engines), not `make plots`'s.
#
# Columns (1-based, as gnuplot counts), after "#" comment lines:
#   1 index  2 scenario  3 poolbench  4 cpython  5 model (or NaN)
#   6 agree (1 within 25%, 0 not)  7 the ratio, num/den
# The comments "# label ..." (cores, OS, the dates of the runs) and
# "# versions ..." (poolbench's, CPython's) are the lines the figure carries. Scenarios without CPython's ratio are
# left out (a comment says which). Exit status 1 when no JSON was found.
set -euo pipefail

RESULTS=${1:-bench/results/compare}
OUT=${2:-$RESULTS/compare.dat}
command -v jq > /dev/null || { echo "compare_data.sh: jq is missing: run 'make deps'" >&2; exit 1; }
shopt -s nullglob
files=("$RESULTS"/*.json)
[ ${#files[@]} -gt 0 ] || { echo "compare_data.sh: no JSON in $RESULTS: run make compare" >&2; exit 1; }

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
    first=${files[0]}
    days=$(jq -r '.date[0:10]' "${files[@]}" | sort -u |
           awk 'NR == 1 { f = $0 } { l = $0 } END { print (f == l) ? f : f " to " l }')
    pys=$(jq -r '.python // "not measured"' "${files[@]}" | sort -u | paste -sd, -)
    quick=$(jq -r 'select(.quick) | .scenario' "${files[@]}" | head -n 1)
    echo "# label measured on this machine: $(jq -r '.machine.cores' "$first") cores, $(jq -r '.machine.os' "$first"), $days"
    echo "# versions poolbench $(jq -r '.poolbench' "$first"), CPython $pys (fork)$([ -n "$quick" ] && echo '; quick parameters: a test run')"
    echo "# index scenario poolbench cpython model agree ratio"
    i=0
    for f in "${files[@]}"; do
        row=$(jq -r '[.scenario] + (.ratios | map(select(.key)) | .[0:1] | map(
                 [.poolbench, .cpython, (.model // "NaN"), (if .agree then 1 else 0 end),
                  (.num + "/" + .den)]) | flatten) | map(tostring) | join(" ")' "$f")
        set -- $row
        if [ $# -lt 6 ] || [ "$2" = null ] || [ "$3" = null ]; then
            echo "# left out: $1 (no key ratio for both engines)"
            continue
        fi
        echo "$i $row"
        i=$((i + 1))
    done
} > "$tmp"
mv "$tmp" "$OUT"
trap - EXIT
echo "compare_data.sh: $OUT: $(grep -cv '^#' "$OUT" || true) scenarios"
