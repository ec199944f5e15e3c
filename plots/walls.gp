# walls.gp: one figure per scenario, wall_SCENARIO.png: each strategy's wall
# time as a bar, with whiskers from the fastest to the slowest run, and the
# scenario's model (its predicted wall time) as a black diamond.
#
# Which figures: every scenario plots/data.sh ran (plots/out/data/*.results.dat).
# Bars, per strategy, left to right:
#   dark blue   poolbench run --repeat N: the median of wall_s, from the
#               strategy's pool existing to its last result (pool start-up
#               excluded); whiskers wall_min_s..wall_max_s. From --json.
#   light blue  the same poolbench command timed whole by hyperfine (process
#               start, Lua, pool start-up and exit included): median, min..max.
#   orange      CPython's port of the same program (bench/python/), timed
#               whole by hyperfine in the same run as the light blue bar.
# The hyperfine bars come from bench/results/ (make bench), and only where
# it ran this figure's parameters (data.sh checks); the figure says when it
# was measured, or that there were none. Reads SCENARIO.results.dat and
# SCENARIO.hyperfine.dat; writes plots/out/wall_SCENARIO.png and .svg.
# A log scale is used when the bars span more than a factor of 30.
# The figure of one scenario is drawn by plots/lib/wall.gp (a `call`ed file,
# so that its plot command can be put together from parts: gnuplot expands
# @macros in a loop's body before the loop runs).

load 'plots/lib/common.gp'

scenarios = system(sprintf("ls '%s' | sed -n 's/\\.results\\.dat$//p' | tr '\\n' ' '", datadir))
repeat = system(sprintf("sed -n 's/^repeat //p' '%s/machine.txt'", datadir))
py_version = system(sprintf("sed -n 's/^hyperfine_python //p' '%s/machine.txt'", datadir))
if (strlen(py_version) == 0) { py_version = "3" }

do for [s in scenarios] {
    call 'plots/lib/wall.gp' s
}
set output
