/*
 * lab.h: a scenario as a classroom lab (`poolbench lab`).
 *
 * A scenario file may carry a `lab` table (docs/lua-api.md, "Labs"): a
 * title, its place in the course, the parameters to randomise and their
 * ranges, questions whose answers the model computes, and an explanation.
 * `poolbench lab NAME --seed N` draws the parameters from the seed, echoes
 * every one and asks the questions (OSTEP's homework style); with -c it
 * prints the model's answers, runs the scenario with those parameters
 * through the runner, as `run --set` would, and puts each prediction beside
 * its measurement.
 *
 * The numbers are the same on every machine for a given seed: the draws
 * come from a generator of our own, in the order of the file's parameters
 * (lab_table.c says why both matter).
 */
#ifndef LAB_H
#define LAB_H

#include <stdbool.h>
#include <stdint.h>

#include "scenario.h"

/* The generator: the same stream for the same seed everywhere. */
typedef struct lab_rng {
    uint64_t x; /* never 0 */
} lab_rng;

void lab_rng_seed(lab_rng *r, uint64_t seed);
uint64_t lab_rng_next(lab_rng *r);

/* ---- a lab table, read (lab_table.c) ------------------------------------- */

#define LAB_MAX_QUESTIONS 16
#define LAB_MAX_TRIES 1000 /* draws tried before `where` is declared unsatisfiable */

typedef struct lab_vary {
    int param;            /* index into s->params */
    scn_num min, step;
    double max;
    long long count;      /* the values are min + k*step, 0 <= k < count */
} lab_vary;

typedef struct lab_question {
    char *ask, *unit;     /* unit "" when none */
    char *measure;        /* "label" or "label.field"; NULL when none or a function */
    int answer_ref;       /* registry references into s->L */
    int measure_ref;      /* LUA_NOREF unless measure is a function */
    int measure_line;     /* where that function starts in the file */
    int line;
} lab_question;

/* Everything hangs off the scenario's Lua state (the references) or is
 * malloc'd here; lab_free() releases both. Read-only once lab_open returns. */
typedef struct lab {
    scn_scenario *s;      /* owned */
    char *title, *explain;
    int order, line;      /* line: of `lab =` in the file */
    lab_vary vary[SCN_MAX_PARAMS];
    int nvary;
    int where_ref;        /* where(p), or LUA_NOREF */
    char impls[512];      /* what -c runs, comma-separated; "" for all */
    lab_question q[LAB_MAX_QUESTIONS];
    int nq;
    /* The exercise "write the fix" (docs/lua-api.md, "Labs"): NULL task when
     * the lab has none. The student's strategy is judged against the
     * reference label: its model, within margin, and its measured time. */
    char *ex_task;        /* what to write */
    char *ex_skeleton;    /* Lua source returning function(pool, items, p) */
    char *ex_reference;   /* a label of the scenario */
    double ex_margin;     /* the model's tolerance, a fraction (default 0.25) */
    char ex_labels[256];  /* the student's strategies added by --solution, comma-separated */
} lab;


/* A drawn setting: the parameters, and the --set strings that give them. */
typedef struct lab_setting {
    uint64_t seed;
    scn_params p;
    char set[SCN_MAX_PARAMS][96];
    char *sets[SCN_MAX_PARAMS];
    int nsets;
    int tries;            /* draws until where(p) held */
} lab_setting;

/*
 * Loads the scenario at path and reads its lab table. NULL with
 * "file:line: message" in err, or NULL with err "" when the scenario has no
 * lab table.
 */
lab *lab_open(const char *path, char *err, size_t errlen);
void lab_free(lab *lb);

/*
 * Draws every varied parameter from the seed, in the file's order, until
 * where(p) holds (at most LAB_MAX_TRIES draws), and resolves them as
 * `run --set` would. 0, or -1 with a message.
 */
int lab_draw(lab *lb, uint64_t seed, lab_setting *st, char *err, size_t errlen);

/*
 * text with every %name replaced by that parameter's value in p (p NULL:
 * only check the names) and "%%" by "%"; a % not followed by a letter or _
 * stays as it is ("50%"). A malloc'd string, or NULL with the unknown name
 * in bad.
 */
char *lab_subst(const scn_scenario *s, const scn_params *p, const char *text, char *bad,
                size_t badlen);

/* ---- the command (lab.c) ------------------------------------------------ */

/*
 * The `lab` command: argv[1] is "lab"; dir is the scenarios folder that
 * `list` uses. Without a name it lists the labs in course order. Returns the
 * exit status: 0, 1 when -c ran and a check failed, 2 for bad usage, an
 * unknown lab (the valid names are listed) or a bad lab table.
 */
int lab_main(int argc, char **argv, const char *dir);

#endif
