# oversubscription.gp: CPU-bound tasks on 1 to 4 times the cores (issue 13,
# item 8; phenomenon P24): wall time against the number of workers, with
# the model and the line a pool would follow if every worker had a core.
#
# The model (the scenario's model_s): n tasks that each burn s of CPU, on w
# workers and c cores, take max(ceil(n/w) * s, n * s / c): up to the cores
# the time falls as 1/w, past them it stays n*s/c. The dotted "a core per
# worker" line is the 1-worker time divided by w: what the extra workers
# would give if the machine had the cores. The vertical line marks the
# cores (machine.txt, the same count the scenario's pb.cores() read).
#
# What a student should see: the measured points fall from 1 worker to the
# core count, then stay flat (on a machine with other work, they may even
# fall a little further: more processes take a larger share of a busy
# machine), while the dotted line goes on falling.
#
# Reads plots/out/data/oversubscription.results.dat (columns: see data.sh's
# results_dat; 19 is the workers); writes plots/out/oversubscription.png and
# .svg. Without the data (a quick run that skipped the scenario) it draws a
# placeholder that says so.

load 'plots/lib/common.gp'

dat = datadir . "/oversubscription.results.dat"
cores = int(real(system(sprintf("sed -n 's/^cores //p' '%s/machine.txt' 2>/dev/null", datadir))))
have = exists_file(dat)

do for [fmt in "png svg"] {
    eval term(fmt, "oversubscription", 1100, 750)
    set title sprintf("oversubscription: spin tasks on 1 to 4 x the cores\n%s", machine) font ",14"
    set xlabel "workers"
    set ylabel "wall time (s)"
    set key top right opaque
    if (have) {
        # stats filters by the current ranges: the previous format's yrange
        # would drop every worker count, so start each figure from autoscale.
        set autoscale xy
        unset logscale x
        stats dat using 19 nooutput
        wmax = STATS_max
        stats dat using 6 nooutput
        ymax = STATS_max
        one = real(field(dat, "w1", 4))
        set xrange [0.5 : wmax + 0.5]
        set yrange [0 : ymax * 1.2]
        set logscale x 2
        set xtics (1, 2, 4, 8, 16, 32, 64)
        unset arrow
        set arrow 1 from cores, graph 0 to cores, graph 1 nohead lc rgb "#888888" dt 2 lw 1.5
        set label 1 sprintf(" %d cores", cores) at cores, graph 0.95 left textcolor rgb "#555555"
        plot dat using 19:7 with linespoints lc rgb c_model dt 2 lw 1.5 pt 6 ps 1.8 \
                 title "model: max(ceil(n/w)*s, n*s/cores)", \
             dat using 19:4:5:6 with yerrorlines lc rgb c_pb lw 2 pt 7 ps 1.3 \
                 title "poolbench map_async, measured (whiskers: min-max)", \
             one / x with lines lc rgb c_py dt 3 lw 1.5 \
                 title "a core per worker: the 1-worker time / w"
    } else {
        unset xtics; unset ytics
        set label 1 "no data: plots/data.sh did not run oversubscription" at graph 0.5, graph 0.5 center
        plot [0:1] [0:1] NaN notitle
    }
}
set output
