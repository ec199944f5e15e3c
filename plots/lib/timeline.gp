# timeline.gp: draws one strategy's timeline panel; the timeline_*.gp
# figures call it once per strategy, inside their multiplot.
#
#   call 'plots/lib/timeline.gp' SCENARIO LABEL XMAX BORDER [WHAT [full]]
#
# One lane per worker slot (y = slot), one bar per task execution from its
# t_start to its t_end, coloured by stage (stagecolor, common.gp); the
# parent's callbacks on their own lane (y = -1), from t_result to
# t_callback. Times are seconds from the strategy's start (the trace's t0).
# Reads SCENARIO.tasks.dat, .callbacks.dat and .results.dat (data.sh).
# XMAX: the x range's end (0: gnuplot's choice); the figures give every
# panel the same, so that lengths compare across panels. BORDER: "border"
# draws a thin white edge around each bar (tasks stay countable), "noborder"
# for dense timelines of thousands of short tasks.
# WHAT: a few words on the strategy, for the panel's title (with "full",
# WHAT is the whole title: no wall time, no model). The caller
# places the panel (eval panel(...), common.gp), draws the figure's key
# (keystrip) and may set arrows or labels (early stop's vertical lines)
# before calling.

tl_tasks = sprintf("%s/%s.tasks.dat", datadir, ARG1)
tl_cbs   = sprintf("%s/%s.callbacks.dat", datadir, ARG1)
tl_res   = sprintf("%s/%s.results.dat", datadir, ARG1)
tl_lab   = ARG2

# The lanes: the label's pool size (results column 19), else the busiest slot + 1.
tl_w = field(tl_res, tl_lab, 19)
tl_busiest = sprintf("awk -v l='%s' '$1 == l && $2 + 1 > m { m = $2 + 1 } END { print m + 0 }' '%s'", tl_lab, tl_tasks)
if (tl_w eq "" || tl_w eq "NaN") { tl_w = system(tl_busiest) }
tl_w = int(tl_w)

tl_wall  = real(field(tl_res, tl_lab, 4))
tl_model = field(tl_res, tl_lab, 7)
tl_title = (ARGC >= 5 && ARG5 ne "") ? sprintf("%s (%s): %.3f s", tl_lab, ARG5, tl_wall) \
                                     : sprintf("%s: %.3f s", tl_lab, tl_wall)
if (tl_model ne "" && tl_model ne "NaN") { tl_title = tl_title . sprintf(" (model %.3f s)", real(tl_model)) }
if (ARGC >= 6 && ARG6 eq "full") { tl_title = ARG5 }
set title tl_title
set key off
set border 3
set xtics nomirror

set yrange [-1.7 : tl_w - 0.4]
set ytics ("parent: callbacks" -1)
do for [tl_i = 0:tl_w - 1] { set ytics add (sprintf("worker %d", tl_i) tl_i) }
set grid noytics xtics
set xlabel "seconds from the strategy's start"
if (real(ARG3) > 0) { set xrange [0 : real(ARG3)] } else { set xrange [0 : *] }
if (ARG4 eq "border") { set style fill solid 1.0 border lc rgb "white" } else { set style fill solid 1.0 noborder }

# The callbacks' bars only where this label has some (an element without a
# point would make gnuplot warn).
tl_ncb = int(system(sprintf("awk -v l='%s' '$1 == l { c++ } END { print c + 0 }' '%s' 2>/dev/null", tl_lab, tl_cbs)))
tl_cbplot = (tl_ncb > 0) ? ", tl_cbs using ((strcol(1) eq tl_lab) ? ($2 + $3) / 2 : NaN):(-1):(($3 - $2) / 2):(0.36) with boxxyerror lc rgb c_cb notitle" : ""

plot tl_tasks using ((strcol(1) eq tl_lab) ? ($3 + $4) / 2 : NaN):2:(($4 - $3) / 2):(0.36):(stagecolor($5)) \
         with boxxyerror lc rgb variable notitle @tl_cbplot
