/*
 * lua_values.c: Lua values <-> MessagePack (see lua_values.h for the type
 * mapping and the array-or-map rule).
 *
 * Packing walks the Lua value recursively. Alongside it keeps the path from
 * the root to the value being packed ("args[2].list[3]"), because "cannot
 * serialize a function" alone leaves a scenario author searching a whole
 * argument list; the path costs an append and a truncate per table entry.
 *
 * A table is scanned twice: once to count its keys and decide array or map
 * (msgpack wants the size before the elements), once to pack. The first pass
 * does not use the # operator: with holes it may return any border, and the
 * rule must not depend on how Lua happened to lay out the table.
 *
 * On failure the public functions reset the Lua stack to where it was, so
 * the recursion can return early from inside lua_next loops without popping.
 */
#include "lua_values.h"

#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* One packing walk. The path is a display aid: segments that do not fit
 * are left out, and the message says so with "...". 192 bytes keeps the
 * longest message within a 256-byte err. */
typedef struct packwalk {
    lua_State *L;
    msgpack_packer *pk;
    char *err;
    size_t errlen;
    char path[192];
    size_t pathlen; /* strlen(path) */
    int dropped;    /* segments left out, all below the ones shown */
} packwalk;

static int __attribute__((format(printf, 2, 3))) fail(packwalk *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < w->errlen)
        snprintf(w->err + n, w->errlen - (size_t)n, " (at %s%s)", w->path,
                 w->dropped ? "..." : "");
    return -1;
}

/* Appends a segment, whole or not at all; once one is left out, so are all
 * below it. Returns what path_pop needs: the old length, or SIZE_MAX. */
static size_t __attribute__((format(printf, 2, 3))) path_push(packwalk *w, const char *fmt, ...)
{
    size_t old = w->pathlen, room = sizeof w->path - old;
    int n = -1;
    if (w->dropped == 0) {
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(w->path + old, room, fmt, ap);
        va_end(ap);
    }
    if (n < 0 || (size_t)n >= room) {
        w->path[old] = '\0';
        w->dropped++;
        return SIZE_MAX;
    }
    w->pathlen = old + (size_t)n;
    return old;
}

static void path_pop(packwalk *w, size_t old)
{
    if (old == SIZE_MAX)
        w->dropped--;
    else
        w->path[w->pathlen = old] = '\0';
}

/* Spelled out rather than isalnum(), which follows the locale. Lua
 * strings end in a NUL, so strspn stops at the end or at an embedded zero. */
static bool is_identifier(const char *s, size_t len)
{
    static const char word[] = "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    return len > 0 && len <= 40 && !(s[0] >= '0' && s[0] <= '9') && strspn(s, word) == len;
}

/*
 * Appends the segment for the key at idx, as Lua source would write it:
 * .name, ["any string"], [3], [1.5], [true]. It must not call lua_tolstring
 * on a number: that converts the key in place and breaks lua_next.
 */
static size_t path_push_key(packwalk *w, int idx)
{
    lua_State *L = w->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (is_identifier(s, len))
            return path_push(w, ".%s", s);
        char q[48 * 4 + 8], *p = q; /* 40 bytes, each at worst \ddd */
        for (size_t i = 0; i < len && i < 40; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"' || c == '\\')
                p += sprintf(p, "\\%c", c);
            else if (c < 32 || c >= 127)
                p += sprintf(p, "\\%u", c);
            else
                *p++ = (char)c;
        }
        *p = '\0';
        return path_push(w, "[\"%s%s\"]", q, len > 40 ? "..." : "");
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return path_push(w, "[%lld]", (long long)lua_tointeger(L, idx));
        return path_push(w, "[%.14g]", (double)lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return path_push(w, "[%s]", lua_toboolean(L, idx) ? "true" : "false");
    default: /* a table: only tables get this far as keys */
        return path_push(w, "[<table>]");
    }
}

/* A msgpack write fails only when the buffer cannot grow. */
static int wrote(packwalk *w, int rc)
{
    return rc == 0 ? 0 : fail(w, "out of memory while packing");
}

static int pack_value(packwalk *w, int idx, int depth, bool is_key);

/* The first pass over a table: its key count, and whether its keys are
 * exactly 1..n, an array. No # operator: see the top of this file. */
static bool table_is_array(lua_State *L, int idx, size_t *count)
{
    lua_Integer max = 0;
    bool seq = true;
    *count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        (*count)++;
        if (seq && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            if (lua_tointeger(L, -1) > max)
                max = lua_tointeger(L, -1);
        } else {
            seq = false;
        }
    }
    /* Keys are distinct integers >= 1, so "largest == count" means exactly
     * 1..n. The empty table lands here too, as an empty array. */
    return seq && (lua_Integer)*count == max;
}

static int pack_array(packwalk *w, int idx, int depth, size_t n)
{
    if (wrote(w, msgpack_pack_array(w->pk, n)) != 0)
        return -1;
    for (lua_Integer i = 1; i <= (lua_Integer)n; i++) {
        size_t old = path_push(w, "[%lld]", (long long)i);
        lua_rawgeti(w->L, idx, i);
        if (pack_value(w, lua_gettop(w->L), depth + 1, false) != 0)
            return -1;
        lua_pop(w->L, 1);
        path_pop(w, old);
    }
    return 0;
}

static int pack_map(packwalk *w, int idx, int depth, size_t count)
{
    lua_State *L = w->L;
    if (wrote(w, msgpack_pack_map(w->pk, count)) != 0)
        return -1;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int k = lua_gettop(L) - 1, v = k + 1;
        /* A refused key is reported at its table; a table used as a key
         * gets a marker, so a bad value inside it has a path. */
        size_t old = lua_istable(L, k) ? path_push(w, "{key}") : w->pathlen;
        if (pack_value(w, k, depth + 1, true) != 0)
            return -1;
        path_pop(w, old);
        old = path_push_key(w, k);
        if (pack_value(w, v, depth + 1, false) != 0)
            return -1;
        path_pop(w, old);
        lua_pop(L, 1);
    }
    return 0;
}

static int pack_table(packwalk *w, int idx, int depth)
{
    if (depth >= LUAV_MAX_DEPTH)
        return fail(w, "nesting deeper than %d (a cycle?)", LUAV_MAX_DEPTH);
    /* A key and a value per level: LUA_MINSTACK is too few for 64 levels. */
    if (!lua_checkstack(w->L, 4))
        return fail(w, "out of Lua stack while packing");
    size_t count;
    if (table_is_array(w->L, idx, &count))
        return pack_array(w, idx, depth, count);
    return pack_map(w, idx, depth, count);
}

static int pack_value(packwalk *w, int idx, int depth, bool is_key)
{
    lua_State *L = w->L;
    int t = lua_type(L, idx);
    switch (t) {
    case LUA_TNIL:
        return wrote(w, msgpack_pack_nil(w->pk));
    case LUA_TBOOLEAN:
        return wrote(w, lua_toboolean(L, idx) ? msgpack_pack_true(w->pk)
                                              : msgpack_pack_false(w->pk));
    case LUA_TNUMBER:
        /* lua_isinteger, not "is the value integral": 1.0 stays a float,
         * so a Lua task sees the same math.type its caller had. */
        if (lua_isinteger(L, idx))
            return wrote(w, msgpack_pack_int64(w->pk, (int64_t)lua_tointeger(L, idx)));
        return wrote(w, msgpack_pack_double(w->pk, (double)lua_tonumber(L, idx)));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len > UINT32_MAX)
            return fail(w, "string too long for msgpack (%zu bytes)", len);
        return wrote(w, msgpack_pack_str_with_body(w->pk, s, len));
    }
    case LUA_TTABLE:
        return pack_table(w, idx, depth);
    default:
        return fail(w, "cannot serialize a %s%s",
                    t == LUA_TLIGHTUSERDATA ? "light userdata" : lua_typename(L, t),
                    is_key ? " as a table key" : "");
    }
}

static void walk_init(packwalk *w, lua_State *L, msgpack_packer *pk, char *err, size_t errlen)
{
    *w = (packwalk){.L = L, .pk = pk, .err = err, .errlen = errlen};
    if (errlen > 0)
        err[0] = '\0';
}

int luav_pack(lua_State *L, int idx, msgpack_packer *pk, char *err, size_t errlen)
{
    packwalk w;
    walk_init(&w, L, pk, err, errlen);
    int top = lua_gettop(L);
    path_push(&w, "value");
    int rc = pack_value(&w, lua_absindex(L, idx), 0, false);
    lua_settop(L, top);
    return rc;
}

int luav_pack_args(lua_State *L, int first, int last, msgpack_sbuffer *out, char *err,
                   size_t errlen)
{
    msgpack_packer pk;
    packwalk w;
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    walk_init(&w, L, &pk, err, errlen);
    int top = lua_gettop(L), rc = -1;
    first = lua_absindex(L, first);
    last = lua_absindex(L, last);
    int n = last >= first ? last - first + 1 : 0;
    if (wrote(&w, msgpack_pack_array(&pk, (size_t)n)) != 0)
        goto out;
    for (int i = 0; i < n; i++) {
        path_pop(&w, 0);
        path_push(&w, "args[%d]", i + 1);
        if (pack_value(&w, first + i, 0, false) != 0)
            goto out;
    }
    rc = 0;
out:
    lua_settop(L, top);
    return rc;
}

static void push_value(lua_State *L, const msgpack_object *o, int depth);

/* An array or a map, as a table: its elements through push_value. */
static void push_container(lua_State *L, const msgpack_object *o, int depth)
{
    /* The same limit as packing: whatever luav_pack wrote comes back, and a
     * hand-built object cannot run the C stack out. */
    if (depth >= LUAV_MAX_DEPTH)
        luaL_error(L, "msgpack value nested deeper than %d", LUAV_MAX_DEPTH);
    luaL_checkstack(L, 3, "msgpack value nested too deeply");
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        const msgpack_object_array *a = &o->via.array;
        lua_createtable(L, a->size > INT_MAX ? INT_MAX : (int)a->size, 0);
        for (uint32_t i = 0; i < a->size; i++) {
            push_value(L, &a->ptr[i], depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return;
    }
    const msgpack_object_map *m = &o->via.map;
    lua_createtable(L, 0, m->size > INT_MAX ? INT_MAX : (int)m->size);
    for (uint32_t i = 0; i < m->size; i++) {
        push_value(L, &m->ptr[i].key, depth + 1);
        /* lua_rawset would raise too, but with "index is nil", which names
         * neither msgpack nor the way out. */
        if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER && isnan(lua_tonumber(L, -1))))
            luaL_error(L, "msgpack map key is %s: a Lua table cannot hold it",
                       lua_isnil(L, -1) ? "nil" : "NaN");
        push_value(L, &m->ptr[i].val, depth + 1);
        lua_rawset(L, -3);
    }
}

static void push_value(lua_State *L, const msgpack_object *o, int depth)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        lua_pushnil(L);
        return;
    case MSGPACK_OBJECT_BOOLEAN:
        lua_pushboolean(L, o->via.boolean);
        return;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)LUA_MAXINTEGER)
            lua_pushnumber(L, (lua_Number)o->via.u64);
        else
            lua_pushinteger(L, (lua_Integer)o->via.u64);
        return;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        lua_pushinteger(L, (lua_Integer)o->via.i64);
        return;
    case MSGPACK_OBJECT_FLOAT32: /* msgpack-c widens float32 into f64 */
    case MSGPACK_OBJECT_FLOAT64:
        lua_pushnumber(L, (lua_Number)o->via.f64);
        return;
    case MSGPACK_OBJECT_STR:
        lua_pushlstring(L, o->via.str.ptr, o->via.str.size);
        return;
    case MSGPACK_OBJECT_BIN:
        lua_pushlstring(L, o->via.bin.ptr, o->via.bin.size);
        return;
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP:
        push_container(L, o, depth);
        return;
    default:
        luaL_error(L, "cannot convert a msgpack ext value (type %d) to Lua",
                   (int)o->via.ext.type);
        return;
    }
}

void luav_push(lua_State *L, const msgpack_object *o)
{
    luaL_checkstack(L, 1, "no room for a value");
    push_value(L, o, 0);
}

void luav_push_args(lua_State *L, const msgpack_object_array *a)
{
    luaL_checkstack(L, a->size > INT_MAX - 1 ? INT_MAX : (int)a->size + 1, "too many arguments");
    for (uint32_t i = 0; i < a->size; i++)
        push_value(L, &a->ptr[i], 0);
}

/* ---- the list 1..n, made on demand ------------------------------------------ */

static int count_index(lua_State *L)
{
    lua_Integer n = lua_tointeger(L, lua_upvalueindex(1));
    int isint = 0;
    lua_Integer i = lua_tointegerx(L, 2, &isint);
    if (isint && i >= 1 && i <= n)
        lua_pushinteger(L, i);
    else
        lua_pushnil(L);
    return 1;
}

static int count_len(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    return 1;
}

/* The table is empty; its metatable holds n (__poolbench_count, which
 * luav_is_count reads) and answers items[i] and #items from it. */
void luav_push_count(lua_State *L, size_t n)
{
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)n);
    lua_pushcclosure(L, count_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushinteger(L, (lua_Integer)n);
    lua_pushcclosure(L, count_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, -2, "__poolbench_count");
    lua_setmetatable(L, -2);
}

bool luav_is_count(lua_State *L, int idx, size_t *n)
{
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return false;
    lua_getfield(L, -1, "__poolbench_count");
    bool is = lua_isinteger(L, -1);
    if (is)
        *n = (size_t)lua_tointeger(L, -1);
    lua_pop(L, 2);
    return is;
}
