# timeline_early_stop.gp: early termination (document 001, phenomena P4 and
# P5) as a timeline: one panel per strategy of early_stop, one lane per
# worker, the tasks as bars (1 ms sleeps: thousands of them, so a busy lane
# looks solid), a red line where the answer came (answer_s: the stop rule saw
# the True result) and a black line where every worker had stopped
# (stopped_s).
#
# What a student should see: map_async (collect everything, then check)
# cannot stop: its lanes run to the end of all n tasks. The others stop soon
# after item k is done, near k*t/w. The two *_long variants put the same hit
# behind a far longer input: async_get_after_long can look at results only
# once its submit loop is over, so its answer comes late (P5), while
# producer_consumer_long checks while a thread is still submitting. Every
# panel has the same x axis.
#
# Reads plots/out/data/early_stop.{tasks,callbacks,results}.dat (from
# poolbench's --trace and --json, written by plots/data.sh); writes
# plots/out/timeline_early_stop.png and .svg.

load 'plots/lib/common.gp'

res = datadir . "/early_stop.results.dat"
# The common x axis: the latest of any run's end and any workers' stop.
stats res using (($9 > $4) ? $9 : $4) nooutput
xmax = STATS_max * 1.04
nlab = rows(res)
params = system(sprintf("jq -r '.params | \"n=\\(.n) tasks of \\(.task_ms) ms, hit at item k=\\(.k), \\(.workers) workers; *_long: n=\\(.n_long)\"' '%s/early_stop.json'", datadir))
title_of(l) = sprintf("%s: answer %.3f s, all stopped %.3f s, %d of %d tasks run", l, \
    real(field(res, l, 8)), real(field(res, l, 9)), int(real(field(res, l, 10))), int(real(field(res, l, 11))))

keys = "keyentry with boxes lc rgb c_stage1 title 'tasks (1 ms sleeps; solid = busy)', " . \
       "keyentry with boxes lc rgb c_cb title 'callback (parent)', " . \
       "keyentry with lines lc rgb '#b00000' lw 2.5 dt 1 title 'answer: the stop rule saw True (answer_s)', " . \
       "keyentry with lines lc rgb 'black' lw 2.5 dt 3 title 'every worker stopped (stopped_s)'"

do for [fmt in "png svg"] {
    eval term(fmt, "timeline_early_stop", 1600, 1500)
    set multiplot title sprintf("early_stop: when the first True result came, and when the workers stopped\n%s\n%s", \
                                params, machine) font ",14"
    g_l = 0.1; g_r = 0.98; g_b = 0.07; g_t = 0.9; g_hg = 0.1; g_vg = 0.07
    i = 0
    do for [lab in labels(res)] {
        answer = real(field(res, lab, 8)); stopped = real(field(res, lab, 9))
        unset arrow
        if (answer > 0) { set arrow 1 from answer, graph 0 to answer, graph 1 nohead lc rgb "#b00000" lw 2.5 dt 1 front }
        if (stopped > 0) { set arrow 2 from stopped, graph 0 to stopped, graph 1 nohead lc rgb "black" lw 2.5 dt 3 front }
        eval panel(i, 2, ceil(nlab / 2.0))
        call 'plots/lib/timeline.gp' 'early_stop' lab sprintf("%g", xmax) 'noborder' title_of(lab) 'full'
        i = i + 1
    }
    unset arrow
    eval keystrip(0.03)
    plot NaN notitle, @keys
    unset multiplot
}
set output
