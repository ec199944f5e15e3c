# scale.gp: time and the parent's peak memory against the number of
# trivial tasks, log-log (issue 14): imap and imap_unordered with a bounded
# buffer, imap again with --trace (every row written to the trace file), and
# map_async.
#
# What a reader should see: on the left every line runs parallel to the
# dashed slope-1 line (time linear in n: the cost per task does not grow
# with the run); on the right the streaming strategies stay flat at the
# process's baseline, with or without --trace, far under the 64 MiB line,
# while map_async climbs with n (it returns every result in one list).
#
# Reads scale_sweep.dat (bench/scale.sh: plots/data.sh runs it to 10^5,
# `make bench-scale` to 10^7 into bench/results/scale); writes
# outdir/scale.png and .svg.

load 'plots/lib/common.gp'

dat = datadir . "/scale_sweep.dat"
series = system(sprintf("awk '!/^#/ && NF && !seen[$2]++ { printf \"%%s \", $2 }' '%s'", dat))
color(s) = (s eq "imap") ? c_stage1 : (s eq "imap_unordered") ? c_stage2 : \
           (s eq "imap_trace") ? c_chain : c_cb
stats dat using 1 nooutput
nmin = STATS_min
nmax = STATS_max
# The slope-1 reference goes through the first series' time at the largest n.
stats dat index 0 using ($1 == nmax ? $3 : NaN) nooutput
tref = STATS_max

do for [fmt in "png svg"] {
    eval term(fmt, "scale", 1400, 650)
    set multiplot layout 1,2 title sprintf("scale: %d to %d trivial tasks, 2 workers, chunks of 16, at most 8 out (imap)\n%s", \
                                            int(nmin), int(nmax), machine) font ",13"
    set logscale xy
    set grid xtics ytics mxtics mytics
    set key top left Left reverse samplen 2.5 opaque
    set xlabel "tasks in the run (n)"
    set format x "1e%T"
    set xrange [nmin / 1.5 : nmax * 1.5]
    set ylabel "wall time (s), log scale"
    unset yrange
    plot for [i = 1:words(series)] dat index (i - 1) using 1:3 with linespoints lw 2 pt 7 ps 1 \
             lc rgb color(word(series, i)) title word(series, i), \
         tref * x / nmax with lines dt 2 lw 1.5 lc rgb "#555555" title "slope 1: time linear in n"
    set ylabel "parent's peak resident memory (MiB), log scale"
    set yrange [1 : *]
    plot for [i = 1:words(series)] dat index (i - 1) using 1:($4 / 1024) with linespoints lw 2 pt 7 ps 1 \
             lc rgb color(word(series, i)) title word(series, i), \
         64 with lines dt 2 lw 1.5 lc rgb "#555555" title "64 MiB: the target for the streaming strategies"
    unset multiplot
}
set output
