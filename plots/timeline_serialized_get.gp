# timeline_serialized_get.gp: who ran what, when, in serialized_get (document
# 000, phenomena P1 and P2): one panel per strategy, one lane per worker, one
# bar per task (stage A blue, stage B orange, A+B as one task purple), the
# parent's callbacks on their own lane (red).
#
# What a student should see: async_get_loop (get() inside the submit loop)
# keeps one lane busy at a time, a staircase of A's; merged and map_async keep
# every lane busy; callback_chain runs every A at once, then every B one after
# another on the parent's lane, which is why it is no faster than the loop
# when B costs as much as A (P2). Every panel has the same x axis.
#
# Reads plots/out/data/serialized_get.{tasks,callbacks,results}.dat (from
# poolbench's --trace and --json, written by plots/data.sh); writes
# plots/out/timeline_serialized_get.png and .svg.

load 'plots/lib/common.gp'

res = datadir . "/serialized_get.results.dat"
stats res using 4 nooutput
xmax = STATS_max * 1.04
params = system(sprintf("jq -r '.params | \"n=\\(.n), \\(.workers) workers, A=\\(.a_ms) ms, B=\\(.b_ms) ms\"' '%s/serialized_get.json'", datadir))

keys = "keyentry with boxes lc rgb c_stage1 title 'stage A', " . \
          "keyentry with boxes lc rgb c_stage2 title 'stage B', " . \
          "keyentry with boxes lc rgb c_chain title 'A+B in one task', " . \
          "keyentry with boxes lc rgb c_cb title 'callback (B, in the parent)'"

do for [fmt in "png svg"] {
    eval term(fmt, "timeline_serialized_get", 1400, 1000)
    set multiplot title sprintf("serialized_get: get() inside the submit loop runs the A stages one at a time (%s)\n%s", params, machine) \
        font ",14"
    g_l = 0.12; g_r = 0.98; g_b = 0.1; g_t = 0.88; g_hg = 0.12; g_vg = 0.12
    eval panel(0, 2, 2)
    call 'plots/lib/timeline.gp' 'serialized_get' 'async_get_loop' sprintf("%g", xmax) 'border' 'get() inside the loop'
    eval panel(1, 2, 2)
    call 'plots/lib/timeline.gp' 'serialized_get' 'merged' sprintf("%g", xmax) 'border' 'A and B in one task'
    eval panel(2, 2, 2)
    call 'plots/lib/timeline.gp' 'serialized_get' 'callback_chain' sprintf("%g", xmax) 'border' 'B runs in a callback'
    eval panel(3, 2, 2)
    call 'plots/lib/timeline.gp' 'serialized_get' 'map_async' sprintf("%g", xmax) 'border' 'map A, then map B'
    eval keystrip(0.04)
    plot NaN notitle, @keys
    unset multiplot
}
set output
