# timeline_chunk_skew.gp: chunk skew (document 003, phenomenon P7) as a
# timeline: one panel per map_async run of chunk_skew, one lane per worker,
# one bar per task.
#
# What a student should see: with chunksize 14, the 16 tasks make two chunks
# (14 and 2); a chunk runs on one worker from start to end, so one lane is
# long and the other short, and a third worker (middle panel) gets nothing
# at all: the time is the long lane's. With CPython's default chunksize,
# ceil(16/(4*2)) = 2, the lanes come out even and the run takes about half
# as long. Every panel has the same x axis.
#
# Reads plots/out/data/chunk_skew.{tasks,callbacks,results}.dat (from
# poolbench's --trace and --json, written by plots/data.sh); writes
# plots/out/timeline_chunk_skew.png and .svg.

load 'plots/lib/common.gp'

res = datadir . "/chunk_skew.results.dat"
stats res using 4 nooutput
xmax = STATS_max * 1.04
params = system(sprintf("jq -r '.params | \"n=\\(.n) tasks of \\(.task_ms) ms\"' '%s/chunk_skew.json'", datadir))
# "2 workers, chunksize 14": a label's own parameters (results columns 19, 20;
# chunksize 0 is CPython's default, ceil(n/(4w))).
what(l) = sprintf("%d workers, chunksize %s", int(real(field(res, l, 19))), \
                  (int(real(field(res, l, 20))) == 0) ? \
                  sprintf("default ceil(n/4w) = %d", \
                          ceil(real(field(res, l, 17)) / (4 * real(field(res, l, 19))))) : \
                  field(res, l, 20))

keys = "keyentry with boxes lc rgb c_stage1 title 'one task (a sleep); the chunk is the run of bars on one lane'"

do for [fmt in "png svg"] {
    eval term(fmt, "timeline_chunk_skew", 1200, 1000)
    set multiplot title sprintf("chunk_skew: a chunk runs on one worker, so a chunksize of 14 leaves one long lane (%s)\n%s", \
                                params, machine) font ",14"
    g_l = 0.14; g_r = 0.97; g_b = 0.1; g_t = 0.88; g_hg = 0; g_vg = 0.12
    i = 0
    do for [lab in labels(res)] {
        eval panel(i, 1, rows(res))
        call 'plots/lib/timeline.gp' 'chunk_skew' lab sprintf("%g", xmax) 'border' what(lab)
        i = i + 1
    }
    eval keystrip(0.04)
    plot NaN notitle, @keys
    unset multiplot
}
set output
