/*
 * test_pool_frame.c: a chunk's RESULT frame, from the worker's packing
 * (pool_worker_run_chunk) to the parent's reading (pool_chunk_read_body,
 * pool_chunk_item, pool_chunk_time), without a pool.
 *
 * The body is columnar, [values, status, times] (pool_internal.h): these
 * cases run a chunk in this process, then check the columns' shape (status
 * nil when every item succeeded, one byte per item otherwise; 16 bytes of
 * times per item) and that every item reads back as it ran: its value, or
 * its failure's message as a C string, and when it began and ended.
 */
#include "test_helpers.h"

#include "pool_internal.h"

#include <string.h>

/* Runs `square` over the packed arguments in this process, as a worker
 * would, and unpacks the frame: *body is its [values, status, times]. */
static pool_chunk *run_square(const char *args, size_t len, msgpack_sbuffer *out,
                              msgpack_object *frame)
{
    size_t *starts, n;
    assert_int_equal(pool_msg_split_array(args, len, &starts, &n, false), POOL_OK);
    pool_taskmsg *m = pool_taskmsg_new(7, 2, 10, (unsigned)pool_task_index("square"), args,
                                       starts, n, len, true);
    assert_non_null(m);
    struct pool_slot_shm me;
    memset(&me, 0, sizeof me);
    msgpack_sbuffer tmp;
    msgpack_sbuffer_init(&tmp);
    double before = pool_now();
    pool_worker_run_chunk(&me, 0, &m->hdr, m->data, out, &tmp);
    msgpack_sbuffer_destroy(&tmp);
    pool_taskmsg_free_list(m);
    free(starts);

    pool_chunk *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_true(msgpack_zone_init(&c->own_zone, 4096));
    c->zone = &c->own_zone;
    size_t off = 4; /* the uint32 length the sender fills */
    assert_int_equal(msgpack_unpack(out->data, out->size, &off, c->zone, frame),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(frame->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(frame->via.array.size, 5);
    const msgpack_object *f = frame->via.array.ptr;
    assert_int_equal(f[0].via.i64, POOL_FRAME_RESULT);
    assert_int_equal(f[1].via.u64, 7);
    assert_int_equal(f[2].via.u64, 2);
    assert_int_equal(f[3].via.u64, 10);
    assert_true(pool_chunk_read_body(c, &f[4]));
    assert_int_equal(c->count, n);
    for (uint32_t i = 0; i < n; i++) { /* times on this clock, in order */
        double t0 = pool_chunk_time(c, i, false), t1 = pool_chunk_time(c, i, true);
        assert_true(t0 >= before && t1 >= t0 && t1 <= pool_now());
        before = t1;
    }
    return c;
}

static void all_ok_chunk_has_no_status_column(void **state)
{
    (void)state;
    static const char args[] = {(char)0x93, 3, 4, (char)0xcd, 0x01, 0x00}; /* [3, 4, 256] */
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_object frame;
    pool_chunk *c = run_square(args, sizeof args, &out, &frame);
    const msgpack_object *body = frame.via.array.ptr[4].via.array.ptr;
    assert_int_equal(body[1].type, MSGPACK_OBJECT_NIL);
    assert_int_equal(body[2].via.bin.size, 3 * 16);
    assert_null(c->ok);
    assert_int_equal(c->nfailed, 0);
    assert_int_equal(pool_chunk_failed(c), 0);
    static const int64_t want[] = {9, 16, 65536};
    for (uint32_t i = 0; i < 3; i++) {
        const msgpack_object *v;
        const char *msg;
        assert_int_equal(pool_chunk_item(c, i, &v, &msg), POOL_OK);
        assert_int_equal(v->via.i64, want[i]);
    }
    pool_chunk_free(c);
    msgpack_sbuffer_destroy(&out);
}

static void failed_items_have_a_status_byte_and_their_message(void **state)
{
    (void)state;
    static const char args[] = {(char)0x93, 5, (char)0xa1, 'x', 6}; /* [5, "x", 6] */
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_object frame;
    pool_chunk *c = run_square(args, sizeof args, &out, &frame);
    const msgpack_object *body = frame.via.array.ptr[4].via.array.ptr;
    assert_int_equal(body[1].type, MSGPACK_OBJECT_BIN);
    assert_int_equal(body[1].via.bin.size, 3);
    assert_memory_equal(c->ok, "\1\0\1", 3);
    assert_int_equal(c->nfailed, 1);
    assert_int_equal(pool_chunk_failed(c), 1);
    const msgpack_object *v;
    const char *msg;
    assert_int_equal(pool_chunk_item(c, 0, &v, &msg), POOL_OK);
    assert_int_equal(v->via.i64, 25);
    assert_int_equal(pool_chunk_item(c, 1, &v, &msg), POOL_ETASK);
    assert_null(v);
    assert_string_equal(msg, "square: expects one number"); /* NUL-terminated in place */
    assert_int_equal(pool_chunk_item(c, 2, &v, &msg), POOL_OK);
    assert_int_equal(v->via.i64, 36);
    pool_chunk_free(c);
    msgpack_sbuffer_destroy(&out);
}

/* A chunk the parent makes (a dead worker's) has no columns: every item
 * fails with its message. */
static void chunk_without_frame_fails_every_item(void **state)
{
    (void)state;
    pool_chunk *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->count = 4;
    c->status = POOL_EWORKER;
    c->errmsg = strdup("worker 1 was killed");
    assert_int_equal(pool_chunk_failed(c), 4);
    const msgpack_object *v;
    const char *msg;
    assert_int_equal(pool_chunk_item(c, 3, &v, &msg), POOL_EWORKER);
    assert_string_equal(msg, "worker 1 was killed");
    pool_chunk_free(c);
}

static void malformed_bodies_refused(void **state)
{
    (void)state;
    /* [[1], nil, bin of 15]: the times column one byte short */
    static const char short_times[] = {(char)0x93, (char)0x91, 1, (char)0xc0, (char)0xc4, 15,
                                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    /* [[1], bin of 2, bin of 16]: a status byte too many */
    static const char long_status[] = {(char)0x93, (char)0x91, 1, (char)0xc4, 2, 1, 1,
                                       (char)0xc4, 16, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0, 0, 0, 0, 0, 0, 0, 0};
    /* [[1, [1, 2, 3, 4]]]: the old per-item shape */
    static const char old_shape[] = {(char)0x91, (char)0x94, (char)0xc3, 1, 0, 0};
    const struct { const char *b; size_t len; } cases[] = {
        {short_times, sizeof short_times}, {long_status, sizeof long_status},
        {old_shape, sizeof old_shape},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        msgpack_zone z;
        msgpack_zone_init(&z, 1024);
        msgpack_object o;
        size_t off = 0;
        assert_int_equal(msgpack_unpack(cases[k].b, cases[k].len, &off, &z, &o),
                         MSGPACK_UNPACK_SUCCESS);
        pool_chunk c;
        memset(&c, 0, sizeof c);
        if (pool_chunk_read_body(&c, &o))
            fail_msg("case %zu: a malformed body was read", k);
        msgpack_zone_destroy(&z);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(all_ok_chunk_has_no_status_column),
        CASE(failed_items_have_a_status_byte_and_their_message),
        CASE(chunk_without_frame_fails_every_item),
        CASE(malformed_bodies_refused),
    };
    return test_main(argc, argv, "pool_frame", tests, sizeof tests / sizeof *tests);
}
