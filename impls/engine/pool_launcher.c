/*
 * pool_launcher.c: start methods fork and spawn, where the pool's own
 * process starts every worker.
 *
 * The fork server (pool_forkserver.c) is the default because it is the
 * safe way: every fork is made by a process with one thread. The other two
 * methods exist to show what it avoids and what it costs:
 *
 *   fork   each worker (each respawn too) is forked straight from the pool's
 *          process, at that moment, whatever its other threads are doing.
 *          A lock another thread holds then stays held in the worker, by
 *          nobody, forever (phenomenon: fork_with_threads). CPython's "fork".
 *   spawn  each worker is a fresh program, exec'd at once after the fork: it
 *          inherits nothing but the descriptors passed to it and its
 *          argument (pool_spawn_main.c reads it). CPython's "spawn".
 *
 * Who forks, and who reaps? A launcher THREAD of the pool, speaking the
 * fork server's protocol (SPAWN, KILLALL, QUIT in; STARTED, EXITED,
 * SPAWNFAIL out) over the same kind of control socket, so the result
 * handler, the watch and every accounting stay the same whatever the
 * method. The first workers are forked before the launcher thread starts,
 * by the thread calling pool_create, while the pool has no other thread;
 * each replacement is forked by the launcher thread, one at a time, as in
 * CPython, where Pool.__init__ forks the first ones and the pool's
 * worker-handler thread every replacement. (The first forks made amid the
 * pool's threads and the caller's allocations also hung workers of the
 * sanitizer builds, whose allocators take no lock around fork.)
 *
 * The launcher reaps exactly its own workers: one pidfd per worker
 * (pidfd_open), polled beside the control socket, then waitpid(pid), never
 * waitpid(-1), which would steal the exit of a child some other part of the
 * program waits for (a process_per_task strategy, another pool's fork
 * server). Where pidfd_open does not exist (ENOSYS: a kernel before 5.3,
 * or valgrind 3.19, which does not know the call) a worker has no pidfd and
 * the launcher looks at it with waitpid(pid, WNOHANG) every
 * LAUNCHER_POLL_MS instead: its exit is then seen that much later, nothing
 * else changes. If something else reaps a worker first (waitpid(-1) elsewhere,
 * SIGCHLD ignored), its status is lost: the exit is reported with
 * POOL_EXIT_REAPED_ELSEWHERE, counted as a death, and the slot respawned.
 * Its signals are all blocked, so the program's handlers (SIGINT's
 * pool_interrupt_all) run on other threads.
 *
 * The end is a BYE message, not the socket's end of file: a fork made
 * elsewhere in this process (another pool's fork-mode worker, say) may hold
 * a copy of the launcher's end of the socket, and its close would then
 * never be seen. Workers set PR_SET_PDEATHSIG, which follows the thread
 * that forked them: the launcher lives until every worker is reaped, the
 * first ones die if the thread that made the pool ends first (the pool
 * replaces them), and if the whole process dies they die with it; nothing
 * is orphaned.
 *
 * Between fork and exec (spawn), the child only makes async-signal-safe
 * calls (the program may have threads): prctl, sigaction, close_range,
 * fcntl, execv, _exit; its argument string is built before the fork. Every
 * descriptor but 0, 1, 2 and those passed (its result pipe, the slots'
 * memfd, and the transport's own: spawn_fds, so spawn needs a transport
 * that has them, the socket; pool_start_method_check) is closed across the exec,
 * even one the program opened without O_CLOEXEC (CPython's spawn closes
 * them too).
 */
#include "pool_internal.h"
#include "pool_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* How often a worker without a pidfd is looked at (no pidfd_open). */
#define LAUNCHER_POLL_MS 20

struct launcher {
    const struct pool_worker_cfg *cfg;
    int ctl_fd;  /* the launcher's end of the control socket */
    int nslots;
    pid_t *pid;  /* per slot, 0 when empty */
    int *pidfd;  /* per slot, -1 when empty or when pidfd_open is missing */
};

/* The argument a spawned worker reads (pool_spawn_main.c parses it): its
 * result pipe first, then the transport by name and the descriptors it
 * passes (spawn_fds), then the memfd of the slot records. */
static void spawn_arg(const struct launcher *l, int slot, int result_fd, char *buf, size_t len)
{
    const struct pool_worker_cfg *c = l->cfg;
    int tx[POOL_SPAWN_FDS];
    c->tx->ops->spawn_fds(c->tx, tx);
    snprintf(buf, len, "--pool-worker=%d,%s,%d,%d,%d,%zu,%d,%d,%zu,%ld,%d,%llx", result_fd,
             c->tx->ops->name, tx[0], tx[1], c->shm_fd, c->shm_size, slot, c->init_task,
             c->initargs_len, c->maxtasks, (int)c->timed, (unsigned long long)c->registry_hash);
}

/* The child of a fork, in either method. Only async-signal-safe calls until
 * pool_worker_main (fork) or execv (spawn). */
static noreturn void launcher_child(const struct launcher *l, int slot, int result_fd,
                                    char **argv)
{
    const struct pool_worker_cfg *c = l->cfg;
    close(l->ctl_fd);
    for (int i = 0; i < l->nslots; i++)
        if (l->pidfd[i] >= 0)
            close(l->pidfd[i]);
    /* Ctrl-C is the pool's process's to handle (pool_forkserver.c's fs_main
     * says why); ignored dispositions survive exec. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGINT, &ign, NULL);
    sigaction(SIGTERM, &ign, NULL);
    if (c->start_method == POOL_START_FORK) {
        c->tx->ops->in_forkserver(c->tx); /* the parent's ends are not ours (closes only) */
        pool_worker_main(c, slot, result_fd);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* kept across exec */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* nothing else crosses the exec, */
    int keep[2 + POOL_SPAWN_FDS] = {result_fd, c->shm_fd};
    c->tx->ops->spawn_fds(c->tx, keep + 2);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (keep[i] >= 0)
            fcntl(keep[i], F_SETFD, 0); /* the only descriptors passed on */
    execv(argv[0], argv);
    _exit(POOL_EXIT_EXEC);
}

/* The program's argv with the engine's argument appended (before the fork:
 * the child may not allocate). NULL when out of memory. */
static char **spawn_argv(const struct launcher *l, int slot, int result_fd, char *arg,
                         size_t arglen)
{
    char **src = l->cfg->spawn_argv;
    size_t n = 0;
    while (src[n] != NULL)
        n++;
    char **argv = calloc(n + 2, sizeof *argv);
    if (argv == NULL)
        return NULL;
    memcpy(argv, src, n * sizeof *argv);
    spawn_arg(l, slot, result_fd, arg, arglen);
    argv[n] = arg;
    return argv;
}

static void launcher_spawn(struct launcher *l, int slot)
{
    struct pool_fs_msg m = {.op = POOL_FS_SPAWNFAIL, .slot = slot};
    int pfd[2];
    char arg[256];
    char **argv = NULL;
    if (slot < 0 || slot >= l->nslots || l->pid[slot] != 0) {
        m.status = EINVAL;
        pool_fs_send_event(l->ctl_fd, &m, -1);
        return;
    }
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        m.status = errno;
        pool_fs_send_event(l->ctl_fd, &m, -1);
        return;
    }
    if (l->cfg->start_method == POOL_START_SPAWN &&
        (argv = spawn_argv(l, slot, pfd[1], arg, sizeof arg)) == NULL) {
        m.status = ENOMEM;
        close(pfd[0]);
        close(pfd[1]);
        pool_fs_send_event(l->ctl_fd, &m, -1);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        launcher_child(l, slot, pfd[1], argv);
    }
    int e = errno;
    free(argv);
    close(pfd[1]); /* the worker holds the only write end: its death means EOF */
    int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    int pe = errno; /* ENOSYS: watched by polling (launcher_main) */
    if (pid < 0 || (pidfd < 0 && pe != ENOSYS)) {
        m.status = pid < 0 ? e : pe;
        if (pid > 0) { /* no way to watch it: end it at once */
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        close(pfd[0]);
        pool_fs_send_event(l->ctl_fd, &m, -1);
        return;
    }
    if (pidfd >= 0)
        fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    l->pid[slot] = pid;
    l->pidfd[slot] = pidfd;
    m.op = POOL_FS_STARTED;
    m.pid = pid;
    pool_fs_send_event(l->ctl_fd, &m, pfd[0]);
    close(pfd[0]);
}

/* Reaps the worker of `slot`, if it ended, and reports it: its pidfd said
 * so, or it has none and this is a look (LAUNCHER_POLL_MS). */
static void launcher_reap(struct launcher *l, int slot)
{
    int status = 0;
    pid_t r;
    while ((r = waitpid(l->pid[slot], &status, WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == 0)
        return; /* not yet (a stopped worker makes no pidfd event; a spurious one) */
    if (r < 0) /* ECHILD: reaped by someone else */
        status = POOL_EXIT_REAPED_ELSEWHERE << 8;
    struct pool_fs_msg m = {.op = POOL_FS_EXITED, .slot = slot, .pid = l->pid[slot],
                            .status = status};
    if (l->pidfd[slot] >= 0)
        close(l->pidfd[slot]);
    l->pidfd[slot] = -1;
    l->pid[slot] = 0;
    pool_fs_send_event(l->ctl_fd, &m, -1);
}

static int launcher_live(const struct launcher *l)
{
    int n = 0;
    for (int i = 0; i < l->nslots; i++)
        n += l->pid[i] != 0;
    return n;
}

/* Slot i holds a live worker without a pidfd (pidfd_open is missing): only
 * a look with waitpid tells when it ends. */
static bool launcher_unwatched(const struct launcher *l, int i)
{
    return l->pid[i] != 0 && l->pidfd[i] < 0;
}

/* True if some live worker is unwatched: the launcher then wakes every
 * LAUNCHER_POLL_MS to look at it. */
static bool launcher_polling(const struct launcher *l)
{
    for (int i = 0; i < l->nslots; i++)
        if (launcher_unwatched(l, i))
            return true;
    return false;
}

static void launcher_killall(struct launcher *l)
{
    for (int i = 0; i < l->nslots; i++)
        if (l->pid[i] != 0)
            kill(l->pid[i], SIGKILL);
}

/* Reads one request; false when the pool is done with the launcher. */
static bool launcher_request(struct launcher *l)
{
    struct pool_fs_msg m;
    ssize_t n = recv(l->ctl_fd, &m, sizeof m, 0);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0 || m.op == POOL_FS_QUIT) {
        launcher_killall(l);
        return false;
    }
    if (m.op == POOL_FS_SPAWN)
        launcher_spawn(l, m.slot);
    else if (m.op == POOL_FS_KILLALL)
        launcher_killall(l);
    return true;
}

/* The thread: as fs_main, with pidfds (or a look every LAUNCHER_POLL_MS)
 * for SIGCHLD. Ends after QUIT (or the
 * pool's end of the socket closing) once every worker is reaped. */
static void *launcher_main(void *arg)
{
    struct launcher *l = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    struct pollfd *pf = calloc((size_t)l->nslots + 1, sizeof *pf);
    int *slot_of = calloc((size_t)l->nslots + 1, sizeof *slot_of);
    if (pf == NULL || slot_of == NULL)
        pool_panic("pool launcher: out of memory");
    bool quitting = false;
    while (!quitting || launcher_live(l) > 0) {
        int n = 0;
        pf[n++] = (struct pollfd){.fd = quitting ? -1 : l->ctl_fd, .events = POLLIN};
        for (int i = 0; i < l->nslots; i++)
            if (l->pidfd[i] >= 0) {
                slot_of[n] = i;
                pf[n++] = (struct pollfd){.fd = l->pidfd[i], .events = POLLIN};
            }
        bool polling = launcher_polling(l);
        if (poll(pf, (nfds_t)n, polling ? LAUNCHER_POLL_MS : -1) < 0) {
            if (errno == EINTR)
                continue;
            pool_panic("pool launcher: poll: %s", strerror(errno));
        }
        for (int k = 1; k < n; k++)
            if (pf[k].revents)
                launcher_reap(l, slot_of[k]);
        for (int i = 0; polling && i < l->nslots; i++)
            if (launcher_unwatched(l, i))
                launcher_reap(l, i);
        if (pf[0].revents && !launcher_request(l))
            quitting = true;
    }
    struct pool_fs_msg bye = {.op = POOL_FS_BYE, .slot = -1};
    pool_fs_send_event(l->ctl_fd, &bye, -1);
    close(l->ctl_fd);
    free(pf);
    free(slot_of);
    free(l->pid);
    free(l->pidfd);
    free(l);
    return NULL;
}

int pool_launcher_start(const struct pool_worker_cfg *cfg, int nslots, int *ctl_fd,
                        pthread_t *thread)
{
    struct launcher *l = calloc(1, sizeof *l);
    int sv[2] = {-1, -1};
    if (l == NULL || (l->pid = calloc((size_t)nslots, sizeof *l->pid)) == NULL ||
        (l->pidfd = malloc((size_t)nslots * sizeof *l->pidfd)) == NULL) {
        if (l)
            free(l->pid);
        free(l);
        return pool_seterr(POOL_ESYS, "pool_create: out of memory");
    }
    for (int i = 0; i < nslots; i++)
        l->pidfd[i] = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        int e = errno;
        free(l->pid);
        free(l->pidfd);
        free(l);
        return pool_seterr(POOL_ESYS, "pool_create: socketpair: %s", strerror(e));
    }
    *l = (struct launcher){.cfg = cfg, .ctl_fd = sv[1], .nslots = nslots, .pid = l->pid,
                           .pidfd = l->pidfd};
    /* The first workers are forked here, by the thread creating the pool,
     * before the pool's threads exist (as CPython's Pool.__init__ calls
     * _repopulate_pool before starting its handler threads): their STARTED
     * wait in the socket for the result handler. Only replacements are
     * forked by the launcher thread, amid the others. */
    for (int i = 0; i < nslots; i++)
        launcher_spawn(l, i);
    if (pthread_create(thread, NULL, launcher_main, l) != 0) {
        launcher_killall(l);
        for (int i = 0; i < nslots; i++)
            if (l->pid[i] != 0) {
                waitpid(l->pid[i], NULL, 0);
                if (l->pidfd[i] >= 0)
                    close(l->pidfd[i]);
            }
        close(sv[0]);
        close(sv[1]);
        free(l->pid);
        free(l->pidfd);
        free(l);
        return pool_seterr(POOL_ESYS, "pool_create: cannot start the launcher thread");
    }
    *ctl_fd = sv[0];
    return 0;
}
