/*
 * pool_frame.c: a plain RESULT frame (in the parent) and a plain task
 * message (in a worker), read without msgpack-c.
 *
 * Most frames are plain: a RESULT whose values are all scalars (nil,
 * booleans, numbers, strings, bins), as every apply of a number is. Such a
 * frame is read here by a walk over its bytes, with no zone: msgpack-c's
 * general unpack, a zone's first chunk and its free cost the result
 * handler about 1 100 instructions per frame, most of its work on an
 * apply. Each value is set exactly as msgpack-c's unpack sets it (strings
 * and bins point into the chunk's copy of the frame); anything else (a
 * container among the values, an INITFAIL, a frame not of this shape) is
 * left to the general unpack (pool_chunk_read_body, pool_msg.c).
 *
 * The chunk, its values and its copy of the frame are one block: the
 * result handler's scratch buffer while the chunk's job is not yet found,
 * then (pool_chunk_settle) room inside the job (an apply's result) or a
 * block of its own, with a map's values in the map's final array. The
 * frame's layout: pool_internal.h, enum pool_frame_kind.
 *
 * A task message [task, items, single] is plain when each item is a
 * scalar or an array of scalars (a map's numbers, an apply's arguments):
 * the worker reads it here into objects it keeps from chunk to chunk, with
 * no zone, where msgpack-c's unpack cost about 80 instructions an item
 * (callgrind, a map of squares); anything else is left to that
 * unpack (pool_worker_run_chunk).
 */
#include "pool_internal.h"

#include <stdlib.h>
#include <string.h>

/* A cursor over bytes; every read checks its bound. */
struct frame_cur {
    const unsigned char *b;
    size_t len, off;
};

/* A big-endian field of k bytes at the cursor, after a type byte. */
static inline bool cur_field(struct frame_cur *k, size_t bytes, uint64_t *v)
{
    if (k->len - k->off - 1 < bytes)
        return false;
    *v = pool_be_read(k->b + k->off + 1, bytes);
    k->off += 1 + bytes;
    return true;
}

/* An unsigned integer: positive fixint or uint 8..64. */
static inline bool cur_uint(struct frame_cur *k, uint64_t *v)
{
    if (k->off >= k->len)
        return false;
    unsigned t = k->b[k->off];
    if (t <= 0x7f) {
        *v = t;
        k->off++;
        return true;
    }
    return t >= 0xcc && t <= 0xcf && cur_field(k, (size_t)1 << (t - 0xcc), v);
}

/* A header: fixarray (or with bin, bin 8..32) and its count or size. */
static inline bool cur_head(struct frame_cur *k, bool bin, uint64_t *n)
{
    if (k->off >= k->len)
        return false;
    unsigned t = k->b[k->off];
    if (!bin && t >= 0x90 && t <= 0x9f) {
        *n = t & 0x0f;
        k->off++;
        return true;
    }
    if (!bin && (t == 0xdc || t == 0xdd))
        return cur_field(k, t == 0xdc ? 2 : 4, n);
    return bin && t >= 0xc4 && t <= 0xc6 && cur_field(k, (size_t)1 << (t - 0xc4), n);
}

/* Raw bytes of size n at the cursor (a str's or a bin's): *o points there. */
static inline bool cur_bytes(struct frame_cur *k, uint64_t n, const char **at)
{
    if (k->len - k->off < n)
        return false;
    *at = (const char *)k->b + k->off;
    k->off += (size_t)n;
    return true;
}

/* A signed integer of `bytes` bytes as msgpack-c sets it: positive ones
 * are POSITIVE_INTEGER. */
static inline void obj_signed(msgpack_object *o, uint64_t u, size_t bytes)
{
    int64_t v = bytes == 8 ? (int64_t)u : (int64_t)(u << (64 - 8 * bytes)) >> (64 - 8 * bytes);
    o->type = v >= 0 ? MSGPACK_OBJECT_POSITIVE_INTEGER : MSGPACK_OBJECT_NEGATIVE_INTEGER;
    if (v >= 0)
        o->via.u64 = (uint64_t)v;
    else
        o->via.i64 = v;
}

/* Floats: msgpack-c widens a float32 to via.f64 and says FLOAT32. */
static void obj_float(msgpack_object *o, uint64_t u, bool f32)
{
    o->type = f32 ? MSGPACK_OBJECT_FLOAT32 : MSGPACK_OBJECT_FLOAT64;
    if (f32) {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, sizeof f);
        o->via.f64 = f;
    } else {
        memcpy(&o->via.f64, &u, sizeof o->via.f64);
    }
}

/* One scalar value into *o, as msgpack-c's unpack sets it; false for a
 * container, an ext, 0xc1, or bytes that end too soon. */
static inline bool cur_scalar(struct frame_cur *k, msgpack_object *o)
{
    memset(o, 0, sizeof *o);
    if (k->off >= k->len)
        return false;
    unsigned t = k->b[k->off];
    uint64_t u = 0;
    if (t <= 0x7f || (t >= 0xcc && t <= 0xcf)) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        return cur_uint(k, &o->via.u64);
    }
    if (t >= 0xe0 || (t >= 0xd0 && t <= 0xd3)) {
        size_t bytes = t >= 0xe0 ? 1 : (size_t)1 << (t - 0xd0);
        if (t >= 0xe0)
            u = t, k->off++;
        else if (!cur_field(k, bytes, &u))
            return false;
        obj_signed(o, u, bytes);
        return true;
    }
    if (t == 0xca || t == 0xcb) {
        if (!cur_field(k, t == 0xca ? 4 : 8, &u))
            return false;
        obj_float(o, u, t == 0xca);
        return true;
    }
    if (t == 0xc0 || t == 0xc2 || t == 0xc3) {
        o->type = t == 0xc0 ? MSGPACK_OBJECT_NIL : MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = t == 0xc3;
        k->off++;
        return true;
    }
    if (t >= 0xc4 && t <= 0xc6) {
        o->type = MSGPACK_OBJECT_BIN;
        return cur_head(k, true, &u) && u <= UINT32_MAX &&
               (o->via.bin.size = (uint32_t)u, cur_bytes(k, u, &o->via.bin.ptr));
    }
    if ((t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb)) {
        if (t <= 0xbf)
            u = t & 0x1f, k->off++;
        else if (!cur_field(k, (size_t)1 << (t - 0xd9), &u))
            return false;
        o->type = MSGPACK_OBJECT_STR;
        o->via.str.size = (uint32_t)u;
        return u <= UINT32_MAX && cur_bytes(k, u, &o->via.str.ptr);
    }
    return false; /* arrays, maps, ext, 0xc1: the general unpack */
}

/* A value as cur_scalar reads it, an unsigned integer (a map's usual
 * value or item) inline: cur_scalar's general path cost 70 instructions a
 * value (callgrind, a map of squares). */
static inline bool cur_value(struct frame_cur *k, msgpack_object *o)
{
    unsigned t = k->off < k->len ? k->b[k->off] : 0xc1;
    if (t <= 0x7f || (t >= 0xcc && t <= 0xcf)) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        return cur_uint(k, &o->via.u64);
    }
    return cur_scalar(k, o);
}

/* The envelope up to the values: [1, job, chunk, first, [[ (n values... */
static bool frame_head(struct frame_cur *k, uint64_t *job, uint64_t *chunk, uint64_t *first,
                       uint64_t *n)
{
    uint64_t kind = 0;
    if (k->len < 2 || k->b[0] != 0x95)
        return false;
    k->off = 1;
    return cur_uint(k, &kind) && kind == POOL_FRAME_RESULT && cur_uint(k, job) &&
           cur_uint(k, chunk) && *chunk <= UINT32_MAX && cur_uint(k, first) &&
           *first <= UINT32_MAX && k->off < k->len && k->b[k->off++] == 0x93 &&
           cur_head(k, false, n) && *n <= k->len - k->off;
}

/* The values, then the status and times columns (times nil when the
 * worker was not timed), to the frame's end. */
static bool frame_columns(struct frame_cur *k, pool_chunk *c, uint32_t n)
{
    msgpack_object *v = c->values;
    for (uint32_t i = 0; i < n; i++)
        if (!cur_value(k, &v[i]))
            return false;
    uint64_t size = 0;
    const char *at = NULL;
    c->ok = NULL;
    if (k->off < k->len && k->b[k->off] == 0xc0) {
        k->off++;
    } else {
        if (!cur_head(k, true, &size) || size != n || !cur_bytes(k, size, &at))
            return false;
        c->ok = (const unsigned char *)at;
        for (uint32_t i = 0; i < n; i++)
            c->nfailed += c->ok[i] == 0;
    }
    c->times = NULL;
    if (k->off < k->len && k->b[k->off] == 0xc0) { /* not timed (pool_worker_run_chunk) */
        k->off++;
        return k->off == k->len;
    }
    if (!cur_head(k, true, &size) || size != 16 * (uint64_t)n || !cur_bytes(k, size, &at))
        return false;
    c->times = (const unsigned char *)at;
    return k->off == k->len;
}

/* The scratch buffer holding `block` bytes, grown to it when it is short
 * and block is within its max: false when it cannot (the chunk then gets a
 * block of its own). */
static bool scratch_fits(struct pool_frame_scratch *s, size_t block)
{
    if (s == NULL || block > s->max)
        return false;
    if (block <= s->size)
        return true;
    size_t size = s->size * 2 > block ? s->size * 2 : block;
    size = size < s->max ? size : s->max;
    void *buf = realloc(s->buf, size); /* no chunk lives in it between frames */
    if (buf == NULL)
        return false;
    s->buf = buf;
    s->size = size;
    return true;
}

pool_chunk *pool_chunk_from_plain_frame(const char *data, uint32_t len, uint64_t *job,
                                        struct pool_frame_scratch *scratch)
{
    struct frame_cur k = {(const unsigned char *)data, len, 0};
    uint64_t chunk = 0, first = 0, n = 0; /* set by frame_head (zero: for the compiler) */
    if (!frame_head(&k, job, &chunk, &first, &n))
        return NULL;
    /* One block: the chunk, n values (aligned as the chunk is), its bytes. */
    size_t vals_at = (sizeof(pool_chunk) + _Alignof(msgpack_object) - 1) /
                     _Alignof(msgpack_object) * _Alignof(msgpack_object);
    size_t raw_at = vals_at + (size_t)n * sizeof(msgpack_object);
    size_t block = raw_at + len;
    bool in_scratch = scratch_fits(scratch, block);
    pool_chunk *c = in_scratch ? scratch->buf : malloc(block);
    if (c == NULL)
        pool_panic("pool_chunk_from_plain_frame: out of memory");
    memset(c, 0, sizeof *c);
    c->home = in_scratch ? POOL_CHUNK_SCRATCH : POOL_CHUNK_HEAP;
    c->block = in_scratch ? (uint32_t)block : 0; /* only a scratch chunk moves */
    c->raw = (char *)c + raw_at;
    memcpy(c->raw, data, len);
    c->values = (msgpack_object *)(void *)((char *)c + vals_at);
    c->index = (uint32_t)chunk;
    c->first = (uint32_t)first;
    c->count = (uint32_t)n;
    c->trace_first = SIZE_MAX;
    k.b = (const unsigned char *)c->raw; /* the values point into the copy */
    if (!frame_columns(&k, c, (uint32_t)n)) {
        if (!in_scratch)
            free(c);
        return NULL;
    }
    return c;
}

/* What pointed into the old copy of the frame points at the same offset in
 * the new. */
static const char *moved(const char *ptr, const char *from, char *to)
{
    return to + (ptr - from);
}

/* Whether anything of the chunk points into its copy of the frame: a
 * status or times column, a string, a bin. */
static bool refers_to_raw(const pool_chunk *c)
{
    if (c->ok || c->times)
        return true;
    for (uint32_t i = 0; i < c->count; i++)
        if (c->values[i].type == MSGPACK_OBJECT_STR || c->values[i].type == MSGPACK_OBJECT_BIN)
            return true;
    return false;
}

/*
 * The block in scratch is [chunk][values][raw]. Settled, the chunk goes
 * into room or a new block; the values after it as they were, or into
 * `values` (a map's final array: the map then copies nothing when its
 * last chunk is in); the raw after them, only when something points into
 * it. A map's chunk of numbers, all ok, untimed, keeps its chunk alone:
 * about 300 bytes where its block was 25 KB for 834 values.
 */
pool_chunk *pool_chunk_settle(pool_chunk *c, void *room, msgpack_object *values)
{
    if (c->home != POOL_CHUNK_SCRATCH)
        return c;
    size_t vals_at = (size_t)((char *)c->values - (char *)c);
    size_t raw_at = (size_t)(c->raw - (char *)c);
    size_t vals_size = values ? raw_at - vals_at : 0; /* the bytes the block drops */
    size_t raw_size = refers_to_raw(c) ? c->block - raw_at : 0;
    pool_chunk *d = room ? room : malloc(raw_at - vals_size + raw_size);
    if (d == NULL)
        pool_panic("pool_chunk_settle: out of memory");
    memcpy(d, c, vals_at);
    char *raw = raw_size ? (char *)d + raw_at - vals_size : NULL;
    if (raw_size)
        memcpy(raw, c->raw, raw_size);
    d->values = values ? values : (msgpack_object *)(void *)((char *)d + vals_at);
    memcpy(d->values, c->values, (size_t)c->count * sizeof *d->values);
    d->home = room ? POOL_CHUNK_ROOM : POOL_CHUNK_HEAP;
    d->block = 0;
    d->raw = raw;
    if (raw == NULL)
        return d; /* nothing pointed into it: nothing to move */
    if (c->times)
        d->times = (const unsigned char *)moved((const char *)c->times, c->raw, raw);
    if (c->ok)
        d->ok = (const unsigned char *)moved((const char *)c->ok, c->raw, raw);
    for (uint32_t i = 0; i < d->count; i++) /* strings and bins point into raw */
        if (d->values[i].type == MSGPACK_OBJECT_STR)
            d->values[i].via.str.ptr = moved(c->values[i].via.str.ptr, c->raw, raw);
        else if (d->values[i].type == MSGPACK_OBJECT_BIN)
            d->values[i].via.bin.ptr = moved(c->values[i].via.bin.ptr, c->raw, raw);
    return d;
}

/* ---- a plain task message, in the worker ------------------------------- */

/* Room for `need` objects in the worker's array (kept between chunks). */
static bool objs_room(struct pool_plain_objs *a, size_t need)
{
    if (need <= a->cap && a->v != NULL)
        return true;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < need)
        cap *= 2;
    msgpack_object *v = realloc(a->v, cap * sizeof *v);
    if (v == NULL)
        return false;
    a->v = v;
    a->cap = cap;
    return true;
}

/* One item at the cursor into a->v[i]: a scalar, or an array of scalars
 * whose elements go after the items (at *used; the item keeps their
 * index until the array stops moving, pool_taskmsg_read_plain; *arrays
 * counts such items). */
static inline bool plain_item(struct frame_cur *k, struct pool_plain_objs *a, size_t i,
                              size_t *used, size_t *arrays)
{
    unsigned t = k->off < k->len ? k->b[k->off] : 0xc1;
    if (!((t >= 0x90 && t <= 0x9f) || t == 0xdc || t == 0xdd))
        return cur_value(k, &a->v[i]);
    uint64_t m = 0;
    if (!cur_head(k, false, &m) || m > k->len - k->off || !objs_room(a, *used + m))
        return false;
    a->v[i] = (msgpack_object){.type = MSGPACK_OBJECT_ARRAY,
                               .via.array = {(uint32_t)m, (msgpack_object *)(uintptr_t)*used}};
    for (uint64_t j = 0; j < m; j++)
        if (!cur_value(k, &a->v[*used + j]))
            return false;
    *used += m;
    ++*arrays;
    return true;
}

bool pool_taskmsg_read_plain(const char *payload, size_t len, struct pool_plain_objs *a,
                             unsigned *task, msgpack_object_array *items, bool *single)
{
    struct frame_cur k = {(const unsigned char *)payload, len, 0};
    uint64_t id = 0, n = 0;
    if (len < 1 || k.b[0] != 0x93)
        return false;
    k.off = 1;
    /* Each item takes a byte at least: n and every array's size are bounded
     * by the message, and so is what objs_room allocates. */
    if (!cur_uint(&k, &id) || id > UINT32_MAX || !cur_head(&k, false, &n) ||
        n > len - k.off || !objs_room(a, n))
        return false;
    size_t used = n, arrays = 0;
    for (size_t i = 0; i < n; i++)
        if (!plain_item(&k, a, i, &used, &arrays))
            return false;
    if (k.off + 1 != len || (k.b[k.off] != 0xc2 && k.b[k.off] != 0xc3))
        return false;
    *single = k.b[k.off] == 0xc3;
    if (!*single && arrays != n)
        return false; /* an item not an argument list: not a message the parent makes */
    /* Indexes into pointers, now that the array has its final place (never
     * NULL, even for an empty array, as msgpack-c's). */
    for (size_t i = 0; i < n && arrays > 0; i++)
        if (a->v[i].type == MSGPACK_OBJECT_ARRAY)
            a->v[i].via.array.ptr = a->v + (uintptr_t)a->v[i].via.array.ptr;
    *task = (unsigned)id;
    *items = (msgpack_object_array){(uint32_t)n, a->v};
    return true;
}
