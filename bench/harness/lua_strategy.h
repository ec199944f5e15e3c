/*
 * lua_strategy.h: a strategy written in Lua, run as the C ones are
 * (lua_strategy.c).
 *
 * A scenario's `strategies = {name = function(pool, items, p) ... end}`
 * become strategies of their own (scn_scenario.lua_strats, made at load by
 * scenario_schema.c), named in `impls` like any C strategy. Their `run` is
 * scn_lua_strategy_run (scenario.h), which must know the scenario and the
 * strategy: the runner binds them (lua_strat_bind) before running a
 * variant, since strategy.run takes no context.
 */
#ifndef LUA_STRATEGY_H
#define LUA_STRATEGY_H

#include <stdbool.h>

#include "scenario.h"

/* The scenario and strategy the next runs are of (impl may be a C one:
 * then nothing is bound). */
void lua_strat_bind(scn_scenario *s, const strategy *impl);

/* Whether impl is a Lua strategy. */
bool lua_strat_is(const strategy *impl);

/*
 * Adds a Lua strategy to a loaded scenario: the function on top of L's
 * stack (popped) under `name`, and a variant `label` that runs it. 0, or
 * -1 with a message (a name taken, too many variants). Used by `poolbench
 * lab --solution`. Caller holds scn_lock.
 */
int lua_strat_add(scn_scenario *s, const char *name, const char *label, char *err,
                  size_t errlen);
/* The variant lua_strat_add made last: give it another variant's `set`. */
void lua_strat_copy_set(scn_scenario *s, const char *from_label);

#endif
