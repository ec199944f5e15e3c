/*
 * test_pool_msg.c: the submit-time check of packed arguments and items
 * (pool_msg.c), without a pool.
 *
 * pool_msg_check_value and pool_msg_split_array first walk the bytes (the
 * fast check, which builds no objects) and fall back to msgpack-c's unpack
 * for anything the walk does not plainly accept. The fast check must never
 * accept what the unpack refuses: these cases compare both entry points with
 * a reference built on msgpack_unpack alone, over values of every type,
 * nested from 1 to 40 levels, every truncation, and random byte changes.
 */
#include "test_helpers.h"

#include "pool_internal.h"

#include <stdint.h>

/* ---- the reference: msgpack-c's unpack, then the allowed-type walk ------- */

static bool ref_allowed(const msgpack_object *o, int depth)
{
    if (depth > 64)
        return false;
    if (o->type == MSGPACK_OBJECT_EXT)
        return false;
    if (o->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (!ref_allowed(&o->via.array.ptr[i], depth + 1))
                return false;
    if (o->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (!ref_allowed(&o->via.map.ptr[i].key, depth + 1) ||
                !ref_allowed(&o->via.map.ptr[i].val, depth + 1))
                return false;
    return true;
}

/* One value at *off: unpacks, and is allowed (and an array if asked). */
static bool ref_one(const char *buf, size_t len, size_t *off, bool want_array)
{
    msgpack_zone z;
    msgpack_zone_init(&z, 2048);
    msgpack_object o;
    msgpack_unpack_return ur = msgpack_unpack(buf, len, off, &z, &o);
    bool ok = (ur == MSGPACK_UNPACK_SUCCESS || ur == MSGPACK_UNPACK_EXTRA_BYTES) &&
              ref_allowed(&o, 0) && (!want_array || o.type == MSGPACK_OBJECT_ARRAY);
    msgpack_zone_destroy(&z);
    return ok;
}

static bool ref_value(const char *buf, size_t len, bool want_array)
{
    size_t off = 0;
    return buf != NULL && len > 0 && ref_one(buf, len, &off, want_array) && off == len;
}

/* The array's header as pool_msg_split_array reads it, then each item. */
static bool ref_split(const char *buf, size_t len, bool arrays)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t n, off;
    if (len == 0)
        return false;
    if (b[0] >= 0x90 && b[0] <= 0x9f)
        n = b[0] & 0x0f, off = 1;
    else if (b[0] == 0xdc && len >= 3)
        n = (size_t)b[1] << 8 | b[2], off = 3;
    else if (b[0] == 0xdd && len >= 5)
        n = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4], off = 5;
    else
        return false;
    for (size_t i = 0; i < n; i++)
        if (!ref_one(buf, len, &off, arrays))
            return false;
    return off == len;
}

/* ---- values of every type, at random -------------------------------------- */

static void gen_value(msgpack_packer *pk, int depth, int max_depth, bool ext_ok)
{
    static const char text[300] = "the quick brown fox";
    unsigned k = (unsigned)(rng() % (depth < max_depth ? 16 : 12));
    switch (k) {
    case 0: msgpack_pack_nil(pk); break;
    case 1: rng() & 1 ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case 2: msgpack_pack_uint64(pk, rng() >> (rng() % 64)); break;
    case 3: msgpack_pack_int64(pk, -(int64_t)(rng() >> (1 + rng() % 63))); break;
    case 4: msgpack_pack_float(pk, 0.5f); break;
    case 5: msgpack_pack_double(pk, -1.25); break;
    case 6: {
        size_t n = (size_t)(rng() % 3 == 0 ? 40 + rng() % 260 : rng() % 32);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, text, n);
        break;
    }
    case 7: {
        size_t n = (size_t)(rng() % 40);
        msgpack_pack_bin(pk, n);
        msgpack_pack_bin_body(pk, text, n);
        break;
    }
    case 8: case 9: case 10:
        if (ext_ok && rng() % 4 == 0) {
            size_t n = (size_t)(rng() % 20);
            msgpack_pack_ext(pk, n, 5);
            msgpack_pack_ext_body(pk, text, n);
        } else {
            msgpack_pack_int(pk, (int)(rng() % 200) - 100);
        }
        break;
    case 11: msgpack_pack_uint32(pk, 70000); break;
    case 12: case 13: {
        size_t n = (size_t)(rng() % 4 == 0 ? 16 + rng() % 8 : rng() % 4);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            gen_value(pk, depth + 1, max_depth, ext_ok);
        break;
    }
    default: {
        size_t n = (size_t)(rng() % 4 == 0 ? 16 + rng() % 4 : rng() % 3);
        msgpack_pack_map(pk, n);
        for (size_t i = 0; i < 2 * n; i++)
            gen_value(pk, depth + 1, max_depth, ext_ok);
        break;
    }
    }
}

/* Whether no byte of buf could be read as an array or map 16/32 header
 * claiming more elements than bytes follow it. msgpack-c allocates a
 * container's objects before reading them: a changed byte claiming 10^9 of
 * them would make the unpack (the reference, and the full check) ask for
 * gigabytes, which a sanitizer's allocator treats as fatal. Such buffers are
 * left out; every other byte change is compared. */
static bool claims_fit(const char *buf, size_t len)
{
    const unsigned char *b = (const unsigned char *)buf;
    for (size_t i = 0; i < len; i++) {
        if (b[i] < 0xdc || b[i] > 0xdf)
            continue;
        size_t k = b[i] == 0xdc || b[i] == 0xde ? 2 : 4;
        uint64_t n = 0;
        for (size_t j = 1; j <= k; j++)
            n = n << 8 | (i + j < len ? b[i + j] : 0xff);
        if (n > len - i)
            return false;
    }
    return true;
}

/* An accepted split with a stride keeps every stride-th offset of the
 * split of stride 1 (starts, n), and the header alone tells n. */
static void check_strides(const char *buf, size_t len, bool arrays, const size_t *starts,
                          size_t n)
{
    size_t count = 0;
    assert_int_equal(pool_msg_array_count(buf, len, &count), POOL_OK);
    assert_int_equal(count, n);
    for (size_t stride = 2; stride <= 5; stride += 3) {
        size_t *s = NULL, m = 0;
        assert_int_equal(pool_msg_split_array(buf, len, stride, &s, &m, arrays), POOL_OK);
        assert_int_equal(m, n);
        for (size_t j = 0; j * stride < n; j++)
            if (s[j] != starts[j * stride])
                fail_msg("stride %zu: offset %zu is %zu, stride 1 said %zu", stride, j, s[j],
                         starts[j * stride]);
        free(s);
    }
}

/* Compares both entry points with the reference on buf, whole, on every
 * truncation, and on a few random byte changes; returns the checks made. */
static long compare_all(const char *buf, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    long checks = 0;
    for (int variant = 0; variant < 8; variant++) {
        memcpy(copy, buf, len);
        if (variant > 0 && len > 0) /* 1..7: one byte changed at random */
            copy[rng() % len] = (char)(rng() & 0xff);
        for (size_t cut = len; cut + 1 > 0; cut--) {
            for (int want = 0; want < 2 && claims_fit(copy, cut); want++) {
                bool got = pool_msg_check_value(copy, cut, want, "test") == POOL_OK;
                if (got != ref_value(copy, cut, want))
                    fail_msg("check_value(len %zu of %zu, want_array %d, variant %d): %s, "
                             "the unpack says %s", cut, len, want, variant,
                             got ? "accepted" : "refused", got ? "refused" : "accepted");
                size_t *starts, n;
                got = pool_msg_split_array(copy, cut, 1, &starts, &n, want) == POOL_OK;
                if (got)
                    check_strides(copy, cut, want, starts, n);
                if (got)
                    free(starts);
                if (got != ref_split(copy, cut, want))
                    fail_msg("split_array(len %zu of %zu, arrays %d, variant %d): %s",
                             cut, len, want, variant, got ? "accepted" : "refused");
                checks += 2;
            }
            if (cut == 0 || (variant > 0 && len - cut > 16))
                break; /* truncations: all for the value itself, a few per change */
            if (len - cut > 48 && cut > 8)
                cut -= cut > 16 ? 7 : 0; /* far from the end, every eighth */
        }
    }
    free(copy);
    return checks;
}

static void fast_check_agrees_with_unpack(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    long checks = 0, accepted = 0;
    for (int i = 0; i < 300; i++) {
        msgpack_sbuffer_clear(&sb);
        size_t n = (size_t)(rng() % 5);
        msgpack_pack_array(&pk, n);
        for (size_t k = 0; k < n; k++)
            gen_value(&pk, 1, 2 + (int)(rng() % 6), i % 3 == 0);
        accepted += pool_msg_check_value(sb.data, sb.size, true, "test") == POOL_OK;
        checks += compare_all(sb.data, sb.size);
    }
    /* Both sides were exercised: most values are allowed, some are not. */
    assert_true(accepted > 150 && accepted < 300);
    assert_true(checks > 5000);
    msgpack_sbuffer_destroy(&sb);
}

/* Arrays nested 1..40 deep, and maps: the fast check stops at 16 levels,
 * msgpack-c at 32; the answers must still be the unpack's. */
static void fast_check_nesting_agrees(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int depth = 1; depth <= 40; depth++)
        for (int kind = 0; kind < 3; kind++) {
            msgpack_sbuffer_clear(&sb);
            for (int d = 0; d < depth; d++) {
                if (kind == 1 && d % 2 == 1) {
                    msgpack_pack_map(&pk, 1);
                    msgpack_pack_int(&pk, d);
                } else {
                    msgpack_pack_array(&pk, kind == 2 ? 2 : 1);
                    if (kind == 2)
                        msgpack_pack_nil(&pk);
                }
            }
            msgpack_pack_int(&pk, 7);
            bool want = pool_msg_check_value(sb.data, sb.size, true, "test") == POOL_OK;
            if (want != ref_value(sb.data, sb.size, true))
                fail_msg("depth %d kind %d: check_value %s", depth, kind,
                         want ? "accepted" : "refused");
            compare_all(sb.data, sb.size);
        }
    msgpack_sbuffer_destroy(&sb);
}

/* Every first byte of a value (all 256), inside an argument array, then
 * fillers that a misread length or type would swallow or misparse. */
static void fast_check_every_type_byte_agrees(void **state)
{
    (void)state;
    char buf[80];
    for (int filler = 0; filler < 4; filler++)
        for (int t = 0; t < 256; t++) {
            buf[0] = (char)0x91;
            buf[1] = (char)t;
            for (size_t i = 2; i < sizeof buf; i++)
                buf[i] = (char)(filler == 0 ? 0x00 : filler == 1 ? 0x01 : filler == 2 ? 0xc0
                                                                    : (int)(rng() & 0xff));
            compare_all(buf, sizeof buf); /* and every truncation: the value just fits */
        }
}

/* A header that claims more values than the bytes can hold is refused by
 * name before msgpack-c sees it: msgpack-c allocates what a header claims
 * (an array32 of 2^32-1 values: 96 GiB) before reading one. At any depth
 * msgpack-c would reach, in arrays and maps, and an items array's own
 * count; a claim that just fits is not refused for it. */
static void overclaiming_headers_refused_before_unpack(void **state)
{
    (void)state;
    static const unsigned char arr32[] = {0x91, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const unsigned char map32[] = {0x91, 0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01, 0x02};
    static const unsigned char arr16[] = {0x91, 0xdc, 0x00, 0x09, 0x01, 0x02, 0x03};
    unsigned char deep[40]; /* 20 levels of one-element arrays, then the claim */
    size_t k = 0;
    while (k < 20)
        deep[k++] = 0x91;
    deep[k++] = 0xdd;
    for (int i = 0; i < 4; i++)
        deep[k++] = 0xff;
    deep[k++] = 0x00;
    const struct {
        const unsigned char *b;
        size_t len;
    } bad[] = {{arr32, sizeof arr32}, {map32, sizeof map32}, {arr16, sizeof arr16}, {deep, k}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(pool_msg_check_value((const char *)bad[i].b, bad[i].len, true, "args"),
                         POOL_EINVAL);
        assert_contains(pool_last_error(), "args: not a serialized value");
        assert_contains(pool_last_error(), "claims more values than there are bytes");
        size_t *starts, n; /* the same bytes as the single item of a map's items */
        assert_int_equal(pool_msg_split_array((const char *)bad[i].b, bad[i].len, 1, &starts, &n,
                                              true),
                         POOL_EINVAL);
        assert_contains(pool_last_error(), "item 0: not a serialized value");
    }
    static const unsigned char items[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x91, 0x01};
    size_t *starts, n;
    assert_int_equal(pool_msg_split_array((const char *)items, sizeof items, 1, &starts, &n, true),
                     POOL_EINVAL);
    assert_contains(pool_last_error(), "items: the array claims 4294967295 items in 2 bytes");
    assert_int_equal(pool_msg_array_count((const char *)items, sizeof items, &n), POOL_EINVAL);
    assert_contains(pool_last_error(), "items: the array claims 4294967295 items in 2 bytes");
    /* Claims that just fit: three values in three bytes, a map's two per entry. */
    static const unsigned char fits[] = {0x92, 0xdc, 0x00, 0x03, 0x01, 0x02, 0x03,
                                         0xde, 0x00, 0x01, 0x01, 0x02};
    assert_int_equal(pool_msg_check_value((const char *)fits, sizeof fits, true, "args"), POOL_OK);
    static const unsigned char items_fit[] = {0x92, 0x91, 0x01, 0x90};
    assert_int_equal(pool_msg_split_array((const char *)items_fit, sizeof items_fit, 1, &starts, &n,
                                          true),
                     POOL_OK);
    assert_int_equal(n, 2);
    free(starts);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(fast_check_agrees_with_unpack),
        CASE(fast_check_nesting_agrees),
        CASE(fast_check_every_type_byte_agrees),
        CASE(overclaiming_headers_refused_before_unpack),
    };
    return test_main(argc, argv, "pool_msg", tests, sizeof tests / sizeof *tests);
}
