/*
 * test_pool_frame.c: a chunk's RESULT frame, from the worker's packing
 * (pool_worker_run_chunk) to the parent's reading (pool_chunk_read_body,
 * pool_chunk_item, pool_chunk_time), without a pool.
 *
 * The body is columnar, [values, status, times] (pool_internal.h): these
 * cases run a chunk in this process, then check the columns' shape (status
 * nil when every item succeeded, one byte per item otherwise; 16 bytes of
 * times per item, or nil when the pool reads no times) and that every item
 * reads back as it ran: its value, or its failure's message as a C string
 * (what a failed task packed before failing cut off), and when it began and
 * ended. The last cases read frames as the result handler reads most of
 * them, by a walk with no msgpack-c (pool_chunk_from_plain_frame): exactly
 * as msgpack-c would, and every other frame left to it.
 */
#include "test_helpers.h"

#include "pool_internal.h"

#include <stddef.h>
#include <string.h>

/* A task that packs half a value, then fails: the worker must cut the
 * half off, or the values column would hold an item too many. Odd
 * numbers fail, even ones return themselves. */
static int task_half_then_fail(const msgpack_object_array *args, msgpack_packer *out,
                               pool_task_ctx *ctx)
{
    int64_t x = args->ptr[0].via.i64;
    if (x % 2 == 0)
        return msgpack_pack_int64(out, x);
    msgpack_pack_array(out, 2);
    msgpack_pack_nil(out);
    return pool_task_fail(ctx, "odd: %lld", (long long)x);
}

/* Fails 3 with a message of its own, 5 without one (a bare -2), and
 * returns any other number. */
static int task_fail_quietly(const msgpack_object_array *args, msgpack_packer *out,
                             pool_task_ctx *ctx)
{
    int64_t x = args->ptr[0].via.i64;
    if (x == 3)
        return pool_task_fail(ctx, "three");
    if (x == 5)
        return -2;
    return msgpack_pack_int64(out, x);
}

/* How many arguments the task was given. */
static int task_nargs(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    (void)ctx;
    return msgpack_pack_uint32(out, args->size);
}

/* Runs `task` over the packed items in this process, as a worker would
 * (timed or not; each item the one argument, or with star an argument
 * array), and unpacks the frame: its body is [values, status, times]. */
static pool_chunk *run_task_star(const char *task, bool star, bool timed, const char *args,
                                 size_t len, msgpack_sbuffer *out, msgpack_object *frame)
{
    size_t *starts, n;
    assert_int_equal(pool_msg_split_array(args, len, 1, &starts, &n, star), POOL_OK);
    pool_taskmsg *m = pool_taskmsg_new(7, 2, 10, (unsigned)pool_task_index(task), args,
                                       n > 0 ? starts[0] : len, n, len, !star);
    assert_non_null(m);
    struct pool_slot_shm me;
    memset(&me, 0, sizeof me);
    double before = pool_now();
    /* One scratch for every chunk a case runs, as a worker keeps one: a
     * case that runs two chunks checks that the second reads right. */
    static struct pool_worker_scratch scratch;
    static bool scratch_ready;
    if (!scratch_ready)
        assert_true(scratch_ready = pool_worker_scratch_init(&scratch));
    pool_worker_run_chunk(&me, 0, &m->hdr, m->data, out, &scratch, timed);
    assert_int_equal(atomic_load(&me.item), 10 + n - 1); /* the last item it ran */
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
    const msgpack_object *times = &f[4].via.array.ptr[2];
    if (!timed) {
        assert_int_equal(times->type, MSGPACK_OBJECT_NIL);
        assert_null(c->times);
        assert_true(pool_chunk_time(c, 0, false) == 0);
        return c;
    }
    assert_int_equal(times->type, MSGPACK_OBJECT_BIN);
    assert_int_equal(times->via.bin.size, 16 * n);
    for (uint32_t i = 0; i < n; i++) { /* times on this clock, in order */
        double t0 = pool_chunk_time(c, i, false), t1 = pool_chunk_time(c, i, true);
        assert_true(t0 >= before && t1 >= t0 && t1 <= pool_now());
        before = t1;
    }
    return c;
}

/* The same, each item the task's one argument (map). */
static pool_chunk *run_task(const char *task, bool timed, const char *args, size_t len,
                            msgpack_sbuffer *out, msgpack_object *frame)
{
    return run_task_star(task, false, timed, args, len, out, frame);
}

static void all_ok_chunk_has_no_status_column(void **state)
{
    (void)state;
    static const char args[] = {(char)0x93, 3, 4, (char)0xcd, 0x01, 0x00}; /* [3, 4, 256] */
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_object frame;
    pool_chunk *c = run_task("square", true, args, sizeof args, &out, &frame);
    const msgpack_object *body = frame.via.array.ptr[4].via.array.ptr;
    assert_int_equal(body[1].type, MSGPACK_OBJECT_NIL);
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
    pool_chunk *c = run_task("square", true, args, sizeof args, &out, &frame);
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

/* Untimed (no trace, no time limit): no times column; a failed task's half
 * value is cut off, so every item still reads back as it ran. */
static void untimed_chunk_has_no_times_and_cuts_half_values(void **state)
{
    (void)state;
    static const char args[] = {(char)0x94, 2, 3, 4, 5}; /* [2, 3, 4, 5] */
    assert_status(pool_task_register("half_then_fail", task_half_then_fail, NULL), POOL_OK);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_object frame;
    pool_chunk *c = run_task("half_then_fail", false, args, sizeof args, &out, &frame);
    assert_memory_equal(c->ok, "\1\0\1\0", 4);
    assert_int_equal(pool_chunk_failed(c), 2);
    for (uint32_t i = 0; i < 4; i++) {
        const msgpack_object *v;
        const char *msg;
        char want[32];
        if (i % 2 == 0) {
            assert_int_equal(pool_chunk_item(c, i, &v, &msg), POOL_OK);
            assert_int_equal(v->via.i64, 2 + i);
        } else {
            assert_int_equal(pool_chunk_item(c, i, &v, &msg), POOL_ETASK);
            snprintf(want, sizeof want, "odd: %u", 2 + i);
            assert_string_equal(msg, want);
        }
    }
    pool_chunk_free(c);
    msgpack_sbuffer_destroy(&out);
}

/* A task that fails without pool_task_fail gets the engine's message, not
 * the one an item before it left (the runner's state is item by item);
 * a task the worker does not know fails every item, saying so. */
static void failure_messages_are_each_items_own(void **state)
{
    (void)state;
    static const char args[] = {(char)0x94, 3, 5, 4, 5}; /* [3, 5, 4, 5] */
    assert_status(pool_task_register("fail_quietly", task_fail_quietly, NULL), POOL_OK);
    const char *want[] = {"three", "task 'fail_quietly' failed (returned -2)", NULL,
                          "task 'fail_quietly' failed (returned -2)"};
    for (int unknown = 0; unknown < 2; unknown++) {
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        msgpack_object frame;
        pool_chunk *c = run_task(unknown ? "no_such_task" : "fail_quietly", false, args,
                                 sizeof args, &out, &frame);
        assert_int_equal(pool_chunk_failed(c), unknown ? 4 : 3);
        for (uint32_t i = 0; i < 4; i++) {
            const msgpack_object *v;
            const char *msg;
            int st = pool_chunk_item(c, i, &v, &msg);
            if (unknown) {
                assert_int_equal(st, POOL_ETASK);
                assert_string_equal(msg, "no task with index 4294967295");
            } else if (want[i] == NULL) {
                assert_int_equal(st, POOL_OK);
                assert_int_equal(v->via.i64, 4);
            } else {
                assert_int_equal(st, POOL_ETASK);
                assert_string_equal(msg, want[i]);
            }
        }
        pool_chunk_free(c);
        msgpack_sbuffer_destroy(&out);
    }
}

/* A map's item travels bare and reaches the task as its one argument,
 * even when the item is itself an array; a starmap's item is the task's
 * argument array. */
static void map_items_are_one_argument_starmap_items_all(void **state)
{
    (void)state;
    assert_status(pool_task_register("nargs", task_nargs, NULL), POOL_OK);
    static const char items[] = {(char)0x93, (char)0x92, 1, 2, (char)0x91, 3, (char)0x90};
    const struct { bool star; int64_t want[3]; } cases[] = {{false, {1, 1, 1}}, {true, {2, 1, 0}}};
    for (size_t k = 0; k < 2; k++) {
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        msgpack_object frame;
        pool_chunk *c = run_task_star("nargs", cases[k].star, false, items, sizeof items, &out,
                                      &frame);
        for (uint32_t i = 0; i < 3; i++) {
            const msgpack_object *v;
            const char *msg;
            assert_int_equal(pool_chunk_item(c, i, &v, &msg), POOL_OK);
            assert_int_equal(v->via.i64, cases[k].want[i]);
        }
        pool_chunk_free(c);
        msgpack_sbuffer_destroy(&out);
    }
}

/* Values of every packed size and kind, packed by the worker straight into
 * its frame, timed and not: identity's values read back equal to the
 * items, in order. */
static void values_of_every_size_read_back(void **state)
{
    (void)state;
    msgpack_sbuffer in;
    msgpack_sbuffer_init(&in);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &in, msgpack_sbuffer_write);
    static const int64_t ints[] = {0, 127, 128, 255, 256, 65535, 65536, 4294967296LL,
                                   -1, -33, -129, -32769, -2147483649LL};
    static const char text[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t nstr = sizeof text; /* strings of 0..36 bytes */
    msgpack_pack_array(&pk, 13 + 2 + nstr);
    for (size_t i = 0; i < 13; i++)
        msgpack_pack_int64(&pk, ints[i]);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_array(&pk, 2); /* [nil, true] */
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    for (size_t k = 0; k < nstr; k++) {
        msgpack_pack_str(&pk, k);
        msgpack_pack_str_body(&pk, text, k);
    }
    msgpack_zone z;
    assert_true(msgpack_zone_init(&z, 4096));
    msgpack_object items;
    size_t off = 0;
    assert_int_equal(msgpack_unpack(in.data, in.size, &off, &z, &items), MSGPACK_UNPACK_SUCCESS);
    for (int timed = 0; timed < 2; timed++) {
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        msgpack_object frame;
        pool_chunk *c = run_task("identity", timed, in.data, in.size, &out, &frame);
        assert_int_equal(c->count, items.via.array.size);
        for (uint32_t i = 0; i < c->count; i++) {
            const msgpack_object *v;
            const char *msg;
            assert_int_equal(pool_chunk_item(c, i, &v, &msg), POOL_OK);
            if (!msgpack_object_equal(*v, items.via.array.ptr[i]))
                fail_msg("item %u (timed %d) did not read back as it was", i, timed);
        }
        pool_chunk_free(c);
        msgpack_sbuffer_destroy(&out);
    }
    msgpack_zone_destroy(&z);
    msgpack_sbuffer_destroy(&in);
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

/* ---- the plain frame, read without msgpack-c (pool_chunk_from_plain_frame) */

/* Starts a RESULT frame [1, job, chunk, first, [values, status, times]]
 * in sb, up to the header of its n values: the caller packs the values,
 * then the status and times columns. */
static void frame_begin(msgpack_packer *pk, msgpack_sbuffer *sb, uint64_t job, uint32_t chunk,
                        uint32_t first, uint32_t n)
{
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(pk, 5);
    msgpack_pack_int(pk, POOL_FRAME_RESULT);
    msgpack_pack_uint64(pk, job);
    msgpack_pack_uint32(pk, chunk);
    msgpack_pack_uint32(pk, first);
    msgpack_pack_array(pk, 3);
    msgpack_pack_array(pk, n);
}

/* Packs a RESULT frame whose values are packed by `values` (n of them),
 * timed; status nil unless ok given. Chunk 70000 is a uint32, first 300 a
 * uint16: the walk reads both widths. */
static void pack_frame(msgpack_sbuffer *sb, uint64_t job, uint32_t n,
                       void (*values)(msgpack_packer *), const char *ok)
{
    msgpack_packer pk;
    frame_begin(&pk, sb, job, 70000, 300, n);
    values(&pk);
    if (ok) {
        msgpack_pack_bin(&pk, n);
        msgpack_pack_bin_body(&pk, ok, n);
    } else {
        msgpack_pack_nil(&pk);
    }
    msgpack_pack_bin(&pk, 16 * n);
    for (uint32_t i = 0; i < 16 * n; i++)
        msgpack_pack_bin_body(&pk, (const char[]){(char)i}, 1);
}

#define SCALARS 24
/* Every scalar msgpack-c sets in its own way: each integer width, signed
 * ones on both sides of 0, floats of both sizes, strings and bins of every
 * length field, nil and booleans. */
static void pack_scalars(msgpack_packer *pk)
{
    static char big[70000];
    msgpack_pack_int(pk, 5);             /* positive fixint */
    msgpack_pack_uint8(pk, 200);
    msgpack_pack_uint16(pk, 60000);
    msgpack_pack_uint32(pk, 4000000000u);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_int(pk, -3);            /* negative fixint */
    msgpack_pack_fix_int8(pk, -100);
    msgpack_pack_fix_int8(pk, 100);      /* signed width, positive: POSITIVE_INTEGER */
    msgpack_pack_fix_int16(pk, -30000);
    msgpack_pack_fix_int32(pk, -2000000000);
    msgpack_pack_fix_int64(pk, INT64_MIN);
    msgpack_pack_fix_int64(pk, 7);
    msgpack_pack_float(pk, 1.5f);
    msgpack_pack_double(pk, -2.25);
    msgpack_pack_nil(pk);
    msgpack_pack_true(pk);
    msgpack_pack_false(pk);
    msgpack_pack_str_with_body(pk, "", 0);
    msgpack_pack_str_with_body(pk, "failed\0", 7); /* a message, its NUL inside */
    msgpack_pack_str_with_body(pk, big, 40);     /* str 8 */
    msgpack_pack_str_with_body(pk, big, 300);    /* str 16 */
    msgpack_pack_str_with_body(pk, big, 70000);  /* str 32 */
    msgpack_pack_bin_with_body(pk, "ab", 2);
    msgpack_pack_bin_with_body(pk, big, 300);
}

static void pack_one_pair(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
}

static void pack_one_int(msgpack_packer *pk) { msgpack_pack_int(pk, 49); }

/* Every value reads as msgpack-c's unpack reads it, with no zone, and the
 * columns and numbers as pool_chunk_read_body sets them. */
static void plain_frame_read_as_msgpack_reads_it(void **state)
{
    (void)state;
    char ok[SCALARS];
    memset(ok, 1, sizeof ok);
    ok[18] = 0; /* the message */
    for (int with_status = 0; with_status < 2; with_status++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        pack_frame(&sb, 1ull << 40, SCALARS, pack_scalars, with_status ? ok : NULL);
        uint64_t job = 0;
        pool_chunk *c = pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &job, NULL);
        assert_non_null(c);
        assert_null(c->zone);
        assert_int_equal(job, 1ull << 40);
        assert_int_equal(c->index, 70000);
        assert_int_equal(c->first, 300);
        assert_int_equal(c->count, SCALARS);
        assert_int_equal(c->nfailed, with_status);
        assert_int_equal(pool_chunk_failed(c), with_status);

        pool_chunk g; /* the general reading, for comparison */
        memset(&g, 0, sizeof g);
        msgpack_zone z;
        msgpack_zone_init(&z, pool_zone_guess(sb.size));
        msgpack_object frame;
        size_t off = 0;
        assert_int_equal(msgpack_unpack(sb.data, sb.size, &off, &z, &frame),
                         MSGPACK_UNPACK_SUCCESS);
        assert_true(pool_chunk_read_body(&g, &frame.via.array.ptr[4]));
        for (uint32_t i = 0; i < SCALARS; i++) {
            assert_int_equal(c->values[i].type, g.values[i].type);
            if (!msgpack_object_equal(c->values[i], g.values[i]))
                fail_msg("value %u reads otherwise than msgpack-c reads it", i);
            assert_true(pool_chunk_time(c, i, true) == pool_chunk_time(&g, i, true));
        }
        const msgpack_object *v;
        const char *msg;
        assert_int_equal(pool_chunk_item(c, 18, &v, &msg), with_status ? POOL_ETASK : POOL_OK);
        if (with_status)
            assert_string_equal(msg, "failed");
        /* Strings point into the chunk's own copy, not the buffer read. */
        assert_true(c->values[20].via.str.ptr >= c->raw &&
                    c->values[20].via.str.ptr < c->raw + sb.size);
        msgpack_zone_destroy(&z);
        pool_chunk_free(c);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* The worker's own frame of an apply of a number is plain, timed (a trace,
 * a time limit) or not. */
static void worker_frame_is_plain(void **state)
{
    (void)state;
    static const char args[] = {(char)0x92, 7, (char)0xd0, (char)0x9c}; /* [7, -100] */
    for (int timed = 0; timed < 2; timed++) {
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        msgpack_object frame;
        pool_chunk_free(run_task("square", timed, args, sizeof args, &out, &frame));
        uint64_t job = 0;
        pool_chunk *c = pool_chunk_from_plain_frame(out.data + 4, (uint32_t)out.size - 4, &job,
                                                    NULL);
        assert_non_null(c);
        assert_int_equal(job, 7);
        assert_int_equal(c->index, 2);
        assert_int_equal(c->first, 10);
        const msgpack_object *v;
        const char *msg;
        assert_int_equal(pool_chunk_item(c, 1, &v, &msg), POOL_OK);
        assert_int_equal(v->via.u64, 10000);
        if (timed)
            assert_true(pool_chunk_time(c, 1, true) >= pool_chunk_time(c, 1, false));
        else
            assert_null(c->times);
        pool_chunk_free(c);
        msgpack_sbuffer_destroy(&out);
    }
}

/* Anything but a plain frame is left to msgpack-c (NULL): a container among
 * the values, an INITFAIL, every truncation, a byte too many, a status or
 * times column of the wrong size. */
static void other_frames_left_to_the_general_unpack(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    uint64_t job;
    pack_frame(&sb, 9, 1, pack_one_pair, NULL);
    assert_null(pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &job, NULL));
    msgpack_sbuffer_clear(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_int(&pk, POOL_FRAME_INITFAIL);
    for (int i = 0; i < 3; i++)
        msgpack_pack_int(&pk, 0);
    msgpack_pack_str_with_body(&pk, "no\0", 3);
    assert_null(pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &job, NULL));

    msgpack_sbuffer_clear(&sb);
    pack_frame(&sb, 9, 1, pack_one_int, "\1");
    pool_chunk *c = pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &job, NULL);
    assert_non_null(c); /* the whole one is read ... */
    pool_chunk_free(c);
    for (size_t cut = 0; cut < sb.size; cut++) /* ... no truncation of it is */
        if (pool_chunk_from_plain_frame(sb.data, (uint32_t)cut, &job, NULL) != NULL)
            fail_msg("a frame cut to %zu of %zu bytes was read", cut, sb.size);
    msgpack_sbuffer_write(&sb, "", 1);
    assert_null(pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &job, NULL));
    char *b = sb.data;
    size_t status_at = sb.size - 1 - 16 - 2 - 3; /* bin8 of 1, then bin8 of 16, the extra */
    assert_int_equal((unsigned char)b[status_at], 0xc4);
    b[status_at + 1] = 2; /* a status column of 2 bytes for 1 item */
    assert_null(pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size - 1, &job, NULL));
    b[status_at + 1] = 1;
    b[sb.size - 1 - 16 - 1] = 15; /* a times column one byte short */
    assert_null(pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size - 1, &job, NULL));
    msgpack_sbuffer_destroy(&sb);
}

/* A plain frame read into a scratch buffer moves, its pointers with it,
 * into a room (its job's: not freed with the chunk) or into a block of its
 * own, its values kept there or put in slots given (a map's final array);
 * a frame bigger than the scratch may grow to gets its block at once, and
 * the scratch grows to a frame within its max. */
static void plain_chunk_settles_from_scratch(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char ok[SCALARS];
    memset(ok, 1, sizeof ok);
    ok[18] = 0;
    pack_frame(&sb, 5, SCALARS, pack_scalars, ok);
    uint64_t job;
    static max_align_t room[(1 << 18) / sizeof(max_align_t)];
    static msgpack_object slots[SCALARS + 2];
    struct pool_frame_scratch small = {.max = 512}, scratch = {.max = 1 << 18};
    pool_chunk *c = pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &job, &small);
    assert_non_null(c);
    assert_int_equal(c->home, POOL_CHUNK_HEAP); /* too big for the scratch */
    assert_null(small.buf);
    pool_chunk_free(c);
    pool_chunk *want = pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &job, NULL);
    for (int mode = 0; mode < 3; mode++) { /* room, own block, own block and slots */
        c = pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &job, &scratch);
        assert_ptr_equal(c, scratch.buf); /* grown to the frame */
        assert_int_equal(c->home, POOL_CHUNK_SCRATCH);
        assert_true(c->block <= scratch.size && c->block <= sizeof room);
        pool_chunk *d = pool_chunk_settle(c, mode == 0 ? (void *)room : NULL,
                                          mode == 2 ? slots + 1 : NULL);
        memset(scratch.buf, 0xee, scratch.size); /* nothing may still point there */
        assert_int_equal(d->home, mode == 0 ? POOL_CHUNK_ROOM : POOL_CHUNK_HEAP);
        assert_true(mode == 0 ? d == (void *)room : d != scratch.buf);
        assert_ptr_equal(d->values, mode == 2 ? slots + 1 : (msgpack_object *)(d + 1));
        assert_ptr_equal(pool_chunk_settle(d, NULL, NULL), d); /* settled: stays */
        assert_int_equal(d->count, SCALARS);
        assert_int_equal(d->nfailed, 1);
        for (uint32_t i = 0; i < SCALARS; i++) {
            if (!msgpack_object_equal(d->values[i], want->values[i]))
                fail_msg("value %u changed in the move", i);
            assert_true(pool_chunk_time(d, i, false) == pool_chunk_time(want, i, false));
        }
        assert_true(d->values[21].via.str.ptr > d->raw &&
                    d->values[21].via.str.ptr < d->raw + sb.size);
        const msgpack_object *v;
        const char *msg;
        assert_int_equal(pool_chunk_item(d, 18, &v, &msg), POOL_ETASK);
        assert_string_equal(msg, "failed");
        pool_chunk_free(d); /* a room is not freed (ASan: not a heap block) */
    }
    free(scratch.buf);
    pool_chunk_free(want);
    msgpack_sbuffer_destroy(&sb);
}

/* A chunk of numbers, every item ok, untimed (a map's usual one) leaves
 * its copy of the frame behind when it settles: nothing points into it.
 * One string among them keeps it. */
static void settled_numbers_keep_no_frame_copy(void **state)
{
    (void)state;
    struct pool_frame_scratch scratch = {.max = 1 << 16};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (int with_str = 0; with_str < 2; with_str++) {
        msgpack_packer pk;
        msgpack_sbuffer_clear(&sb);
        frame_begin(&pk, &sb, 9, 0, 0, 4);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_uint64(&pk, 70000);
        msgpack_pack_double(&pk, -0.5);
        if (with_str)
            msgpack_pack_str_with_body(&pk, "s", 1);
        else
            msgpack_pack_nil(&pk);
        msgpack_pack_nil(&pk);
        msgpack_pack_nil(&pk);
        uint64_t id;
        pool_chunk *c = pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &id, &scratch);
        assert_non_null(c);
        pool_chunk *d = pool_chunk_settle(c, NULL, NULL);
        memset(scratch.buf, 0xee, scratch.size);
        assert_int_equal(d->raw == NULL, !with_str);
        assert_int_equal(d->values[0].via.u64, 1);
        assert_int_equal(d->values[1].via.u64, 70000);
        assert_true(d->values[2].via.f64 == -0.5);
        if (with_str)
            assert_memory_equal(d->values[3].via.str.ptr, "s", 1);
        else
            assert_int_equal(d->values[3].type, MSGPACK_OBJECT_NIL);
        pool_chunk_free(d);
    }
    free(scratch.buf);
    msgpack_sbuffer_destroy(&sb);
}

/* A plain frame of chunk `chunk` (first item `first`) of n strings. */
static void pack_str_frame(msgpack_sbuffer *sb, uint32_t chunk, uint32_t first,
                           const char *const strs[3], uint32_t n)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    frame_begin(&pk, sb, 9, chunk, first, n);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_str_with_body(&pk, strs[i], strlen(strs[i]));
    msgpack_pack_nil(&pk); /* every item ok */
    msgpack_pack_nil(&pk); /* not timed */
}

/* What the result handler does with a frame (chunk_dispatch): read into
 * the scratch, ask the job where the values go, settle, deliver. Returns
 * whether the values went into the job's slots. */
static bool dispatch(pool_job *job, msgpack_sbuffer *sb, struct pool_frame_scratch *scratch)
{
    uint64_t id;
    pool_chunk *c = pool_chunk_from_plain_frame(sb->data, (uint32_t)sb->size, &id, scratch);
    assert_non_null(c);
    assert_int_equal(c->home, POOL_CHUNK_SCRATCH);
    msgpack_object *home = job->ops->values_home(job, c);
    c = pool_chunk_settle(c, NULL, home);
    memset(scratch->buf, 0xee, scratch->size); /* nothing may still point there */
    job->ops->deliver(job, c);
    return home != NULL;
}

/* A map's chunks put their values straight into the map's array, each
 * chunk at most once: a chunk run twice, or one that is not the chunk it
 * claims (index, first item, count), gets a block of its own, and the map
 * keeps the first copy's values (ASan: the copy not kept, freed, is never
 * pointed at); a chunk that did not come through the scratch is copied in
 * when the last is in. */
static void map_chunk_values_go_home_once(void **state)
{
    (void)state;
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 1;
    pool *p = pool_create(&opt);
    assert_non_null(p);
    pool_result *r = pool_result_new(p, (unsigned)pool_task_index("square"), true, 6, 3, NULL,
                                     NULL, NULL);
    assert_non_null(r);
    pool_job *job = pool_result_head(r);
    job->id = pool_new_job(p); /* in the table, as map_submit puts it */
    assert_int_equal(pool_job_register(p, job, false), POOL_OK);
    struct pool_frame_scratch scratch = {.max = 1 << 16};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    static const char *const second[3] = {"d", "e", "f"}, *const again[3] = {"X", "Y", "Z"},
                             *const first[3] = {"a", "b", "c"};
    pack_str_frame(&sb, 1, 3, second, 3);
    assert_true(dispatch(job, &sb, &scratch));
    pack_str_frame(&sb, 1, 3, again, 3); /* run twice: not into the slots */
    assert_false(dispatch(job, &sb, &scratch));
    uint64_t id;
    for (int bad = 0; bad < 3; bad++) { /* asked, then dropped, as a job not found */
        /* no chunk 2; chunk 0 does not start at item 1; nor has it 2 items */
        pack_str_frame(&sb, bad == 0 ? 2 : 0, bad == 1 ? 1 : 0, first, bad == 2 ? 2 : 3);
        pool_chunk *c = pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &id, &scratch);
        assert_non_null(c);
        assert_null(job->ops->values_home(job, c));
    }
    assert_false(pool_result_ready(r));
    /* Chunk 0 as a frame too big for the scratch (or not plain) comes: in
     * a block of its own, its values copied into the array at the end. */
    pack_str_frame(&sb, 0, 0, first, 3);
    pool_chunk *c = pool_chunk_from_plain_frame(sb.data, (uint32_t)sb.size, &id, NULL);
    assert_non_null(c);
    job->ops->deliver(job, c);
    const msgpack_object *v = NULL;
    assert_int_equal(pool_result_get(r, 5, &v), POOL_OK);
    assert_int_equal(v->via.array.size, 6);
    for (uint32_t i = 0; i < 6; i++) {
        const msgpack_object *e = &v->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR)
            fail_msg("item %u: type %d", i, (int)e->type);
        assert_int_equal(e->via.str.size, 1);
        assert_int_equal(e->via.str.ptr[0], "abcdef"[i]);
    }
    pool_result_free(r);
    free(scratch.buf);
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(pool_close(p), POOL_OK);
    assert_int_equal(pool_join(p), POOL_OK);
    pool_destroy(p);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(all_ok_chunk_has_no_status_column),
        CASE(failed_items_have_a_status_byte_and_their_message),
        CASE(untimed_chunk_has_no_times_and_cuts_half_values),
        CASE(failure_messages_are_each_items_own),
        CASE(map_items_are_one_argument_starmap_items_all),
        CASE(values_of_every_size_read_back),
        CASE(chunk_without_frame_fails_every_item),
        CASE(malformed_bodies_refused),
        CASE(plain_frame_read_as_msgpack_reads_it),
        CASE(worker_frame_is_plain),
        CASE(other_frames_left_to_the_general_unpack),
        CASE(plain_chunk_settles_from_scratch),
        CASE(map_chunk_values_go_home_once),
        CASE(settled_numbers_keep_no_frame_copy),
    };
    return test_main(argc, argv, "pool_frame", tests, sizeof tests / sizeof *tests);
}
