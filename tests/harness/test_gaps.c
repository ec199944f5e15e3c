/*
 * test_gaps.c: issue 11's gaps, closed (docs/lua-api.md, docs/report-format.md):
 *
 *   - the trace keeps a record of every task that never ended, marked:
 *     killed (its worker died, or terminate killed it), timed_out, or
 *     not_started (terminate, an interrupt, a broken pool came first);
 *   - pool_stats counts the bytes sent and received;
 *   - the harness numbers each record's item from 1 and computes queue wait
 *     and run time percentiles (run_trace.c);
 *   - the text timeline draws a lane per worker and one for callbacks, each
 *     exactly as wide as asked (report_timeline.c);
 *   - scenarios: initargs, a variant's set = function(p) (after --set), a
 *     scenario-level `repeats`, `trace = true` giving checks the trace,
 *     workload and parameter errors found by run_prepare, before any output.
 *
 * Assertions are on structure (states, counts, orders), never on which side
 * of a timing threshold one run lands. Cases run one per process
 * (tests/test_helpers.h).
 */
#include "test_helpers.h"

#include "report_timeline.h"
#include "runner.h"
#include "scenario.h"

#define SCN "tests/harness/scenarios/"

static scn_scenario *g_scn;
static char err[SCN_ERR];

static int gaps_teardown(void **state)
{
    scn_free(g_scn);
    g_scn = NULL;
    return case_teardown(state);
}

#define GCASE(fn) { #fn, fn, NULL, gaps_teardown, NULL }

/* The pool's whole trace, after close and join (caller frees). */
static pool_trace_rec *trace_of(pool *p, size_t *n)
{
    pool_close(p);
    pool_join(p);
    *n = pool_trace_count(p);
    pool_trace_rec *t = calloc(*n ? *n : 1, sizeof *t);
    assert_non_null(t);
    assert_int_equal(pool_trace_copy(p, 0, t, *n), *n);
    return t;
}

static pool *traced_pool(int workers, double task_timeout)
{
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = workers;
    opt.trace = true;
    opt.task_timeout = task_timeout;
    return make_pool_opt(&opt);
}

/* ---- the engine's trace: every task leaves a record ---------------------------- */

static void a_task_whose_worker_dies_is_killed_in_the_trace(void **state)
{
    (void)state;
    pool *p = traced_pool(2, 0);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, -9); /* die: raise(SIGKILL) inside the task */
    pool_result *dead = pool_apply_async(p, "die", a.data, a.size, NULL, NULL, NULL);
    pool_args_int(&a, 5);
    pool_result *fine = pool_apply_async(p, "square", a.data, a.size, NULL, NULL, NULL);
    assert_status(pool_result_get(dead, WAIT_S, NULL), POOL_EWORKER);
    assert_status(pool_result_get(fine, WAIT_S, NULL), POOL_OK);
    size_t n;
    pool_trace_rec *t = trace_of(p, &n);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        if (t[i].job == pool_result_job(dead)) {
            assert_string_equal(pool_trace_state_name(t[i].state), "killed");
            assert_true(t[i].slot >= 0 && t[i].pid > 0 && t[i].t_start > 0);
            assert_int_equal(t[i].ok, 0);
        } else {
            assert_string_equal(pool_trace_state_name(t[i].state), "done");
        }
    }
    pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.worker_deaths, 1);
    free(t);
    pool_result_free(dead);
    pool_result_free(fine);
    msgpack_sbuffer_destroy(&a);
}

static void a_task_past_its_limit_is_timed_out_in_the_trace(void **state)
{
    (void)state;
    pool *p = traced_pool(1, 0.2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_double(&a, 30.0);
    pool_result *r = pool_apply_async(p, "sleep", a.data, a.size, NULL, NULL, NULL);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_ETIMELIMIT);
    size_t n;
    pool_trace_rec *t = trace_of(p, &n);
    assert_int_equal(n, 1);
    assert_string_equal(pool_trace_state_name(t[0].state), "timed_out");
    assert_true(t[0].t_start > 0 && t[0].slot == 0);
    free(t);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&a);
}

/* terminate with one item running and three queued: four records, one per
 * item; the queued three never started; the running one killed (or, if the
 * worker had taken it and not yet begun, not started either). */
static void terminate_leaves_a_record_for_every_item(void **state)
{
    (void)state;
    pool *p = traced_pool(1, 0);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    for (int i = 0; i < 4; i++)
        msgpack_pack_double(&pk, 30.0);
    pool_result *r = pool_map_async(p, "sleep", items.data, items.size, 1, NULL, NULL, NULL);
    assert_non_null(r);
    wait_until(pool_result_holder(r) != 0);
    pool_terminate(p);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_ETERMINATED);
    size_t n;
    pool_trace_rec *t = trace_of(p, &n);
    assert_int_equal(n, 4);
    bool seen[4] = {false};
    for (size_t i = 0; i < n; i++) {
        assert_true(t[i].item < 4 && !seen[t[i].item]);
        seen[t[i].item] = true;
        assert_int_equal(t[i].job, pool_result_job(r));
        if (t[i].item > 0) {
            assert_string_equal(pool_trace_state_name(t[i].state), "not_started");
            assert_int_equal(t[i].slot, -1);
            assert_true(t[i].t_start == 0 && t[i].t_submit > 0);
        } else if (t[i].state == POOL_TRACE_KILLED) {
            assert_true(t[i].slot == 0 && t[i].pid > 0 && t[i].t_start > 0);
        } else {
            assert_int_equal(t[i].state, POOL_TRACE_NOT_STARTED);
        }
    }
    free(t);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&items);
}

static void stats_count_bytes_both_ways(void **state)
{
    (void)state;
    pool *p = traced_pool(1, 0);
    char *big = malloc(100001);
    assert_non_null(big);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_str(&a, big);
    pool_result *r = pool_apply_async(p, "identity", a.data, a.size, NULL, NULL, NULL);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_OK);
    pool_stats st;
    pool_get_stats(p, &st);
    assert_true(st.bytes_sent >= 100000 && st.bytes_sent < 100000 + 4096);
    assert_true(st.bytes_received >= 100000 && st.bytes_received < 100000 + 4096);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&a);
    free(big);
}

/* ---- the harness's reading of the trace ------------------------------------------ */

static pool_trace_rec rec(uint64_t job, uint32_t item, unsigned task, int slot, double sub,
                          double start, double end)
{
    return (pool_trace_rec){.job = job, .item = item, .task = (uint16_t)task,
                            .slot = (int16_t)slot, .pid = slot >= 0 ? 100 + slot : 0,
                            .ok = 1, .state = POOL_TRACE_DONE, .t_submit = sub,
                            .t_start = start, .t_end = end, .t_result = end};
}

/* A map job (items 1..3), three one-item jobs of task A and two of B, in
 * an order that is not job order: each gets its item's number. */
static void trace_items_are_numbered_from_one(void **state)
{
    (void)state;
    run_result res;
    memset(&res, 0, sizeof res);
    pool_trace_rec t[] = {
        rec(4, 0, 1, 0, 1, 1.5, 2), rec(1, 2, 0, 1, 1, 1.1, 1.2), rec(2, 0, 1, 0, 1, 1.2, 1.3),
        rec(6, 0, 2, 1, 1, 1.4, 1.6), rec(1, 0, 0, 0, 1, 1.0, 1.1), rec(3, 0, 1, 1, 1, 1.3, 1.4),
        rec(5, 0, 2, 0, 1, 1.6, 1.9), rec(1, 1, 0, 1, 1, 1.0, 1.05),
    };
    res.out.trace = t;
    res.out.ntrace = sizeof t / sizeof t[0];
    run_trace_stats(&res);
    const uint32_t want[] = {3, 3, 1, 2, 1, 2, 1, 2};
    for (size_t i = 0; i < res.out.ntrace; i++)
        if (res.trace_index[i] != want[i])
            fail_msg("record %zu (job %llu): index %u, want %u", i,
                     (unsigned long long)t[i].job, res.trace_index[i], want[i]);
    /* queue waits: 0.5 0.1 0.2 0.4 0 0.3 0.6 0 -> sorted 0 0 .1 .2 .3 .4 .5 .6 */
    assert_int_equal(res.queue_wait.n, 8);
    assert_float_equal(res.queue_wait.p50, 0.2, 1e-9);
    assert_float_equal(res.queue_wait.p90, 0.6, 1e-9);
    assert_float_equal(res.queue_wait.max, 0.6, 1e-9);
    assert_int_equal(res.run_time.n, 8);
    assert_float_equal(res.run_time.max, 0.5, 1e-9);
    free(res.trace_index);
}

/* Only tasks that began count for queue wait. */
static void percentiles_skip_tasks_that_never_began(void **state)
{
    (void)state;
    run_result res;
    memset(&res, 0, sizeof res);
    pool_trace_rec t[] = {rec(1, 0, 0, 0, 1, 2, 3), rec(2, 0, 0, -1, 1, 0, 0)};
    t[1].state = POOL_TRACE_NOT_STARTED;
    res.out.trace = t;
    res.out.ntrace = 2;
    run_trace_stats(&res);
    assert_int_equal(res.queue_wait.n, 1);
    assert_float_equal(res.queue_wait.p99, 1.0, 1e-9);
    assert_int_equal(res.run_time.n, 1);
    free(res.trace_index);
}

/* A drawn timeline: 2 worker lanes and a callbacks lane, each exactly the
 * width; item 1 at the start of worker 0, item 2's '#' on worker 1, the
 * callback of item 1 on the callbacks lane, idle '.' elsewhere. */
static void timeline_has_a_lane_per_worker_and_callbacks(void **state)
{
    (void)state;
    scn_scenario *s = g_scn = scn_load(SCN "gaps.lua", err, sizeof err);
    if (s == NULL)
        fail_msg("scn_load: %s", err);
    run_report r;
    memset(&r, 0, sizeof r);
    r.s = s;
    r.cores = 2;
    assert_int_equal(scn_params_resolve(s, true, NULL, 0, &r.p, err, sizeof err), 0);
    run_result *res = &r.results[r.nresults++];
    res->v = &s->variants[0];
    res->p = r.p; /* workers = 2 */
    pool_trace_rec t[] = {rec(1, 0, 0, 0, 10.0, 10.0, 10.5), rec(2, 0, 0, 1, 10.0, 10.5, 0)};
    t[0].t_callback = 10.6;
    t[1].state = POOL_TRACE_KILLED;
    t[1].t_result = 11.0;
    res->out.trace = t;
    res->out.ntrace = 2;
    res->out.t0 = 10.0;
    res->out.wall_s = 1.0;
    run_trace_stats(res);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rep_timeline(f, &r, res, 52); /* 40 cells: 25 ms each */
    fclose(f);
    int lanes = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strchr(line, '|') == NULL || strncmp(line, "time", 4) == 0)
            continue;
        lanes++;
        assert_int_equal(strlen(line), 52);
        const char *cells = strchr(line, '|') + 1;
        if (strncmp(line, "worker 0", 8) == 0)
            assert_true(strspn(cells, "1") == 21 && cells[21] == '.');
        else if (strncmp(line, "worker 1", 8) == 0)
            assert_true(strspn(cells, ".") == 20 && strspn(cells + 20, "#") == 20);
        else
            assert_true(strncmp(line, "callbacks", 9) == 0 && strchr(cells, '1') != NULL &&
                        strspn(cells, ".") == 20);
    }
    assert_int_equal(lanes, 3);
    free(buf);
    free(res->trace_index);
}

/* ---- scenarios: initargs, set functions, repeats, trace = true -------------------- */

static void gaps_scenario_passes_its_checks(void **state)
{
    (void)state;
    scn_scenario *s = g_scn = scn_load(SCN "gaps.lua", err, sizeof err);
    if (s == NULL)
        fail_msg("scn_load: %s", err);
    run_register_tasks(s);
    run_options o = {.quick = true}; /* repeat 0: the scenario's repeats = 2 */
    run_report r;
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), 0);
    assert_int_equal(r.repeat, 2);
    assert_true(r.keep_trace);
    if (run_execute(&r, &o, err, sizeof err) != 0)
        fail_msg("run_execute: %s", err);
    assert_int_equal(r.nchecks, 10);
    for (int i = 0; i < r.nchecks; i++)
        if (!r.checks[i].ok)
            fail_msg("check failed: %s (%s)", r.checks[i].name, r.checks[i].detail);
    assert_true(r.results[0].out.stats.bytes_sent > 0);
    run_report_free(&r);
}

static void set_functions_follow_set_and_are_checked(void **state)
{
    (void)state;
    scn_scenario *s = g_scn = scn_load(SCN "gaps.lua", err, sizeof err);
    if (s == NULL)
        fail_msg("scn_load: %s", err);
    char *sets[] = {"n=12"};
    run_options o = {.quick = true, .repeat = 1, .sets = sets, .nsets = 1};
    run_report r;
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), 0);
    int ck = scn_param_index(s, "chunksize");
    assert_int_equal((int)r.vparams[1].v[ck].d, 6); /* 12 // 2 */
    assert_true(r.vparams[1].v[ck].isint);
    run_report_free(&r);
    scn_free(s);

    s = g_scn = scn_load(SCN "bad_set_fn.lua", err, sizeof err);
    if (s == NULL)
        fail_msg("scn_load: %s", err);
    sets[0] = "n=11";
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), -1);
    assert_contains(err, SCN "bad_set_fn.lua:13: variant 'map_n': set.chunksize");
    assert_contains(err, "from 0 to 10 (got 11)");
    run_report_free(&r);
}

static void workload_errors_come_from_prepare(void **state)
{
    (void)state;
    scn_scenario *s = g_scn = scn_load(SCN "bad_workload_pos.lua", err, sizeof err);
    if (s == NULL)
        fail_msg("scn_load: %s", err);
    char *sets[] = {"pos=9"};
    run_options o = {.repeat = 1, .sets = sets, .nsets = 1};
    run_report r;
    assert_int_equal(run_prepare(s, &o, &r, err, sizeof err), -1);
    assert_contains(err, SCN "bad_workload_pos.lua:12: pos (9) must be at most n (4)");
    run_report_free(&r);
}

static void initargs_need_a_list_and_an_initializer(void **state)
{
    (void)state;
    scn_scenario *s = g_scn = scn_load(SCN "gaps.lua", err, sizeof err);
    if (s == NULL)
        fail_msg("scn_load: %s", err);
    scn_params p;
    assert_int_equal(scn_params_resolve(s, true, NULL, 0, &p, err, sizeof err), 0);
    scn_workload w;
    assert_int_equal(scn_workload_eval(s, &p, &w, err, sizeof err), 0);
    /* ["hello", 42], packed: a two-element array */
    assert_true(w.initargs.size > 0 && (unsigned char)w.initargs.data[0] == 0x92);
    scn_workload_free(s, &w);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        GCASE(a_task_whose_worker_dies_is_killed_in_the_trace),
        GCASE(a_task_past_its_limit_is_timed_out_in_the_trace),
        GCASE(terminate_leaves_a_record_for_every_item),
        GCASE(stats_count_bytes_both_ways),
        GCASE(trace_items_are_numbered_from_one),
        GCASE(percentiles_skip_tasks_that_never_began),
        GCASE(timeline_has_a_lane_per_worker_and_callbacks),
        GCASE(gaps_scenario_passes_its_checks),
        GCASE(set_functions_follow_set_and_are_checked),
        GCASE(workload_errors_come_from_prepare),
        GCASE(initargs_need_a_list_and_an_initializer),
    };
    return test_main(argc, argv, "test_gaps", tests, sizeof tests / sizeof tests[0]);
}
