/*
 * lua_lock.c: pb.lock(), a process-local lock, as Python's threading.Lock.
 *
 *   local LOG = pb.lock()     -- at the file's top level: each process that
 *                             -- loads the file makes its own
 *   LOG:acquire([timeout])    -- true, or false when timeout seconds passed
 *   LOG:release()
 *   LOG:hold(seconds)         -- acquire, keep it that long, release
 *   LOG:locked()              -- whether someone holds it (in this process)
 *
 * It is a plain pthread mutex in the Lua state's memory, NOT shared between
 * processes: a forked worker gets a copy in whatever state it was at the
 * fork. Copied while a thread of the parent held it, the copy stays held
 * forever, by a thread the worker does not have: the worker's first
 * acquire never returns. That is phenomenon fork_with_threads (a logging or
 * malloc lock in real programs), and why it exists: a pb.thread holds it,
 * workers forked meanwhile (start method fork) deadlock, the task time
 * limit ends them. A spawned worker loads the file again and makes a fresh
 * one; a fork-server worker copies the fork server, forked before any
 * thread existed.
 *
 * In the parent, acquire and hold release the interpreter lock while they
 * wait (scn_gil_release), as Python's Lock.acquire and time.sleep release
 * the GIL: otherwise a thread holding this lock would hold the
 * interpreter's too, and no fork could happen while it is held.
 */
#include "lua_lock.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "scenario.h"

#define LOCK_MT "poolbench.lock"

static pthread_mutex_t *check_lock(lua_State *L)
{
    return luaL_checkudata(L, 1, LOCK_MT);
}

static int lk_new(lua_State *L)
{
    pthread_mutex_t *m = lua_newuserdatauv(L, sizeof *m, 0);
    pthread_mutex_init(m, NULL);
    luaL_setmetatable(L, LOCK_MT);
    return 1;
}

/* Takes m, waiting at most `timeout` seconds (< 0: forever), with the
 * interpreter lock released meanwhile. */
static bool lk_take(lua_State *L, pthread_mutex_t *m, double timeout)
{
    if (pthread_mutex_trylock(m) == 0)
        return true;
    bool released = scn_gil_release(L);
    int rc;
    if (timeout < 0) {
        rc = pthread_mutex_lock(m);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double t = (double)ts.tv_sec + ts.tv_nsec / 1e9 + timeout;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - floor(t)) * 1e9);
        while ((rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts)) == EINTR) {
        }
    }
    scn_gil_reacquire(released);
    return rc == 0;
}

static int lk_acquire(lua_State *L)
{
    pthread_mutex_t *m = check_lock(L);
    double timeout = luaL_optnumber(L, 2, -1);
    lua_pushboolean(L, lk_take(L, m, timeout));
    return 1;
}

static int lk_release(lua_State *L)
{
    pthread_mutex_unlock(check_lock(L));
    return 0;
}

static int lk_hold(lua_State *L)
{
    pthread_mutex_t *m = check_lock(L);
    double s = luaL_checknumber(L, 2);
    luaL_argcheck(L, s >= 0 && s <= 3600, 2, "seconds from 0 to 3600 expected");
    lk_take(L, m, -1);
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    bool released = scn_gil_release(L);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    scn_gil_reacquire(released);
    pthread_mutex_unlock(m);
    return 0;
}

static int lk_locked(lua_State *L)
{
    pthread_mutex_t *m = check_lock(L);
    bool free = pthread_mutex_trylock(m) == 0;
    if (free)
        pthread_mutex_unlock(m);
    lua_pushboolean(L, !free);
    return 1;
}

void scn_lock_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"acquire", lk_acquire}, {"release", lk_release}, {"hold", lk_hold},
        {"locked", lk_locked},   {NULL, NULL},
    };
    if (luaL_newmetatable(L, LOCK_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, lk_new);
    lua_setfield(L, -2, "lock");
}
