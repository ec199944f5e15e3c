# start_method.gp: fork, a fork server, spawn (issue 13, item 4; P20): what
# starting a pool's workers costs with each start method, poolbench beside
# CPython.
#
# Left panel, log scale: milliseconds from creating the pool to its last
# worker up (its initializer ran), against the number of workers (1, 2, 4),
# one line per method and engine. Right panel: CPU milliseconds a worker
# used before its initializer ran, at 4 workers, per method (bars).
#
# What a student should see: a fork costs a fraction of a millisecond per
# worker in both engines; spawn pays a program's start per worker: a fresh
# poolbench loading the scenario (about ten times a fork here), a fresh
# CPython interpreter importing the main module (tens of milliseconds, a
# hundred times more). CPython's fork server is itself a fresh interpreter
# that its workers re-prepare from; poolbench's is a fork of the parent.
#
# Reads plots/out/data/start_method.dat (plots/data.sh); without it the
# figure says so and is drawn empty, so that draw.sh still gets a PNG and an
# SVG. Writes plots/out/start_method.png and .svg.

load 'plots/lib/common.gp'

file = datadir . "/start_method.dat"
have = exists_file(file) && rows(file) > 0
c_fork = "#1b9e77"
c_fs = "#7570b3"
c_sp = "#d95f02"
bw = 0.38

do for [fmt in "png svg"] {
    eval term(fmt, "start_method", 1400, 650)
    set multiplot layout 1, 2 title sprintf("start_method: a fork costs a fraction of a millisecond per worker; spawn pays a program's start per worker\n%s", \
                                             machine) font ",13"
    set grid ytics
    set key top left Left reverse samplen 2 font ",10"
    set title "pool creation to the last worker up, ms (log scale)"
    set xlabel "workers"
    set ylabel "ms"
    set logscale y
    set xrange [0.8 : 4.2]
    set xtics (1, 2, 4)
    if (have) {
        plot file using (strcol(1) eq "fork" ? $2 : NaN):3 with linespoints lw 2 pt 7 lc rgb c_fork title "poolbench fork", \
             file using (strcol(1) eq "forkserver" ? $2 : NaN):3 with linespoints lw 2 pt 7 lc rgb c_fs title "poolbench forkserver", \
             file using (strcol(1) eq "spawn" ? $2 : NaN):3 with linespoints lw 2 pt 7 lc rgb c_sp title "poolbench spawn", \
             file using (strcol(1) eq "fork" ? $2 : NaN):4 with linespoints lw 2 dt 2 pt 6 lc rgb c_fork title "CPython fork", \
             file using (strcol(1) eq "forkserver" ? $2 : NaN):4 with linespoints lw 2 dt 2 pt 6 lc rgb c_fs title "CPython forkserver", \
             file using (strcol(1) eq "spawn" ? $2 : NaN):4 with linespoints lw 2 dt 2 pt 6 lc rgb c_sp title "CPython spawn"
    } else {
        set label 1 "no data: run plots/data.sh" at graph 0.5, 0.5 center
        plot 1 notitle lc rgb "white"
        unset label 1
    }
    set title "CPU used by one worker before its initializer ran, ms (4 workers, log scale)"
    set xlabel ""
    set xrange [-0.6 : 2.6]
    set xtics ("fork" 0, "forkserver" 1, "spawn" 2) scale 0
    set boxwidth bw
    set style fill solid 1.0 noborder
    set grid noxtics
    if (have) {
        plot file using (strcol(1) eq "fork" && $2 == 4 ? 0 - bw / 2 : strcol(1) eq "forkserver" && $2 == 4 ? 1 - bw / 2 : strcol(1) eq "spawn" && $2 == 4 ? 2 - bw / 2 : NaN):5 with boxes lc rgb c_pb title "poolbench", \
             file using (strcol(1) eq "fork" && $2 == 4 ? 0 + bw / 2 : strcol(1) eq "forkserver" && $2 == 4 ? 1 + bw / 2 : strcol(1) eq "spawn" && $2 == 4 ? 2 + bw / 2 : NaN):6 with boxes lc rgb c_py title "CPython (twin)"
    } else {
        plot 1 notitle lc rgb "white"
    }
    unset multiplot
}
