/*
 * report_timeline.c: a strategy's run as text, one lane per worker plus
 * one for the parent's callbacks (report_timeline.h).
 *
 * Why text: the figures need gnuplot, and a student at a bare terminal
 * should still see that get-in-the-loop leaves all but one worker idle, or
 * that one straggler holds the last chunk. Time runs left to right from the
 * strategy's start to its last event, scaled to the terminal's width, so a
 * column is span / cells seconds.
 *
 * What a lane shows: a task occupies the columns from its start to its end
 * (at least one) in its worker's lane, as its item's character; a task
 * killed or past its time limit runs from its start to when the parent
 * learned of it, as '#'. The callbacks lane shows, for each record with a
 * callback, the time from the parent reading its result to the callback's
 * return. Tasks are drawn in two passes, bodies then start columns, so a
 * task longer than a column is never hidden by its neighbour's last
 * column: each task shows at least where it began.
 */
#include "report_timeline.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TL_LABEL 10 /* "worker 12 ", "callbacks " */
#define TL_MIN_WIDTH 32
#define TL_MAX_WIDTH 1000

int rep_timeline_width(void)
{
    const char *env = getenv("COLUMNS");
    long w = env && *env ? strtol(env, NULL, 10) : 0;
    struct winsize ws;
    if (w <= 0 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        w = ws.ws_col;
    if (w <= 0)
        w = 80;
    return (int)(w < TL_MIN_WIDTH ? TL_MIN_WIDTH : w > TL_MAX_WIDTH ? TL_MAX_WIDTH : w);
}

/* The item's character: 1..9, a..z, A..Z, 0, then again; '?' unknown. */
static char item_char(uint32_t index)
{
    static const char set[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    return index == 0 ? '?' : set[index % (sizeof set - 1)];
}

/* The geometry of one drawing: cells columns over span seconds from t0. */
typedef struct tl_scale {
    double t0, span;
    int cells;
} tl_scale;

static int col_of(const tl_scale *sc, double t)
{
    double x = (t - sc->t0) / sc->span * sc->cells;
    int c = x < 0 ? 0 : x >= sc->cells ? sc->cells - 1 : (int)x;
    return c;
}

/* Where a record is drawn: its lane (worker slot, or `nlanes` for the
 * callbacks lane), interval and character; false when it is not drawn. */
static bool rec_span(const pool_trace_rec *t, uint32_t index, bool callbacks, double *a,
                     double *b, char *ch)
{
    if (callbacks) {
        if (t->t_callback <= 0 || t->t_result <= 0)
            return false;
        *a = t->t_result;
        *b = t->t_callback;
        *ch = item_char(index);
        return true;
    }
    if (t->slot < 0 || t->t_start <= 0)
        return false; /* never started, or lost with no start: nothing to draw */
    bool lost = t->state == POOL_TRACE_KILLED || t->state == POOL_TRACE_TIMED_OUT;
    *a = t->t_start;
    *b = t->t_end > 0 ? t->t_end : t->t_result > 0 ? t->t_result : t->t_start;
    *ch = lost ? '#' : item_char(index);
    return true;
}

typedef struct paint_ctx {
    char **lane;
    int nlanes, pass;
    const tl_scale *sc;
} paint_ctx;

static void paint_rec(void *c, const pool_trace_rec *t, uint32_t index)
{
    paint_ctx *p = c;
    for (int cb = 0; cb < 2; cb++) {
        double a, b;
        char ch;
        if (!rec_span(t, index, cb == 1, &a, &b, &ch))
            continue;
        int l = cb ? p->nlanes - 1 : t->slot;
        if (l >= p->nlanes - 1 && !cb)
            continue;
        int ca = col_of(p->sc, a), cz = p->pass == 0 ? col_of(p->sc, b) : ca;
        for (int col = ca; col <= cz; col++)
            p->lane[l][col] = ch;
    }
}

/* Paints every record into the lanes: bodies first, then start columns
 * (the records read back from the spool when they streamed there). */
static void paint(char **lane, int nlanes, const run_result *res, const tl_scale *sc)
{
    for (int pass = 0; pass < 2; pass++) {
        paint_ctx c = {lane, nlanes, pass, sc};
        run_trace_each(res, paint_rec, &c);
    }
}

/* The time axis: a label every ~10 columns where it fits, seconds. */
static void axis(FILE *f, const tl_scale *sc, int width)
{
    char *line = malloc((size_t)width + 1);
    if (line == NULL)
        return;
    memset(line, ' ', (size_t)width);
    int used = 0; /* first free position */
    for (int c = 0; c < sc->cells; c += 10) {
        char lab[32];
        int n = snprintf(lab, sizeof lab, "|%.3g", (double)c * sc->span / sc->cells);
        int at = TL_LABEL + 1 + c;
        if (at < used || at + n > width - 2)
            continue;
        memcpy(line + at, lab, (size_t)n);
        used = at + n + 1;
    }
    int end = width;
    while (end > 0 && line[end - 1] == ' ')
        end--;
    memcpy(line, "time (s)", 8);
    fprintf(f, "%.*s\n", end > 8 ? end : 8, line);
    free(line);
}

/* One pass over the records: the highest slot and the last event. */
typedef struct extent_ctx {
    long slots;
    double end;
} extent_ctx;

static void extent_rec(void *c, const pool_trace_rec *t, uint32_t index)
{
    (void)index;
    extent_ctx *x = c;
    if (t->slot >= x->slots)
        x->slots = t->slot + 1;
    double e = t->t_callback > t->t_end ? t->t_callback : t->t_end;
    if (t->slot >= 0 && t->t_start > 0 && t->t_result > e)
        e = t->t_result;
    x->end = e > x->end ? e : x->end;
}

/* The lanes: how many worker slots the trace and the parameters name; and
 * the span drawn: to the last event of the trace, or the wall time. */
static int extent(const run_report *r, const run_result *res, double *end)
{
    extent_ctx x = {scn_param_long(r->s, &res->p, "workers", r->cores),
                    res->out.t0 + res->out.wall_s};
    run_trace_each(res, extent_rec, &x);
    *end = x.end;
    return x.slots < 1 ? 1 : x.slots > 512 ? 512 : (int)x.slots;
}

void rep_timeline(FILE *f, const run_report *r, const run_result *res, int width)
{
    if (run_trace_rows(res) == 0)
        return;
    double end;
    int nlanes = extent(r, res, &end) + 1; /* + the callbacks lane */
    tl_scale sc = {res->out.t0, end - res->out.t0, width - TL_LABEL - 2};
    if (sc.span <= 0)
        sc.span = 1e-3;
    char **lane = calloc((size_t)nlanes, sizeof *lane);
    for (int l = 0; lane && l < nlanes; l++)
        if ((lane[l] = malloc((size_t)sc.cells)) != NULL)
            memset(lane[l], '.', (size_t)sc.cells);
    for (int l = 0; lane && l < nlanes; l++)
        if (lane[l] == NULL)
            goto out;
    paint(lane, nlanes, res, &sc);
    fprintf(f, "\ntimeline of %s: 1 column = %.3g ms; 1-9 a-z A-Z: the item, # killed or "
            "timed out, . idle\n", res->v->label, 1000 * sc.span / sc.cells);
    for (int l = 0; l < nlanes; l++) {
        char label[32];
        if (l < nlanes - 1)
            snprintf(label, sizeof label, "worker %d", l);
        else
            snprintf(label, sizeof label, "callbacks");
        fprintf(f, "%-*.*s|%.*s|\n", TL_LABEL, TL_LABEL, label, sc.cells, lane[l]);
    }
    axis(f, &sc, width);
out:
    for (int l = 0; lane && l < nlanes; l++)
        free(lane[l]);
    free(lane);
}

void rep_timelines(FILE *f, const run_report *r, int width)
{
    for (int i = 0; i < r->nresults; i++)
        rep_timeline(f, r, &r->results[i], width);
}
