/*
 * manager.h: pb.manager, a server process holding named dicts, lists,
 * queues and counters that every worker reaches over a socket, as CPython's
 * multiprocessing.Manager() does (document 002, section 1.3; phenomenon P15).
 *
 * Why a process and not shared memory: the manager's objects are ordinary
 * containers of any value (strings, tables), which cannot live in a fixed
 * shared segment; a server that owns them and answers requests can. The
 * price is a round trip (a request and a reply over a Unix-domain socket,
 * two context switches at least) for every access, where shared memory
 * (shared_mem.h) costs a memory access. And a read returns a COPY, unpacked
 * from the reply: changing the copy changes nothing in the manager, which
 * is document 002's warning (`d['k'] = []; d['k'].append(x)` is lost).
 *
 * Lifecycle. mgr_start() forks the server from the parent, which must have
 * one thread (the engine's rule: a fork copies only the calling thread), and
 * before any pool forks its fork server, so that every worker inherits the
 * address. The server ignores SIGINT/SIGTERM (the parent decides when the
 * run ends), dies with the parent (PR_SET_PDEATHSIG), keeps no descriptor
 * of the parent's but its listening socket and stderr, and listens on an
 * abstract Unix socket name (Linux): there is no socket file, so nothing is
 * left on disk even when poolbench is SIGKILLed. mgr_stop() (from the run's
 * cleanup, scn_tmp_cleanup) kills and reaps it.
 *
 * Every round trip is bounded (mgr_set_timeout, default 5 s): a dead
 * manager is an error at once (connection refused or closed), a stopped
 * one an error after the timeout; never a hang.
 *
 * Wire format: a 4-byte big-endian length, then one msgpack value.
 * Request [op, kind, name, arg1, arg2]; reply [status, value].
 */
#ifndef MANAGER_H
#define MANAGER_H

#include <lua.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum mgr_kind { MGR_DICT = 1, MGR_LIST, MGR_QUEUE, MGR_COUNTER };

enum mgr_op {
    MGR_PING = 1,
    MGR_SET,    /* dict: key, value; list: index (1-based), value; counter: value */
    MGR_GET,    /* dict: key; list: index; counter */
    MGR_DEL,    /* dict: key */
    MGR_LEN,
    MGR_COPY,   /* the whole object: a map (dict) or an array (list, queue) */
    MGR_CLEAR,
    MGR_PUSH,   /* list append, queue put: value */
    MGR_POP,    /* queue get: the oldest value, or MGR_EMPTY */
    MGR_ADD,    /* counter: k; replies the new value */
};

enum mgr_status { MGR_OK = 0, MGR_ERROR = 1, MGR_EMPTY = 2 };

/* Forks the server (parent, one thread). 0 (also when already running), or
 * -1 with a message. */
int mgr_start(char *err, size_t errlen);

bool mgr_running(void);
pid_t mgr_pid(void); /* 0 when none was started */

/* Kills and reaps the server and closes this process's connection; only in
 * the process that started it (a worker's exit leaves it alone). */
void mgr_stop(void);

void mgr_set_timeout(double seconds);
double mgr_timeout(void);

/*
 * One round trip: sends req (a packed request), waits for the reply at most
 * mgr_timeout() seconds, and unpacks it into *reply (the caller destroys
 * it). Connects on first use in each process (a fork reconnects). 0, or -1
 * with a message ("the manager (pid N) is gone", "no reply within 5 s").
 */
int mgr_call(const msgpack_sbuffer *req, msgpack_unpacked *reply, char *err, size_t errlen);

/* Sets pb.manager in the table at the top of L's stack (the pb table). */
void scn_manager_open(lua_State *L);

#endif
