# shared_state.jq: plots/data.sh's converter for shared_state.dat, from the
# scenario's JSON report (its check details) and, in $py[0], its CPython
# twin's (the facts). Rows: index, what, poolbench, CPython, unit; NaN where
# a side did not measure. Rows 0-2 are microseconds per access; rows 3-5 the
# share of a counter's increments that landed, in percent.
def num: if . == null then "NaN" else . end;
def detail(prefix): [.checks[] | select(.name | startswith(prefix)) | .detail][0] // "";
def py($name): [($py[0].results // [])[] | select(.label == $name) | .facts][0] // {};
def pct(got; exp): if got == null or exp == null or exp == 0 then null else 100 * got / exp end;
(detail("a manager access") | capture("shared memory (?<s>[0-9.]+) us, manager (?<m>[0-9.]+) us.*one round trip (?<r>[0-9.]+) us") // {}) as $cost
| (detail("counter_unlocked") | capture("^(?<lost>[0-9]+) of (?<exp>[0-9]+) increments") // {}) as $u
| (detail("counter_locked") | capture("^(?<got>[0-9]+) of (?<exp>[0-9]+)") // {}) as $l
| (detail("counter_manager") | capture("^(?<got>[0-9]+) of (?<exp>[0-9]+)") // {}) as $m
| .params.incr as $incr
| "# index what poolbench CPython unit   (poolbench: " + (.date // "") + ", CPython: its twin, same parameters)",
  ([0, "shared_memory", ($cost.s | tonumber? // null), ((py("cost_shared").per_access_s // null) | if . then 1e6 * . else null end), "us"] | map(num) | @tsv),
  ([1, "manager", ($cost.m | tonumber? // null), ((py("cost_manager").per_access_s // null) | if . then 1e6 * . else null end), "us"] | map(num) | @tsv),
  ([2, "round_trip_(model)", ($cost.r | tonumber? // null), ((py("cost_manager").rtt_s // null) | if . then 1e6 * . else null end), "us"] | map(num) | @tsv),
  ([3, "counter_unlocked", (if $u.exp then pct(($u.exp | tonumber) - ($u.lost | tonumber); $u.exp | tonumber) else null end), pct(py("counter_unlocked").final; $incr), "%"] | map(num) | @tsv),
  ([4, "counter_locked", (if $l.exp then pct($l.got | tonumber; $l.exp | tonumber) else null end), pct(py("counter_locked").final; $incr), "%"] | map(num) | @tsv),
  ([5, "counter_manager", (if $m.exp then pct($m.got | tonumber; $m.exp | tonumber) else null end), pct(py("counter_manager").final; $incr), "%"] | map(num) | @tsv)
