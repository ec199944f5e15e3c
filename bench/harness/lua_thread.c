/*
 * lua_thread.c: pb.thread(fn), an OS thread running Lua under the
 * interpreter lock, as a Python strategy's threading.Thread; t:join(); and
 * lp_after, which ends the threads a strategy left running when it returned
 * or raised.
 *
 * A pb.thread runs fn on a Lua thread of its own (lua_newthread), holding
 * the lock except while a pool call it makes blocks, so the stacks left
 * mid-call are never touched by another. Its strategy may end without
 * joining it, perhaps waiting on a flag that will now never be set: lp_after
 * then terminates the pool (what the thread waits for ends), sets a hook that
 * makes its next Lua instruction raise, and joins it. At most LP_MAX_THREADS
 * a run.
 *
 * Why a file of its own: OS threads, their hook and their join are a concept
 * apart from the pool's methods. Uses lua_args.c (lp_run_of); lua_pool.c's
 * lp_open sets pb.thread to lp_pb_thread and makes lp_thread_metatable.
 */
#include "lua_pool_internal.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct lp_thread {
    lp_run *run;
    lua_State *T; /* its Lua thread while it runs (read and written under the lock) */
    pthread_t tid;
    int fn_ref, self_ref;
    bool started, joined, ok;
    char err[SCN_ERR];
};

/* ---- pb.thread: an OS thread running Lua under the lock ------------------------------ */

static int thread_body_lua(lua_State *T)
{
    lp_thread *th = lua_touserdata(T, 1);
    lua_rawgeti(T, LUA_REGISTRYINDEX, th->fn_ref);
    lua_call(T, 0, 0);
    return 0;
}

/* The hook set on a pb.thread still running when its strategy has ended:
 * its next Lua instruction raises, so a loop waiting for a flag the
 * strategy never set (it raised first) ends, and so does the join. */
static void thread_stop_hook(lua_State *T, lua_Debug *ar)
{
    (void)ar;
    luaL_error(T, "pb.thread stopped: its strategy had ended without joining it");
}

static void *thread_main(void *arg)
{
    lp_thread *th = arg;
    lp_run *run = th->run;
    scn_lock();
    lua_State *T = lua_newthread(run->anchor);
    int tref = luaL_ref(run->anchor, LUA_REGISTRYINDEX);
    lua_pushcfunction(T, thread_body_lua);
    lua_pushlightuserdata(T, th);
    th->T = T;
    if (run->threads_stopped) /* it got the lock only after its strategy ended */
        lua_sethook(T, thread_stop_hook, LUA_MASKCOUNT, 1);
    th->ok = scn_pcall_on(run->s, T, 1, 0, th->err, sizeof th->err) == 0;
    th->T = NULL;
    luaL_unref(run->anchor, LUA_REGISTRYINDEX, tref);
    scn_unlock();
    return NULL;
}

/* pb.thread(fn): starts fn on a new OS thread; :join() waits for it. */
int lp_pb_thread(lua_State *L)
{
    lp_run *run = lp_run_of(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (run->nthreads == LP_MAX_THREADS)
        return luaL_error(L, "pb.thread: at most %d threads per run", LP_MAX_THREADS);
    lp_thread *th = lua_newuserdatauv(L, sizeof *th, 1);
    memset(th, 0, sizeof *th);
    th->run = run;
    th->fn_ref = th->self_ref = LUA_NOREF;
    luaL_setmetatable(L, LP_THREAD);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 1);
    th->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    th->self_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* alive while it runs */
    if (pthread_create(&th->tid, NULL, thread_main, th) != 0)
        return luaL_error(L, "pb.thread: cannot start a thread");
    th->started = true;
    run->threads[run->nthreads++] = th;
    return 1;
}

static void thread_join(lua_State *L, lp_thread *th)
{
    if (th->joined || !th->started)
        return;
    bool rel = scn_gil_release(L);
    pthread_join(th->tid, NULL);
    scn_gil_reacquire(rel);
    th->joined = true;
    luaL_unref(L, LUA_REGISTRYINDEX, th->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, th->self_ref);
    th->fn_ref = th->self_ref = LUA_NOREF;
}

/* t:join(): true, or false and the error the thread's function raised. */
static int th_join(lua_State *L)
{
    lp_thread *th = luaL_checkudata(L, 1, LP_THREAD);
    thread_join(L, th);
    lua_pushboolean(L, th->ok);
    if (th->ok)
        return 1;
    lua_pushstring(L, th->err);
    return 2;
}

/* The metatable of pb.thread's threads (lp_open makes it). */
void lp_thread_metatable(lua_State *L)
{
    if (luaL_newmetatable(L, LP_THREAD)) {
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, th_join);
        lua_setfield(L, -2, "join");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

/* The strategy function returned or raised (lua_pool.h). */
void lp_after(lp_run *run, lua_State *L)
{
    if (run->out->wall_s == 0)
        strat_stop_clock(run->out);
    bool left = false;
    for (int i = 0; i < run->nthreads; i++)
        left = left || !run->threads[i]->joined;
    if (!left)
        return;
    snprintf(run->out->note, sizeof run->out->note,
             "the strategy ended with pb.threads unjoined: the pool was terminated, "
             "the threads stopped at their next Lua instruction");
    /* Under the lock none of them runs Lua: each sees the hook when it next
     * does (after the pb call it is in, each of which is bounded). */
    run->threads_stopped = true;
    for (int i = 0; i < run->nthreads; i++)
        if (run->threads[i]->T)
            lua_sethook(run->threads[i]->T, thread_stop_hook, LUA_MASKCOUNT, 1);
    bool rel = scn_gil_release(L);
    pool_terminate(run->p);
    scn_gil_reacquire(rel);
    for (int i = 0; i < run->nthreads; i++)
        thread_join(L, run->threads[i]);
}
