/*
 * manager_lua.c: pb.manager, the Lua side of the manager (manager.h): proxies
 * whose every access is one round trip, and whose reads return copies.
 *
 *   pb.manager.start()          fork the server (parent, in setup); the other
 *                               calls start it too when made in the parent
 *   local d = pb.manager.dict("d")
 *   d[k] = v; d[k]; d[k] = nil; #d; pb.manager.copy(d); pb.manager.clear(d)
 *   local l = pb.manager.list("l"):append(x) / :get(i) / :set(i, x) / :len()
 *   local q = pb.manager.queue("q"):put(x) / :get([timeout]) / :len()
 *   local c = pb.manager.counter("c"):add(k) (the new value) / :get() / :set(x)
 *   every proxy: :copy(), :clear() (a dict's through pb.manager.copy/clear,
 *   since its fields are its keys)
 *   pb.manager.ping() (seconds of one empty round trip), .pid(), .timeout(s)
 *
 * A proxy is a userdata holding the object's kind and name, nothing else: a
 * worker makes its own with the same name. `d[k]` unpacks the reply into a
 * NEW Lua value, so `d[k][1] = x` changes that copy and is lost, exactly as
 * CPython's `d['k'].append(x)` on a DictProxy (document 002's warning); the
 * fix is read, modify, reassign. Dict keys that are integral floats are sent
 * as integers, as Lua's own tables treat them.
 */
#include "manager.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lua_values.h"

#define MGR_NAME_MAX 64

typedef struct mgr_proxy {
    int kind;
    char name[MGR_NAME_MAX];
} mgr_proxy;

static const char *const kind_mt[] = {NULL, "pb.manager.dict", "pb.manager.list",
                                      "pb.manager.queue", "pb.manager.counter"};

static mgr_proxy *to_proxy(lua_State *L, int idx)
{
    mgr_proxy *p = lua_touserdata(L, idx);
    for (int k = MGR_DICT; p && k <= MGR_COUNTER; k++)
        if (luaL_testudata(L, idx, kind_mt[k]))
            return p;
    luaL_argerror(L, idx, "a pb.manager proxy expected");
    return NULL;
}

/* The process that opened pb.manager first: poolbench's parent. A worker
 * (another pid) must never fork a manager of its own. */
static pid_t open_pid;

static void ensure_started(lua_State *L)
{
    char err[256];
    if (mgr_running())
        return;
    if (getpid() != open_pid)
        luaL_error(L, "pb.manager: no manager: call pb.manager.start() in setup, before the "
                   "pools fork");
    if (mgr_start(err, sizeof err) != 0)
        luaL_error(L, "%s", err);
}

/* Packs the value at idx (0: nil) into pk; an integral float becomes an
 * integer when it is a key. 0, or -1 with a message; never raises. */
static int pack_arg(lua_State *L, int idx, bool key, msgpack_packer *pk, char *err, size_t n)
{
    if (idx == 0)
        return msgpack_pack_nil(pk), 0;
    lua_Integer i;
    if (key && lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx) &&
        lua_numbertointeger(lua_tonumber(L, idx), &i))
        return msgpack_pack_int64(pk, i), 0;
    return luav_pack(L, idx, pk, err, n);
}

/* Pushes the reply's value; returns its status. Raises the manager's error. */
static int push_reply(lua_State *L, msgpack_unpacked *u)
{
    const msgpack_object *r = &u->data;
    char err[512];
    if (r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size != 2 ||
        r->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        msgpack_unpacked_destroy(u);
        return luaL_error(L, "pb.manager: a malformed reply");
    }
    int status = (int)r->via.array.ptr[0].via.u64;
    const msgpack_object *v = &r->via.array.ptr[1];
    if (status == MGR_ERROR) {
        snprintf(err, sizeof err, "pb.manager: %.*s",
                 v->type == MSGPACK_OBJECT_STR ? (int)v->via.str.size : 0,
                 v->type == MSGPACK_OBJECT_STR ? v->via.str.ptr : "");
        msgpack_unpacked_destroy(u);
        return luaL_error(L, "%s", err);
    }
    luav_push(L, v); /* a new Lua value: the copy */
    msgpack_unpacked_destroy(u);
    return status;
}

/*
 * One request [op, kind, name, a1, a2] (stack indexes, 0 for nil; a1 is a
 * key when `key`) and its reply, whose value it pushes; returns the reply's
 * status. Raises when the round trip fails or the manager says no.
 */
static int call(lua_State *L, int op, const mgr_proxy *p, int a1, int a2, bool key)
{
    ensure_started(L);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_int(&pk, op);
    msgpack_pack_int(&pk, p ? p->kind : 0);
    const char *name = p ? p->name : "";
    msgpack_pack_str_with_body(&pk, name, strlen(name));
    char err[512];
    msgpack_unpacked u;
    int rc = pack_arg(L, a1, key, &pk, err, sizeof err);
    if (rc == 0)
        rc = pack_arg(L, a2, false, &pk, err, sizeof err);
    if (rc == 0)
        rc = mgr_call(&sb, &u, err, sizeof err);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0)
        return luaL_error(L, "%s", err);
    return push_reply(L, &u);
}

/* ---- proxies ------------------------------------------------------------------------ */

static int new_proxy(lua_State *L, int kind)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, len > 0 && len < MGR_NAME_MAX, 1, "a name of 1 to 63 bytes expected");
    ensure_started(L);
    mgr_proxy *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->kind = kind;
    memcpy(p->name, name, len + 1);
    luaL_setmetatable(L, kind_mt[kind]);
    return 1;
}

static int m_dict(lua_State *L) { return new_proxy(L, MGR_DICT); }
static int m_list(lua_State *L) { return new_proxy(L, MGR_LIST); }
static int m_queue(lua_State *L) { return new_proxy(L, MGR_QUEUE); }
static int m_counter(lua_State *L) { return new_proxy(L, MGR_COUNTER); }

/* d[k]: a copy of the value, or nil. */
static int dict_index(lua_State *L)
{
    mgr_proxy *p = luaL_checkudata(L, 1, kind_mt[MGR_DICT]);
    luaL_argcheck(L, !lua_isnil(L, 2), 2, "a dict key cannot be nil");
    call(L, MGR_GET, p, 2, 0, true);
    return 1;
}

/* d[k] = v (v nil: delete k). */
static int dict_newindex(lua_State *L)
{
    mgr_proxy *p = luaL_checkudata(L, 1, kind_mt[MGR_DICT]);
    luaL_argcheck(L, !lua_isnil(L, 2), 2, "a dict key cannot be nil");
    call(L, lua_isnil(L, 3) ? MGR_DEL : MGR_SET, p, 2, lua_isnil(L, 3) ? 0 : 3, true);
    return 0;
}

static int p_len(lua_State *L)
{
    call(L, MGR_LEN, to_proxy(L, 1), 0, 0, false);
    return 1;
}

static int p_copy(lua_State *L)
{
    call(L, MGR_COPY, to_proxy(L, 1), 0, 0, false);
    return 1;
}

static int p_clear(lua_State *L)
{
    call(L, MGR_CLEAR, to_proxy(L, 1), 0, 0, false);
    return 0;
}

static int p_tostring(lua_State *L)
{
    mgr_proxy *p = to_proxy(L, 1);
    lua_pushfstring(L, "%s(\"%s\")", kind_mt[p->kind], p->name);
    return 1;
}

static int list_append(lua_State *L)
{
    mgr_proxy *p = luaL_checkudata(L, 1, kind_mt[MGR_LIST]);
    luaL_checkany(L, 2);
    call(L, MGR_PUSH, p, 2, 0, false);
    lua_settop(L, 1);
    return 1; /* the proxy, for chaining */
}

static int list_get(lua_State *L)
{
    mgr_proxy *p = luaL_checkudata(L, 1, kind_mt[MGR_LIST]);
    luaL_checkinteger(L, 2);
    call(L, MGR_GET, p, 2, 0, false);
    return 1;
}

static int list_set(lua_State *L)
{
    mgr_proxy *p = luaL_checkudata(L, 1, kind_mt[MGR_LIST]);
    luaL_checkinteger(L, 2);
    luaL_checkany(L, 3);
    call(L, MGR_SET, p, 2, 3, false);
    return 0;
}

static int queue_put(lua_State *L)
{
    mgr_proxy *p = luaL_checkudata(L, 1, kind_mt[MGR_QUEUE]);
    luaL_checkany(L, 2);
    call(L, MGR_PUSH, p, 2, 0, false);
    return 0;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    nanosleep(&ts, NULL);
}

/* q:get([timeout]): the oldest item; waits up to timeout seconds (default
 * the round-trip timeout) by asking again every millisecond, then raises
 * "queue empty" (CPython's queue.Empty). q:get(0) does not wait. */
static int queue_get(lua_State *L)
{
    mgr_proxy *p = luaL_checkudata(L, 1, kind_mt[MGR_QUEUE]);
    double timeout = luaL_optnumber(L, 2, mgr_timeout());
    luaL_argcheck(L, timeout >= 0 && timeout <= 1e6, 2, "seconds from 0 to 1e6 expected");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (call(L, MGR_POP, p, 0, 0, false) == MGR_OK)
            return 1;
        lua_pop(L, 1);
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= timeout)
            return luaL_error(L, "pb.manager: queue \"%s\" empty (waited %f s)", p->name,
                              timeout);
        sleep_s(0.001);
    }
}

static int counter_add(lua_State *L)
{
    mgr_proxy *p = luaL_checkudata(L, 1, kind_mt[MGR_COUNTER]);
    if (lua_isnone(L, 2))
        lua_pushinteger(L, 1);
    luaL_checkinteger(L, 2);
    call(L, MGR_ADD, p, 2, 0, false);
    return 1;
}

static int counter_get(lua_State *L)
{
    call(L, MGR_GET, luaL_checkudata(L, 1, kind_mt[MGR_COUNTER]), 0, 0, false);
    return 1;
}

static int counter_set(lua_State *L)
{
    mgr_proxy *p = luaL_checkudata(L, 1, kind_mt[MGR_COUNTER]);
    luaL_checkinteger(L, 2);
    call(L, MGR_SET, p, 2, 0, false);
    return 0;
}

/* ---- module functions ------------------------------------------------------------------ */

static int m_start(lua_State *L)
{
    ensure_started(L);
    lua_pushinteger(L, mgr_pid());
    return 1;
}

static int m_pid(lua_State *L)
{
    lua_pushinteger(L, mgr_pid());
    return 1;
}

static int m_timeout(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        double s = luaL_checknumber(L, 1);
        luaL_argcheck(L, s > 0 && s <= 3600, 1, "seconds from 0 to 3600 expected");
        mgr_set_timeout(s);
    }
    lua_pushnumber(L, mgr_timeout());
    return 1;
}

/* pb.manager.ping(): one empty round trip, its seconds. */
static int m_ping(lua_State *L)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    call(L, MGR_PING, NULL, 0, 0, false);
    clock_gettime(CLOCK_MONOTONIC, &b);
    lua_pushnumber(L, (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
    return 1;
}

static void new_mt(lua_State *L, int kind, const luaL_Reg *methods)
{
    luaL_newmetatable(L, kind_mt[kind]);
    lua_pushcfunction(L, p_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, p_len);
    lua_setfield(L, -2, "__len");
    lua_pushliteral(L, "locked"); /* getmetatable(proxy) gives nothing away */
    lua_setfield(L, -2, "__metatable");
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

void scn_manager_open(lua_State *L)
{
    static const luaL_Reg dict_mt[] = {
        {"__index", dict_index}, {"__newindex", dict_newindex}, {NULL, NULL}};
    static const luaL_Reg list_m[] = {{"append", list_append}, {"get", list_get},
                                      {"set", list_set},       {"len", p_len},
                                      {"copy", p_copy},        {"clear", p_clear},
                                      {NULL, NULL}};
    static const luaL_Reg queue_m[] = {{"put", queue_put}, {"get", queue_get}, {"len", p_len},
                                       {"copy", p_copy},   {"clear", p_clear}, {NULL, NULL}};
    static const luaL_Reg counter_m[] = {{"add", counter_add}, {"get", counter_get},
                                         {"set", counter_set}, {"clear", p_clear},
                                         {NULL, NULL}};
    static const luaL_Reg fns[] = {
        {"start", m_start}, {"pid", m_pid},     {"timeout", m_timeout}, {"ping", m_ping},
        {"dict", m_dict},   {"list", m_list},   {"queue", m_queue},     {"counter", m_counter},
        {"copy", p_copy},   {"clear", p_clear}, {"len", p_len},         {NULL, NULL}};
    if (open_pid == 0)
        open_pid = getpid();
    new_mt(L, MGR_DICT, NULL);
    luaL_getmetatable(L, kind_mt[MGR_DICT]);
    luaL_setfuncs(L, dict_mt, 0);
    lua_pop(L, 1);
    new_mt(L, MGR_LIST, list_m);
    new_mt(L, MGR_QUEUE, queue_m);
    new_mt(L, MGR_COUNTER, counter_m);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "manager");
}
