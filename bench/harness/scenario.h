/*
 * scenario.h: a scenario file, loaded, checked and evaluated.
 *
 * A scenario is a Lua 5.4 file that returns a table (docs/lua-api.md): its
 * name, the document it reproduces, its parameters, its Lua tasks, a
 * workload function, the strategies it compares, a model per strategy and
 * its checks. This module owns the Lua state the file runs in. It loads the
 * file, checks the table's shape ("schema") and turns every mistake into
 * "file:line: message", resolves parameters (defaults, quick values, --set,
 * a variant's overrides) and calls the scenario's functions (workload, model,
 * hooks) in the parent.
 *
 * One Lua state per scenario, in the parent. Workers get their own copies
 * when they are forked (the runner, runner.c, sets the global P first), so
 * nothing here is shared across processes. Within the parent the state may
 * be used by the main thread (workload, model, checks) and by the engine's
 * threads (the stop rule, Lua tasks run in the parent by callback_chain):
 * every parent-side use holds scn_lock(), one process-wide mutex, so that
 * one Lua state is never touched by two threads at once. The functions
 * below take it themselves unless they say otherwise.
 *
 * Errors are returned as "file:line: message" in a caller's buffer. For a
 * Lua error the line is Lua's own; for a schema error it is found by
 * searching the file's text for the offending name (scn_line_of_name,
 * scn_line_of_key), or the line of the top-level `return`.
 */
#ifndef SCENARIO_H
#define SCENARIO_H

#include <lua.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "strategy.h"

#define SCN_MAX_PARAMS 32   /* declared ones, plus the implicit `workers` */
#define SCN_MAX_VARIANTS 32 /* entries of `impls` */
#define SCN_ERR 1024        /* a good size for error buffers */
#define SCN_MAX_SECONDS 1e6 /* task_timeout, run_timeout: at most this */
/* Integer parameters stay within what a double holds exactly (2^53), so
 * that no value is rounded or wraps on its way to C or to Lua. */
#define SCN_INT_LIMIT 9007199254740992.0
/* The runner's integer parameters (chunksize, maxtasksperchild) at most. */
#define SCN_RUNNER_INT_MAX 2147483647.0

/* A parameter value: a Lua number, integer or float, kept as Lua made it so
 * that P.n is 8 and not 8.0 in the workers. */
typedef struct scn_num {
    double d;
    bool isint;
} scn_num;

typedef struct scn_param {
    char *name;
    scn_num def, quick;  /* quick == def when the file gives none */
    bool has_quick;
    double min, max;     /* -HUGE_VAL / HUGE_VAL when not given */
    char *doc;           /* "" when not given */
    bool integer;        /* a runner parameter: workers, chunksize, maxtasksperchild */
    bool implicit;       /* not declared: `workers`, the online CPUs */
    int line;
} scn_param;

/* One entry of `impls`: a strategy, under a label, with parameter overrides. */
typedef struct scn_variant {
    char *label;
    const strategy *impl;
    int nset;
    int set_param[SCN_MAX_PARAMS]; /* indexes into params */
    scn_num set_value[SCN_MAX_PARAMS];
    /* A value given as a function(p) (set = {chunksize = function(p) ...}):
     * its registry reference, evaluated after --set and --quick
     * (scn_params_for_eval); set_value is unused then. 0: a plain number. */
    int set_fn[SCN_MAX_PARAMS];
    int line;
    int transport; /* transport = "socket" | "shm" (enum pool_transport_kind); 0: not given */
} scn_variant;

/* Resolved values, one per entry of scn_scenario.params, same order. */
typedef struct scn_params {
    scn_num v[SCN_MAX_PARAMS];
} scn_params;

typedef struct scn_scenario {
    char *path;
    char *text;          /* the file, for line lookups */
    lua_State *L;        /* guarded by scn_lock() in the parent */
    int table_ref;       /* the returned table (registry reference) */
    int tasks_ref;       /* its `tasks` table, or LUA_NOREF */

    char *name, *source, *summary, *doc; /* "" when absent (not name) */
    scn_param params[SCN_MAX_PARAMS];    /* in the order of the file */
    int nparams;
    scn_variant variants[SCN_MAX_VARIANTS];
    int nvariants;
    char **tasks;        /* names of the Lua tasks, sorted */
    int ntasks;
    double task_timeout; /* the file's task_timeout, seconds; 0: none given */
    double run_timeout;  /* the file's run_timeout, seconds; 0: none given */
    int repeat;          /* the file's repeats = N (--repeat overrides); 0: none given */
    bool trace;          /* trace = true: checks get r[label].trace */
    /* Strategies written in Lua (the `strategies` table; lua_strategy.c):
     * one strategy each, run as the C ones are. */
    int strategies_ref;  /* the table, or LUA_NOREF */
    strategy *lua_strats;
    int nlua_strats;
} scn_scenario;

/* What workload(p) asked for, ready for a strat_workload. */
typedef struct scn_workload {
    msgpack_sbuffer items; /* packed array of the n items */
    size_t n;
    char *stages[STRAT_MAX_STAGES];
    int nstages;
    char *initializer;     /* or NULL */
    msgpack_sbuffer initargs; /* the initializer's packed argument array (initargs = {...});
                                 size 0 when none given */
    int stop_ref;          /* the stop(result, item) function, or LUA_NOREF */
    int observe_ref;       /* the observe(result, item, error) function, or LUA_NOREF */
    bool fire_and_forget;
} scn_workload;

/*
 * The functions below come in the order of the files that define them, each
 * calling only the ones above it:
 *
 *   scenario_lua.c     the lock, protected calls, line lookups (below all)
 *   scenario_params.c  parameters: ranges, layers, P
 *   scenario_schema.c  the table's shape, at load
 *   scenario_calls.c   workload(p), model, setup
 *   scenario_load.c    scn_load, scn_free (the top)
 */

/* ---- the Lua state and the file's lines (scenario_lua.c) ------------------ */

/* Every parent-side use of a scenario's Lua state holds this lock. */
void scn_lock(void);
void scn_unlock(void);
/* The lock as a Lua strategy's interpreter lock (docs/lua-api.md, "The
 * interpreter lock"): scn_gil_enable(true) while one runs; then
 * scn_gil_release(L), before a call that blocks, releases the lock when the
 * calling thread holds it once and L is a Lua thread of its own (not the
 * state's main thread), and says whether it did; scn_gil_reacquire(that)
 * takes it back. L may be NULL (C code with no Lua frame of its own). */
void scn_gil_enable(bool on);
bool scn_gil_release(lua_State *L);
void scn_gil_reacquire(bool released);
/*
 * lua_pcall with a message handler that makes the message "file:line:
 * message" (adding the scenario's line when Lua gave none; an error object
 * that is no string, a table say, is named by its type). Returns 0, or -1
 * with the message in err and nothing left on the stack. Only the skip
 * marker (scn_push_skip_marker) is left on the stack instead (return 1): the
 * checks use it to mark a check that needs a strategy the run left out.
 * Caller holds the lock.
 */
int scn_pcall(scn_scenario *s, int nargs, int nresults, char *err, size_t errlen);
/* The same on another Lua thread of s's state (a callback's, a Lua strategy's). */
int scn_pcall_on(scn_scenario *s, lua_State *L, int nargs, int nresults, char *err,
                 size_t errlen);
/* fn(L) with ud as its one argument (a light userdata), under scn_pcall:
 * how C code reads a scenario's tables, since any read of a table a
 * scenario made may raise (a metamethod, a __tostring). 0, -1 with
 * "file:line: message", or 1 for the skip marker. Caller holds the lock. */
int scn_protected(scn_scenario *s, lua_CFunction fn, void *ud, char *err, size_t errlen);
/* The --impl skip marker: a light userdata no Lua code can make. */
void scn_push_skip_marker(lua_State *L);
bool scn_is_skip_marker(lua_State *L, int idx);
/* lua_getfield without metamethods: pushes t[k] (raw; nil when t is no
 * table), returns its type. */
int scn_rawgetfield(lua_State *L, int t, const char *k);
/* A table key as a message shows it, never calling a metamethod: the
 * string, the number, or "(a table)". Returns buf. */
const char *scn_key_name(lua_State *L, int idx, char *buf, size_t len);
/* msg with the whole path where Lua shortened it to ".../tail:line:". */
void scn_fix_prefix(const scn_scenario *s, const char *msg, char *out, size_t len);
/* Pushes field `name` of the scenario table (nil if absent; raw, no
 * metamethod); returns its type. Caller holds the lock. */
int scn_push_field(scn_scenario *s, const char *name);

/* First line (1-based) of the file at path that contains needle; 0 if none. */
int scn_line_of(const char *path, const char *needle);
/* Line of a key (`key =` or ["key"]) at or after line from; 0 if none. */
int scn_line_of_key(const scn_scenario *s, const char *key, int from);
/* Line of a quoted name ("name" or 'name'), else of a key, else of the
 * top-level return. */
int scn_line_of_name(const scn_scenario *s, const char *name);
/* Line of the top-level `return {` (where a missing field belongs), or 1. */
int scn_line_of_return(const scn_scenario *s);
/* A letter, digit or _: what Lua names are made of. */
bool scn_ident_char(char c);
/* strdup that aborts when out of memory (NULL gives ""). */
char *scn_strdup(const char *s);

/* ---- parameters (scenario_params.c) --------------------------------------- */

/* Index of a parameter, -1 if none. */
int scn_param_index(const scn_scenario *s, const char *name);

/*
 * Resolves the parameters: defaults, then the quick values if quick, then
 * each "key=value" of sets. Returns 0, or -1 with a message naming the
 * parameter and what is accepted (unknown name: the valid ones).
 */
int scn_params_resolve(const scn_scenario *s, bool quick, char *const *sets, int nsets,
                       scn_params *out, char *err, size_t errlen);

/* base with a variant's overrides applied. A value the variant gives as a
 * function(p) is called with base and the variant's plain numbers applied;
 * an error there (or a value out of range) keeps the base value. */
void scn_params_for(const scn_scenario *s, const scn_params *base, const scn_variant *v,
                    scn_params *out);
/* The same, saying what went wrong: 0, or -1 with "file:line: message"
 * (the function raised, returned no number, or a value out of range).
 * Takes the lock. */
int scn_params_for_eval(const scn_scenario *s, const scn_params *base, const scn_variant *v,
                        scn_params *out, char *err, size_t errlen);

/* 0 if v is acceptable for q, else -1 with "parameter 'workers' must be
 * from 1 to 64 (got 0)"; `got` names the value ("got", "quick is"). */
int scn_param_check(const scn_param *q, scn_num v, const char *got, char *err, size_t errlen);

/* A parameter as an integer (runner parameters), dflt if not declared. */
long scn_param_long(const scn_scenario *s, const scn_params *p, const char *name, long dflt);

/* Writes a value as Lua prints it: 8, 0.05. */
void scn_num_format(scn_num v, char *buf, size_t len);

/* Pushes p as a Lua table {name = value}. Caller holds the lock. */
void scn_push_params(scn_scenario *s, const scn_params *p);
/* Sets the global P (the tasks' view of the parameters); takes the lock. */
void scn_set_P(scn_scenario *s, const scn_params *p);

/* ---- the schema walk (scenario_schema.c) ---------------------------------- */

/* lua_CFunction(s, table): fills s from the scenario's table, or raises
 * "file:line: message". scn_load calls it under lua_pcall. */
int scn_schema(lua_State *L);

/* ---- calling the scenario (scenario_calls.c; each takes the lock) --------- */

/* Calls workload(p). 0, or -1 with "file:line: message". */
int scn_workload_eval(scn_scenario *s, const scn_params *p, scn_workload *w, char *err,
                      size_t errlen);
void scn_workload_free(scn_scenario *s, scn_workload *w);

/* The model's prediction for a variant: 1 with *out set, 0 when the
 * scenario has no model for it, -1 on error ("file:line: message"). */
int scn_model_eval(scn_scenario *s, const scn_variant *v, const scn_params *p, double *out,
                   char *err, size_t errlen);

/* Calls an optional hook, setup(p). 0 (also when absent) or -1. */
int scn_setup(scn_scenario *s, const scn_params *p, char *err, size_t errlen);

/* Calls the optional hook `name` of the scenario table with one argument,
 * pushed by push_arg(s, arg) under the lock. 0 (also when absent) or -1
 * with "file:line: message". */
/* (push_arg NULL: no argument.) */
int scn_call_hook(scn_scenario *s, const char *name, void (*push_arg)(scn_scenario *, void *),
                  void *arg, char *err, size_t errlen);

/* The run function of every Lua strategy (lua_strategy.c, which says how it
 * knows which one runs). */
int scn_lua_strategy_run(const strat_workload *w, strat_outcome *out);

/* ---- loading (scenario_load.c) -------------------------------------------- */

/* Loads and checks a scenario. NULL on error, with "file:line: message". */
scn_scenario *scn_load(const char *path, char *err, size_t errlen);
void scn_free(scn_scenario *s);

/* Removes the run's temporary directory (pb.tmpdir, pb.tmpname) and all in
 * it, in the process that made it only (a worker's exit leaves it alone).
 * Also registered with atexit when the directory is made. */
void scn_tmp_cleanup(void);
/* The run's temporary directory, NULL when none was made. */
const char *scn_tmp_path(void);

/* A scandir filter: a name `list` and `lab` take for a scenario file
 * (*.lua, not hidden). */
struct dirent;
int scn_is_scenario_file(const struct dirent *d);

#endif
