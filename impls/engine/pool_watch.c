/*
 * pool_watch.c: the result handler's watch over everything that could
 * otherwise keep the pool waiting forever.
 *
 * Two kinds of bound, checked from the result handler's poll loop, which
 * polls with a timeout (pool_watch's answer) only while one of them is set:
 *
 *   - The task time limit (pool_options.task_timeout, billiard's hard time
 *     limit). Each worker writes into its shared-memory slot when the item
 *     it runs began (pool_worker.c). A worker whose item has run past the
 *     limit is SIGKILLed; when the fork server reports its exit, the
 *     result handler fails the chunk it held, once, with POOL_ETIMELIMIT
 *     (worker_exited), and replaces it. A worker that has been stopped
 *     (SIGSTOP) longer than the limit is killed the same way, whether it
 *     ran a task, was idle, or held the shared queue's lock (the robust
 *     mutex then recovers with EOWNERDEAD): so a stopped lock holder stalls
 *     the other workers no longer than the limit.
 *
 *   - Replies the fork server owes: STARTED for a spawn, EXITED for a
 *     worker whose pipe closed, the EXITED of every worker after KILLALL,
 *     the close of its socket after QUIT. One not in within
 *     POOL_FS_REPLY_S while the fork server is stopped (SIGSTOP), or within
 *     POOL_FS_HARD_S whatever its state (wedged), ends it: the pool kills
 *     it, its socket closes, and the pool is broken (pool_result_handler.c,
 *     fs_ended). So a stopped fork server hangs nothing either, and a slow
 *     one (valgrind, a loaded machine) is not mistaken for a stopped one.
 *     With start methods fork and spawn the launcher is a thread of this
 *     process (pool_launcher.c): it cannot be stopped alone, and it answers
 *     each request as soon as fork() returns, so it is never killed.
 *
 * Everything here runs on the result-handler thread; the slot fields of
 * struct pool_wslot it writes are that thread's alone.
 */
#include "pool_internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Checks run at most this often, and at least this often while one of the
 * bounds above is set (a shorter time limit checks four times per limit). */
#define WATCH_TICK_S 0.05

/* Whether process `pid` is stopped (state T or t in /proc/PID/stat). */
static bool is_stopped(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    if (n <= 0)
        return false;
    line[n] = '\0';
    const char *rp = strrchr(line, ')'); /* the name may hold spaces and parens */
    return rp != NULL && rp[1] == ' ' && (rp[2] == 'T' || rp[2] == 't');
}

/* Kills the worker in `slot`, once, saying why for worker_exited, which
 * fails what it held when its EXITED arrives. t_start: the start of the
 * item it was running, 0 if none. */
static void kill_worker(pool *p, int slot, double t_start, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void kill_worker(pool *p, int slot, double t_start, const char *fmt, ...)
{
    struct pool_wslot *w = &p->ws[slot];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->kill_why, sizeof w->kill_why, fmt, ap);
    va_end(ap);
    w->killed = true;
    w->kill_t_start = t_start;
    kill(w->pid, SIGKILL);
}

/* One worker against the time limit. */
static void check_worker(pool *p, int slot, double now, double limit)
{
    struct pool_wslot *w = &p->ws[slot];
    if (!w->attached || w->killed || w->pid <= 0)
        return; /* no worker, or already on its way out */
    struct pool_slot_shm *s = pool_slot(p, slot);
    bool busy = atomic_load(&s->job) != 0;
    double t0 = atomic_load(&s->t_start);
    if (busy && t0 > 0 && now - t0 > limit) {
        kill_worker(p, slot, t0, "ran past its time limit of %g s", limit);
        return;
    }
    if (!is_stopped(w->pid)) {
        w->stopped_since = 0;
        return;
    }
    if (w->stopped_since == 0)
        w->stopped_since = now;
    if (now - w->stopped_since <= limit)
        return;
    double lock_at = atomic_load(&s->lock_at);
    if (busy && t0 > 0)
        kill_worker(p, slot, t0, "did not finish within its time limit of %g s (its worker "
                    "was stopped, SIGSTOP)", limit);
    else
        kill_worker(p, slot, 0, "was stopped (SIGSTOP) longer than the time limit of %g s%s",
                    limit, lock_at > 0 && now - lock_at > limit
                               ? ", holding the task queue's lock" : "");
}

/* The oldest reply the fork server owes, 0 if none (caller holds the lock). */
static double fs_owed_since(const pool *p)
{
    double t = 0;
#define OLDER(x) do { if ((x) > 0 && (t == 0 || (x) < t)) t = (x); } while (0)
    for (int i = 0; i < p->nworkers; i++) {
        OLDER(p->spawn_at[i]);
        OLDER(p->ws[i].eof_at);
    }
    if (p->live > 0 || p->pending > 0)
        OLDER(p->fs_killall_at);
    OLDER(p->fs_quit_at);
    OLDER(p->fs_stuck_at);
#undef OLDER
    return t;
}

/* Kills a fork server that owes a reply past POOL_FS_REPLY_S, or that does
 * not read its requests. Returns whether a reply is still owed. */
static bool watch_forkserver(pool *p, double now)
{
    pthread_mutex_lock(&p->lock);
    bool gone = p->fs_gone;
    double since = gone ? 0 : fs_owed_since(p);
    pthread_mutex_unlock(&p->lock);
    if (gone || p->fs_kill_why[0] != '\0')
        return false; /* gone, or killed: its socket's close will wake us */
    if (p->fs_thread_mode)
        return since > 0; /* a thread of ours answers at once; none to kill */
    double late = since > 0 ? now - since : 0;
    if (p->fs_pid <= 0) /* no fork server (MPI): the transport bounds its own replies */
        return since > 0;
    /* Stopped: killed after POOL_FS_REPLY_S. Running but slow (a loaded
     * machine, valgrind): given up to POOL_FS_HARD_S. */
    if (late <= POOL_FS_REPLY_S || (late <= POOL_FS_HARD_S && !is_stopped(p->fs_pid)))
        return since > 0;
    if (late <= POOL_FS_HARD_S)
        snprintf(p->fs_kill_why, sizeof p->fs_kill_why, "stopped answering (it was stopped, "
                 "SIGSTOP, with a reply owed for %g s), so the pool killed it", POOL_FS_REPLY_S);
    else
        snprintf(p->fs_kill_why, sizeof p->fs_kill_why, "stopped answering (no reply to a "
                 "request within %g s), so the pool killed it", POOL_FS_HARD_S);
    kill(p->fs_pid, SIGKILL);
    return false;
}

int pool_watch(pool *p)
{
    double now = pool_now(), limit = p->opt.task_timeout;
    double tick = limit > 0 ? limit / 4 : WATCH_TICK_S;
    if (tick > WATCH_TICK_S)
        tick = WATCH_TICK_S;
    if (tick < 0.002)
        tick = 0.002;
    if (now - p->watch_at < tick)
        return (int)((tick - (now - p->watch_at)) * 1000) + 1; /* not due yet */
    p->watch_at = now;
    if (limit > 0)
        for (int i = 0; i < p->nworkers; i++)
            check_worker(p, i, now, limit);
    bool owed = watch_forkserver(p, now);
    return limit > 0 || owed ? (int)(tick * 1000) + 1 : -1;
}
