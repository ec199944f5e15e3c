# memory.gp: map against imap, peak memory as n grows (document 002,
# phenomenon P12): the parent's peak resident memory (peak_rss_kb, each
# strategy's own high-water mark) against the number of items, for each
# strategy of scenarios/imap_memory.lua, each task returning `payload` bytes.
#
# What a student should see: map_async's line climbs with n, by about
# n * payload (the dashed line: the results themselves, which map returns as
# one list), while imap's stays flat near the process's baseline: it hands
# each result over and drops it, holding only the window in flight.
#
# Reads plots/out/data/memory_sweep.dat (bench/sweep.sh imap_memory n ...,
# one strategy and its variants per process, run by plots/data.sh; one block
# per strategy) and memory_sweep.csv (the payload); writes
# plots/out/memory.png and .svg.

load 'plots/lib/common.gp'

dat = datadir . "/memory_sweep.dat"
csv = datadir . "/memory_sweep.csv"
payload = real(system(sprintf("awk -F, 'NR == 2 { n = split($NF, p, \" \"); for (i = 1; i <= n; i++) { split(p[i], kv, \"=\"); if (kv[1] == \"payload\") print kv[2] } }' '%s'", csv)))
workers = int(real(system(sprintf("awk -F, 'NR == 2 { n = split($NF, p, \" \"); for (i = 1; i <= n; i++) { split(p[i], kv, \"=\"); if (kv[1] == \"workers\") print kv[2] } }' '%s'", csv))))
# The strategies, one block each, in file order.
impls = system(sprintf("awk '!/^#/ && NF && !seen[$3]++ { printf \"%%s \", $3 }' '%s'", dat))
color(i) = (i == 1) ? c_stage1 : (i == 2) ? c_stage2 : (i == 3) ? c_chain : c_other
stats dat using 4 nooutput
xmax = STATS_max
stats dat using ($5 / 1024) nooutput
ymax = STATS_max
base = STATS_min

do for [fmt in "png svg"] {
    eval term(fmt, "memory", 1200, 800)
    set title sprintf("imap_memory: map_async holds every result, imap streams them (each result %d bytes, %d workers)\n%s", \
                      int(payload), workers, machine) font ",14"
    set xlabel "items (tasks) in the run"
    set ylabel "parent's peak resident memory (MiB)"
    set xrange [0 : xmax * 1.05]
    set yrange [0 : ymax * 1.15]
    set grid xtics ytics
    set key top left Left reverse samplen 2.5 opaque
    plot for [i = 1:words(impls)] dat index (i - 1) using 4:($5 / 1024) with linespoints lw 2 pt 7 ps 1.2 \
             lc rgb color(i) title sprintf("%s: the parent's peak (peak_rss_kb)", word(impls, i)), \
         base + x * payload / 1048576 with lines dt 2 lw 1.5 lc rgb "#555555" \
             title "the results themselves: baseline + items * payload"
}
set output
