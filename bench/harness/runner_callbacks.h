/*
 * runner_callbacks.h: the runner's side of the engine's callbacks into Lua
 * (runner_callbacks.c): the Lua task trampoline, registered by
 * run_register_tasks (runner.h), and the stop rule and observe hook that
 * run_variant (runner.c) hands to a strategy.
 */
#ifndef RUNNER_CALLBACKS_H
#define RUNNER_CALLBACKS_H

#include <stdbool.h>
#include <stddef.h>

#include "runner.h"

/* One variant's stop rule and observe hook, for strat_workload's stop_ctx
 * and observe_ctx. The first error is kept; the rule then says no. */
typedef struct stop_ctx {
    scn_scenario *s;
    int ref;                      /* stop, or LUA_NOREF */
    int observe_ref;              /* observe, or LUA_NOREF */
    const msgpack_object *result; /* the call in progress */
    const char *error;            /* its error message (observe only) */
    size_t item;
    bool failed;                  /* an error was raised: err holds the first */
    char err[SCN_ERR];
} stop_ctx;

/* pb.fact's table for one repeat: made before the strategy runs, and its
 * numbers copied into out's facts after (both take scn_lock). */
void run_facts_begin(scn_scenario *s);
void run_facts_end(scn_scenario *s, strat_outcome *out);

/* strat_workload.stop: the workload's stop(result, item), under scn_lock. */
bool run_stop(void *ctx, const msgpack_object *result, size_t item);

/* strat_workload.observe: observe(result, item, error), under scn_lock. */
void run_observe(void *ctx, int status, const msgpack_object *result, const char *error,
                 size_t item);

#endif
