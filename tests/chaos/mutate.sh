#!/usr/bin/env bash
# mutate.sh: one deterministic mutation of a Lua scenario file, for the fuzzer.
#
#   tests/chaos/mutate.sh SEED FILE > mutant.lua     (what changed goes to stderr)
#
# Why: poolbench must answer any broken scenario with exit 2 and `file:line:
# message` (or run it and report), never crash or hang. SEED picks the
# mutation and its place, so a mutant is rebuilt exactly from (SEED, FILE):
# delete, duplicate or swap lines; a number -> 0, -1, huge, 1e300, NaN,
# 2^63-1; a string -> junk; insert error(); wrap the scenario table or a
# workload table in a strict metatable (raises on a missing field); give a
# table a __tostring that raises.
set -u
[ $# -eq 2 ] || { echo "usage: $0 SEED FILE" >&2; exit 2; }
awk -v seed="$1" '
{ line[NR] = $0 }
function pick(n) { return 1 + int(rand() * n) }
function say(s) { print "mutate: " s > "/dev/stderr" }
END {
  srand(seed); n = NR; op = pick(11); k = pick(n)
  strict = "{__index = function(t, k) error(\"strict: no field \" .. tostring(k), 2) end}"
  if (op == 1) { say("delete line " k); line[k] = "" }
  else if (op == 2) { say("duplicate line " k); line[k] = line[k] "\n" line[k] }
  else if (op == 3 && k < n) { say("swap lines " k " and " k+1); t = line[k]; line[k] = line[k+1]; line[k+1] = t }
  else if (op <= 5) {
    split("0|-1|1e300|(0/0)|9223372036854775807|1e18|-1e300|0.5", v, "|"); r = v[pick(8)]
    for (i = 0; i < n; i++) { j = 1 + (k + i - 1) % n; if (line[j] ~ /[^A-Za-z_.0-9][0-9]+/) break }
    if (match(line[j], /[^A-Za-z_.0-9][0-9]+(\.[0-9]+)?/)) {
      say("line " j ": number " substr(line[j], RSTART + 1, RLENGTH - 1) " -> " r)
      line[j] = substr(line[j], 1, RSTART) r substr(line[j], RSTART + RLENGTH)
    }
  }
  else if (op == 6) {
    split("|\\0|%s%d%n|\"|..|" sprintf("%300s", "x") "|nil|\\n\\n", v, "|"); r = v[pick(8)]
    for (i = 0; i < n; i++) { j = 1 + (k + i - 1) % n; if (line[j] ~ /"[^"]*"/) break }
    if (match(line[j], /"[^"]*"/)) { say("line " j ": string -> \"" r "\""); gsub(/"/, "\\\"", r)
      line[j] = substr(line[j], 1, RSTART) r substr(line[j], RSTART + RLENGTH - 1) }
  }
  else if (op == 7) { say("error() before line " k); line[k] = "error(\"chaos mutant\")\n" line[k] }
  else if (op == 8) {
    for (j = 1; j <= n; j++) if (line[j] ~ /^return \{/) break
    for (e = n; e > 0; e--) if (line[e] ~ /^\}/) break
    if (j <= n && e > j) { say("strict metatable on the scenario table")
      line[j] = "return setmetatable({"; line[e] = "}, " strict ")" }
  }
  else if (op == 9) {
    for (j = 1; j <= n; j++) if (line[j] ~ /return \{items/) break
    if (j <= n && sub(/return \{items/, "return setmetatable({items", line[j]) && sub(/\}[ \t]*$/, "}, " strict ")", line[j]))
      say("strict metatable on the workload table, line " j)
    else { say("strict params: line " k " sees a strict _ENV"); line[k] = "setmetatable(_ENV, " strict ")\n" line[k] }
  }
  else if (op == 10) {
    for (j = 1; j <= n; j++) if (line[j] ~ /^return \{/) break
    if (j <= n) { say("a raising __tostring on the scenario table")
      line[j] = "local __m = setmetatable({}, {__tostring = function() error(\"tostring raised\") end})\n" line[j] "\n  [__m] = 1," }
  }
  else { say("delete lines " k " to " k+2); line[k] = ""; if (k+1 <= n) line[k+1] = ""; if (k+2 <= n) line[k+2] = "" }
  for (i = 1; i <= n; i++) print line[i]
}' "$2"
