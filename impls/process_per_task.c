/*
 * process_per_task.c: no pool at all, one process per task (document 004:
 * "without a pool, every task ... creates a process anew"; document 002,
 * section 1.1).
 *
 *     for i in items:
 *         p = multiprocessing.Process(target=run, args=(i,))
 *         p.start()
 *         p.join()          # the result comes back through a pipe here
 *
 * Teaches: the baseline of P9. Every task pays fork + exit + wait (and a
 * pipe), one after the other whatever w->workers says: time ≈ n·(that cost
 * + t), where a pool pays for its processes once. Each child runs the
 * initializer, then the item's pipeline, and sends [ok, value or message].
 * No pool means no trace and no engine stats: the outcome is filled here.
 * The story: docs/labs/01-pool_vs_fork.md.
 */
#include "strategy.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child: the initializer (what a pool worker does once, every process
 * here does again), then item's pipeline; sends [ok, value or message].
 * _exit(), so that it neither flushes the parent's stdio buffers nor runs
 * its atexit handlers. */
_Noreturn static void process_per_task_child(const strat_workload *w,
                                             const msgpack_object *item, int fd)
{
    msgpack_sbuffer args, res, msg;
    msgpack_sbuffer_init(&args);
    msgpack_sbuffer_init(&res);
    msgpack_sbuffer_init(&msg);
    char why[600] = "";
    int rc = POOL_OK;
    if (w->initializer) {
        pool_args0(&args);
        rc = pool_task_call(w->initializer, args.data, args.size, &res);
        if (rc != POOL_OK)
            snprintf(why, sizeof why, "the initializer '%s' failed: %s", w->initializer,
                     pool_last_error());
    }
    if (rc == POOL_OK) {
        const char *task = strat_pipeline_args(&args, w, item);
        msgpack_sbuffer_clear(&res);
        rc = pool_task_call(task, args.data, args.size, &res);
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

/* p.join(): reads the child's message into buf to the end of the pipe, then
 * waits for the child; returns its wait status. With a time limit (timeout
 * > 0, the workload's task_timeout) a child that has not finished by then
 * is killed (*timed_out set). Reading first: a large
 * result would fill the pipe and block a child waited for too early. */
static int process_per_task_join(pid_t pid, int fd, msgpack_sbuffer *buf, double timeout,
                                 bool *timed_out)
{
    char chunk[4096];
    double deadline = timeout > 0 ? pool_now() + timeout : 0;
    *timed_out = false;
    for (;;) {
        if (deadline > 0) { /* the task's time limit: kill the child past it */
            double left = deadline - pool_now();
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int ready = left > 0 ? poll(&pfd, 1, (int)(left * 1000) + 1) : 0;
            if (ready < 0 && errno == EINTR)
                continue;
            if (ready == 0) {
                kill(pid, SIGKILL);
                *timed_out = true;
                deadline = 0; /* now read to the end of the pipe */
                continue;
            }
        }
        ssize_t k = read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* the end of the pipe: the child exited (or failed to write) */
        msgpack_sbuffer_write(buf, chunk, (size_t)k);
    }
    close(fd);
    /* st stays 0 ("exited, status 0") if the child cannot be waited for
     * (a caller that ignores SIGCHLD): then the pipe alone tells. */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* The parent's side of one item: joins the child and records its final
 * result (a child killed by a signal is an error naming the signal).
 * Returns true at the answer. */
static bool process_per_task_collect(const strat_workload *w, strat_outcome *out, pid_t pid,
                                     int fd, size_t i)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    bool timed_out;
    int st = process_per_task_join(pid, fd, &buf, w->task_timeout, &timed_out);
    strat_set_child(0);

    char err[256] = "";
    int status = POOL_ETASK; /* when there is no value: why */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    const msgpack_object *v = NULL;
    if (timed_out && WIFSIGNALED(st)) {
        snprintf(err, sizeof err, "the task ran past its time limit (%g s): the child process "
                 "%d was killed", w->task_timeout, (int)pid);
        status = POOL_ETIMELIMIT;
        out->stats.worker_deaths++;
    } else if (strat_interrupted() && WIFSIGNALED(st)) {
        snprintf(err, sizeof err, "interrupted: the child process %d was killed", (int)pid);
        status = POOL_EINTR;
    } else if (WIFSIGNALED(st)) {
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

/* p.start(): forks item i's child, its result to come down *fd. Returns its
 * pid, or -1 with item i's error recorded. fork() is safe: no pool exists,
 * so no other thread's lock can be inherited held. */
static pid_t process_per_task_start(const strat_workload *w, strat_outcome *out,
                                    const strat_items *items, size_t i, int *fd)
{
    int fds[2];
    if (pipe(fds) != 0) {
        strat_final(w, out, POOL_ESYS, NULL, strerror(errno), i);
        return -1;
    }
    fflush(NULL); /* or the child's copy of unwritten output could appear twice */
    pid_t pid = fork();
    if (pid < 0) {
        strat_final(w, out, POOL_ESYS, NULL, strerror(errno), i);
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        process_per_task_child(w, strat_item(items, i), fds[1]); /* does not return */
    }
    strat_set_child((int)pid); /* an interruption kills it */
    if (strat_interrupted()) /* the signal came between the check and the fork */
        kill(pid, SIGKILL);
    close(fds[1]); /* so that the read ends when the child does */
    *fd = fds[0];
    return pid;
}

static int process_per_task_run(const strat_workload *w, strat_outcome *out)
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
    for (size_t i = 0; i < w->n && !answer && !strat_interrupted(); i++) {
        int fd;
        pid_t pid = process_per_task_start(w, out, &items, i, &fd);
        if (pid < 0)
            break;
        ran++;
        out->stats.workers_started++;
        if (out->nworker_pids < maxpids)
            out->worker_pids[out->nworker_pids++] = (int)pid;
        answer = process_per_task_collect(w, out, pid, fd, i);
    }
    strat_stop_clock(out);
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
    process_per_task_run,
};
