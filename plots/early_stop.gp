# early_stop.gp: early termination (document 001, phenomena P4 and P5), per
# strategy: how soon the answer came and how much work was wasted.
#
# Top panel, seconds from the strategy's start: when the stop rule saw the
# True result (answer_s) and when every worker had stopped (stopped_s), with
# the model's prediction as a diamond: k*t/w for the strategies that can stop
# early (the ideal: the hit's task done, every worker busy until then), n*t/w
# for map_async, which collects everything before anything can be checked.
# Bottom panel, tasks: those run beyond the k the answer needed (tasks_run -
# k: in flight when the answer came, or run because it came late; it can be
# slightly negative when tasks in flight were killed by the stop), and those
# that even started after the answer (tasks_after_stop).
#
# What a student should see: map_async answers last and runs every task; the
# others answer near k*t/w and run a handful of extra tasks; on the long
# input (*_long), submitting everything before checking (async_get_after_long)
# answers late and wastes thousands of tasks, a producer thread does not (P5).
#
# Reads plots/out/data/early_stop.results.dat and early_stop.json (plots/data.sh);
# writes plots/out/early_stop.png and .svg.

load 'plots/lib/common.gp'

res = datadir . "/early_stop.results.dat"
n_lab = rows(res)
k = real(field(res, word(labels(res), 1), 18))
params = system(sprintf("jq -r '.params | \"n=\\(.n) tasks of \\(.task_ms) ms, the hit at item k=\\(.k), \\(.workers) workers; *_long: n=\\(.n_long)\"' '%s/early_stop.json'", datadir))
stats res using 9 nooutput
tmax = STATS_max
stats res using 7 nooutput
tmax = (STATS_max > tmax) ? STATS_max : tmax
stats res using 4 nooutput
tmax = (STATS_max > tmax) ? STATS_max : tmax
stats res using ($10 - $18) nooutput
wmax = STATS_max
bw = 0.36

do for [fmt in "png svg"] {
    eval term(fmt, "early_stop", 1400, 1000)
    set multiplot title sprintf("early_stop: how soon each strategy answered, and the tasks it ran for nothing\n%s\n%s", \
                                params, machine) font ",14"
    g_l = 0.08; g_r = 0.98; g_b = 0.12; g_t = 0.87; g_hg = 0; g_vg = 0.1
    set xrange [-0.6 : n_lab - 0.4]
    set xtics scale 0 font ",11"
    set grid ytics noxtics
    set boxwidth bw
    set style fill solid 1.0 noborder

    eval panel(0, 1, 2)
    set title "time to the answer, and until every worker had stopped"
    set ylabel "seconds from the strategy's start"
    set yrange [0 : tmax * 1.25]
    set format x ""
    set key top left Left reverse samplen 1.5 horizontal
    plot res using ($1 - bw / 2):8 with boxes lc rgb c_cb title "answer_s: the stop rule saw True", \
         res using ($1 + bw / 2):9 with boxes lc rgb "#7f7f7f" title "stopped_s: every worker had stopped", \
         res using ($1 - bw / 2):8:(sprintf("%.3f", $8)) with labels offset 0, 0.7 font ",10" notitle, \
         res using ($1 - bw / 2):7 with points pt 13 ps 2 lc rgb c_model \
             title "model: k*t/w (map_async: n*t/w, it cannot stop)"

    eval panel(1, 1, 2)
    set title sprintf("tasks run beyond the k = %d the answer needed", int(k))
    set ylabel "tasks"
    set yrange [0 : (wmax > 10 ? wmax : 10) * 1.25]
    set format x "%g"
    set key top left Left reverse samplen 1.5 horizontal
    plot res using ($1 - bw / 2):($10 - $18):xtic(sprintf("%s\n(%d tasks asked)", strcol(2), column(11))) \
             with boxes lc rgb c_stage1 title "tasks_run - k", \
         res using ($1 + bw / 2):12 with boxes lc rgb "#08306b" title "tasks_after_stop: started after the answer", \
         res using ($1 - bw / 2):(($10 - $18) > 0 ? $10 - $18 : 0):(sprintf("%d", $10 - $18)) \
             with labels offset 0, 0.7 font ",10" notitle, \
         res using ($1 + bw / 2):12:(sprintf("%d", $12)) with labels offset 0, 0.7 font ",10" notitle
    unset multiplot
}
set output
