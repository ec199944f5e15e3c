# wall.gp: draws the wall-time figure of one scenario; plots/walls.gp calls it
# once per scenario (what the bars mean is said there).
#
#   call 'plots/lib/wall.gp' SCENARIO
#
# Reads SCENARIO.results.dat and SCENARIO.hyperfine.dat (if any); writes
# outdir/wall_SCENARIO.png and .svg.

s = ARG1
res = sprintf("%s/%s.results.dat", datadir, s)
hf = sprintf("%s/%s.hyperfine.dat", datadir, s)
n = rows(res)
has_hf = exists_file(hf)
has_model = int(system(sprintf("awk '!/^#/ && $7 != \"NaN\" { c++ } END { print c + 0 }' '%s'", res)))
# Bar slots: one per strategy without hyperfine, three with it.
bw = has_hf ? 0.26 : 0.6
off_pb = has_hf ? -bw : 0
# The smallest and largest figure drawn, for the log-scale choice.
lo_hi = system(sprintf("awk '!/^#/ { for (i = c1; i <= c2; i++) if ($i != \"NaN\" && $i > 0) { if (!lo || $i < lo) lo = $i; if ($i > hi) hi = $i } } END { print lo + 0, hi + 0 }' c1=4 c2=7 '%s' %s", \
                       res, has_hf ? sprintf("c1=3 c2=8 '%s'", hf) : ""))
lo = real(word(lo_hi, 1)); hi = real(word(lo_hi, 2))
logy = (lo > 0 && hi / lo > 30)

# The canvas, and whether the strategies' names must slant to fit under
# their bars (about 8.5 pixels a character at this font).
width = (n > 6) ? 1400 : 1100
maxlen = 0
do for [l in labels(res)] { maxlen = (strlen(l) > maxlen) ? strlen(l) : maxlen }
rotate = (maxlen * 8.5 > 0.85 * width / n)

src = has_hf ? sprintf("hyperfine bars: measured %s", hyperfine_when) : \
               "no hyperfine bars: bench/results/ has no timings with these parameters (make bench)"
hf_plot = has_hf ? \
    sprintf(", hf using ($1):3 with boxes lc rgb c_pb_hf title 'poolbench, whole command (hyperfine median)'") . \
    ", hf using ($1):4:(0):($5 - $4) " . whisker . " notitle" . \
    sprintf(", hf using ($1 + bw):6 with boxes lc rgb c_py title 'CPython %s, whole command (hyperfine median)'", py_version) . \
    ", hf using ($1 + bw):7:(0):($8 - $7) " . whisker . " notitle" : ""
model_plot = has_model ? \
    ", res using ($1 + off_pb):7 with points pt 13 ps 2.2 lc rgb c_model title \"the model's prediction\"" : ""

do for [fmt in "png svg"] {
    eval term(fmt, "wall_" . s, (n > 6 ? 1400 : 1100), 750)
    set title sprintf("%s: wall time of each strategy\n%s", s, machine) font ",14"
    set ylabel "wall time (s)"
    set xlabel sprintf("strategy   (%s)", src)
    set xrange [-0.6 : n - 0.4]
    if (logy) { set logscale y; set yrange [lo / 2 : hi * 12]; set ylabel "wall time (s, log scale)" } \
    else { unset logscale y; set yrange [0 : hi * 1.5] }
    # One tick per strategy at the middle of its bars.
    set xtics scale 0 ()
    do for [i = 1:n] { set xtics add (word(labels(res), i) i - 1) }
    if (rotate) { set xtics rotate by 25 right offset 1, 0 } else { set xtics norotate center offset 0, 0 }
    set boxwidth bw
    set style fill solid 1.0 noborder
    # The key sits top left, over headroom the y range leaves for it.
    set key top left Left reverse samplen 1.5 opaque
    set grid ytics noxtics
    plot res using ($1 + off_pb):4 with boxes lc rgb c_pb \
             title sprintf("poolbench run --repeat %s: median wall_s (pool start-up excluded)", repeat), \
         res using ($1 + off_pb):5:(0):($6 - $5) @whisker \
             title "whiskers: fastest to slowest run" \
         @hf_plot @model_plot
}
