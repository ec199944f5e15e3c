# shared_state.gp: shared state between processes (document 002, section
# 1.3; phenomenon P15): what one access costs, and what a counter keeps.
#
# Left panel, microseconds per access on a log scale, poolbench beside
# CPython: a read of a shared-memory value (pb.shared; CPython's Value,
# whose read takes its lock), a read of a manager dict key (pb.manager;
# CPython's Manager().dict()), and the model of the latter, one empty round
# trip to the manager from the parent. Right panel: the share of a counter's
# increments that landed, when w workers add 1 each with a read, a window
# (window_ms) and a write: without the lock, under the lock, and through the
# manager's counter.
#
# What a student should see: the manager is two to three orders of
# magnitude slower per access than shared memory, about one round trip and
# more when the workers contend for it; the unlocked counter keeps a
# fraction of its increments, the locked one and the manager's all of them,
# in both engines.
#
# Reads plots/out/data/shared_state.dat (plots/data.sh); without it the
# figure says so and is drawn empty, so that draw.sh still gets a PNG and an
# SVG. Writes plots/out/shared_state.png and .svg.

load 'plots/lib/common.gp'

file = datadir . "/shared_state.dat"
have = exists_file(file) && rows(file) > 0
params = have ? system(sprintf("jq -r '.params | \"incr=\\(.incr) increments, window \\(.window_ms) ms, \\(.workers) workers; m=\\(.m) reads per cost task\"' '%s/shared_state.json' 2>/dev/null", datadir)) : \
    "no data: run plots/data.sh"
bw = 0.38

do for [fmt in "png svg"] {
    eval term(fmt, "shared_state", 1400, 700)
    set multiplot layout 1, 2 title sprintf("shared_state: a manager access is a round trip; shared memory is a memory access, and loses updates without its lock\n%s\n%s", \
                                             params, machine) font ",13"
    set xtics scale 0 font ",11"
    set grid ytics noxtics
    set boxwidth bw
    set style fill solid 1.0 noborder
    set key top left Left reverse samplen 1.5
    set title "one access, microseconds (log scale)"
    set ylabel "us per access"
    set logscale y
    set yrange [0.01 : 1000]
    set xrange [-0.6 : 2.6]
    if (have) {
        plot file every ::0::2 using ($1 - bw / 2):3:xtic(strcol(2)) with boxes lc rgb c_pb title "poolbench", \
             file every ::0::2 using ($1 + bw / 2):4 with boxes lc rgb c_py title "CPython (twin)", \
             file every ::0::2 using ($1 - bw / 2):3:(sprintf("%.3g", $3)) with labels offset 0, 0.7 font ",10" notitle, \
             file every ::0::2 using ($1 + bw / 2):4:(sprintf("%.3g", $4)) with labels offset 0, 0.7 font ",10" notitle
    } else {
        set label 1 "no data: run plots/data.sh" at 1, 1 center
        plot 1 with lines lc rgb "white" notitle
        unset label 1
    }
    unset logscale y
    set title "a counter's increments that landed"
    set ylabel "% of the increments"
    set yrange [0 : 120]
    set xrange [2.4 : 5.6]
    if (have) {
        plot file every ::3::5 using ($1 - bw / 2):3:xtic(strcol(2)) with boxes lc rgb c_pb title "poolbench", \
             file every ::3::5 using ($1 + bw / 2):4 with boxes lc rgb c_py title "CPython (twin)", \
             file every ::3::5 using ($1 - bw / 2):3:(sprintf("%.0f%%", $3)) with labels offset 0, 0.7 font ",10" notitle, \
             file every ::3::5 using ($1 + bw / 2):4:(sprintf("%.0f%%", $4)) with labels offset 0, 0.7 font ",10" notitle
    } else {
        set label 1 "no data: run plots/data.sh" at 4, 60 center
        plot 1 with lines lc rgb "white" notitle
        unset label 1
    }
    unset multiplot
    set output
}
