# tests/lib.sh: what the command-line test scripts share (sourced, not run).
#
# A script sets PB (the poolbench binary) and sources this file. It gets a
# temporary directory $tmp (removed at exit), counters, and:
#   run ARGS...            runs poolbench: stdout in $tmp/out, stderr in
#                          $tmp/err, the exit status in $rc
#   check NAME COMMAND...  one test: ok when COMMAND succeeds; on failure it
#                          prints the FAIL lines, the status and the first
#                          lines of the output
#   out_has / err_has S    stdout / stderr contains the string S
#   out_matches ERE...     stdout has a line matching each extended regex
#   exits_with N S...      status N, and stdout contains every S
#   fails_with N S...      status N, and stderr contains every S
#   run_ok                 status 0, or 1 under a sanitizer (SANITIZED=1:
#                          timings are the sanitizer's, checks not judged)
#   finish                 prints "N passed, N failed", the closing line CI
#                          reads, and returns non-zero if any failed

passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {
    "$PB" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

check() {
    local name=$1
    shift
    if "$@"; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "not ok - $name"
        # The failed checks' own lines first: a log cut after its first
        # lines (CI's summary) still shows which check failed and why.
        if grep -q '^FAIL' "$tmp/out"; then
            echo "#   the failed checks:"
            grep '^FAIL' "$tmp/out" | sed 's/^/#   /'
        fi
        echo "#   exit status $rc; stdout, then stderr:"
        sed -n '1,30s/^/#   /p' "$tmp/out" "$tmp/err"
        failed=$((failed + 1))
    fi
}

# pids_here PATTERN: the processes whose command line matches PATTERN
# (pgrep -f) and that run in this checkout (their cwd), so that a test run
# in another copy beside this one is not taken for ours.
pids_here() {
    local pid
    for pid in $(pgrep -f -- "$1"); do
        [ "$pid" = $$ ] && continue
        [ "$(readlink "/proc/$pid/cwd" 2> /dev/null)" = "$PWD" ] && echo "$pid"
    done
}

out_has() { grep -qF -- "$1" "$tmp/out"; }
err_has() { grep -qF -- "$1" "$tmp/err"; }

out_matches() {
    for re in "$@"; do grep -qE -- "$re" "$tmp/out" || return 1; done
}

exits_with() {
    local want=$1
    shift
    [ "$rc" -eq "$want" ] || return 1
    for s in "$@"; do out_has "$s" || return 1; done
}

fails_with() {
    local want=$1
    shift
    [ "$rc" -eq "$want" ] || return 1
    for s in "$@"; do err_has "$s" || return 1; done
}

run_ok() { [ "$rc" -eq 0 ] || { [ -n "${SANITIZED:-}" ] && [ "$rc" -eq 1 ]; }; }

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
