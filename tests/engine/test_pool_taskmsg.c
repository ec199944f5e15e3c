/*
 * test_pool_taskmsg.c: a worker's plain reading of a task message
 * (pool_taskmsg_read_plain, pool_frame.c), without a pool.
 *
 * A task message is [task, items, single]. When every item is a scalar,
 * or an array of scalars, the worker reads it by a walk over its bytes
 * instead of msgpack-c's unpack. The walk must read each item exactly as
 * msgpack-c's unpack reads it, refuse (leave to that unpack) every other
 * message, and never read past the message's end: these cases compare it
 * with msgpack-c over scalars of every kind, items of every shape, every
 * truncation and random byte changes (which a sanitizer build turns into
 * a failure if the walk reads one byte too far).
 */
#include "test_helpers.h"

#include "pool_internal.h"

#include <stdint.h>
#include <string.h>

/* ---- the reference: msgpack-c's unpack, and what the walk promises -------- */

static bool is_scalar(const msgpack_object *o)
{
    return o->type != MSGPACK_OBJECT_ARRAY && o->type != MSGPACK_OBJECT_MAP &&
           o->type != MSGPACK_OBJECT_EXT;
}

/* Whether msgpack-c reads buf as exactly one plain task message: [uint
 * task, [items], bool], each item a scalar or (an argument list, always
 * when single is false) an array of scalars. Sets *msg when it does. */
static bool ref_plain(const char *buf, size_t len, msgpack_zone *z, msgpack_object *msg)
{
    size_t off = 0;
    msgpack_zone_clear(z);
    if (msgpack_unpack(buf, len, &off, z, msg) != MSGPACK_UNPACK_SUCCESS || off != len)
        return false;
    const msgpack_object *f = msg->via.array.ptr;
    if (msg->type != MSGPACK_OBJECT_ARRAY || msg->via.array.size != 3 ||
        f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[0].via.u64 > UINT32_MAX ||
        f[1].type != MSGPACK_OBJECT_ARRAY || f[2].type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    for (uint32_t i = 0; i < f[1].via.array.size; i++) {
        const msgpack_object *it = &f[1].via.array.ptr[i];
        if (is_scalar(it) && f[2].via.boolean)
            continue;
        if (it->type != MSGPACK_OBJECT_ARRAY)
            return false;
        for (uint32_t j = 0; j < it->via.array.size; j++)
            if (!is_scalar(&it->via.array.ptr[j]))
                return false;
    }
    return true;
}

/* What every case keeps: a buffer to pack messages in, the reference's
 * zone, and the walk's objects (kept from message to message, as a
 * worker keeps them from chunk to chunk). */
struct fix {
    msgpack_sbuffer sb;
    msgpack_zone z;
    struct pool_plain_objs objs;
};

static void fix_open(struct fix *f)
{
    msgpack_sbuffer_init(&f->sb);
    assert_true(msgpack_zone_init(&f->z, 4096));
    f->objs = (struct pool_plain_objs){NULL, 0};
}

static void fix_close(struct fix *f)
{
    free(f->objs.v);
    msgpack_zone_destroy(&f->z);
    msgpack_sbuffer_destroy(&f->sb);
}

/* Reads buf both ways and compares: the walk accepts exactly what the
 * reference calls plain, and then every item equals msgpack-c's. The
 * walk reads a copy of exactly len bytes on the heap, so that reading
 * past the end is a sanitizer's error. Returns whether it was plain. */
static bool compare_one(struct fix *f, const char *buf, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    unsigned task = 0;
    msgpack_object_array items = {0, NULL};
    bool single = false;
    bool got = pool_taskmsg_read_plain(copy, len, &f->objs, &task, &items, &single);
    msgpack_object ref;
    bool want = ref_plain(copy, len, &f->z, &ref);
    if (got != want)
        fail_msg("read_plain %s a message of %zu bytes that msgpack-c calls %s",
                 got ? "accepted" : "refused", len, want ? "plain" : "not plain");
    if (got) {
        const msgpack_object *f = ref.via.array.ptr;
        assert_int_equal(task, f[0].via.u64);
        assert_int_equal(single, f[2].via.boolean);
        msgpack_object mine = {.type = MSGPACK_OBJECT_ARRAY, .via.array = items};
        if (!msgpack_object_equal(mine, f[1]))
            fail_msg("the items of a message of %zu bytes read otherwise than msgpack-c's", len);
        for (uint32_t i = 0; i < items.size; i++)
            if (items.ptr[i].type == MSGPACK_OBJECT_ARRAY)
                assert_non_null(items.ptr[i].via.array.ptr); /* as msgpack-c's, even empty */
    }
    free(copy);
    return got;
}

/* ---- messages ----------------------------------------------------------- */

/* One scalar of kind k (0..19), every way msgpack-c reads one differently. */
static void pack_scalar(msgpack_packer *pk, unsigned k)
{
    static const char text[300] = "some text";
    switch (k % 20) {
    case 0: msgpack_pack_int(pk, 5); break;
    case 1: msgpack_pack_uint8(pk, 200); break;
    case 2: msgpack_pack_uint16(pk, 60000); break;
    case 3: msgpack_pack_uint32(pk, 4000000000u); break;
    case 4: msgpack_pack_uint64(pk, UINT64_MAX); break;
    case 5: msgpack_pack_int(pk, -3); break;
    case 6: msgpack_pack_fix_int8(pk, -100); break;
    case 7: msgpack_pack_fix_int16(pk, -30000); break;
    case 8: msgpack_pack_fix_int32(pk, 7); break;
    case 9: msgpack_pack_fix_int64(pk, INT64_MIN); break;
    case 10: msgpack_pack_float(pk, 1.5f); break;
    case 11: msgpack_pack_double(pk, -2.25); break;
    case 12: msgpack_pack_nil(pk); break;
    case 13: msgpack_pack_true(pk); break;
    case 14: msgpack_pack_false(pk); break;
    case 15: msgpack_pack_str_with_body(pk, text, 3); break;
    case 16: msgpack_pack_str_with_body(pk, text, 40); break;  /* str 8 */
    case 17: msgpack_pack_str_with_body(pk, text, 300); break; /* str 16 */
    case 18: msgpack_pack_bin_with_body(pk, text, 2); break;
    default: msgpack_pack_int(pk, (int)(rng() % 100000)); break;
    }
}

/* An item of shape s: 0 a scalar, 1 an argument list of 0..4 scalars, 2 a
 * list holding a list (not plain), 3 a map (not plain). */
static void pack_item(msgpack_packer *pk, int s)
{
    if (s == 0) {
        pack_scalar(pk, (unsigned)rng());
    } else if (s == 1) {
        unsigned m = (unsigned)(rng() % 5);
        msgpack_pack_array(pk, m);
        for (unsigned j = 0; j < m; j++)
            pack_scalar(pk, (unsigned)rng());
    } else if (s == 2) {
        msgpack_pack_array(pk, 2);
        pack_scalar(pk, (unsigned)rng());
        msgpack_pack_array(pk, 1);
        msgpack_pack_int(pk, 1);
    } else {
        msgpack_pack_map(pk, 1);
        msgpack_pack_int(pk, 1);
        msgpack_pack_int(pk, 2);
    }
}

/* A message of n items, each of a shape drawn from `shapes` (a bit per
 * shape), and the given single flag. */
static void pack_message(msgpack_sbuffer *sb, unsigned task, unsigned n, unsigned shapes,
                         bool single)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_sbuffer_clear(sb);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint32(&pk, task);
    msgpack_pack_array(&pk, n);
    for (unsigned i = 0; i < n; i++) {
        int s;
        do
            s = (int)(rng() % 4);
        while (!(shapes & (1u << s)));
        pack_item(&pk, s);
    }
    if (single)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
}

/* ---- the cases ------------------------------------------------------------ */

/* A map's message (items scalars, single) and an apply's (one argument
 * list), of every scalar: read as msgpack-c reads them. */
static void plain_messages_read_as_msgpack_reads_them(void **state)
{
    (void)state;
    struct fix f;
    fix_open(&f);
    for (unsigned k = 0; k < 20; k++) { /* a map of one scalar kind, 1..40 items */
        msgpack_packer pk;
        msgpack_packer_init(&pk, &f.sb, msgpack_sbuffer_write);
        msgpack_sbuffer_clear(&f.sb);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, k);
        msgpack_pack_array(&pk, 1 + 2 * k);
        for (unsigned i = 0; i < 1 + 2 * k; i++)
            pack_scalar(&pk, k);
        msgpack_pack_true(&pk);
        assert_true(compare_one(&f, f.sb.data, f.sb.size));
    }
    for (int i = 0; i < 200; i++) { /* scalars and argument lists, both flags */
        pack_message(&f.sb, (unsigned)rng(), (unsigned)(rng() % 30), i % 2 ? 0x3 : 0x2, i % 2);
        assert_true(compare_one(&f, f.sb.data, f.sb.size));
    }
    /* The objects grew to fit and are kept: a big message, then small ones. */
    pack_message(&f.sb, 1, 5000, 0x2, false);
    assert_true(compare_one(&f, f.sb.data, f.sb.size));
    assert_true(f.objs.cap >= 5000);
    fix_close(&f);
}

/* What is not plain is refused, for msgpack-c to read: nested lists,
 * maps, a scalar item where an argument list is due, other envelopes. */
static void other_messages_refused(void **state)
{
    (void)state;
    struct fix f;
    fix_open(&f);
    int refused = 0;
    for (int i = 0; i < 200; i++) {
        pack_message(&f.sb, (unsigned)rng(), 1 + (unsigned)(rng() % 10), 0x1 | 0x4 | 0x8, i % 2);
        refused += !compare_one(&f, f.sb.data, f.sb.size);
    }
    assert_true(refused > 150); /* most hold a nested list or a map */
    pack_message(&f.sb, 3, 4, 0x1, false); /* scalars, single false: no argument lists */
    assert_false(compare_one(&f, f.sb.data, f.sb.size));
    static const unsigned char bad[][6] = {
        {0x92, 0x01, 0x90},                   /* two fields */
        {0x94, 0x01, 0x90, 0xc3, 0xc0},       /* four */
        {0x93, 0xff, 0x90, 0xc3},             /* a negative task */
        {0x93, 0x01, 0x90, 0xc0},             /* single nil */
        {0x93, 0x01, 0x90, 0xc3, 0xc3},       /* a byte after the message */
        {0x93, 0x01, 0x91, 0xc7, 0x00, 0x01}, /* an ext item */
    };
    static const size_t bad_len[] = {3, 5, 4, 4, 5, 6};
    for (size_t i = 0; i < sizeof bad_len / sizeof *bad_len; i++)
        assert_false(compare_one(&f, (const char *)bad[i], bad_len[i]));
    fix_close(&f);
}

/* Every truncation of plain messages, and random byte changes: the walk
 * agrees with msgpack-c on each and reads no byte past the end. */
static void truncated_and_changed_messages_agree(void **state)
{
    (void)state;
    struct fix f;
    fix_open(&f);
    long checks = 0;
    for (int i = 0; i < 60; i++) {
        pack_message(&f.sb, (unsigned)rng(), 1 + (unsigned)(rng() % 8), i % 2 ? 0x3 : 0x2, i % 2);
        for (size_t cut = 0; cut < f.sb.size; cut++, checks++)
            assert_false(compare_one(&f, f.sb.data, cut)); /* none is a message */
        for (int v = 0; v < 20; v++, checks++) {
            char *c = malloc(f.sb.size);
            assert_non_null(c);
            memcpy(c, f.sb.data, f.sb.size);
            c[rng() % f.sb.size] = (char)(rng() & 0xff);
            /* A changed byte may claim a huge array: msgpack-c would
             * allocate for it before reading; the walk refuses it first. */
            bool claims = false;
            for (size_t b = 0; b < f.sb.size; b++)
                claims |= (unsigned char)c[b] == 0xdc || (unsigned char)c[b] == 0xdd ||
                          (unsigned char)c[b] == 0xde || (unsigned char)c[b] == 0xdf;
            if (!claims)
                compare_one(&f, c, f.sb.size);
            free(c);
        }
    }
    assert_true(checks > 2000);
    fix_close(&f);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(plain_messages_read_as_msgpack_reads_them),
        CASE(other_messages_refused),
        CASE(truncated_and_changed_messages_agree),
    };
    return test_main(argc, argv, "pool_taskmsg", tests, sizeof tests / sizeof *tests);
}
