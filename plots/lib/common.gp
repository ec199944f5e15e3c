# common.gp: what every figure shares, loaded first by each plots/*.gp.
#
# Why a shared file: every figure must say where and when it was measured,
# write both PNG and SVG, and use the same colours for the same things (a
# stage is the same blue in every timeline), so those live here once.
#
# Set by the caller (gnuplot -e "datadir='...'; outdir='...'"), or defaults:
#   datadir   where plots/data.sh wrote its files   (plots/out/data)
#   outdir    where the figures go                   (plots/out)

if (!exists("datadir")) { datadir = "plots/out/data" }
if (!exists("outdir")) { outdir = "plots/out" }

# The line every figure carries: "measured on this machine: 2 cores, Linux
# 6.1.0, 2026-11-24" (machine.txt, written by data.sh).
machine = system(sprintf("sed -n 's/^label //p' '%s/machine.txt' 2>/dev/null", datadir))
if (strlen(machine) == 0) { machine = "machine unknown: run plots/data.sh first" }
# When and where hyperfine's figures (bench/results/) were measured, or "none".
hyperfine_when = system(sprintf("sed -n 's/^hyperfine //p' '%s/machine.txt' 2>/dev/null", datadir))

# term(fmt, name, w, h): the commands that send the next plot to
# outdir/name.png (fmt "png") or outdir/name.svg (fmt "svg"). Each script
# draws its figure once per format:
#     do for [fmt in "png svg"] { eval term(fmt, "name", 1200, 800); ...plot... }
# noenhanced: labels such as async_get_loop keep their underscores.
term(fmt, name, w, h) = (fmt eq "png") ? \
    sprintf("set terminal pngcairo size %d,%d font 'sans,12' noenhanced; set output '%s/%s.png'", \
            w, h, outdir, name) : \
    sprintf("set terminal svg size %d,%d font 'sans,12' noenhanced background rgb 'white'; set output '%s/%s.svg'", \
            w, h, outdir, name)

# field(file, label, col): column col of the row whose label (column 2) is
# label, in a .dat file; "" when there is none. real(field(...)) for numbers.
field(file, label, col) = system(sprintf("awk -v l='%s' '!/^#/ && $2 == l { print $%d; exit }' '%s' 2>/dev/null", \
                                         label, col, file))
# rows(file): the data rows of a .dat file (lines not starting with #).
rows(file) = int(system(sprintf("grep -cv '^#' '%s' 2>/dev/null || true", file)))
# labels(file): its column 2, space-separated, in file order.
labels(file) = system(sprintf("awk '!/^#/ && NF { printf \"%%s \", $2 }' '%s' 2>/dev/null", file))
exists_file(file) = int(system(sprintf("test -s '%s' && echo 1 || echo 0", file)))

# Colours. Stages: the colour says which stage a bar ran; the parent's
# callbacks are red in every figure.
c_chain  = 0x8e44ad   # stage 0: one task that runs every stage (merged)
c_stage1 = 0x2c7bb6   # stage 1 (A, or the only stage)
c_stage2 = 0xf28e2b   # stage 2 (B)
c_other  = 0x7f7f7f   # a later stage
c_cb     = 0xd62728   # a callback in the parent
stagecolor(s) = (s == 0) ? c_chain : (s == 1) ? c_stage1 : (s == 2) ? c_stage2 : c_other
# Series in the bar charts.
c_pb     = 0x2c7bb6   # poolbench, measured in-process (--json)
c_pb_hf  = 0x9ecae1   # poolbench, whole command (hyperfine)
c_py     = 0xf28e2b   # CPython, whole command (hyperfine)
c_model  = 0x000000   # the model's prediction

set termoption noenhanced
set style fill solid 1.0 noborder
set grid ytics lc rgb "#dddddd" lw 1 dt 1
set border 3
set tics nomirror

# Multiplot panels, placed by hand (gnuplot's `layout` cannot leave a strip
# for one key along the bottom). The figure sets the free area once:
#     g_l, g_r, g_b, g_t   its left, right, bottom and top, in screen fractions
#     g_hg, g_vg           the gaps between columns and between rows
# then `eval panel(i, ncols, nrows)` before the i-th plot (0 = top left, row by row).
g_l = 0.1; g_r = 0.98; g_b = 0.1; g_t = 0.9; g_hg = 0.08; g_vg = 0.1
panel_w(nc) = (g_r - g_l - (nc - 1) * g_hg) / nc
panel_h(nr) = (g_t - g_b - (nr - 1) * g_vg) / nr
panel_x(i, nc) = g_l + (i % nc) * (panel_w(nc) + g_hg)
panel_y(i, nc, nr) = g_t - int(i / nc) * (panel_h(nr) + g_vg)
panel(i, nc, nr) = sprintf("set lmargin at screen %g; set rmargin at screen %g; set tmargin at screen %g; set bmargin at screen %g", \
    panel_x(i, nc), panel_x(i, nc) + panel_w(nc), panel_y(i, nc, nr), panel_y(i, nc, nr) - panel_h(nr))

# The figure's one key, along the bottom (below g_b): `eval keystrip(h)`,
# then `plot NaN notitle, keyentry ... title '...', ...`. h: its height.
keystrip(h) = sprintf("set lmargin at screen 0.01; set rmargin at screen 0.99; set bmargin at screen 0; set tmargin at screen %g; ", h) . \
    "unset border; unset tics; unset xlabel; unset ylabel; unset title; unset arrow; unset label; unset object; " . \
    "set xrange [0:1]; set yrange [0:1]; set key center center horizontal maxcols 8 reverse Left samplen 1.5"

# Whiskers from a minimum to a maximum: `using x:min:(0):(max - min) @whisker`.
# (Vectors with flat heads: gnuplot's yerrorbars leave a white dot at the
# median, which reads as a data point.)
whisker = "with vectors heads size screen 0.006,90 lc rgb 'black' lw 1.5"
