/*
 * strat_process_per_task.c: no pool at all, one process per task.
 *
 * Document 004 opens with why pools exist: "without a pool, every task that
 * must run in parallel creates a process anew, which wastes time"; a pool
 * pays for its processes once. Document 002 (section 1.1) shows the
 * Process it means, started and joined:
 *
 *     for i in items:
 *         p = multiprocessing.Process(target=run, args=(i,))
 *         p.start()
 *         p.join()          # the result comes back through a pipe here
 *
 * What it teaches: the baseline of P9. Every task pays fork + exit + wait
 * (and here a pipe), so time ≈ n * (that cost + t); a pool's map of 500
 * trivial tasks was 35 times faster in CPython. Like the document's loop,
 * it starts one process, joins it, then starts the next: with w->workers
 * greater than 1 it still runs one task at a time, on purpose.
 *
 * Each child runs the workload's initializer if it has one (what a pool
 * worker does once, every process does again), then the item's stages with
 * pool_task_call (one stage directly, several through the strat_chain
 * task), packs [ok, value or message] down a pipe and _exit()s. The parent reads to the end of the
 * pipe first (a large result would fill the pipe and block a child that
 * is waited for too early), then waitpid()s. A child killed by a signal is
 * an error that names the signal.
 *
 * fork() is safe here: no pool exists, so this process has no other thread
 * whose locks the child could inherit held. The child uses _exit() so that
 * it does not flush the parent's stdio buffers or run its atexit handlers.
 *
 * No pool means no trace and no engine stats: the outcome is filled here
 * (startup 0, tasks_run = items run * stages, the children's pids).
 *
 * Stopping: the stop rule is checked after each child; at the answer, no
 * more children are started.
 */
#include "strategy.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child: runs the stages on item, sends [ok, value or message]. */
_Noreturn static void spt_child(const strat_workload *w, const msgpack_object *item, int fd)
{
    msgpack_sbuffer args, res, msg;
    msgpack_sbuffer_init(&args);
    msgpack_sbuffer_init(&res);
    msgpack_sbuffer_init(&msg);
    bool chain = w->nstages > 1;
    char why[600] = "";
    int rc = POOL_OK;
    if (w->initializer) {
        /* What a pool worker does once, every process here does again. */
        pool_args0(&args);
        rc = pool_task_call(w->initializer, args.data, args.size, &res);
        if (rc != POOL_OK)
            snprintf(why, sizeof why, "the initializer '%s' failed: %s", w->initializer,
                     pool_last_error());
    }
    if (rc == POOL_OK) {
        if (chain)
            strat_chain_args(&args, w, 0, item);
        else
            strat_args1(&args, item);
        msgpack_sbuffer_clear(&res);
        rc = pool_task_call(chain ? STRAT_CHAIN_TASK : w->stages[0], args.data, args.size,
                            &res);
    }

    msgpack_packer pk;
    msgpack_packer_init(&pk, &msg, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    if (rc == POOL_OK) {
        msgpack_pack_true(&pk);
        msgpack_sbuffer_write(&msg, res.data, res.size); /* one packed value */
    } else {
        msgpack_pack_false(&pk);
        pool_pack_str(&pk, why[0] ? why : pool_last_error());
    }
    int status = pool_write_all(fd, msg.data, msg.size) == 0 ? 0 : 1;
    msgpack_sbuffer_destroy(&args);
    msgpack_sbuffer_destroy(&res);
    msgpack_sbuffer_destroy(&msg);
    _exit(status);
}

/* The parent's side of one item: reads the child's message, waits for it,
 * records its final result. Returns true at the answer. */
static bool spt_collect(const strat_workload *w, strat_outcome *out, pid_t pid, int fd,
                        size_t i)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    char chunk[4096];
    for (;;) {
        ssize_t k = read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* the end of the pipe: the child exited (or failed to write) */
        msgpack_sbuffer_write(&buf, chunk, (size_t)k);
    }
    close(fd);
    /* st stays 0 ("exited, status 0") if the child cannot be waited for
     * (a caller that ignores SIGCHLD): then the pipe alone tells. */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;

    char err[256] = "";
    int status = POOL_ETASK; /* when there is no value: why */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    const msgpack_object *v = NULL;
    if (WIFSIGNALED(st)) {
        snprintf(err, sizeof err, "the child process %d was killed by signal %d (%s)", (int)pid,
                 WTERMSIG(st), strsignal(WTERMSIG(st)));
        status = POOL_EWORKER;
        out->stats.worker_deaths++;
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(err, sizeof err, "the child process %d exited with status %d", (int)pid,
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        status = POOL_EWORKER;
        out->stats.worker_deaths++;
    } else if (msgpack_unpack_next(&u, buf.data, buf.size, &off) != MSGPACK_UNPACK_SUCCESS ||
               u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size != 2 ||
               u.data.via.array.ptr[0].type != MSGPACK_OBJECT_BOOLEAN) {
        snprintf(err, sizeof err, "the child process %d sent no readable result", (int)pid);
        status = POOL_ESYS;
    } else if (!u.data.via.array.ptr[0].via.boolean) {
        const msgpack_object *m = &u.data.via.array.ptr[1];
        snprintf(err, sizeof err, "%.*s", m->type == MSGPACK_OBJECT_STR ? (int)m->via.str.size : 0,
                 m->type == MSGPACK_OBJECT_STR ? m->via.str.ptr : "");
    } else {
        v = &u.data.via.array.ptr[1];
    }
    bool answer = v ? strat_final(w, out, POOL_OK, v, NULL, i)
                    : strat_final(w, out, status, NULL, err, i);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&buf);
    return answer;
}

static int spt_run(const strat_workload *w, strat_outcome *out)
{
    out->startup_s = 0; /* nothing to start: every task pays for its own process */
    out->t0 = pool_now();
    out->tasks_total = w->n * (size_t)w->nstages;
    strat_items items;
    if (strat_items_open(&items, w) != 0) {
        snprintf(out->first_error, sizeof out->first_error,
                 "process_per_task: the items are not a packed array of %zu values", w->n);
        return -1;
    }
    const int maxpids = (int)(sizeof out->worker_pids / sizeof out->worker_pids[0]);
    size_t ran = 0;
    bool answer = false;
    for (size_t i = 0; i < w->n && !answer; i++) {
        int fds[2];
        if (pipe(fds) != 0) {
            strat_final(w, out, POOL_ESYS, NULL, strerror(errno), i);
            break;
        }
        fflush(NULL); /* or the child's copy of unwritten output could appear twice */
        pid_t pid = fork();
        if (pid < 0) {
            strat_final(w, out, POOL_ESYS, NULL, strerror(errno), i);
            close(fds[0]);
            close(fds[1]);
            break;
        }
        if (pid == 0) {
            close(fds[0]);
            spt_child(w, strat_item(&items, i), fds[1]); /* does not return */
        }
        close(fds[1]); /* so that the read ends when the child does */
        ran++;
        out->stats.workers_started++;
        if (out->nworker_pids < maxpids)
            out->worker_pids[out->nworker_pids++] = (int)pid;
        answer = spt_collect(w, out, pid, fds[0], i);
    }
    out->wall_s = pool_now() - out->t0;
    if (answer) {
        out->stopped_early = true;
        out->stopped_s = out->wall_s; /* every child was already waited for */
    }
    out->tasks_run = ran * (size_t)w->nstages;
    out->stats.jobs_submitted = ran;
    strat_items_close(&items);
    return 0;
}

const strategy strat_process_per_task = {
    "process_per_task",
    "004",
    "no pool: fork a process per item, run its stages there, read the result, wait, next",
    spt_run,
};
