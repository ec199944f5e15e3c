# overhead.gp: what one trivial task costs through each pool API, poolbench
# against CPython, in microseconds per task on a log scale (document 002,
# phenomenon P6: time ~= start-up + messages * cost per message).
#
# Bars, per API (a strategy of scenarios/overhead.lua):
#   dark blue   poolbench, wall_s / n: the median of --repeat N runs, pool
#               start-up excluded; whiskers fastest..slowest. From --json.
#   light blue  poolbench's whole command timed by hyperfine, / n (process
#               and pool start-up included), where bench/results/ has it.
#   orange      CPython's bench/python/overhead.py, whole command timed by
#               hyperfine in the same run, / n, where bench/results/ has it
#               for that API; otherwise (pale orange) CPython 3.11's figure
#               quoted from PHENOMENA.md (measured elsewhere, 2 cores,
#               n = 20 000), said so in the key. Beside a measured CPython
#               bar, the quoted figure stays as a black open diamond.
# Each API's label says how many task messages it sent for the n tasks: the APIs
# that send one message per chunk (map_async, executor_map with a large
# chunksize) cost a microsecond or two a task; one message per task costs
# ten times more, and apply() in a loop (a round trip each) the most.
#
# Reads plots/out/data/overhead.dat (plots/data.sh, from overhead.json and
# bench/results/); writes plots/out/overhead.png and .svg.

load 'plots/lib/common.gp'

dat = datadir . "/overhead.dat"
n_api = rows(dat)
# How many rows have a number in column col.
count(col) = int(system(sprintf("awk '!/^#/ && $%d != \"NaN\" { c++ } END { print c + 0 }' '%s'", col, dat)))
has_hf_c  = count(6) > 0
has_hf_py = count(9) > 0
py_version = system(sprintf("sed -n 's/^hyperfine_python //p' '%s/machine.txt'", datadir))
repeat = system(sprintf("sed -n 's/^repeat //p' '%s/machine.txt'", datadir))
params = system(sprintf("jq -r '.params | \"n=\\(.n) trivial tasks (x*x), \\(.workers) workers\"' '%s/overhead.json'", datadir))

nslots = 2 + has_hf_c
bw = 0.8 / nslots
x_pb = -(nslots - 1) * bw / 2
x_hf = x_pb + bw
x_py = x_pb + (nslots - 1) * bw
stats dat using 3 nooutput
lo = STATS_min
stats dat using ((column(12) > column(3)) ? column(12) : column(3)) nooutput
hi = STATS_max
if (has_hf_py) { stats dat using 9 nooutput; hi = (STATS_max > hi) ? STATS_max : hi }
if (has_hf_c) { stats dat using 6 nooutput; lo = (STATS_min < lo) ? STATS_min : lo }

# The optional series, as plot fragments (gnuplot cannot make a data file
# conditional inside one plot command; macros are expanded when the loop
# below is read, so these are set before it).
hf_c_plot = !has_hf_c ? "" : \
    ", dat using ($1 + x_hf):6 with boxes fs solid 1.0 noborder lc rgb c_pb_hf " . \
    "title 'poolbench, whole command / n (hyperfine median)', " . \
    "dat using ($1 + x_hf):7:(0):($8 - $7) " . whisker . " notitle"
# CPython: hyperfine's bar where it timed that API, else the quoted figure
# (pale); beside a measured bar, the quoted figure as a diamond. data.sh
# splits the quoted figures into those two columns (15: not measured, 16:
# measured); each series is drawn only if it has a point.
py_plot = (!has_hf_py ? "" : \
    ", dat using ($1 + x_py):9 with boxes fs solid 1.0 noborder lc rgb c_py " . \
    sprintf("title 'CPython %s, whole command / n (hyperfine median)', ", py_version) . \
    "dat using ($1 + x_py):10:(0):($11 - $10) " . whisker . " notitle") . \
    (count(16) == 0 ? "" : \
    ", dat using ($1 + x_py):16 with points pt 12 ps 2 lw 1.5 lc rgb 'black' " . \
    "title 'CPython 3.11, quoted from PHENOMENA.md (another machine)'") . \
    (count(15) == 0 ? "" : \
    ", dat using ($1 + x_py):15 with boxes fs transparent solid 0.3 border lc rgb c_py fc rgb c_py " . \
    "title 'CPython 3.11, quoted from PHENOMENA.md, not measured here'")

do for [fmt in "png svg"] {
    eval term(fmt, "overhead", 1500, 850)
    set title sprintf("overhead: the cost of one trivial task through each API, poolbench and CPython (%s)\n%s", \
                      params, machine) font ",14"
    set ylabel "time per task (µs, log scale)"
    set xlabel (has_hf_py || has_hf_c ? sprintf("API, and the task messages it sent   (hyperfine: measured %s)", hyperfine_when) : \
                "API, and the task messages it sent   (no hyperfine timings in bench/results/ for these parameters: make bench)") \
        offset 0, -0.8
    set logscale y
    set yrange [lo / 3 : hi * 4]
    set xrange [-0.6 : n_api - 0.4]
    set xtics scale 0 norotate font ",11"
    set grid ytics mytics noxtics
    set mytics 10
    set boxwidth bw
    set key top right Left reverse samplen 1.5 opaque
    plot dat using ($1 + x_pb):3:xtic(sprintf("%s\n%d messages", strcol(2), column(13))) \
             with boxes fs solid 1.0 noborder lc rgb c_pb \
             title sprintf("poolbench: wall_s / n, median of %s runs (pool start-up excluded)", repeat), \
         dat using ($1 + x_pb):4:(0):($5 - $4) @whisker notitle \
         @hf_c_plot @py_plot
}
set output
