/*
 * shared_mem.c: pb.shared.value and pb.shared.array in one anonymous shared
 * segment (see shared_mem.h for why and for the lock's rules).
 *
 *   local v = pb.shared.value("v", 0)     -- parent: create (or find); worker: find
 *   v:get()  v:set(x)  v:add(k)            -- unlocked; :add can lose updates
 *   v:locked_add(k)                        -- under the object's lock: exact
 *   v:with_lock(function() ... end)        -- fn under the lock (CPython's
 *                                          -- `with v.get_lock(): ...`)
 *   local a = pb.shared.array("a", n)      -- n integers, all 0
 *   a:get(i) a:set(i, x) a:add(i, k) a:locked_add(i, k) a:with_lock(fn) #a
 *
 * Cells are 64-bit integers (Value('q')). The layout: a header with a
 * directory of up to SHM_MAX_OBJS named objects, each with its own mutex,
 * then the cells. The segment's size is fixed when it is mapped (the pages
 * cost nothing until touched), since a worker could not see a new mapping.
 */
#include "shared_mem.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SHM_SIZE ((size_t)8 << 20)
#define SHM_MAX_OBJS 64
#define SHM_NAME_MAX 48
#define SHM_MAX_CELLS 500000
#define SHM_LOCK_TIMEOUT_S 30 /* a lock never held that long by a sane task */

typedef struct shm_obj {
    char name[SHM_NAME_MAX];
    int is_array;
    long n;            /* cells */
    size_t off;        /* from the segment's start */
    pthread_mutex_t lock;
} shm_obj;

typedef struct shm_hdr {
    int nobjs;
    size_t used;
    shm_obj objs[SHM_MAX_OBJS];
} shm_hdr;

static shm_hdr *shm_seg;
static pid_t shm_owner;

typedef struct shm_ref { /* the userdata: where the object lives */
    shm_obj *o;
    volatile int64_t *cells;
} shm_ref;

static const char *const SHM_MT = "pb.shared";

static int seg_map(lua_State *L)
{
    void *p = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return luaL_error(L, "pb.shared: mmap: %s", strerror(errno));
    shm_seg = p;
    shm_seg->used = (sizeof(shm_hdr) + 63) & ~(size_t)63;
    shm_owner = getpid();
    return 0;
}

static shm_obj *find(const char *name)
{
    for (int i = 0; shm_seg && i < shm_seg->nobjs; i++)
        if (strcmp(shm_seg->objs[i].name, name) == 0)
            return &shm_seg->objs[i];
    return NULL;
}

static int init_lock(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

/* A new object of n cells, all `init`; in the parent only. */
static shm_obj *create(lua_State *L, const char *name, bool is_array, long n, int64_t init)
{
    if (shm_seg == NULL)
        seg_map(L);
    if (getpid() != shm_owner)
        luaL_error(L, "pb.shared: '%s' does not exist; create it in the parent (setup), "
                   "before the pools fork", name);
    size_t bytes = (size_t)n * sizeof(int64_t);
    if (shm_seg->nobjs == SHM_MAX_OBJS || SHM_SIZE - shm_seg->used < bytes)
        luaL_error(L, "pb.shared: no room for '%s' (%d objects, %zu bytes at most)", name,
                   SHM_MAX_OBJS, SHM_SIZE);
    shm_obj *o = &shm_seg->objs[shm_seg->nobjs];
    *o = (shm_obj){.is_array = is_array, .n = n, .off = shm_seg->used};
    snprintf(o->name, sizeof o->name, "%s", name);
    if (init_lock(&o->lock) != 0)
        luaL_error(L, "pb.shared: cannot make the lock of '%s'", name);
    int64_t *c = (int64_t *)((char *)shm_seg + o->off);
    for (long i = 0; i < n; i++)
        c[i] = init;
    shm_seg->used += (bytes + 63) & ~(size_t)63;
    shm_seg->nobjs++;
    return o;
}

static int push_ref(lua_State *L, shm_obj *o)
{
    shm_ref *r = lua_newuserdatauv(L, sizeof *r, 0);
    r->o = o;
    r->cells = (volatile int64_t *)((char *)shm_seg + o->off);
    luaL_setmetatable(L, SHM_MT);
    return 1;
}

static const char *check_name(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, len > 0 && len < SHM_NAME_MAX, 1, "a name of 1 to 47 bytes expected");
    return name;
}

/* pb.shared.value(name [, init]) */
static int s_value(lua_State *L)
{
    const char *name = check_name(L);
    int64_t init = (int64_t)luaL_optinteger(L, 2, 0);
    shm_obj *o = find(name);
    if (o && o->is_array)
        return luaL_error(L, "pb.shared: '%s' is an array, not a value", name);
    return push_ref(L, o ? o : create(L, name, false, 1, init));
}

/* pb.shared.array(name [, n]) */
static int s_array(lua_State *L)
{
    const char *name = check_name(L);
    shm_obj *o = find(name);
    if (o && !o->is_array)
        return luaL_error(L, "pb.shared: '%s' is a value, not an array", name);
    if (o == NULL) {
        lua_Integer n = luaL_checkinteger(L, 2);
        luaL_argcheck(L, n >= 1 && n <= SHM_MAX_CELLS, 2, "a size from 1 to 500000 expected");
        o = create(L, name, true, (long)n, 0);
    } else if (!lua_isnoneornil(L, 2) && luaL_checkinteger(L, 2) != o->n) {
        return luaL_error(L, "pb.shared: array '%s' has %d cells", name, (int)o->n);
    }
    return push_ref(L, o);
}

/* ---- methods: arrays take an index first (1-based), values none -------------------- */

static shm_ref *check_ref(lua_State *L)
{
    return luaL_checkudata(L, 1, SHM_MT);
}

/* The cell the call names; *next is the stack index of the next argument. */
static volatile int64_t *cell(lua_State *L, shm_ref *r, int *next)
{
    *next = 2;
    if (!r->o->is_array)
        return r->cells;
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, i >= 1 && i <= r->o->n, 2, "index out of range");
    *next = 3;
    return r->cells + (i - 1);
}

static int m_get(lua_State *L)
{
    int next;
    lua_pushinteger(L, (lua_Integer) * cell(L, check_ref(L), &next));
    return 1;
}

static int m_set(lua_State *L)
{
    int next;
    volatile int64_t *c = cell(L, check_ref(L), &next);
    *c = (int64_t)luaL_checkinteger(L, next);
    return 0;
}

/* A plain load, then a plain store: another process's store in between is
 * overwritten (a lost update), as `v.value += k` in CPython. */
static int m_add(lua_State *L)
{
    int next;
    volatile int64_t *c = cell(L, check_ref(L), &next);
    int64_t k = (int64_t)luaL_optinteger(L, next, 1);
    int64_t x = *c;
    *c = x + k;
    lua_pushinteger(L, (lua_Integer)(x + k));
    return 1;
}

/* Takes o's lock, bounded; a dead owner's lock is taken over (robust). */
static void lock(lua_State *L, shm_obj *o)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += SHM_LOCK_TIMEOUT_S;
    int rc = pthread_mutex_timedlock(&o->lock, &t);
    if (rc == EOWNERDEAD)
        rc = pthread_mutex_consistent(&o->lock);
    if (rc != 0)
        luaL_error(L, "pb.shared: the lock of '%s': %s", o->name,
                   rc == ETIMEDOUT ? "not free within 30 s" : strerror(rc));
}

static int m_locked_add(lua_State *L)
{
    shm_ref *r = check_ref(L);
    int next;
    volatile int64_t *c = cell(L, r, &next);
    int64_t k = (int64_t)luaL_optinteger(L, next, 1);
    lock(L, r->o);
    int64_t x = *c + k;
    *c = x;
    pthread_mutex_unlock(&r->o->lock);
    lua_pushinteger(L, (lua_Integer)x);
    return 1;
}

/* o:with_lock(fn, ...): fn(...) under the lock, its results returned; an
 * error in fn releases the lock and is raised again. */
static int m_with_lock(lua_State *L)
{
    shm_ref *r = check_ref(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lock(L, r->o);
    int rc = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
    pthread_mutex_unlock(&r->o->lock);
    if (rc != LUA_OK)
        return lua_error(L);
    return lua_gettop(L) - 1;
}

static int m_len(lua_State *L)
{
    lua_pushinteger(L, check_ref(L)->o->n);
    return 1;
}

static int m_tostring(lua_State *L)
{
    shm_ref *r = check_ref(L);
    lua_pushfstring(L, "pb.shared.%s(\"%s\")", r->o->is_array ? "array" : "value", r->o->name);
    return 1;
}

void scn_shared_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"get", m_get},           {"set", m_set},       {"add", m_add},
        {"locked_add", m_locked_add}, {"with_lock", m_with_lock}, {"len", m_len},
        {NULL, NULL}};
    static const luaL_Reg fns[] = {{"value", s_value}, {"array", s_array}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__len", m_len}, {"__tostring", m_tostring}, {NULL, NULL}};
    luaL_newmetatable(L, SHM_MT);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "shared");
}

void scn_shared_cleanup(void)
{
    if (shm_seg == NULL || getpid() != shm_owner)
        return;
    for (int i = 0; i < shm_seg->nobjs; i++)
        pthread_mutex_destroy(&shm_seg->objs[i].lock);
    munmap(shm_seg, SHM_SIZE);
    shm_seg = NULL;
}

size_t scn_shared_bytes(void)
{
    return shm_seg ? shm_seg->used : 0;
}
