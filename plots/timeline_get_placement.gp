# timeline_get_placement.gp: where get() goes (documents 001 and 002,
# phenomenon P3) as a timeline: one panel per strategy of get_placement, one
# lane per worker, one bar per task.
#
# What a student should see: get() right after each apply_async
# (async_get_loop) and apply() (apply_sync) leave one lane busy at a time: a
# staircase, n tasks one after another, whatever the number of workers.
# Submitting everything first and calling get() after (async_get_after)
# keeps every lane busy: ceil(n/w) tasks deep. Every panel has the same x axis.
#
# Reads plots/out/data/get_placement.{tasks,callbacks,results}.dat (from
# poolbench's --trace and --json, written by plots/data.sh); writes
# plots/out/timeline_get_placement.png and .svg.

load 'plots/lib/common.gp'

res = datadir . "/get_placement.results.dat"
stats res using 4 nooutput
xmax = STATS_max * 1.04
params = system(sprintf("jq -r '.params | \"n=\\(.n) tasks of \\(.task_ms) ms, \\(.workers) workers\"' '%s/get_placement.json'", datadir))
what(l) = (l eq "async_get_loop") ? "apply_async(...).get() in the loop" : \
          (l eq "async_get_after") ? "apply_async for all, get() after the loop" : \
          (l eq "apply_sync") ? "apply() in the loop" : ""

keys = "keyentry with boxes lc rgb c_stage1 title 'one task (a sleep)'"

do for [fmt in "png svg"] {
    eval term(fmt, "timeline_get_placement", 1200, 1000)
    set multiplot title sprintf("get_placement: get() at once makes the pool run one task at a time (%s)\n%s", \
                                params, machine) font ",14"
    g_l = 0.14; g_r = 0.97; g_b = 0.1; g_t = 0.88; g_hg = 0; g_vg = 0.12
    i = 0
    do for [lab in labels(res)] {
        eval panel(i, 1, rows(res))
        call 'plots/lib/timeline.gp' 'get_placement' lab sprintf("%g", xmax) 'border' what(lab)
        i = i + 1
    }
    eval keystrip(0.04)
    plot NaN notitle, @keys
    unset multiplot
}
set output
