/*
 * run_spawn.h: poolbench as its own spawned worker (start method spawn).
 *
 * The engine execs a program for each spawned worker and provides the entry
 * point (pool_worker_spawn_main); the harness provides the program:
 * `poolbench worker SCENARIO PARAMS --pool-worker=...`. See run_spawn.c.
 */
#ifndef RUN_SPAWN_H
#define RUN_SPAWN_H

#include "scenario.h"

/* The program spawned workers run: poolbench's own path (set by main from
 * /proc/self/exe); NULL until set, and spawn is then refused. */
void run_spawn_set_program(const char *path);

/* The argv for a variant's spawned workers: the program, "worker", the
 * scenario's path and the variant's parameters P. NULL with err set. */
char **run_spawn_argv(const scn_scenario *s, const scn_params *p, char *err, size_t errlen);
void run_spawn_argv_free(char **argv);

/* `poolbench worker ...`: re-loads the scenario (its Lua tasks, registered
 * in the parent's order), sets P, and becomes the worker. Returns only on
 * error (2), after telling the pool why when it can. */
int run_spawn_worker_main(int argc, char **argv);

#endif
