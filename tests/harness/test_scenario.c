/*
 * test_scenario.c: the Lua side of poolbench: loading scenario files,
 * parameters, errors with their file:line, and Lua tasks run in real pools.
 *
 * The scenario files are in tests/harness/scenarios/ (paths are relative to the
 * repository root, where make runs the tests); each opens with a line saying
 * what it is for, and the broken ones say on which line they break, which is
 * the line these cases expect.
 *
 * Cases run one per process (tests/test_helpers.h), which matters twice
 * here: pool_create() wants a single-threaded caller, and the engine's task
 * registry is process-wide, so each case registers the tasks of the one
 * scenario it loads. The case's scenario is freed by the teardown even when
 * an assertion fails.
 */
#include "test_helpers.h"

#include <lauxlib.h>

#include "lua_values.h"
#include "runner.h"
#include "scenario.h"

#define SCN "tests/harness/scenarios/"

static scn_scenario *g_scn;
static char err[SCN_ERR];

static int scn_teardown(void **state)
{
    scn_free(g_scn);
    g_scn = NULL;
    return case_teardown(state);
}

#define SCASE(fn) { #fn, fn, NULL, scn_teardown, NULL }

static scn_scenario *load_ok(const char *file)
{
    g_scn = scn_load(file, err, sizeof err);
    if (g_scn == NULL)
        fail_msg("scn_load(%s): %s", file, err);
    return g_scn;
}

/* Loading must fail with a message that starts with want (file:line:) and
 * contains also (if not NULL). */
static void load_fails(const char *file, const char *want, const char *also)
{
    g_scn = scn_load(file, err, sizeof err);
    if (g_scn != NULL)
        fail_msg("scn_load(%s) succeeded", file);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, want);
    if (also)
        assert_contains(err, also);
}

static int param_int(const scn_scenario *s, const scn_params *p, const char *name)
{
    int i = scn_param_index(s, name);
    assert_true(i >= 0);
    return (int)p->v[i].d;
}

/* ---- loading ------------------------------------------------------------ */

static void loads_a_good_scenario(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "tiny.lua");
    assert_string_equal(s->name, "tiny");
    assert_string_equal(s->summary, "squares of 1..n through four strategies");
    assert_contains(s->doc, "Squares 1..n");
    /* Parameters in the order of the file, not Lua's hash order. */
    assert_int_equal(s->nparams, 4);
    const char *order[] = {"n", "workers", "t_ms", "chunksize"};
    for (int i = 0; i < 4; i++)
        assert_string_equal(s->params[i].name, order[i]);
    assert_int_equal(s->nvariants, 4);
    assert_string_equal(s->variants[2].label, "map_one_chunk");
    assert_string_equal(s->variants[2].impl->name, "map_async");
    assert_int_equal(s->variants[2].nset, 1);
    assert_string_equal(s->params[s->variants[2].set_param[0]].name, "chunksize");
    assert_int_equal(s->ntasks, 1);
    assert_string_equal(s->tasks[0], "sq");
}

static void line_of_finds_the_first_line(void **state)
{
    (void)state;
    assert_int_equal(scn_line_of(SCN "bad_strategy.lua", "\"no_such_strategy\""), 7);
    assert_int_equal(scn_line_of(SCN "bad_strategy.lua", "nothing like this"), 0);
    assert_int_equal(scn_line_of(SCN "no_such_file.lua", "x"), 0);
}

/* ---- parameters ----------------------------------------------------------- */

static void params_defaults_quick_and_set(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "tiny.lua");
    scn_params p;
    assert_int_equal(scn_params_resolve(s, false, NULL, 0, &p, err, sizeof err), 0);
    assert_int_equal(param_int(s, &p, "n"), 6);
    assert_int_equal(param_int(s, &p, "t_ms"), 20);
    assert_int_equal(scn_params_resolve(s, true, NULL, 0, &p, err, sizeof err), 0);
    assert_int_equal(param_int(s, &p, "n"), 4);
    assert_int_equal(param_int(s, &p, "chunksize"), 0); /* no quick: the default */

    char *sets[] = {"n=7", "t_ms=0.5", "workers=3.0"};
    assert_int_equal(scn_params_resolve(s, true, sets, 3, &p, err, sizeof err), 0);
    assert_int_equal(param_int(s, &p, "n"), 7);
    int t = scn_param_index(s, "t_ms"), w = scn_param_index(s, "workers");
    assert_true(p.v[t].d == 0.5 && !p.v[t].isint);
    assert_true(p.v[w].d == 3 && p.v[w].isint); /* a runner parameter is an integer */

    /* A variant's set applies to it alone. */
    scn_params pv;
    scn_params_for(s, &p, &s->variants[2], &pv);
    assert_int_equal(param_int(s, &pv, "chunksize"), 1000);
    assert_int_equal(param_int(s, &p, "chunksize"), 0);
}

static void params_errors_name_the_parameter(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "tiny.lua");
    scn_params p;
    struct {
        char *set;
        const char *msg;
    } bad[] = {
        {"foo=1", "unknown parameter 'foo' (valid: n, workers, t_ms, chunksize)"},
        {"n=abc", "parameter 'n': 'abc' is not a number"},
        {"n=5000", "parameter 'n' must be from 1 to 1000 (got 5000)"},
        {"workers=0", "parameter 'workers' must be from 1 to 64 (got 0)"},
        {"workers=2.5", "parameter 'workers' must be an integer (got 2.5)"},
        {"chunksize=-1", "parameter 'chunksize' must be at least 0 (got -1)"},
        {"n", "--set expects key=value (got 'n')"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(scn_params_resolve(s, false, &bad[i].set, 1, &p, err, sizeof err), -1);
        assert_string_equal(err, bad[i].msg);
    }
}

static void undeclared_workers_are_the_cores(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "fails_check.lua");
    scn_params p;
    assert_int_equal(scn_params_resolve(s, false, NULL, 0, &p, err, sizeof err), 0);
    assert_int_equal(param_int(s, &p, "workers"), (int)sysconf(_SC_NPROCESSORS_ONLN));
    char *set = "workers=2";
    assert_int_equal(scn_params_resolve(s, false, &set, 1, &p, err, sizeof err), -1);
    assert_string_equal(err, "unknown parameter 'workers' (valid: n)");
}

/* ---- errors with their line -------------------------------------------------- */

static void syntax_error_names_its_line(void **state)
{
    (void)state;
    load_fails(SCN "bad_syntax.lua", SCN "bad_syntax.lua:4: ", "'}' expected");
}

static void runtime_error_in_workload_names_its_line(void **state)
{
    (void)state;
    load_fails(SCN "bad_runtime.lua", SCN "bad_runtime.lua:8: ",
               "attempt to call a nil value (global 'no_such_function')");
}

static void unknown_strategy_names_its_line_and_the_valid_ones(void **state)
{
    (void)state;
    load_fails(SCN "bad_strategy.lua", SCN "bad_strategy.lua:7: ",
               "unknown strategy 'no_such_strategy' (valid: apply_sync, async_get_loop,");
    assert_contains(err, "process_per_task");
}

static void schema_errors_name_their_line(void **state)
{
    (void)state;
    load_fails(SCN "bad_model.lua", SCN "bad_model.lua:8: ", "model for 'imap'");
    load_fails(SCN "bad_stage.lua", SCN "bad_stage.lua:6: ", "stage 'no_such_task' is not a task");
    load_fails(SCN "bad_missing.lua", SCN "bad_missing.lua:3: ", "missing field 'name'");
    load_fails(SCN "bad_param.lua", SCN "bad_param.lua:6: ", "from 1 to 8 (quick is 0)");
    load_fails(SCN "bad_nodefault.lua", SCN "bad_nodefault.lua:6: ", "has no default");
    load_fails(SCN "no_such_file.lua", SCN "no_such_file.lua: ", "No such file");
}

/* ---- Lua tasks in real pools ------------------------------------------------------ */

/* Loads, registers the tasks, sets P to the defaults and makes a pool. */
static pool *scenario_pool(const char *file, int workers)
{
    scn_scenario *s = load_ok(file);
    scn_params p;
    run_register_tasks(s);
    assert_int_equal(scn_params_resolve(s, false, NULL, 0, &p, err, sizeof err), 0);
    scn_set_P(s, &p);
    return make_pool(workers);
}

/* Runs the Lua expression `expr` with `v` bound to the value, in the
 * scenario's state, and asserts that it holds. */
static void holds_of(const msgpack_object *v, const char *expr)
{
    lua_State *L = g_scn->L;
    char code[512];
    snprintf(code, sizeof code, "local v = ... return %s", expr);
    scn_lock();
    if (luaL_loadstring(L, code) != LUA_OK)
        fail_msg("%s", lua_tostring(L, -1));
    luav_push(L, v); /* cannot raise for these values */
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        fail_msg("%s: %s", expr, lua_tostring(L, -1));
    bool ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    scn_unlock();
    if (!ok)
        fail_msg("does not hold: %s", expr);
}

static void lua_task_values_of_every_type_both_ways(void **state)
{
    (void)state;
    pool *p = scenario_pool(SCN "types.lua", 2);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    /* Worker -> parent: a value built in the worker. */
    pool_args0(&args);
    pool_result *r = pool_apply(p, "make", args.data, args.size);
    holds_of(get_ok(r), "same(v, sample)");
    pool_result_free(r);

    /* Parent -> worker: the worker compares what it received. */
    char why[256];
    scn_lock();
    lua_getglobal(g_scn->L, "sample");
    int rc = luav_pack_args(g_scn->L, 1, 1, &args, why, sizeof why);
    lua_pop(g_scn->L, 1);
    scn_unlock();
    assert_int_equal(rc, 0);
    r = pool_apply(p, "is_sample", args.data, args.size);
    const msgpack_object *v = get_ok(r);
    assert_int_equal(v->type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(v->via.boolean);
    pool_result_free(r);

    /* Both ways in one trip, several arguments. */
    scn_lock();
    lua_State *L = g_scn->L;
    lua_getglobal(L, "sample");
    lua_pushinteger(L, 1);
    lua_pushnumber(L, 2.5);
    lua_pushstring(L, "s");
    lua_pushboolean(L, 0);
    rc = luav_pack_args(L, 1, 5, &args, why, sizeof why);
    lua_settop(L, 0);
    scn_unlock();
    assert_int_equal(rc, 0);
    r = pool_apply(p, "echo", args.data, args.size);
    holds_of(get_ok(r), "same(v, {sample, 1, 2.5, 's', false})");
    pool_result_free(r);

    /* The worker sees P, and is another process. */
    pool_args0(&args);
    r = pool_apply(p, "whoami", args.data, args.size);
    v = get_ok(r);
    char expr[128];
    snprintf(expr, sizeof expr, "v.n == 3 and math.type(v.n) == 'integer' and v.pid ~= %d",
             (int)getpid());
    holds_of(v, expr);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&args);
}

static void lua_task_error_has_message_line_and_traceback(void **state)
{
    (void)state;
    pool *p = scenario_pool(SCN "task_errors.lua", 2);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    pool_args_int(&args, 2);
    pool_result *r = pool_apply(p, "flaky", args.data, args.size);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_ETASK);
    assert_contains(pool_result_error(r), SCN "task_errors.lua:9: boom on item 2\n");
    assert_contains(pool_result_error(r), "stack traceback:");
    pool_result_free(r);

    /* The same trampoline in the parent (as callback_chain uses it). */
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    assert_status(pool_task_call("flaky", args.data, args.size, &out), POOL_ETASK);
    assert_contains(pool_last_error(), "task_errors.lua:9: boom on item 2");
    pool_args_int(&args, 3);
    assert_status(pool_task_call("flaky", args.data, args.size, &out), POOL_OK);
    msgpack_sbuffer_destroy(&out);
    msgpack_sbuffer_destroy(&args);
}

/* Through a strategy, as poolbench runs it: the failing item and the dead
 * worker are errors, every other result is kept. */
static void lua_task_error_through_a_strategy(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "task_errors.lua");
    run_register_tasks(s);
    scn_params p;
    scn_workload w;
    assert_int_equal(scn_params_resolve(s, true, NULL, 0, &p, err, sizeof err), 0);
    assert_int_equal(scn_workload_eval(s, &p, &w, err, sizeof err), 0);
    scn_set_P(s, &p);
    strat_workload sw = {.workers = 2, .trace = true, .items = w.items.data,
                         .items_len = w.items.size, .items_count = w.count, .n = w.n,
                         .nstages = 1,
                         .stages = {w.stages[0]}};
    strat_outcome out;
    memset(&out, 0, sizeof out);
    assert_int_equal(strat_find("async_get_after")->run(&sw, &out), 0);
    assert_int_equal(out.results, 6);
    assert_int_equal(out.errors, 2);
    assert_contains(out.first_error, "task_errors.lua:9: boom on item 2");
    strat_outcome_free(&out);
    scn_workload_free(s, &w);
}

/* ---- whole runs ---------------------------------------------------------------------- */

static void runs_a_scenario_and_its_checks(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "tiny.lua");
    run_register_tasks(s);
    run_options o = {.quick = true, .repeat = 1};
    run_report r;
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), 0);
    if (run_execute(&r, &o, err, sizeof err) != 0)
        fail_msg("run_execute: %s", err);
    assert_int_equal(r.nresults, 4);
    assert_int_equal(r.nchecks, 6);
    for (int i = 0; i < r.nchecks; i++)
        if (!r.checks[i].ok)
            fail_msg("check failed: %s (%s)", r.checks[i].name, r.checks[i].detail);
    assert_int_equal(run_exit_status(&r), 0);
    const run_result *one = &r.results[2];
    assert_string_equal(one->v->label, "map_one_chunk");
    assert_int_equal(one->nworkers, 1);
    assert_int_equal(one->workers[0].tasks, 4);
    assert_true(one->has_model && one->model_s > 0);
    run_report_free(&r);
}

static void impl_filter_skips_checks_that_need_others(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "tiny.lua");
    run_register_tasks(s);
    run_options o = {.quick = true, .repeat = 1, .impls = "merged"};
    run_report r;
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), 0);
    assert_int_equal(r.nselected, 1);
    assert_int_equal(run_execute(&r, &o, err, sizeof err), 0);
    assert_contains(r.skipped, "'async_get_after'");
    assert_int_equal(run_exit_status(&r), 0);
    run_report_free(&r);

    o.impls = "merged,imap";
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), -1);
    assert_string_equal(err, "unknown strategy 'imap' for tiny (valid: async_get_after, "
                             "map_async, map_one_chunk, merged)");
    run_report_free(&r);
}

static void failing_stop_rule_names_its_line(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "bad_stop.lua");
    run_register_tasks(s);
    run_options o = {.repeat = 1};
    run_report r;
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), 0);
    assert_int_equal(run_execute(&r, &o, err, sizeof err), -1);
    assert_contains(err, SCN "bad_stop.lua:8: attempt to index a number value");
    run_report_free(&r);
}

/* ---- issue 10: any error from Lua, integers, interruption ------------------------- */

/* Strict tables (a metatable that raises on a missing field) everywhere:
 * the harness reads raw, so loading, workload(p) and the model just work
 * (this used to abort with "PANIC: unprotected error in call to Lua API"). */
static void strict_tables_are_read_raw(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "strict.lua");
    scn_params p;
    scn_workload w;
    double m = 0;
    assert_int_equal(scn_params_resolve(s, true, NULL, 0, &p, err, sizeof err), 0);
    if (scn_workload_eval(s, &p, &w, err, sizeof err) != 0)
        fail_msg("workload: %s", err);
    assert_int_equal(w.n, 3);
    scn_workload_free(s, &w);
    assert_int_equal(scn_model_eval(s, &s->variants[0], &p, &m, err, sizeof err), 1);
    assert_true(m > 0);
    assert_int_equal(scn_model_eval(s, &s->variants[1], &p, &m, err, sizeof err), 0);
}

static void raising_metamethods_give_file_line(void **state)
{
    (void)state;
    load_fails(SCN "bad_tostring_key.lua", SCN "bad_tostring_key.lua:6: unknown field '(a table)'",
               NULL);
    load_fails(SCN "bad_raise_table.lua",
               SCN "bad_raise_table.lua:8: error object is a table value, not a message", NULL);
    load_fails(SCN "bad_workload_meta.lua",
               SCN "bad_workload_meta.lua:7: workload: unknown field '(a table)'", NULL);
    load_fails(SCN "bad_positional.lua", SCN "bad_positional.lua:5: positional entry #1", NULL);
}

static void integer_params_are_checked_exactly(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "tiny.lua");
    scn_params p;
    struct {
        char *set;
        const char *msg;
    } bad[] = {
        {"chunksize=1e300",
         "parameter 'chunksize' must be an integer from 0 to 2147483647 (got 1e+300)"},
        {"chunksize=0x7fffffffffffffff",
         "parameter 'chunksize' must be an integer from 0 to 2147483647 (got 0x7fffffffffffffff)"},
        {"n=0x7fffffffffffffff",
         "parameter 'n' must be an integer from 1 to 1000 (got 0x7fffffffffffffff)"},
        {"chunksize=2147483648",
         "parameter 'chunksize' must be from 0 to 2147483647 (got 2147483648)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(scn_params_resolve(s, false, &bad[i].set, 1, &p, err, sizeof err), -1);
        assert_string_equal(err, bad[i].msg);
    }
    char *ok = "chunksize=2147483647";
    assert_int_equal(scn_params_resolve(s, false, &ok, 1, &p, err, sizeof err), 0);
    assert_int_equal(scn_param_long(s, &p, "chunksize", 0), 2147483647L);
    scn_free(g_scn);
    load_fails(SCN "bad_chunksize.lua", SCN "bad_chunksize.lua:10: variant 'huge': parameter "
               "'chunksize' must be an integer from 0 to 2147483647", NULL);
}

/* Only the skip marker (a light userdata) skips; a table raised by checks,
 * even one that looks like the old marker, is a failed check. */
static void checks_raising_a_table_is_a_failed_check(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "checks_raise.lua");
    run_register_tasks(s);
    run_options o = {.quick = true, .repeat = 1};
    run_report r;
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), 0);
    assert_int_equal(run_execute(&r, &o, err, sizeof err), 0);
    assert_string_equal(r.skipped, "");
    assert_int_equal(r.nchecks, 2);
    assert_true(r.checks[0].ok);
    assert_false(r.checks[1].ok);
    assert_contains(r.checks[1].detail, SCN "checks_raise.lua:13: error object is a table value");
    assert_int_equal(run_exit_status(&r), 1);
    run_report_free(&r);
}

/* An engine error of an item names it from 1, as Lua does; a task's own
 * error stays as it is. */
static void item_errors_are_numbered_from_one(void **state)
{
    (void)state;
    strat_workload w = {.n = 10};
    strat_outcome out;
    memset(&out, 0, sizeof out);
    strat_final(&w, &out, POOL_EWORKER, NULL, "worker 0 died running index 0 within the job", 4);
    assert_string_equal(out.first_error, "item 5: worker 0 died running index 0 within the job");
    memset(&out, 0, sizeof out);
    strat_final(&w, &out, POOL_ETASK, NULL, "x.lua:3: boom", 4);
    assert_string_equal(out.first_error, "x.lua:3: boom");
}

/* Interrupted before the first strategy: nothing runs, the report says why. */
static void an_interrupted_run_runs_nothing_more(void **state)
{
    (void)state;
    scn_scenario *s = load_ok(SCN "tiny.lua");
    run_register_tasks(s);
    run_options o = {.quick = true, .repeat = 1};
    run_report r;
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), 0);
    strat_interrupt(SIGTERM);
    assert_int_equal(run_strategies(&r, &o, err, sizeof err), 0);
    assert_int_equal(r.nresults, 0);
    assert_int_equal(r.interrupted, SIGTERM);
    assert_string_equal(run_interrupt_name(r.interrupted), "SIGTERM");
    strat_interrupt_reset();
    run_report_free(&r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SCASE(loads_a_good_scenario),
        SCASE(line_of_finds_the_first_line),
        SCASE(params_defaults_quick_and_set),
        SCASE(params_errors_name_the_parameter),
        SCASE(undeclared_workers_are_the_cores),
        SCASE(syntax_error_names_its_line),
        SCASE(runtime_error_in_workload_names_its_line),
        SCASE(unknown_strategy_names_its_line_and_the_valid_ones),
        SCASE(schema_errors_name_their_line),
        SCASE(lua_task_values_of_every_type_both_ways),
        SCASE(lua_task_error_has_message_line_and_traceback),
        SCASE(lua_task_error_through_a_strategy),
        SCASE(runs_a_scenario_and_its_checks),
        SCASE(impl_filter_skips_checks_that_need_others),
        SCASE(failing_stop_rule_names_its_line),
        SCASE(strict_tables_are_read_raw),
        SCASE(raising_metamethods_give_file_line),
        SCASE(integer_params_are_checked_exactly),
        SCASE(checks_raising_a_table_is_a_failed_check),
        SCASE(item_errors_are_numbered_from_one),
        SCASE(an_interrupted_run_runs_nothing_more),
    };
    return test_main(argc, argv, "test_scenario", tests, sizeof tests / sizeof tests[0]);
}
