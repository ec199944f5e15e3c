#!/usr/bin/env bash
# sweep.sh: runs one scenario across a range of one parameter and writes one
# CSV, for the sweep plots (wall time against chunksize, workers or n).
#
#   bench/sweep.sh SCENARIO PARAM FROM TO [STEP | xFACTOR] [poolbench options] > out.csv
#
#   bench/sweep.sh chunk_skew chunksize 1 16 > chunks.csv             1, 2, ..., 16 (= n)
#   bench/sweep.sh serialized_get workers 1 $((2 * $(nproc))) > workers.csv   1 .. 2x cores
#   bench/sweep.sh imap_memory n 1000 1000000 x10 --set payload=100 > n.csv   10^3 .. 10^6
#   bench/sweep.sh serialized_get b_ms 0 50 10 --quick > b.csv
#   bench/sweep.sh --dry-run imap_memory n 1e3 1e6 x10     prints the values only
#
# (The first three are the sweeps issue 5 asks for. The n sweep takes a few
# minutes: imap pays a message per item, and each value also runs the
# scenario's 4n variants.)
#
# SCENARIO is a name (scenarios/NAME.lua) or a file. The values go from FROM
# while they are at most TO: by STEP added (default 1), or multiplied by
# FACTOR when the step is written xFACTOR; TO is included only when the steps
# land on it. Every option after the range goes to poolbench as it is
# (--impl, --set k=v, --quick, --repeat N); --set PARAM=value is added last,
# so it wins. One run per value:
#
#   build/poolbench run FILE [options] --set PARAM=value --csv TMP
#
# Why one run per value rather than a loop inside poolbench: each value gets
# a fresh process, and the rows are exactly the ones `poolbench run --csv`
# writes, with PARAM in front. So the output is poolbench's header once, with
# a first column named PARAM, then one row per strategy per value.
#
# A variant that sets PARAM itself (a label with `set = {PARAM = ...}` in the
# scenario) does not follow the sweep: its rows keep its value (the params
# column says so), and a warning on stderr names it.
#
# Progress goes to stderr; stdout is the CSV alone.
# A value whose checks fail (exit 1) keeps its rows, with a note: a sweep
# walks into settings where a phenomenon disappears, and that is its point.
# Any other failure stops the sweep: exit 2 for bad usage (here or
# poolbench's: an unknown parameter, a value out of range), else 1.
# Environment: POOLBENCH (default build/poolbench).

set -euo pipefail

cd "$(dirname "$0")/.."   # the repository's root: paths below are relative to it
POOLBENCH=${POOLBENCH:-build/poolbench}

usage() {
    echo "usage: bench/sweep.sh [--dry-run] SCENARIO PARAM FROM TO [STEP | xFACTOR] [poolbench options]" >&2
    echo "       (examples in the comment at the top of bench/sweep.sh)" >&2
    [ $# -gt 0 ] && echo "sweep.sh: $*" >&2
    exit 2
}

dry_run=0
if [ "${1:-}" = --dry-run ]; then dry_run=1; shift; fi
[ $# -ge 4 ] || usage "expected SCENARIO PARAM FROM TO"
scenario=$1 param=$2 from=$3 to=$4
shift 4
step=1
if [ $# -gt 0 ] && [[ $1 != -* ]]; then step=$1; shift; fi
extra=("$@")

number='^[0-9]+([.][0-9]+)?([eE][0-9]+)?$'
[[ $from =~ $number ]] || usage "FROM must be a number (got '$from')"
[[ $to =~ $number ]] || usage "TO must be a number (got '$to')"
[[ ${step#x} =~ $number ]] || usage "the step must be a number or xFACTOR (got '$step')"
[[ $param =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || usage "bad parameter name '$param'"
for a in "${extra[@]}"; do
    case $a in
        --csv | --json | --trace) usage "$a is the sweep's own business" ;;
        "$param="*) usage "--set $a: $param is the parameter swept" ;;
    esac
done

# The values, one a line. awk does the arithmetic, so FROM, TO and the step
# may be fractions (task_ms 0.5 .. 2) or written 1e3; whole numbers print as
# integers. Multiplicative steps are computed as FROM * FACTOR^i, not by
# repeated multiplication, so that rounding cannot creep in.
values=$(awk -v from="$from" -v to="$to" -v step="$step" 'BEGIN {
    mult = substr(step, 1, 1) == "x"
    s = mult ? substr(step, 2) + 0 : step + 0
    if (mult ? s <= 1 : s <= 0) { print "bad step" > "/dev/stderr"; exit 1 }
    if (from + 0 > to + 0) { print "FROM is above TO" > "/dev/stderr"; exit 1 }
    for (i = 0; ; i++) {
        v = mult ? from * s ^ i : from + i * s
        if (v > to * (1 + 1e-9)) break
        if (v == int(v)) printf "%d\n", v
        else printf "%.6g\n", v
        if (i > 10000) { print "more than 10000 values" > "/dev/stderr"; exit 1 }
    }
}') || usage "bad range: $from .. $to by $step"
nvalues=$(echo "$values" | wc -l)

if [ "$dry_run" = 1 ]; then
    echo "$values"
    exit 0
fi

case $scenario in
    */* | *.lua) file=$scenario ;;
    *) file=scenarios/$scenario.lua ;;
esac
[ -f "$file" ] || usage "no scenario file $file"
[ -x "$POOLBENCH" ] || { echo "sweep.sh: $POOLBENCH not found: run 'make' first" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "sweep: $file, $param from $from to $to by $step ($nvalues values); options: ${extra[*]:-none}" >&2
header=""
declare -A warned=()   # labels already warned about
i=0
for v in $values; do
    i=$((i + 1))
    echo "sweep: $param=$v ($i of $nvalues)" >&2
    start=$(date +%s.%N)
    rc=0
    "$POOLBENCH" run "$file" "${extra[@]}" --set "$param=$v" --csv "$tmp/run.csv" \
        > "$tmp/table.txt" || rc=$?
    elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    case $rc in
        0) echo "sweep: $param=$v done in $elapsed s" >&2 ;;
        1) echo "sweep: $param=$v done in $elapsed s; a check failed (rows kept):" >&2
           grep '^FAIL' "$tmp/table.txt" | sed 's/^/  /' >&2 || true ;;
        *) cat "$tmp/table.txt" >&2
           echo "sweep: poolbench failed at $param=$v (exit $rc); stopping" >&2
           [ "$rc" = 2 ] && exit 2   # bad usage (an unknown parameter, a value out of range)
           exit 1 ;;
    esac
    [ -s "$tmp/run.csv" ] || { echo "sweep: no CSV written at $param=$v" >&2; exit 1; }

    # poolbench's CSV: a header line, then one line per strategy. Its fields
    # never hold a line break (multi-line text is cut to its first line), so
    # putting the value in front of each line is enough.
    if [ -z "$header" ]; then
        header=$(head -1 "$tmp/run.csv")
        echo "$param,$header"
    elif [ "$(head -1 "$tmp/run.csv")" != "$header" ]; then
        echo "sweep: the CSV's columns changed at $param=$v" >&2
        exit 1
    fi
    tail -n +2 "$tmp/run.csv" | sed "s/^/$v,/"

    # A variant may set PARAM itself (chunk_skew's map_async_default sets
    # chunksize = 0): its rows then do not follow the sweep. The last column,
    # params ("n=16 workers=2 chunksize=4"), says what each row ran with.
    if [ "${header##*,}" = params ]; then
        while IFS= read -r row; do
            label=$(echo "$row" | cut -d, -f3)
            case " ${row##*,} " in
                *" $param=$v "*) ;;
                *) if [ -z "${warned[$label]:-}" ]; then
                       warned[$label]=1
                       echo "sweep: warning: $label ran with ${row##*,}: its variant" \
                            "sets $param itself, so its rows do not follow the sweep" >&2
                   fi ;;
            esac
        done < <(tail -n +2 "$tmp/run.csv")
    fi
    rm -f "$tmp/run.csv"
done
