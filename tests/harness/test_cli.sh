#!/usr/bin/env bash
# test_cli.sh: command-line tests of poolbench, on the small scenario files in
# tests/harness/scenarios/ (each runs in well under a second with --quick).
#
#   tests/harness/test_cli.sh [POOLBENCH]      default build/poolbench; run from the repo root
#
# What is tested: the table, JSON parsed back by a real parser (jq), CSV,
# trace, exit codes (0 checks hold, 1 a check failed, 2 bad usage or a bad
# scenario) and each bad-input message, with the file:line it must name.
# One line per test ("ok - name" / "not ok - name", then the command's output
# indented), and exactly one summary line at the end: "N passed, N failed".
# Exit status 1 if any test failed.
#
# Tests assert structure (rows, counts, keys, messages), never speed: the
# machines are shared and noisy (DESIGN.md, timing honesty).

set -u

PB=${1:-build/poolbench}
SC=tests/harness/scenarios
. "$(dirname "$0")/../lib.sh"

if [ ! -x "$PB" ]; then
    echo "test_cli: $PB is not an executable (build it first)"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! command -v jq >/dev/null; then
    echo "test_cli: jq is missing (make deps installs it)"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---- help, version, usage ------------------------------------------------------

run --version
check "--version prints the version" [ "$rc" -eq 0 -a "$(cat "$tmp/out")" = "poolbench 0.1.0" ]
run --help
check "--help prints the usage and exits 0" exits_with 0 "usage: poolbench list" "exit status"
run
check "no command is a usage error (2)" fails_with 2 "usage:"
run frobnicate
check "an unknown command is a usage error (2)" fails_with 2 "unknown command 'frobnicate'"
run run "$SC/tiny.lua" --bogus
check "an unknown option is a usage error (2)" fails_with 2 "unknown option '--bogus'"
run run "$SC/tiny.lua" --repeat 0
check "--repeat 0 is refused (2)" fails_with 2 "--repeat expects a whole number from 1"
run run "$SC/no_such_file.lua"
check "a missing file exits 2 and says why" fails_with 2 "no_such_file.lua: No such file"

# ---- list and show -----------------------------------------------------------------

mkdir -p "$tmp/scn"
cp "$SC/tiny.lua" "$SC/fails_check.lua" "$tmp/scn/"
POOLBENCH_SCENARIOS="$tmp/scn" run list
check "list shows each scenario with its summary" \
    exits_with 0 "tiny" "squares of 1..n through four strategies" "fails_check"
all_strategies_listed() {
    for s in apply_sync async_get_loop async_get_after callback_chain merged map_async imap \
        imap_unordered producer_consumer executor_submit executor_map process_per_task; do
        out_has "  $s " || return 1
    done
}
check "list shows every strategy" all_strategies_listed
run list
check "list finds scenarios/ (serialized_get)" exits_with 0 "serialized_get"

run show "$SC/tiny.lua"
check "show prints doc, parameters and both predictions" eval 'exits_with 0 "Squares 1..n" "t_ms" &&
    out_matches "^  async_get_after +async_get_after +0\.060 +0\.020"'
check "show lists a variant with its strategy" \
    out_matches "^  map_one_chunk +map_async +0\.120 +0\.040"

# ---- run: the table ---------------------------------------------------------------

run run "$SC/tiny.lua" --quick --json "$tmp/r.json" --csv "$tmp/r.csv" --trace "$tmp/r.trace"
check "run --quick of a good scenario exits 0" [ "$rc" -eq 0 ]
check "every parameter is echoed first" eval 'head -1 "$tmp/out" | grep -q "^poolbench 0.1.0: tiny" &&
    exits_with 0 "ARG n 4 (quick)" "ARG workers 2" "ARG t_ms 10 (quick)" "ARG chunksize 0" \
        "ARG cores " "figures measured on this machine"'
row_per_strategy() {
    for l in async_get_after map_async map_one_chunk merged; do
        grep -qE "^$l +[0-9]+\.[0-9]{3} \(" "$tmp/out" || return 1
    done
}
check "the table has a row per strategy" row_per_strategy
check "the table shows tasks run/total and per-worker counts" \
    out_matches "^map_one_chunk .* 4/4 +4 +0$"
check "each check is printed, then the count" \
    exits_with 0 "PASS  the parent saw the squares" "checks: 6 of 6 passed"

# ---- run: JSON, read back by jq -------------------------------------------------------

jqt() { jq -e "$1" "$tmp/r.json" >/dev/null 2>&1; }
check "--json: top-level keys and types" jqt '
  (.scenario == "tiny") and (.source | type == "string") and (.params.n == 4)
  and (.machine.cores | type == "number") and (.machine.os | type == "string")
  and (.date | type == "string") and (.results | length == 4) and (.checks | length == 6)'
check "--json: every result has the required fields" jqt '
  all(.results[]; (.impl | type == "string") and (.wall_s | type == "number")
      and (.wall_min_s <= .wall_s) and (.wall_s <= .wall_max_s)
      and ((.model_s | type == "number") or (.model_s == null))
      and (.tasks_run | type == "number") and (.tasks_total == 4) and (.errors == 0)
      and (.peak_rss_kb > 0) and (.per_worker | type == "array")
      and (.params.n == 4))'
check "--json: per_worker tasks sum to tasks_run" jqt '
  all(.results[]; ([.per_worker[].tasks] | add) == .tasks_run
      and all(.per_worker[]; (.slot | type == "number") and (.pid > 0) and (.busy_s >= 0)))'
check "--json: a variant keeps its label, impl and overridden params" jqt '
  .results[2] | (.label == "map_one_chunk") and (.impl == "map_async") and (.params.chunksize == 1000)'
check "--json: no model is null, deviation too" \
    jqt '.results[3] | (.model_s == null) and (.deviation == null)'
check "--json: checks have name, ok, detail" jqt '
  all(.checks[]; (.name | type == "string") and (.ok | type == "boolean") and (.detail | type == "string"))'

# ---- run: CSV and trace ---------------------------------------------------------------

csv_rows() {
    [ "$(wc -l <"$tmp/r.csv")" -eq 5 ] &&
        head -1 "$tmp/r.csv" | grep -q "^scenario,impl,label,wall_s,wall_min_s,wall_max_s," &&
        [ "$(cut -d, -f3 "$tmp/r.csv" | tail -4 | tr "\n" " ")" = \
          "async_get_after map_async map_one_chunk merged " ]
}
check "--csv: a header and one row per strategy" csv_rows
check "--trace: the header" [ "$(head -1 "$tmp/r.trace")" = \
    "impl,task,stage,slot,pid,t_submit,t_start,t_end,t_result,t_callback,job,item,index,state" ]
total=$(jq '[.results[].tasks_run] | add' "$tmp/r.json")
check "--trace: one row per task execution (tasks_run rows)" \
    [ "$(($(wc -l <"$tmp/r.trace") - 1))" -eq "$total" ]
trace_rows_sane() {
    awk -F, 'NR > 1 {
        if ($7 == "" || $8 == "" || $7 + 0 > $8 + 0) bad++
        if ($2 == "sq" && $3 != 1) bad++
        if ($2 == "strat_chain" && $3 != 0) bad++
    } END { exit bad > 0 }' "$tmp/r.trace"
}
check "--trace: t_start <= t_end, stage 1 for sq, 0 for the chain" trace_rows_sane

run run "$SC/tiny.lua" --quick --repeat 2 --json "$tmp/r2.json"
check "--repeat 2: every result says 2 repeats" eval '[ "$rc" -eq 0 ] &&
    jq -e ".repeat == 2 and all(.results[]; .repeats == 2)" "$tmp/r2.json" >/dev/null'

# ---- run: --impl ------------------------------------------------------------------------

run run "$SC/tiny.lua" --quick --impl merged,map_one_chunk
check "--impl runs only those, and checks that need others are skipped" eval '
    exits_with 0 "SKIP  the remaining checks need" && out_matches "^merged " "^map_one_chunk " &&
    ! out_matches "^async_get_after "'
run run "$SC/tiny.lua" --impl map_async
check "--impl of a label runs that variant alone, not the strategy's others" eval '[ "$rc" -eq 0 ] &&
    out_matches "^map_async " && ! out_matches "^map_one_chunk "'
run run "$SC/tiny.lua" --impl imap
check "--impl of a strategy the scenario lacks lists the valid ones (2)" fails_with 2 \
    "unknown strategy 'imap' for tiny (valid: async_get_after, map_async, map_one_chunk, merged)"

# ---- exit codes and failures -----------------------------------------------------------

run run "$SC/fails_check.lua" --quick
check "a failing check exits 1 and says FAIL" \
    exits_with 1 "FAIL  this check fails on purpose (as the test wants)" "checks: 1 of 2 passed"
run run "$SC/task_errors.lua" --quick
check "a failing task and a dead worker are counted, other results kept" eval '
    exits_with 0 "first error: tests/harness/scenarios/task_errors.lua:9: boom on item 2" &&
    out_matches "^async_get_after .* 6/6 .* 2$"'

# ---- bad parameters ------------------------------------------------------------------

run run "$SC/tiny.lua" --set foo=1
check "an unknown parameter lists the valid ones (2)" \
    fails_with 2 "unknown parameter 'foo' (valid: n, workers, t_ms, chunksize)"
run run "$SC/tiny.lua" --set n=abc
check "a non-number is refused (2)" fails_with 2 "parameter 'n': 'abc' is not a number"
run run "$SC/tiny.lua" --set n=5000
check "a value out of range names the range (2)" \
    fails_with 2 "parameter 'n' must be from 1 to 1000 (got 5000)"
run run "$SC/tiny.lua" --set workers=0
check "workers 0 is refused (2)" fails_with 2 "parameter 'workers' must be from 1 to 64 (got 0)"
run run "$SC/tiny.lua" --set chunksize=-1
check "a negative chunksize is refused (2)" fails_with 2 "parameter 'chunksize' must be at least 0 (got -1)"
run run "$SC/tiny.lua" --set chunksize=1e300
check "chunksize=1e300 is refused with its range, not wrapped (2)" fails_with 2 \
    "parameter 'chunksize' must be an integer from 0 to 2147483647 (got 1e+300)"
run run "$SC/tiny.lua" --set n=0x7fffffffffffffff
check "n=0x7fffffffffffffff is refused with its range, not wrapped (2)" fails_with 2 \
    "parameter 'n' must be an integer from 1 to 1000 (got 0x7fffffffffffffff)"
run run "$SC/bad_chunksize.lua" --quick
check "a variant setting chunksize 1e300: its line and the range (2)" fails_with 2 \
    "$SC/bad_chunksize.lua:10: variant 'huge': parameter 'chunksize' must be an integer from 0 to 2147483647"
run run "$SC/tiny.lua" --set n
check "--set without = is refused (2)" fails_with 2 "--set expects key=value (got 'n')"

# ---- bad scenario files: file:line: message, exit 2 --------------------------------------

run run "$SC/bad_syntax.lua"
check "syntax error: file:line" fails_with 2 "$SC/bad_syntax.lua:4: '}' expected"
run run "$SC/bad_runtime.lua"
check "runtime error in workload(): file:line" fails_with 2 \
    "$SC/bad_runtime.lua:8: attempt to call a nil value (global 'no_such_function')"
run run "$SC/bad_strategy.lua"
check "unknown strategy: its line, and the valid ones" fails_with 2 \
    "$SC/bad_strategy.lua:7: unknown strategy 'no_such_strategy' (valid: apply_sync, async_get_loop,"
run run "$SC/bad_model.lua"
check "a model for an unknown label: its line" fails_with 2 \
    "$SC/bad_model.lua:8: model for 'imap', which is not in impls (labels: merged)"
run run "$SC/bad_stage.lua"
check "a stage naming an unknown task: its line" fails_with 2 \
    "$SC/bad_stage.lua:6: workload: stage 'no_such_task' is not a task"
run run "$SC/bad_missing.lua"
check "a missing name: the line of return {" fails_with 2 "$SC/bad_missing.lua:3: missing field 'name'"
run run "$SC/bad_param.lua"
check "a quick value outside min..max: its line" fails_with 2 \
    "$SC/bad_param.lua:6: parameter 'workers' must be from 1 to 8 (quick is 0)"
run run "$SC/bad_nodefault.lua"
check "a parameter without a default: its line" \
    fails_with 2 "$SC/bad_nodefault.lua:6: parameter 'n' has no default"
run show "$SC/bad_strategy.lua"
check "show reports a bad scenario the same way" fails_with 2 "$SC/bad_strategy.lua:7: unknown strategy"

run run "$SC/observe.lua" --quick
check "observe sees every value and every error" exits_with 0 "checks: 2 of 2 passed"

# ---- any error from Lua: file:line, never a crash ----------------------------------------

no_panic() { ! grep -q PANIC "$tmp/err"; }
run run "$SC/strict.lua" --quick
check "strict tables (a metatable raising on a missing field) are read raw: the run passes" \
    eval 'exits_with 0 "checks: 2 of 2 passed" && no_panic'
run run "$SC/strict_globals.lua" --quick
check "strict globals (_G raising on a new global): P is set raw, the run passes" \
    eval 'exits_with 0 "checks: 1 of 1 passed" && no_panic'
run show "$SC/strict.lua"
check "show reads strict tables too" eval 'exits_with 0 "strict (" && no_panic'
run run "$SC/bad_tostring_key.lua"
check "a key whose __tostring raises: exit 2, file:line, no crash" eval \
    'fails_with 2 "$SC/bad_tostring_key.lua:6: unknown field '"'"'(a table)'"'"' in the scenario" && no_panic'
run show "$SC/bad_tostring_key.lua"
check "show: the same, no crash" eval 'fails_with 2 "$SC/bad_tostring_key.lua:6:" && no_panic'
run run "$SC/bad_workload_meta.lua"
check "workload returns a key whose __tostring raises: exit 2, file:line" eval \
    'fails_with 2 "$SC/bad_workload_meta.lua:7: workload: unknown field '"'"'(a table)'"'"'" && no_panic'
run run "$SC/bad_raise_table.lua"
check "workload raises a table with a raising __tostring: exit 2, file:line" eval \
    'fails_with 2 "$SC/bad_raise_table.lua:8: error object is a table value, not a message" && no_panic'
run run "$SC/observe_raise.lua" --quick
check "observe raises a table: exit 2 with file:line" \
    fails_with 2 "$SC/observe_raise.lua:11: error object is a table value"
run run "$SC/bad_positional.lua"
check "a positional entry in the scenario table: its own line, and says so" \
    fails_with 2 "$SC/bad_positional.lua:5: positional entry #1 in the scenario"
run run "$SC/checks_raise.lua" --quick
check "checks raising a table is a failed check (1), not a skip that passes" eval '
    exits_with 1 "FAIL  the checks ran to the end without an error ($SC/checks_raise.lua:13: error object is a table value" &&
    ! out_has "SKIP"'
run run "$SC/parent_exit.lua" --quick
check "os.exit in a stage run in the parent is an error, not a silent exit 0" \
    exits_with 1 "os.exit is not allowed in a scenario's parent-side code"

# ---- time limits, signals, temporary files -------------------------------------------

run run "$SC/task_timeout.lua" --quick --json "$tmp/tt.json"
check "the file's task_timeout fails the stuck item on every strategy, the run goes on" \
    exits_with 0 "checks: 3 of 3 passed" "item 2: "
run run "$SC/task_timeout.lua" --quick --impl imap --task-timeout 0.5
check "--task-timeout overrides the file's" out_has "ran past its time limit of 0.5 s"
run run "$SC/tiny.lua" --task-timeout abc
check "--task-timeout needs seconds (2)" fails_with 2 "--task-timeout expects seconds"

# ---- start methods ----------------------------------------------------------------------

run run "$SC/tiny.lua" --quick --start-method spawn --json "$tmp/sm.json"
check "--start-method spawn: every check holds, the report says spawn (text and JSON)" eval '
    exits_with 0 "ARG start_method spawn" "checks: 6 of 6 passed" &&
    jq -e "all(.results[]; .start_method == \"spawn\")" "$tmp/sm.json" > /dev/null'
check "--start-method spawn: no spawned worker is left behind" \
    eval '[ -z "$(pids_here "poolbench worker .*tests/harness/scenarios/tiny.lua")" ]'
# Under ASan or TSan the fork start method is not run: their allocators are
# not fork-safe beside other threads, and a worker forked from the pool's
# thread can hang on the allocator's own lock (seen: this very run hung in a
# make sanitize): P21's hazard, as tests/engine/test_pool_start.c says.
if [ -z "${SANITIZED:-}" ]; then
run run "$SC/tiny.lua" --quick --start-method fork --csv "$tmp/sm.csv"
check "--start-method fork: every check holds; the CSV has the start method" eval '
    exits_with 0 "ARG start_method fork" "checks: 6 of 6 passed" &&
    head -1 "$tmp/sm.csv" | grep -q ",start_method," && grep -q ",fork," "$tmp/sm.csv"'
fi
run run "$SC/tiny.lua" --quick --start-method=forkserver
check "--start-method=forkserver (the default, named)" exits_with 0 "ARG start_method forkserver"
run run "$SC/tiny.lua" --start-method vfork
check "--start-method: a bad value names the valid ones (2)" \
    fails_with 2 "--start-method must be fork, forkserver or spawn (got 'vfork')"
run run "$SC/tiny.lua" --start-method
check "--start-method needs a value (2)" fails_with 2 "--start-method needs fork, forkserver or spawn"
run run "$SC/start_methods.lua" --quick --json "$tmp/sms.json"
check "start_method: a variant's own, else the file's" eval '
    exits_with 0 "ARG start_method forked=fork, default=spawn" &&
    jq -e "[.results[].start_method] == [\"fork\", \"spawn\"]" "$tmp/sms.json" > /dev/null'
run run "$SC/start_methods.lua" --quick --start-method forkserver
check "start_method: --start-method wins over the file's, not over a variant's own" \
    exits_with 0 "ARG start_method forked=fork, default=forkserver"
run run "$SC/bad_start_method.lua"
check "start_method: a bad name is file:line, naming the valid ones (2)" \
    fails_with 2 "$SC/bad_start_method.lua:7: 'start_method' must be \"fork\", \"forkserver\" or \"spawn\" (got \"vfork\")"

# ---- transports (issue 14) -------------------------------------------------------------

run run "$SC/transports.lua" --quick --transport shm --json "$tmp/tr.json"
check "--transport shm: the variants without one run on shm, the others on theirs" eval '
    exits_with 0 "ARG transport shm (on_socket: socket)" "plain: transport shm," \
        "on_socket: transport socket," "checks: 4 of 4 passed" &&
    [ "$(jq -r "[.results[] | .label + \"=\" + .transport] | join(\" \")" "$tmp/tr.json")" = \
      "on_socket=socket on_shm=shm plain=shm" ]'
POOLBENCH_TRANSPORT=socket run run "$SC/transports.lua" --quick --impl plain --csv "$tmp/tr.csv"
check "POOLBENCH_TRANSPORT=socket: the report and the CSV say socket" eval '
    exits_with 0 "ARG transport socket" "plain: transport socket," &&
    head -1 "$tmp/tr.csv" | grep -q ",cores,start_method,transport,params$" && tail -1 "$tmp/tr.csv" | grep -q ",socket,n="'
run run "$SC/transports.lua" --quick --transport pigeon
check "--transport with an unknown name is refused, naming the valid ones (2)" \
    fails_with 2 "--transport: unknown transport 'pigeon' (valid: socket, shm)"
POOLBENCH_TRANSPORT=pigeon run run "$SC/transports.lua" --quick
check "a bad POOLBENCH_TRANSPORT is refused, naming the valid ones (2)" \
    fails_with 2 "POOLBENCH_TRANSPORT='pigeon' is not a transport (valid: socket, shm)"
if [ -z "${SANITIZED:-}" ]; then # not under a sanitizer: see the fork run above
run run "$SC/tiny.lua" --quick --start-method fork --transport shm
check "--start-method fork --transport shm: every check holds" \
    exits_with 0 "ARG start_method fork" "ARG transport shm" "checks: 6 of 6 passed"
fi
run run "$SC/tiny.lua" --quick --start-method spawn --transport shm
check "--start-method spawn --transport shm is refused, naming what works (2)" \
    fails_with 2 "start method spawn does not work with the shm transport (spawn works with socket"
run run "$SC/bad_transport.lua"
check "a variant's unknown transport: file:line (2)" \
    fails_with 2 "$SC/bad_transport.lua:7: variant 'carried': unknown transport 'pigeon' (valid: socket, shm)"

mkdir -p "$tmp/tf"
TMPDIR="$tmp/tf" run run "$SC/tmpfiles.lua" --quick
check "pb.tmpname: a worker's os.exit leaves the parent's file; item 1 named from 1" \
    exits_with 0 "checks: 4 of 4 passed"
check "pb.tmpname: the run's directory is gone at exit" [ -z "$(ls -A "$tmp/tf")" ]
t0=$SECONDS
run run "$SC/run_timeout.lua" --quick --json "$tmp/rt.json"
check "the file's run_timeout: exit 124, marked, within seconds" eval '
    exits_with 124 "interrupted by run time limit" && [ $((SECONDS - t0)) -lt 15 ] &&
    jq -e ".interrupted == \"run time limit\"" "$tmp/rt.json" >/dev/null'
run run "$SC/sleepy.lua" --quick --run-timeout 1
check "--run-timeout 1: exit 124, the cleanup ran" exits_with 124 "interrupted by run time limit" "cleanup ran"

# signal_run SIG ARGS...: poolbench in a session of its own, SIG once the
# run is under way; rc, and $left: processes of its session still there.
signal_run() {
    local sig=$1 pid i
    shift
    rm -rf "$tmp/ts"; mkdir -p "$tmp/ts"
    TMPDIR="$tmp/ts" setsid "$PB" "$@" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    for i in $(seq 100); do grep -q "^figures measured" "$tmp/out" 2>/dev/null && break; sleep 0.1; done
    sleep 1
    kill -"$sig" "$pid"
    wait "$pid"
    rc=$?
    for i in $(seq 30); do left=$(ps -s "$pid" -o pid= | wc -l); [ "$left" -eq 0 ] && break; sleep 0.1; done
}
for s in INT:130 TERM:143; do
    sig=${s%:*} want=${s#*:}
    for impl in async_get_after process_per_task imap; do
        signal_run "$sig" run "$SC/sleepy.lua" --quick --impl "$impl" --json "$tmp/sig.json" --csv "$tmp/sig.csv"
        check "SIG$sig during $impl: exit $want, the table so far marked, cleanup ran, nothing left" eval '
            exits_with "$want" "interrupted by SIG$sig" "cleanup ran" && [ "$left" -eq 0 ] &&
            [ -z "$(ls -A "$tmp/ts")" ] && ! out_has "checks:" &&
            jq -e ".interrupted == \"SIG$sig\" and .results[0].interrupted == \"SIG$sig\"" "$tmp/sig.json" >/dev/null &&
            head -1 "$tmp/sig.csv" | grep -q interrupted'
    done
done

# ---- strategies written in Lua (docs/lua-api.md, "Strategies in Lua") ---------------------

run run "$SC/lua_api.lua"
if [ -n "${SANITIZED:-}" ]; then
    check "lua_api.lua: the Lua pool API runs (sanitized: checks not judged)" eval \
        '[ "$rc" -eq 0 -o "$rc" -eq 1 ] && out_has "checks: "'
else
    check "lua_api.lua: every call of the Lua pool API does what it says" \
        exits_with 0 "PASS  api: as_completed" "PASS  api: timeout" "PASS  api: thread" \
        "PASS  p2: callbacks serialized (P2)" "checks: 32 of 32 passed"
fi
check "a raising Lua callback is a callback error, not a crash" \
    err_has "lua_api.lua:91: callback fails"

run run "$SC/lua_raise.lua"
check "a raising Lua strategy fails alone, with file:line, and the run goes on" \
    eval 'exits_with 1 "PASS  fine ran after raising failed" \
        "raising: first error: tests/harness/scenarios/lua_raise.lua:11: the strategy fails"'
check "a strategy raising beside a looping pb.thread: the thread is stopped, the run ends" \
    exits_with 1 "threaded: first error: tests/harness/scenarios/lua_raise.lua:18: ValueError: no task named 'no_such_task'" \
    "threaded: note: the strategy ended with pb.threads unjoined: the pool was terminated, the threads stopped"

cat >"$tmp/lua_bad1.lua" <<'LUA'
return {
  name = "bad",
  workload = function(p) return {items = 2, stages = {"square"}} end,
  strategies = {
    map_async = function(pool, items, p) end,
  },
  impls = {"map_async"},
}
LUA
run run "$tmp/lua_bad1.lua"
check "a Lua strategy may not take a C strategy's name (2, file:line)" \
    fails_with 2 "lua_bad1.lua:5: strategy 'map_async' has the name of a C strategy"
cat >"$tmp/lua_bad2.lua" <<'LUA'
return {
  name = "bad",
  workload = function(p) return {items = 2, stages = {"square"}} end,
  strategies = {mine = 42},
  impls = {"mine"},
}
LUA
run run "$tmp/lua_bad2.lua"
check "a Lua strategy must be a function (2, file:line)" \
    fails_with 2 "lua_bad2.lua:4: strategy 'mine' must be a function(pool, items, p)"

run run "$SC/lua_twins.lua" --quick --impl async_get_after,lua_get_after \
    --json "$tmp/tw.json" --trace "$tmp/tw.trace"
check "a Lua strategy reports the same JSON fields as a C one" eval \
    'jq -e "[.results[] | keys] | .[0] == .[1]" "$tmp/tw.json" >/dev/null'
check "a Lua strategy writes trace rows as a C one" eval \
    '[ "$(grep -c "^lua_get_after,A,1," "$tmp/tw.trace")" -eq 6 ] &&
     [ "$(grep -c "^lua_get_after,B,2," "$tmp/tw.trace")" -eq 6 ]'
check "a variant of a Lua strategy with set overrides" eval \
    '"$PB" show "$SC/lua_twins.lua" | grep -q "lua_imap_unordered_stop"'

# The twins: each C strategy beside its Lua twin (wall time within 10% + 20 ms,
# the same counts and callback facts). Medians of 3 repeats; a timing miss on
# this shared machine is retried once before it counts.
if [ -z "${SANITIZED:-}" ]; then
    run run "$SC/lua_twins.lua" --repeat 3
    [ "$rc" -eq 0 ] || run run "$SC/lua_twins.lua" --repeat 3
    check "lua_twins.lua: five Lua twins match their C strategies" \
        exits_with 0 "PASS  lua_producer_consumer takes the time of producer_consumer" \
        "checks: 25 of 25 passed"
    grep -E "^(async_get|lua_|callback_chain|imap_unordered|producer)" "$tmp/out" | sed 's/^/#   /'
else
    run run "$SC/lua_twins.lua" --quick
    check "lua_twins.lua runs (sanitized: checks not judged)" eval \
        '[ "$rc" -eq 0 -o "$rc" -eq 1 ] && out_has "checks: "'
fi

# docs/lua-api.md's complete Lua strategy (the first lua block of "Strategies
# in Lua") runs as printed.
awk '/^## Strategies in Lua/ {sec=1} sec && /^```lua/ && !done {inblock=1; next}
     /^```/ && inblock {inblock=0; done=1} inblock' docs/lua-api.md > "$tmp/lua_strategy.lua"
run run "$tmp/lua_strategy.lua" --quick
if [ -n "${SANITIZED:-}" ]; then
    check "docs/lua-api.md's Lua strategy runs (sanitized: checks not judged)" eval \
        '[ "$rc" -eq 0 -o "$rc" -eq 1 ] && out_has "checks: "'
else
    check "docs/lua-api.md's Lua strategy runs as printed and passes its checks" \
        exits_with 0 "checks: "
fi

# ---- the real scenario ---------------------------------------------------------------------

if [ -z "${SANITIZED:-}" ]; then
    run run scenarios/serialized_get.lua --quick
    check "scenarios/serialized_get.lua --quick passes its checks" \
        exits_with 0 "PASS  get-in-loop at least 1.6x slower than merged"
fi

# docs/lua-api.md's complete example (its first lua block) is a scenario a
# student copies: it must run and pass as printed.
awk '/^```lua/ && !done {inblock=1; next} /^```/ && inblock {inblock=0; done=1} inblock' \
    docs/lua-api.md > "$tmp/squares.lua"
run run "$tmp/squares.lua" --quick
if [ -n "${SANITIZED:-}" ]; then
    check "docs/lua-api.md's example runs (sanitized: checks not judged)" eval \
        '[ "$rc" -eq 0 -o "$rc" -eq 1 ] && out_has "checks: "'
else
    check "docs/lua-api.md's example runs and passes its checks" exits_with 0 "checks: 2 of 2 passed"
fi

# Every real scenario, quick: each reproduces its phenomenon or the run fails.
# Under a sanitizer (SANITIZED=1, from make sanitize / make tsan) timings and
# memory are the sanitizer's, so a failed phenomenon check (exit 1) is
# accepted there; a crash, a usage error or a sanitizer report (exit 99) is not.
for f in scenarios/*.lua; do
    [ "$f" = scenarios/serialized_get.lua ] && [ -z "${SANITIZED:-}" ] && continue
    run run "$f" --quick
    if [ -n "${SANITIZED:-}" ]; then
        check "$f --quick runs to the end (sanitized: checks not judged)" eval \
            '[ "$rc" -eq 0 -o "$rc" -eq 1 ] && out_has "checks: "'
    else
        check "$f --quick passes its checks" exits_with 0 "checks: "
    fi
done


# ---- issue 11's gaps: --help per command, errors first, the trace's states, --timeline ----

for cmd in run show list lab compare; do
    run "$cmd" --help
    check "$cmd --help prints its usage and exits 0" exits_with 0 "usage: poolbench $cmd"
done
run run "$SC/tiny.lua" -h
check "run FILE -h is run's help too (no run)" eval \
    'exits_with 0 "options of run:" && ! out_has "ARG "'

run run "$SC/bad_workload_pos.lua" --set pos=9
check "a workload error comes before any output (2, file:line, stdout empty)" eval \
    'fails_with 2 "bad_workload_pos.lua:12: pos (9) must be at most n (4)" && [ ! -s "$tmp/out" ]'

run run "$SC/gaps.lua" --quick --set n=12 --json "$tmp/gaps.json"
check "gaps.lua: initargs, set functions, repeats, trace = true (its checks pass)" \
    exits_with 0 "ARG repeat 2" "ARG variant map_half = map_async with chunksize=6 (function)" \
    "checks: 10 of 10 passed"
gaps_json() { jq -e "$1" "$tmp/gaps.json" >/dev/null; }
check "--json: queue_wait, run_time and bytes in every result" gaps_json '
  .repeat == 2 and all(.results[]; (.queue_wait.n == 12) and (.queue_wait.p50 <= .queue_wait.p90)
      and (.queue_wait.p99 <= .queue_wait.max) and (.run_time.p50 >= 0.01)
      and (.bytes_sent > 0) and (.bytes_received > 0))'
run run "$SC/gaps.lua" --quick --repeat 1
check "--repeat overrides the scenario's repeats" eval \
    'exits_with 1 "ARG repeat 1" "FAIL  the scenario'"'"'s repeat = 2 (1)"'

# A worker killed mid-task leaves a trace row marked killed, with its start;
# every row's state is one of the five.
run run scenarios/worker_death.lua --quick --trace "$tmp/wd.trace"
trace_states() {
    awk -F, 'NR > 1 {
        if ($14 !~ /^(done|failed|killed|timed_out|not_started)$/) bad++
        if ($14 == "killed" && $7 != "") killed++
        if ($13 + 0 < 1) bad++
    } END { exit !(bad == 0 && killed >= 1) }' "$tmp/wd.trace"
}
check "--trace: a killed task's row says killed, with its start; every row has a state and an index" \
    eval 'run_ok && trace_states'

# --timeline: one lane per worker plus callbacks, each exactly $COLUMNS wide;
# apply_sync runs one task at a time, so reading the lanes, item k+1 first
# appears no earlier than item k (start(k+1) > end(k) >= start(k)), and each
# item appears on one worker's lane only.
COLUMNS=90 run run "$SC/gaps.lua" --quick --impl apply_sync --timeline
timeline_shape() {
    awk '/^timeline of apply_sync/ {on = 1; next}
         on && /^(worker [0-9]+|callbacks) *\|/ {
             lanes++; if (length($0) != 90) bad++
             if ($0 ~ /^worker/) {
                 cells = substr($0, index($0, "|") + 1)
                 for (c = 1; c < length(cells); c++) {
                     ch = substr(cells, c, 1)
                     if (ch ~ /[1-9]/) {
                         if (!(ch in first) || c < first[ch]) first[ch] = c
                         if ((ch in lane) && lane[ch] != lanes) bad++
                         lane[ch] = lanes
                     }
                 }
             }
         }
         on && /^time \(s\)/ {on = 0}
         END {
             for (k = 1; k <= 6; k++) if (!(k in first)) bad++
             for (k = 1; k < 6; k++) if ((k in first) && ((k + 1) in first) && first[k + 1] < first[k]) bad++
             exit !(lanes == 3 && bad == 0)
         }' "$tmp/out"
}
check "--timeline: 2 worker lanes + callbacks, 90 columns each, apply_sync's items in order" \
    eval 'run_ok && timeline_shape'

finish
