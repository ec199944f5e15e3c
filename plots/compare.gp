# compare.gp: compare.png, each scenario's key ratio, poolbench (x) against
# CPython (y), both measured in the same `poolbench compare` run.
#
# What it shows: whether poolbench reproduces each phenomenon with CPython's
# proportions. A point is a scenario; its key ratio is the first of the
# scenario's `ratios` (docs/lua-api.md), the ratio its main check states
# (get-in-loop / merged, ...). On the line y = x the engines agree exactly;
# inside the grey band CPython's ratio is within 25% of poolbench's (what
# compare calls "agree"). Points are green inside the band, red outside,
# and labelled with the scenario (every other label to the left, so that
# points near one another stay legible). Log-log: the ratios span 0.01 to 100.
#
# Data: compare.dat, written by plots/compare_data.sh from make compare's
# JSON: datadir/compare.dat if there is one (a test), else
# bench/results/compare/compare.dat (the last make compare). Without either
# the figure says so and is drawn empty, so that draw.sh still gets a PNG
# and an SVG. The lines "measured on this machine" and the versions come
# from compare.dat's "# label" and "# versions" comments.

load 'plots/lib/common.gp'

file = datadir . "/compare.dat"
if (!exists_file(file)) { file = "bench/results/compare/compare.dat" }
have = exists_file(file) && rows(file) > 0
cmp_machine = have ? system(sprintf("sed -n 's/^# label //p' '%s'", file)) : \
    "no compare data: run make compare"
cmp_versions = have ? system(sprintf("sed -n 's/^# versions //p' '%s'", file)) : ""

do for [fmt in "png svg"] {
    eval term(fmt, "compare", 1100, 1000)
    set title sprintf("Key ratio of each scenario: poolbench against CPython (same run, interleaved)\n%s\n%s", \
                      cmp_machine, cmp_versions) font ",13"
    set xlabel "poolbench's ratio"
    set ylabel "CPython's ratio"
    set logscale xy
    set grid xtics ytics
    set xtics (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) format "%g"
    set ytics (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) format "%g"
    set key bottom right box opaque
    set size ratio -1
    if (have) {
        stats file using 3 name "PX" nooutput
        stats file using 4 name "PY" nooutput
        lo = (PX_min < PY_min ? PX_min : PY_min) / 2
        hi = (PX_max > PY_max ? PX_max : PY_max) * 2
        set xrange [lo:hi]
        set yrange [lo:hi]
        set samples 200
        plot '+' using 1:(0.75 * $1):(1.25 * $1) with filledcurves lc rgb 0xdddddd \
                 title "within 25% (|CPython / poolbench - 1| <= 0.25)", \
             x with lines lc rgb "black" dt 2 title "y = x", \
             file using 3:4:($6 == 1 ? 0x2ca02c : 0xd62728) with points pt 7 ps 1.6 \
                 lc rgb variable title "a scenario (green: agree, red: not)", \
             file using 3:4:(int($1) % 2 == 0 ? stringcolumn(2) : "") with labels \
                 offset 1.2, 0.6 left font ",10" notitle, \
             file using 3:4:(int($1) % 2 == 1 ? stringcolumn(2) : "") with labels \
                 offset -1.2, -0.6 right font ",10" notitle
    } else {
        set xrange [0.1:10]
        set yrange [0.1:10]
        set label 1 "no compare data: run make compare" at 1, 1 center
        plot x with lines lc rgb "black" dt 2 title "y = x"
        unset label 1
    }
    unset logscale
    set output
}
