# chunk_sweep.gp: the chunksize sweep of chunk_skew (document 003,
# phenomenon P7): wall time against chunksize for map_async on 2 and on 3
# workers, each beside its model, with CPython's default chunksize as a
# reference line.
#
# The model (the scenario's model_s; plots/data.sh computes the same if a
# scenario has none): the n tasks are cut into ceil(n/c) chunks of c tasks
# (the last one shorter), and each chunk goes, in order, to the worker that
# frees first; a chunk runs on one worker from start to end, so
#     wall ~= (tasks of the busiest worker) * t.
# When there are no more chunks than workers (ceil(n/c) <= w) that is the
# largest chunk: wall ~= min(c, n) * t. With c = 1 it is the ideal,
# ceil(n/w) * t (dotted lines). So past c = n/w, the larger the chunk the
# slower, and a third worker stops helping once ceil(n/c) <= 2: with 16 tasks
# and c = 14, 2 and 3 workers both take 14 * t.
#
# What a student should see: the measured points sit on their dashed model
# lines; the curves climb in steps as the chunk grows; the w=2 and w=3 curves
# meet from c = 8 on (two chunks: the third worker idles).
#
# Reads plots/out/data/chunk_sweep.dat (bench/sweep.sh chunk_skew chunksize
# 1 16, run by plots/data.sh: one row per strategy per chunksize); writes
# plots/out/chunk_sweep.png and .svg.

load 'plots/lib/common.gp'

dat = datadir . "/chunk_sweep.dat"
csv = datadir . "/chunk_sweep.csv"
# n and t from the sweep's params column ("n=16 task_ms=50 ...").
param(k) = system(sprintf("awk -F, 'NR == 2 { n = split($NF, p, \" \"); for (i = 1; i <= n; i++) { split(p[i], kv, \"=\"); if (kv[1] == \"%s\") print kv[2] } }' '%s'", k, csv))
n = int(param("n")); t_ms = real(param("task_ms"))
# The labels that follow the sweep (their chunksize is the swept value) and
# those that keep their own (map_async_default: chunksize 0, CPython's default).
followers = system(sprintf("awk '!/^#/ { if ($1 != $8) fixed[$2] = 1; seen[$2] = 1; order[++k] = $2 } END { for (i = 1; i <= k; i++) if (!fixed[order[i]] && !done[order[i]]++) printf \"%%s \", order[i] }' '%s'", dat))
fixed = system(sprintf("awk '!/^#/ && $1 != $8 && !done[$2]++ { printf \"%%s \", $2 }' '%s'", dat))
workers_of(l) = int(real(system(sprintf("awk -v l='%s' '$2 == l { print $3; exit }' '%s'", l, dat))))
color(i) = (i == 1) ? c_stage1 : (i == 2) ? c_stage2 : (i == 3) ? c_chain : c_other

stats dat using 1 nooutput
cmax = STATS_max
stats dat using 6 nooutput
ymax = STATS_max

do for [fmt in "png svg"] {
    eval term(fmt, "chunk_sweep", 1200, 800)
    set title sprintf("chunk_skew: wall time against chunksize, map_async, %d tasks of %g ms\n%s", n, t_ms, machine) font ",14"
    set xlabel "chunksize (tasks per chunk)"
    set ylabel "wall time (s)"
    set xrange [0.5 : cmax + 0.5]
    set xtics 1
    set yrange [0 : ymax * 1.2]
    set grid xtics ytics
    set key top left Left reverse samplen 2.5 opaque
    # The ideal for each pool size, ceil(n/w) * t: every worker busy to the end.
    unset arrow
    do for [i = 1:words(followers)] {
        w = workers_of(word(followers, i))
        ideal = ceil(n * 1.0 / w) * t_ms / 1000
        set arrow i from graph 0, first ideal to graph 1, first ideal nohead lc rgb color(i) dt 3 lw 1.5 back
    }
    plot for [i = 1:words(followers)] dat \
             using ((strcol(2) eq word(followers, i)) ? $1 : NaN):7 with linespoints lc rgb color(i) dt 2 lw 1.5 pt 6 ps 2.2 \
             title sprintf("model, %d workers: busiest worker's tasks * t", workers_of(word(followers, i))), \
         for [i = 1:words(followers)] dat \
             using ((strcol(2) eq word(followers, i)) ? $1 : NaN):4:5:6 with yerrorlines lc rgb color(i) lw 2 pt 7 ps 1.3 \
             title sprintf("%s, %d workers: measured (whiskers: min-max if repeated)", word(followers, i), workers_of(word(followers, i))), \
         for [i = 1:words(fixed)] dat \
             using ((strcol(2) eq word(fixed, i)) ? $1 : NaN):4 with lines lc rgb "#555555" lw 2 dt 4 \
             title sprintf("%s: CPython's default chunksize ceil(n/(4w)) = %d, %d workers", word(fixed, i), \
                           int(real(system(sprintf("awk -v l='%s' '$2 == l { print $8; exit }' '%s'", word(fixed, i), dat)))), \
                           workers_of(word(fixed, i))), \
         for [i = 1:words(followers)] NaN with lines lc rgb color(i) dt 3 lw 1.5 \
             title sprintf("ideal ceil(n/w) * t, %d workers", workers_of(word(followers, i)))
}
set output
