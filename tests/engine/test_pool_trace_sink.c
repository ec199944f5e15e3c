/*
 * test_pool_trace_sink.c: the trace streamed to a sink (pool_options.trace_sink).
 *
 * With a sink the pool keeps no record beyond a batch (and those held for a
 * callback still to run): every task still leaves exactly one record, a
 * callback's record leaves with its t_callback set, and what is still in the
 * pool after pool_trace_drain is nothing. Structural: counts, not timings.
 */
#include "test_helpers.h"

#include <stdlib.h>
#include <string.h>

/* What the sink saw: every record's (job, item), and the largest batch. */
typedef struct seen {
    size_t n, max_batch, callbacks_unset;
    unsigned char *items; /* per item (the test's one job): records seen */
    size_t nitems;
} seen;

static void sink(void *ctx, const pool_trace_rec *recs, size_t n)
{
    seen *s = ctx;
    s->n += n;
    if (n > s->max_batch)
        s->max_batch = n;
    for (size_t i = 0; i < n; i++) {
        if (s->items && recs[i].item < s->nitems)
            s->items[recs[i].item]++;
        if (recs[i].t_callback == 0)
            s->callbacks_unset++;
    }
}

static pool *sink_pool(seen *s)
{
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 2;
    opt.trace = true;
    opt.trace_sink = sink;
    opt.trace_ctx = s;
    return make_pool_opt(&opt);
}

/* 20 000 items through a bounded imap: one record each, handed over in
 * batches as the run goes (the pool holds none at the end). */
static void every_task_one_record_in_batches(void **state)
{
    (void)state;
    enum { N = 20000 };
    seen s = {.items = calloc(N, 1), .nitems = N};
    assert_non_null(s.items);
    pool *p = sink_pool(&s);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pack_range(&a, 0, N);
    pool_imap_opts o = {.chunksize = 4, .buffersize = 4, .ordered = true};
    pool_iter *it = pool_imap_array_opt(p, "square", a.data, a.size, &o);
    assert_non_null(it);
    size_t got = 0;
    while (pool_iter_next(it, WAIT_S, NULL, NULL) == POOL_OK)
        got++;
    assert_int_equal(got, N);
    /* Before the drain most records have left already: the pool keeps a
     * batch at most (1024), not one per task. */
    assert_true(pool_trace_count(p) <= 1024 + 4 * 4);
    pool_iter_free(it);
    assert_status(pool_close(p), POOL_OK);
    assert_status(pool_join(p), POOL_OK);
    pool_trace_drain(p);
    assert_int_equal(pool_trace_count(p), 0);
    assert_int_equal(s.n, N);
    assert_true(s.max_batch <= 1024 + 4 * 4);
    for (size_t i = 0; i < N; i++)
        if (s.items[i] != 1)
            fail_msg("item %zu: %d records", i, s.items[i]);
    drop_pool();
    free(s.items);
    msgpack_sbuffer_destroy(&a);
}

static int nop_cb(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)r, (void)udata, (void)err, (void)errlen;
    return 0;
}

/* 3000 apply_async with a callback: each record leaves after its callback,
 * with t_callback set; none is lost. */
static void callback_records_leave_with_their_time(void **state)
{
    (void)state;
    enum { N = 3000 };
    seen s = {0};
    pool *p = sink_pool(&s);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_result **h = calloc(N, sizeof *h);
    assert_non_null(h);
    for (int i = 0; i < N; i++) {
        pool_args_int(&a, i);
        h[i] = pool_apply_async(p, "square", a.data, a.size, nop_cb, NULL, NULL);
        assert_non_null(h[i]);
    }
    for (int i = 0; i < N; i++) {
        get_ok(h[i]);
        pool_result_free(h[i]);
    }
    assert_status(pool_close(p), POOL_OK);
    assert_status(pool_join(p), POOL_OK);
    pool_trace_drain(p);
    assert_int_equal(s.n, N);
    assert_int_equal(s.callbacks_unset, 0);
    drop_pool();
    free(h);
    msgpack_sbuffer_destroy(&a);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(every_task_one_record_in_batches),
        CASE(callback_records_leave_with_their_time),
    };
    return test_main(argc, argv, "test_pool_trace_sink", tests, sizeof tests / sizeof tests[0]);
}
