#!/usr/bin/env bash
# compare.sh: `make compare`: every scenario beside its CPython twin, then the
# figure and docs/reproduction.md from the results.
#
#   POOLBENCH=build/poolbench bench/compare.sh
#
# Environment:
#   POOLBENCH  the binary (default build/poolbench)
#   QUICK=1    --quick --repeat 1 (seconds, for tests); default: the
#              scenarios' defaults, --repeat 3
#   REPEAT     overrides the repeat count
#   SCENARIOS  the scenario names to run (default every scenarios/*.lua); the
#              other scenarios' results in OUT are kept and reported too
#   OUT        where the results go (default bench/results/compare, ignored by git)
#   DOC        the report to regenerate (default docs/reproduction.md; "" none)
#   FIGURES    where compare.png/.svg go (default plots/out; "" none)
#
# For each scenario: `poolbench compare scenarios/NAME.lua ... --json
# OUT/NAME.json --csv OUT/NAME.csv`, its output kept in OUT/NAME.txt and
# shown as it goes; then plots/compare_data.sh (OUT/compare.dat),
# plots/compare.gp (the figure) and bench/reproduction.py (DOC). Each
# scenario runs whatever the others did; the exit status is 1 when one of
# poolbench's checks failed or a step failed (CPython's failing checks are
# reported, not failing: they measure CPython).
set -uo pipefail

cd "$(dirname "$0")/.."   # the repository's root
POOLBENCH=${POOLBENCH:-build/poolbench}
QUICK=${QUICK:-0}
OUT=${OUT:-bench/results/compare}
DOC=${DOC-docs/reproduction.md}
FIGURES=${FIGURES-plots/out}
if [ "$QUICK" = 1 ]; then opts=(--quick); REPEAT=${REPEAT:-1}; else opts=(); REPEAT=${REPEAT:-3}; fi
[ -x "$POOLBENCH" ] || { echo "compare.sh: $POOLBENCH is not an executable: run make build" >&2; exit 1; }
names=${SCENARIOS:-$(ls scenarios/*.lua | xargs -n1 basename | sed 's/\.lua$//')}

mkdir -p "$OUT"
# A run of every scenario starts afresh; a run of some (SCENARIOS) replaces
# theirs and keeps the others' results, so that the figure and the report
# still cover every scenario measured (each JSON carries its own date).
if [ -z "${SCENARIOS:-}" ]; then
    rm -f "$OUT"/*.json "$OUT"/*.csv "$OUT"/*.txt
else
    for n in $names; do rm -f "$OUT/$n.json" "$OUT/$n.csv" "$OUT/$n.txt"; done
fi
rm -f "$OUT"/compare.dat
echo "ARG poolbench $POOLBENCH"
echo "ARG quick $QUICK"
echo "ARG repeat $REPEAT"
echo "ARG out $OUT"
echo "ARG date $(date +%Y-%m-%dT%H:%M:%S%z)"
rc=0
for n in $names; do
    echo
    echo "==> $POOLBENCH compare scenarios/$n.lua ${opts[*]} --repeat $REPEAT"
    "$POOLBENCH" compare "scenarios/$n.lua" "${opts[@]}" --repeat "$REPEAT" \
        --json "$OUT/$n.json" --csv "$OUT/$n.csv" 2>&1 | tee "$OUT/$n.txt"
    st=${PIPESTATUS[0]}
    echo "compare.sh: $n: exit $st"
    [ "$st" = 0 ] || rc=1
done

echo
plots/compare_data.sh "$OUT" "$OUT/compare.dat" || rc=1
if [ -n "$FIGURES" ] && command -v gnuplot > /dev/null; then
    mkdir -p "$FIGURES"
    if gnuplot -e "datadir='$OUT'; outdir='$FIGURES'" plots/compare.gp; then
        echo "compare.sh: the figure: $FIGURES/compare.png, .svg"
    else
        rc=1
    fi
fi
if [ -n "$DOC" ]; then
    python3 bench/reproduction.py "$OUT" "$DOC" || rc=1
fi
exit $rc
