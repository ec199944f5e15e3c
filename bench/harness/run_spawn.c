/*
 * run_spawn.c: poolbench as its own spawned worker (start method spawn).
 *
 * With spawn the engine execs a fresh program for each worker, which
 * inherits nothing of the parent's memory: no Lua state, no registered
 * tasks, no P. Dependencies run one way (harness -> engine), so the engine
 * takes the program's argv as an option and provides the entry point
 * (pool_worker_spawn_main); this file provides the program, poolbench
 * itself, in a hidden mode:
 *
 *   poolbench worker SCENARIO PARAMS --pool-worker=...
 *
 * It does what CPython's spawn does with the main module: it loads the
 * scenario file again (its top level runs again, its tasks exist again,
 * and nothing the parent did after loading it, such as setup, is there),
 * registers the tasks exactly as the runner does (run_register_tasks, in
 * the same sorted order, which the engine checks by hash), sets P from
 * PARAMS, and joins the pool through the descriptors it was passed.
 *
 * PARAMS is the variant's resolved parameters in the scenario's order, so
 * that a worker reads the same P as a forked one: "i:N" or "d:HEXFLOAT"
 * each, comma-separated (hex floats survive the trip exactly).
 */
#include "run_spawn.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

static char *spawn_program;

void run_spawn_set_program(const char *path)
{
    free(spawn_program);
    spawn_program = path ? scn_strdup(path) : NULL;
}

static char *params_arg(const scn_scenario *s, const scn_params *p)
{
    size_t cap = 32 * (size_t)(s->nparams + 1);
    char *a = malloc(cap);
    if (a == NULL)
        return NULL;
    a[0] = '\0';
    for (int i = 0; i < s->nparams; i++) {
        size_t n = strlen(a);
        if (p->v[i].isint)
            snprintf(a + n, cap - n, "%si:%.0f", i ? "," : "", p->v[i].d);
        else
            snprintf(a + n, cap - n, "%sd:%a", i ? "," : "", p->v[i].d);
    }
    return a;
}

char **run_spawn_argv(const scn_scenario *s, const scn_params *p, char *err, size_t errlen)
{
    if (spawn_program == NULL) {
        snprintf(err, errlen, "start method spawn needs poolbench's own program to exec "
                 "(run_spawn_set_program was not called)");
        return NULL;
    }
    char **argv = calloc(5, sizeof *argv);
    char path[PATH_MAX];
    if (argv == NULL)
        return NULL;
    argv[0] = scn_strdup(spawn_program);
    argv[1] = scn_strdup("worker");
    argv[2] = scn_strdup(realpath(s->path, path) ? path : s->path);
    argv[3] = params_arg(s, p);
    if (argv[3] == NULL) {
        run_spawn_argv_free(argv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return argv;
}

void run_spawn_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

/* PARAMS back into p; 0, or -1 when it does not fit the scenario. */
static int params_parse(const scn_scenario *s, const char *a, scn_params *p)
{
    for (int i = 0; i < s->nparams; i++) {
        if ((a[0] != 'i' && a[0] != 'd') || a[1] != ':')
            return -1;
        char *end;
        p->v[i] = (scn_num){.d = strtod(a + 2, &end), .isint = a[0] == 'i'};
        if (*end != (i + 1 < s->nparams ? ',' : '\0'))
            return -1;
        a = end + (*end == ',');
    }
    return *a == '\0' ? 0 : -1;
}

int run_spawn_worker_main(int argc, char **argv)
{
    char err[1024];
    if (argc != 5 || strcmp(argv[1], "worker") != 0) {
        pool_worker_spawn_fail(argc, argv, "poolbench worker: usage: poolbench worker "
                               "SCENARIO PARAMS --pool-worker=...");
        return 2;
    }
    scn_set_worker_process();
    scn_scenario *s = scn_load(argv[2], err, sizeof err);
    if (s == NULL) {
        char msg[1200];
        snprintf(msg, sizeof msg, "poolbench worker: %s", err);
        pool_worker_spawn_fail(argc, argv, msg);
        return 2;
    }
    scn_params p;
    if (params_parse(s, argv[3], &p) != 0) {
        pool_worker_spawn_fail(argc, argv, "poolbench worker: the parameters do not fit "
                               "the scenario");
        scn_free(s);
        return 2;
    }
    run_register_tasks(s);
    scn_set_P(s, &p);
    return pool_worker_spawn_main(argc, argv);
}
