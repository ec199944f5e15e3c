/*
 * lua_lock.h: pb.lock(), a process-local lock for scenarios, as Python's
 * threading.Lock (scenarios/fork_with_threads.lua). See lua_lock.c.
 */
#ifndef LUA_LOCK_H
#define LUA_LOCK_H

#include <lua.h>

/* Sets pb.lock in the table at the top of L's stack (the pb table). */
void scn_lock_open(lua_State *L);

#endif
