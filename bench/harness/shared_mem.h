/*
 * shared_mem.h: pb.shared, named integer values and arrays in one MAP_SHARED
 * anonymous segment, as CPython's multiprocessing.Value and Array (document
 * 002, section 1.3; phenomenon P15).
 *
 * The segment is mapped in the parent on first use, which must come before
 * the pools fork (in setup, or at the file's top level): every worker then
 * inherits the same physical pages, so a store in one process is seen by
 * every other with no message at all: an access costs a memory access.
 * Workers find an object by its name; only the parent creates them.
 *
 * Each object has a process-shared, robust mutex (a worker killed while it
 * holds it does not wedge the others: the next locker takes it over), as
 * CPython's Value and Array carry a lock (`with v.get_lock():`). :get,
 * :set and :add do not take it: :add is a plain load and a plain store,
 * which loses updates when two processes interleave, exactly as
 * `v.value += 1` does in CPython. :locked_add and :with_lock(fn) take it.
 *
 * scn_shared_cleanup() unmaps the segment, in the process that mapped it.
 */
#ifndef SHARED_MEM_H
#define SHARED_MEM_H

#include <lua.h>
#include <stddef.h>

/* Sets pb.shared in the table at the top of L's stack (the pb table). */
void scn_shared_open(lua_State *L);

/* Unmaps the segment (only in the process that mapped it). */
void scn_shared_cleanup(void);

/* Bytes of the segment in use (0 when none is mapped): for tests. */
size_t scn_shared_bytes(void);

#endif
