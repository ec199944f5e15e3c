/*
 * pool_msg.c: the engine's messages, built and checked.
 *
 * Arguments arrive already packed by the caller (msgpack). The engine never
 * re-encodes them: it checks them once at submit, so that a value a worker
 * could not read is refused where the caller can see the error, and then
 * copies their bytes into task messages as they are. A map's items are
 * located inside their packed array by byte offset, so a chunk is a copy of
 * a slice of the caller's buffer, with a one-byte array header per item.
 *
 * Results come back as one frame per chunk, its body in columns
 * [values, status, times] (pool_internal.h, enum pool_frame_kind): the
 * last part of this file reads a chunk's items out of them.
 */
#include "pool_internal.h"

#include <stdlib.h>
#include <string.h>

/* Walks an unpacked value: every type but ext is allowed. */
static bool msg_value_allowed(const msgpack_object *o, int depth)
{
    if (depth > 64)
        return false;
    switch (o->type) {
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (!msg_value_allowed(&o->via.array.ptr[i], depth + 1))
                return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (!msg_value_allowed(&o->via.map.ptr[i].key, depth + 1) ||
                !msg_value_allowed(&o->via.map.ptr[i].val, depth + 1))
                return false;
        return true;
    case MSGPACK_OBJECT_EXT:
        return false;
    default:
        return true;
    }
}

/* ---- the fast check: a walk over the bytes, no objects built ------------ */

/* Nesting the fast check accepts: far inside msgpack-c's 32 levels and the
 * 64 of msg_value_allowed, so nothing it accepts is refused by either. */
#define MSG_FAST_DEPTH 16
/* Nesting the walk follows to check what containers claim: one past
 * msgpack-c's stack (MSGPACK_EMBED_STACK_SIZE, 32), which refuses a deeper
 * container before allocating for it. */
#define MSG_WALK_DEPTH 33

enum msg_walk {
    MSG_ACCEPT,   /* plainly allowed: no unpack needed */
    MSG_UNSURE,   /* the unpack judges it and names the error */
    MSG_OVERCLAIM /* a container claims more values than bytes are left */
};

/*
 * Walks one value at *off. MSG_ACCEPT when it is plainly allowed: whole
 * within len, no ext (nor the unused 0xc1), at most MSG_FAST_DEPTH
 * containers deep, and an array when want_array; *off then moves past it.
 * MSG_OVERCLAIM when some container, at any depth msgpack-c would reach,
 * claims more values than there are bytes left (each takes one at least):
 * msgpack-c allocates what a header claims before reading a value of it,
 * so such bytes must never reach it (a 4-byte array32 header asks for
 * 96 GiB). MSG_UNSURE otherwise; *off is untouched except on MSG_ACCEPT.
 * So the fast path only ever accepts what the full check (msg_check_one's
 * unpack) accepts, and every other refusal keeps that check's message; it
 * just builds no objects and needs no zone (an unpack per argument or item
 * was most of the submit's own work).
 */
static enum msg_walk msg_walk(const unsigned char *b, size_t len, size_t *off, bool want_array)
{
    size_t o = *off;
    bool unsure = want_array &&
                  (o >= len || !((b[o] >= 0x90 && b[o] <= 0x9f) || b[o] == 0xdc || b[o] == 0xdd));
    uint64_t left[MSG_WALK_DEPTH + 1]; /* values still to walk at each level */
    int top = 0;
    left[0] = 1;
    for (;;) {
        while (left[top] == 0)
            if (top-- == 0) {
                if (unsure)
                    return MSG_UNSURE;
                *off = o;
                return MSG_ACCEPT;
            }
        left[top]--;
        if (o >= len)
            return MSG_UNSURE; /* truncated */
        unsigned t = b[o];
        size_t head = 1;    /* type byte and length field */
        uint64_t body = 0;  /* bytes after the head */
        int lenbytes = 0;   /* a length field of this many bytes follows */
        int kids = 0;       /* 1: array, 2: map (two values per entry) */
        uint64_t n = 0;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
            ;
        else if (t <= 0x8f)
            kids = 2, n = t & 0x0f;
        else if (t <= 0x9f)
            kids = 1, n = t & 0x0f;
        else if (t <= 0xbf)
            body = t & 0x1f;
        else if (t == 0xc4 || t == 0xd9) /* bin 8, str 8 */
            lenbytes = 1;
        else if (t == 0xc5 || t == 0xda)
            lenbytes = 2;
        else if (t == 0xc6 || t == 0xdb)
            lenbytes = 4;
        else if (t == 0xca)
            body = 4;
        else if (t == 0xcb)
            body = 8;
        else if (t >= 0xcc && t <= 0xd3) /* uint, int 8..64 */
            body = 1u << (t & 0x03);
        else if (t == 0xdc || t == 0xdd)
            kids = 1, lenbytes = t == 0xdc ? 2 : 4;
        else if (t == 0xde || t == 0xdf)
            kids = 2, lenbytes = t == 0xde ? 2 : 4;
        else if (t >= 0xc7 && t <= 0xc9) /* ext 8..32: not allowed, walked past */
            unsure = true, lenbytes = 1 << (t - 0xc7), head = 1;
        else if (t >= 0xd4 && t <= 0xd8) /* fixext 1..16: the same */
            unsure = true, body = 1 + (1u << (t - 0xd4));
        else
            return MSG_UNSURE; /* 0xc1, never used */
        head += (size_t)lenbytes;
        if (len - o < head)
            return MSG_UNSURE;
        if (lenbytes > 0) {
            uint64_t v = pool_be_read(b + o + 1, (size_t)lenbytes);
            if (kids)
                n = v;
            else
                body = v + (t >= 0xc7 && t <= 0xc9); /* an ext's type byte */
        }
        o += head;
        if (len - o < body)
            return MSG_UNSURE;
        o += (size_t)body;
        if (kids && n > 0) {
            if (n * (uint64_t)kids > len - o)
                return MSG_OVERCLAIM;
            if (top == MSG_WALK_DEPTH)
                return MSG_UNSURE; /* msgpack-c refuses it before allocating */
            unsure |= top == MSG_FAST_DEPTH;
            left[++top] = n * (uint64_t)kids;
        }
    }
}

/*
 * Unpacks one value at *off into `zone` and checks it. The caller's zone is
 * cleared and reused from value to value: a map of 20 000 items would
 * otherwise allocate and free 20 000 zones (msgpack_unpack_next makes a
 * fresh one per call), which is most of map_async's submit time.
 */
static int msg_check_one(const char *buf, size_t len, size_t *off, bool want_array,
                         const char *what_, size_t index, msgpack_zone *zone)
{
    /* What to call the value in an error: "item 7", or `what_` alone. The
     * name is built only when there is an error to report. */
    char what[80];
#define MSG_NAME() (index == SIZE_MAX ? snprintf(what, sizeof what, "%s", what_) \
                                      : snprintf(what, sizeof what, "%s %zu", what_, index))
    enum msg_walk w = msg_walk((const unsigned char *)buf, len, off, want_array);
    if (w == MSG_ACCEPT)
        return POOL_OK;
    if (w == MSG_OVERCLAIM && MSG_NAME() >= 0)
        return pool_seterr(POOL_EINVAL, "%s: not a serialized value (an array or map claims "
                           "more values than there are bytes: truncated or malformed)", what);
    msgpack_object o;
    msgpack_zone_clear(zone);
    msgpack_unpack_return ur = msgpack_unpack(buf, len, off, zone, &o);
    if (ur != MSGPACK_UNPACK_SUCCESS && ur != MSGPACK_UNPACK_EXTRA_BYTES && MSG_NAME() >= 0)
        return pool_seterr(POOL_EINVAL, "%s: not a serialized value (%s)", what,
                           ur == MSGPACK_UNPACK_CONTINUE ? "truncated"
                           : ur == MSGPACK_UNPACK_NOMEM_ERROR
                               ? "nested deeper than msgpack-c's 32 levels, or out of memory"
                               : "malformed msgpack");
    if (!msg_value_allowed(&o, 0) && MSG_NAME() >= 0)
        return pool_seterr(POOL_EINVAL, "%s: holds a value that cannot cross processes "
                           "(an ext type, or nesting deeper than 64); allowed: nil, boolean, "
                           "integer, float, string, array, map", what);
    if (want_array && o.type != MSGPACK_OBJECT_ARRAY && MSG_NAME() >= 0)
        return pool_seterr(POOL_EINVAL, "%s: must be an array (the positional arguments)", what);
    return POOL_OK;
#undef MSG_NAME
}

/* The size of a value whose first byte gives it whole (a number, nil, a
 * boolean), or 0: everything else needs the full check. */
static inline size_t msg_scalar_size(unsigned t)
{
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return 1;
    if (t >= 0xcc && t <= 0xd3) /* uint, int 8..64 */
        return 1 + (1u << (t & 0x03));
    return t == 0xca ? 5 : t == 0xcb ? 9 : 0;
}

/* Whether buf is exactly a fixarray of numbers, nil or booleans (every
 * apply of numbers passes such arguments): plainly allowed, checked in a
 * few instructions a value where msg_walk's general loop took 150 for two
 * bytes. */
static bool msg_small_scalar_array(const unsigned char *b, size_t len)
{
    if (b[0] < 0x90 || b[0] > 0x9f)
        return false;
    size_t o = 1;
    for (unsigned i = b[0] & 0x0fu; i > 0; i--) {
        size_t k = o < len ? msg_scalar_size(b[o]) : 0; /* no byte is read at len or past */
        if (k == 0)
            return false;
        o += k;
    }
    return o == len; /* a value cut short left o past len */
}

int pool_msg_check_value(const char *buf, size_t len, bool want_array, const char *what)
{
    if (buf == NULL || len == 0)
        return pool_seterr(POOL_EINVAL, "%s: empty buffer (pack an array, even an empty one)", what);
    if (want_array && msg_small_scalar_array((const unsigned char *)buf, len))
        return POOL_OK;
    size_t off = 0;
    if (msg_walk((const unsigned char *)buf, len, &off, want_array) == MSG_ACCEPT && off == len)
        return POOL_OK; /* no zone needed */
    off = 0;
    /* Sized to the value (about 6 object bytes per packed byte; it grows if
     * need be), capped at msgpack-c's default: small arguments, every
     * apply's, then stay in malloc's per-thread cache instead of taking an
     * 8 KiB block from the arena, under its lock, twice per call. */
    size_t guess = pool_zone_guess(len);
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, guess < MSGPACK_ZONE_CHUNK_SIZE ? guess : MSGPACK_ZONE_CHUNK_SIZE))
        return pool_seterr(POOL_ESYS, "%s: out of memory checking the value", what);
    int rc = msg_check_one(buf, len, &off, want_array, what, SIZE_MAX, &zone);
    msgpack_zone_destroy(&zone);
    if (rc == POOL_OK && off != len)
        rc = pool_seterr(POOL_EINVAL, "%s: %zu bytes after the value", what, len - off);
    return rc;
}

/* The array's header: its length into *n and the offset of its first
 * element into *off, or POOL_EINVAL. */
static int msg_array_head(const char *buf, size_t len, size_t *n, size_t *off)
{
    if (buf == NULL || len == 0)
        return pool_seterr(POOL_EINVAL, "items: empty buffer (pack an array, even an empty one)");
    const unsigned char *b = (const unsigned char *)buf;
    if (b[0] >= 0x90 && b[0] <= 0x9f) {
        *n = b[0] & 0x0f;
        *off = 1;
    } else if (b[0] == 0xdc && len >= 3) {
        *n = (size_t)b[1] << 8 | b[2];
        *off = 3;
    } else if (b[0] == 0xdd && len >= 5) {
        *n = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4];
        *off = 5;
    } else {
        return pool_seterr(POOL_EINVAL, "items: must be a packed array of items");
    }
    if (*n > len - *off) /* each item takes a byte at least: refuse before allocating for n */
        return pool_seterr(POOL_EINVAL, "items: the array claims %zu items in %zu bytes "
                           "(truncated or malformed)", *n, len - *off);
    return POOL_OK;
}

int pool_msg_array_count(const char *buf, size_t len, size_t *count)
{
    size_t n = 0, off;
    int rc = msg_array_head(buf, len, &n, &off);
    *count = rc == POOL_OK ? n : 0;
    return rc;
}

int pool_msg_split_array(const char *buf, size_t len, size_t stride, size_t **starts,
                         size_t *count, bool elements_are_arrays)
{
    *starts = NULL;
    *count = 0;
    size_t n, off;
    int rc = msg_array_head(buf, len, &n, &off);
    if (rc != POOL_OK)
        return rc;
    if (stride == 0)
        stride = 1;
    const unsigned char *b = (const unsigned char *)buf;
    /* One offset per stride items: a map keeps its chunks' (a few dozen),
     * not its items' (160 KB of first-touched memory for 20 000). */
    size_t *s = malloc((n ? (n - 1) / stride + 1 : 1) * sizeof *s);
    if (s == NULL)
        return pool_seterr(POOL_ESYS, "items: out of memory for %zu items", n);
    msgpack_zone zone;
    msgpack_zone_init(&zone, MSGPACK_ZONE_CHUNK_SIZE);
    for (size_t i = 0, next = 0, m = 0; i < n; i++) {
        if (i == next) {
            s[m++] = off;
            next += stride;
        }
        /* The commonest item, a number on its own (map's), in one step: the
         * full check's call cost a map of trivial items half its parent's
         * work (callgrind). */
        size_t k = !elements_are_arrays && off < len ? msg_scalar_size(b[off]) : 0;
        if (k > 0 && len - off >= k) {
            off += k;
            continue;
        }
        rc = msg_check_one(buf, len, &off, elements_are_arrays, "item", i, &zone);
        if (rc != POOL_OK) {
            msgpack_zone_destroy(&zone);
            free(s);
            return rc;
        }
    }
    msgpack_zone_destroy(&zone);
    if (off != len) {
        free(s);
        return pool_seterr(POOL_EINVAL, "items: %zu bytes after the array", len - off);
    }
    *starts = s;
    *count = n;
    return POOL_OK;
}

/* A packer's output straight into a message body sized beforehand. */
struct msg_fill {
    char *at;
};

static int msg_fill_write(void *data, const char *buf, size_t len)
{
    struct msg_fill *f = data;
    memcpy(f->at, buf, len);
    f->at += len;
    return 0;
}

/*
 * One allocation per message: the body is packed in place, in a block sized
 * from an upper bound (the [task, [...], single] heads take at most
 * 1 + 5 + 5 + 1 bytes), not through a growing sbuffer. The sbuffer cost a
 * malloc and a free of 8 KiB (past malloc's per-thread cache, so each took
 * its arena's lock) per message, on the submitting thread. The items are
 * one slice of the caller's buffer: a map's items travel as they are, with
 * the `single` flag, not each wrapped in an array of one (that cost the
 * parent a pack per item and the worker an unpacked object per item).
 */
pool_taskmsg *pool_taskmsg_new(uint64_t job, uint32_t chunk, uint32_t first, unsigned task,
                               const char *buf, size_t start, size_t count, size_t end,
                               bool single)
{
    size_t payload = count > 0 ? end - start : 0;
    size_t bound = 12 + payload;
    pool_taskmsg *m = malloc(sizeof *m + bound);
    if (m == NULL)
        return NULL;
    struct msg_fill f = {m->data};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &f, msg_fill_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_unsigned_int(&pk, task);
    msgpack_pack_array(&pk, count);
    if (count > 0)
        msg_fill_write(&f, buf + start, payload);
    if (single)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    size_t len = (size_t)(f.at - m->data); /* <= bound */
    m->next = NULL;
    m->hdr = (struct pool_wire_hdr){
        .kind = POOL_WIRE_FIRST, .total = (uint32_t)len, .job = job, .chunk = chunk,
        .first = first,
    };
    m->len = len;
    return m;
}

void pool_taskmsg_free_list(pool_taskmsg *m)
{
    while (m) {
        pool_taskmsg *next = m->next;
        free(m);
        m = next;
    }
}

/* ---- delivered chunks ---------------------------------------------------- */

void pool_chunk_free(pool_chunk *c)
{
    if (c == NULL)
        return;
    /* zone and raw, when set, live inside c (pool_internal.h) */
    if (c->zone)
        msgpack_zone_destroy(c->zone);
    free(c->errmsg);
    free(c->culprit_msg);
    if (c->home == POOL_CHUNK_HEAP) /* a room is its job's, scratch the handler's */
        free(c);
}

/* The result handler's reading of a RESULT body (pool_internal.h): the
 * columns stay where msgpack-c left them, in the chunk's zone and raw
 * bytes. The status column is counted once here, so that the later walks
 * (pool_record_chunk, the job's delivery, the map's value) skip per-item
 * checks for a chunk without failures. */
bool pool_chunk_read_body(pool_chunk *c, const msgpack_object *body)
{
    if (body->type != MSGPACK_OBJECT_ARRAY || body->via.array.size != 3)
        return false;
    const msgpack_object *col = body->via.array.ptr;
    if (col[0].type != MSGPACK_OBJECT_ARRAY)
        return false;
    uint32_t n = col[0].via.array.size;
    bool untimed = col[2].type == MSGPACK_OBJECT_NIL; /* pool_worker_run_chunk's `timed` */
    if (!untimed && (col[2].type != MSGPACK_OBJECT_BIN || col[2].via.bin.size != 16 * (uint64_t)n))
        return false;
    c->count = n;
    c->values = col[0].via.array.ptr;
    c->times = untimed ? NULL : (const unsigned char *)col[2].via.bin.ptr;
    c->ok = NULL;
    c->nfailed = 0;
    if (col[1].type == MSGPACK_OBJECT_NIL)
        return true;
    if (col[1].type != MSGPACK_OBJECT_BIN || col[1].via.bin.size != n)
        return false;
    c->ok = (const unsigned char *)col[1].via.bin.ptr;
    for (uint32_t i = 0; i < n; i++)
        c->nfailed += c->ok[i] == 0;
    return true;
}

int pool_chunk_item(const pool_chunk *c, uint32_t i, const msgpack_object **value,
                    const char **msg)
{
    *value = NULL;
    *msg = NULL;
    if (c->status != POOL_OK && c->culprit_msg != NULL && i == c->culprit) {
        *msg = c->culprit_msg; /* the item that ran past the time limit */
        return c->culprit_status;
    }
    if (c->status != POOL_OK || c->values == NULL) {
        *msg = c->errmsg ? c->errmsg : "chunk lost";
        return c->status != POOL_OK ? c->status : POOL_EWORKER;
    }
    if (c->ok == NULL || c->ok[i]) {
        *value = &c->values[i];
        return POOL_OK;
    }
    static const char fallback[] = "task failed";
    const msgpack_object *m = &c->values[i];
    /* The worker packs the message NUL-terminated inside the str (see
     * pool_worker.c), so it can be handed out as a C string in place. */
    *msg = m->type == MSGPACK_OBJECT_STR && m->via.str.size > 0 ? m->via.str.ptr : fallback;
    return POOL_ETASK;
}

uint32_t pool_chunk_failed(const pool_chunk *c)
{
    return c->status != POOL_OK || c->values == NULL ? c->count : c->nfailed;
}

double pool_chunk_time(const pool_chunk *c, uint32_t i, bool end)
{
    if (c->times == NULL)
        return 0; /* not timed: the pool neither traces nor keeps a limit */
    /* big-endian, as the worker stored it */
    uint64_t u = pool_be_read(c->times + 16 * (size_t)i + (end ? 8 : 0), 8);
    double t;
    memcpy(&t, &u, sizeof t);
    return t;
}

/*
 * msgpack-c makes a 24-byte object per value, at most one per packed byte.
 * Measured (msgpack_unpack of columnar frames, this machine): a frame of
 * n values that are pairs or small maps uses 3.2 to 8.6 zone bytes per
 * packed byte (7.5 at n = 1, 3.9 at n = 100); plain numbers use 1.2 to 6.6,
 * but their frames no longer need a zone (pool_chunk_from_plain_frame). So
 * 256 + 6 per byte, the size both users chose: it grows if that is short.
 */
size_t pool_zone_guess(size_t len)
{
    return 256 + 6 * len;
}
