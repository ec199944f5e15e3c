#!/usr/bin/env bash
# test_labs.sh: the classroom labs (poolbench lab, docs/labs/).
#
#   tests/harness/test_labs.sh [POOLBENCH]      default build/poolbench; run from the repo root
#
# What is tested:
#   - `poolbench lab` lists every lab, in course order, and each has its page
#     docs/labs/NN-name.md with NN its order;
#   - every lab's setting, questions and answers render for several seeds
#     (-c --no-run: the answers without the run): exit 0, the seed echoed,
#     no %name left unreplaced, one numeric answer per question;
#   - the same seed gives the same output twice, and seed 1 of get_placement
#     gives pinned numbers (the generator is the same on every machine);
#   - a seed from the clock is echoed and reproduces its setting;
#   - one quick lab with -c runs and shows prediction beside measurement;
#   - an unknown lab exits 2 naming the valid ones; bad usage exits 2; a bad
#     lab table is "file:line: lab: message", exit 2;
#   - every command the lab pages give runs: the lines starting with
#     build/poolbench in their code blocks, `run` ones with --quick added;
#     each must exit 0, or 1 where the line says "# exits 1" (a check that
#     fails on purpose), or either where it says "# exits 0 or 1" (a timing
#     on the edge of a check's threshold: the page gives the range measured,
#     and the test does not bet on which side one run lands; 2 or a crash
#     still fails).
# One line per test ("ok - name" / "not ok - name", then the output indented),
# and exactly one summary line at the end: "N passed, N failed". Exit status
# 1 if any test failed. It takes well under a minute.
#
# Under a sanitizer (SANITIZED=1, from make sanitize / make tsan) timings and
# memory are the sanitizer's, so a scenario's failed check (exit 1) is
# accepted where a run happens; a crash or a sanitizer report (99) is not.

set -u

PB=${1:-build/poolbench}
. "$(dirname "$0")/../lib.sh"

LABS="pool_vs_fork get_placement serialized_get overhead chunk_skew quick_tasks early_stop
      errors one_file imap_memory lifecycle worker_init worker_death shared_state
      straggler eager_input oversubscription interrupt orphans big_argument get_timeout
      start_method fork_with_threads"
SEEDS="1 2 3 42"

if [ ! -x "$PB" ]; then
    echo "test_labs: $PB is not an executable (build it first)"
    echo "0 passed, 1 failed"
    exit 1
fi


# ---- the list --------------------------------------------------------------------------

run lab
check "lab lists the labs in course order" eval '
    [ "$rc" -eq 0 ] &&
    awk "/^ +[0-9]+  /{ if (\$1 <= last) bad = 1; last = \$1; n++ } END { exit bad || n < 13 }" \
        "$tmp/out"'
for l in $LABS; do
    order=$(awk -v l="$l" '$2 == l { print $1 }' "$tmp/out")
    page=$(printf 'docs/labs/%02d-%s.md' "${order:-0}" "$l")
    check "lab $l is listed, and has its page $page" eval '[ -n "$order" ] && [ -f "$page" ] &&
        grep -qF "build/poolbench lab $l --seed 1" "$page" &&
        grep -qF "($(basename "$page"))" docs/labs/README.md'
done

# ---- every lab renders, for several seeds ----------------------------------------------------

# rendered: the setting and questions of $tmp/out are whole (seed $1).
rendered() {
    [ "$rc" -eq 0 ] && grep -qx "ARG seed $1" "$tmp/out" &&
        ! grep -qE '%[A-Za-z_]' "$tmp/out" && grep -qE '^  1\. ' "$tmp/out" &&
        grep -q '^questions:$' "$tmp/out"
}
# answered: as many answers as questions, each a number (and a unit).
answered() {
    local q a
    q=$(sed -n '/^questions:$/,/^$/p' "$tmp/out" | grep -cE '^  [0-9]+\. ')
    a=$(sed -n '/^answers (the model.s):$/,/^$/p' "$tmp/out" |
        grep -cE '^  [0-9]+\. -?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?( [A-Za-z]+)?$')
    [ "$q" -gt 0 ] && [ "$q" -eq "$a" ] && out_has "why (the model):"
}
for l in $LABS; do
    for s in $SEEDS; do
        run lab "$l" --seed "$s"
        check "lab $l --seed $s: the setting and questions render" eval 'rendered "$s" &&
            out_has "lab $l --seed $s -c"'
        run lab "$l" --seed "$s" -c --no-run
        check "lab $l --seed $s -c --no-run: every answer is a number" eval \
            'rendered "$s" && answered'
    done
    run lab "$l" --seed 42 -c --no-run
    cp "$tmp/out" "$tmp/first"
    run lab "$l" --seed 42 -c --no-run
    check "lab $l --seed 42: the same seed gives the same output" cmp -s "$tmp/first" "$tmp/out"
done

# The generator is ours (xorshift64*), so these are the numbers on any machine.
run lab get_placement --seed 1
check "seed 1 of get_placement draws n=7, workers=3, task_ms=20 everywhere" eval '
    grep -qx "ARG n 7 (drawn from 6..12)" "$tmp/out" &&
    grep -qx "ARG workers 3 (drawn from 3..6)" "$tmp/out" &&
    grep -qx "ARG task_ms 20 (drawn from 20..60, step 10)" "$tmp/out"'

run lab get_placement
seed=$(sed -n 's/^ARG seed \([0-9]*\) (from the clock.*/\1/p' "$tmp/out")
grep '^ARG [a-z]' "$tmp/out" | grep -v '^ARG seed' > "$tmp/clock"
run lab get_placement --seed "${seed:-x}"
check "a seed from the clock is echoed and gives the same setting again" eval '
    [ -n "$seed" ] && [ "$rc" -eq 0 ] &&
    grep "^ARG [a-z]" "$tmp/out" | grep -v "^ARG seed" | cmp -s - "$tmp/clock"'

run lab scenarios/get_placement.lua --seed 1
cp "$tmp/out" "$tmp/byfile"
run lab get_placement --seed 1
check "a lab by its file is the lab by its name" cmp -s "$tmp/byfile" "$tmp/out"

# ---- -c: a run, prediction beside measurement ------------------------------------------------

run lab quick_tasks --seed 1 -c
check "lab quick_tasks --seed 1 -c runs it and puts prediction beside measurement" eval '
    run_ok && out_has "answers (the model" &&
    out_has "the run, as \`poolbench run scenarios/quick_tasks.lua --set n=16 --set workers=6\`" &&
    out_has "ARG workers 6 (--set)" && out_has "checks: " &&
    sed -n "/^prediction vs measurement/,/^\$/p" "$tmp/out" |
        grep -cE "^  [0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.-]+ +" | grep -qx 3 &&
    out_has "why (the model):"'

# ---- errors: unknown lab, usage, bad lab tables -------------------------------------------------

run lab no_such_lab
check "an unknown lab exits 2 and names the valid ones" eval '[ "$rc" -eq 2 ] &&
    err_has "unknown lab '"'"'no_such_lab'"'"'" &&
    for l in $LABS; do err_has "$l" || exit 1; done'
run lab get_placement --seed abc
check "--seed must be a whole number (exit 2)" eval '[ "$rc" -eq 2 ] && err_has "--seed expects"'
run lab get_placement serialized_get
check "one lab at a time (exit 2)" eval '[ "$rc" -eq 2 ] && err_has "one lab at a time"'
run lab -c
check "-c needs a lab (exit 2)" eval '[ "$rc" -eq 2 ] && err_has "need a lab"'
run lab get_placement --no-run
check "--no-run goes with -c (exit 2)" eval '[ "$rc" -eq 2 ] && err_has "goes with -c"'
run lab get_placement --frobnicate
check "an unknown option exits 2" eval '[ "$rc" -eq 2 ] && err_has "unknown option"'
run lab tests/harness/scenarios/tiny.lua
check "a scenario without a lab table exits 2" eval '[ "$rc" -eq 2 ] && err_has "no lab table"'

# A small good lab, then one mistake at a time; each must name its line.
cat >"$tmp/good.lua" <<'EOF'
return {
  name = "labtest",
  params = {
    n = {default = 4, min = 1, max = 100, doc = "items"},
  },
  workload = function(p) return {items = p.n, stages = {"square"}} end,
  impls = {"map_async"},
  lab = {
    title = "a test lab",
    order = 50,
    vary = {n = {2, 9}},
    questions = {
      {ask = "%n items: how many results?", answer = function(p) return p.n end,
       measure = "map_async.results"},
    },
    explain = [[%n squares, 100% of them.]],
  },
}
EOF
run lab "$tmp/good.lua" --seed 7 -c
check "a lab of one's own runs with -c" eval 'run_ok && out_has "lab 50: labtest: a test lab" &&
    grep -qE "^  1 +([0-9]+) +\\1 +1.00 +map_async.results" "$tmp/out" &&
    out_has "squares, 100% of them."'

# bad_lab LINE WHAT OLD NEW: good.lua with OLD replaced by NEW must fail at LINE.
bad_lab() {
    local line=$1 what=$2
    sed "s/$3/$4/" "$tmp/good.lua" >"$tmp/bad.lua"
    run lab "$tmp/bad.lua" --seed 1
    check "a bad lab table: $what (file:line, exit 2)" eval \
        '[ "$rc" -eq 2 ] && err_has "$tmp/bad.lua:$line: lab: "'
}
bad_lab 12 "an unknown field" "questions =" "questoins ="
bad_lab 11 "vary names no parameter" "vary = {n =" "vary = {m ="
bad_lab 11 "a vary range outside the parameter's" "{2, 9}" "{2, 900}"
bad_lab 13 "%name of no parameter" "%n items" "%nn items"
bad_lab 14 "a measure of no label" "map_async.results" "imap.results"
bad_lab 10 "an order that is not an integer" "order = 50" "order = 1.5"
sed 's/^    questions = {/    where = function(p) return p.n > 50 end,\n    questions = {/' \
    "$tmp/good.lua" >"$tmp/bad.lua"
run lab "$tmp/bad.lua" --seed 1
check "a where rule that never holds (exit 2)" eval '[ "$rc" -eq 2 ] &&
    err_has "where(p) held for none of 1000 draws"'

# ---- every command the lab pages give -------------------------------------------------------------

# The lines starting with build/poolbench inside the pages' code blocks, each
# once (the index repeats some), with the page and whether it says "exits 1".
# Code blocks may be indented (an exercise's, inside a list item).
awk '/^[ \t]*```/ { code = !code; next }
     code && /^[ \t]*build\/poolbench / { sub(/^[ \t]+/, ""); print FILENAME "\t" $0 }' \
    docs/labs/*.md |
    awk -F'\t' '!seen[$2]++' >"$tmp/commands"
check "the lab pages give commands to run ($(wc -l <"$tmp/commands") of them)" \
    eval '[ "$(wc -l <"$tmp/commands")" -ge 60 ]'
while IFS=$'\t' read -r page line; do
    cmd=${line%%#*}             # the command without its comment
    want=0
    # "# exits 0 or 1": a borderline timing the page gives as a measured
    # range; either outcome is right, a usage error (2) or a crash is not.
    case $line in *"# exits 0 or 1"*) want="0 or 1" ;; *"# exits 1"*) want=1 ;; esac
    read -r -a args <<<"${cmd#build/poolbench }"
    if [ "${args[0]}" = run ] && [[ " ${args[*]} " != *" --quick "* ]]; then
        args+=(--quick)
    fi
    run "${args[@]}"
    if { [ -n "${SANITIZED:-}" ] || [ "$want" = "0 or 1" ]; } && [ "$rc" -le 1 ]; then
        ok=yes
    elif [ "$want" = "0 or 1" ]; then
        ok=no
    else
        ok=$([ "$rc" -eq "$want" ] && echo yes || echo no)
    fi
    check "$(basename "$page"): ${args[*]} exits $want" [ "$ok" = yes ]
done <"$tmp/commands"

# ---- the exercises: write the fix (--exercise, -c --solution) ------------------------

for lab in $LABS; do
    run lab "$lab" --exercise
    check "lab $lab --exercise prints a Lua skeleton and how to judge it" \
        exits_with 0 "-- Exercise for lab $lab:" "return function(pool, items, p)" \
        "poolbench lab $lab --seed 1 -c --solution FILE"
done
run lab get_placement --exercise "$tmp/ex.lua"
check "lab --exercise FILE writes the skeleton there" eval \
    'exits_with 0 "wrote the exercise of lab get_placement to $tmp/ex.lua" &&
     grep -q "^return function(pool, items, p)" "$tmp/ex.lua"'
run lab get_placement --seed 1 -c --solution "$tmp/ex.lua"
if [ -n "${SANITIZED:-}" ]; then
    check "the unfinished skeleton runs and is judged (sanitized: verdict not judged)" \
        eval '[ "$rc" -le 1 ] && out_has "your strategy beside the reference, async_get_after:"'
else
    check "the unfinished skeleton runs, and is judged too slow (exit 1)" \
        exits_with 1 "FAIL  solution is as fast as async_get_after" "not yet:"
fi
# A reference solution is judged on what it computed (every final result the
# reference gave, or the stop at the answer: structure, which cannot flake);
# its speed verdicts are printed, and their PASS or FAIL is a measurement on
# a shared machine, not something this test may hang on.
for sol in tests/harness/solutions/*.lua; do
    lab=$(basename "$sol" .lua)
    run lab "$lab" --seed 1 -c --solution "$sol"
    check "lab $lab -c --solution: the reference solution runs and gives the reference's results" \
        eval '[ "$rc" -le 1 ] && out_has "your strategy beside the reference" &&
              grep -Eq "^PASS  [a-z_0-9]+ (gave the final results|stopped at the answer)" "$tmp/out" &&
              out_has "is as fast as"'
done
printf 'return 42\n' >"$tmp/bad_solution.lua"
run lab get_placement --seed 1 -c --solution "$tmp/bad_solution.lua"
check "a solution that returns no function is refused (2)" \
    fails_with 2 "must return function(pool, items, p) or a table of them"
run lab get_placement --solution "$tmp/ex.lua"
check "--solution without -c is a usage error (2)" fails_with 2 "--solution goes with -c"


finish
