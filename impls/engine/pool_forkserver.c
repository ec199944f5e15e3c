/*
 * pool_forkserver.c: the process that forks every worker.
 *
 * Why not fork workers from the parent? The parent has threads (the pool's
 * own handlers, and whatever the program runs). fork() copies only the
 * calling thread; a lock that another thread held at that moment (inside
 * malloc, stdio, the Lua glue) stays locked in the child forever, and the
 * child hangs the first time it needs it. So pool_create() forks this
 * server FIRST, while the caller has one thread (it checks), and the server
 * never starts a thread. Every fork it makes, respawns included, is a fork
 * of a single-threaded process: safe. CPython's "forkserver" start method
 * exists for the same reason.
 *
 * The server is the workers' parent, so it is the one that reaps them. It
 * tells the pool about each worker over a control socket:
 *   STARTED slot pid  (+ the read end of the worker's result pipe, passed
 *                      with SCM_RIGHTS, so only the pool holds it)
 *   EXITED  slot pid status
 * When the control socket closes or QUIT arrives, it kills what is left,
 * reaps everything and exits. PR_SET_PDEATHSIG makes it die with the pool's
 * process, and the workers die with it: nothing is ever orphaned.
 */
#include "pool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Never blocks (the caller holds the pool lock): a full socket means the
 * fork server is not reading, and the caller says so (pool_fs_request). */
int pool_fs_send(int ctl_fd, int op, int slot)
{
    struct pool_fs_msg m = {.op = op, .slot = slot};
    while (send(ctl_fd, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

/* Sends an event, with `fd` attached when fd >= 0. */
static int fs_send_event(int ctl_fd, const struct pool_fs_msg *m, int fd)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    while (sendmsg(ctl_fd, &mh, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

int pool_fs_recv(int ctl_fd, struct pool_fs_msg *m, int *fd)
{
    struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf,
    };
    *fd = -1;
    ssize_t n;
    while ((n = recvmsg(ctl_fd, &mh, MSG_CMSG_CLOEXEC)) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (n == 0)
        return 0;
    if (n != (ssize_t)sizeof *m)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd, CMSG_DATA(c), sizeof *fd);
    return 1;
}

/* ---- the server itself (runs in its own process) ------------------------- */

struct fs_state {
    const struct pool_worker_cfg *cfg;
    int ctl_fd;
    int sig_fd;
    int nslots;
    pid_t *pid; /* per slot, 0 when empty */
};

static void fs_spawn(struct fs_state *s, int slot)
{
    struct pool_fs_msg m = {.op = POOL_FS_SPAWNFAIL, .slot = slot};
    int pfd[2];
    if (slot < 0 || slot >= s->nslots || s->pid[slot] != 0) {
        m.status = EINVAL;
        fs_send_event(s->ctl_fd, &m, -1);
        return;
    }
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        m.status = errno;
        fs_send_event(s->ctl_fd, &m, -1);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(s->ctl_fd);
        close(s->sig_fd);
        close(pfd[0]);
        pool_worker_main(s->cfg, slot, pfd[1]);
    }
    close(pfd[1]); /* the worker holds the only write end: its death means EOF */
    if (pid < 0) {
        m.status = errno;
        close(pfd[0]);
        fs_send_event(s->ctl_fd, &m, -1);
        return;
    }
    s->pid[slot] = pid;
    m.op = POOL_FS_STARTED;
    m.pid = pid;
    fs_send_event(s->ctl_fd, &m, pfd[0]);
    close(pfd[0]);
}

static int fs_live(const struct fs_state *s)
{
    int n = 0;
    for (int i = 0; i < s->nslots; i++)
        n += s->pid[i] != 0;
    return n;
}

static void fs_killall(struct fs_state *s)
{
    for (int i = 0; i < s->nslots; i++)
        if (s->pid[i] != 0)
            kill(s->pid[i], SIGKILL);
}

/* Reaps every worker that has ended and reports it. */
static void fs_reap(struct fs_state *s)
{
    struct signalfd_siginfo si;
    while (read(s->sig_fd, &si, sizeof si) > 0)
        ;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < s->nslots; i++) {
            if (s->pid[i] == pid) {
                s->pid[i] = 0;
                struct pool_fs_msg m = {.op = POOL_FS_EXITED, .slot = i, .pid = pid,
                                        .status = status};
                fs_send_event(s->ctl_fd, &m, -1);
            }
        }
    }
}

static noreturn void fs_main(const struct pool_worker_cfg *cfg, int nslots, int ctl_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Ctrl-C and timeout(1) signal the whole process group. The pool's own
     * processes (the workers inherit this) leave SIGINT and SIGTERM to the
     * pool's process: its handler calls pool_interrupt_all, which ends
     * them, so their jobs fail with POOL_EINTR and not "killed by signal 2";
     * without a handler it dies, and PR_SET_PDEATHSIG takes them along. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    cfg->tx->ops->in_forkserver(cfg->tx); /* the parent's ends are not ours */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    struct fs_state s = {
        .cfg = cfg, .ctl_fd = ctl_fd, .nslots = nslots,
        .sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC),
        .pid = calloc((size_t)nslots, sizeof(pid_t)),
    };
    if (s.sig_fd < 0 || s.pid == NULL)
        _exit(POOL_EXIT_FS_SETUP);
    bool quitting = false;
    while (!quitting || fs_live(&s) > 0) {
        struct pollfd pf[2] = {{.fd = s.sig_fd, .events = POLLIN},
                               {.fd = quitting ? -1 : ctl_fd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(POOL_EXIT_FS_POLL);
        }
        if (pf[0].revents)
            fs_reap(&s);
        if (pf[1].revents) {
            struct pool_fs_msg m;
            ssize_t n = recv(ctl_fd, &m, sizeof m, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || m.op == POOL_FS_QUIT) {
                quitting = true;
                fs_killall(&s);
            } else if (m.op == POOL_FS_SPAWN) {
                fs_spawn(&s, m.slot);
            } else if (m.op == POOL_FS_KILLALL) {
                fs_killall(&s);
            }
        }
    }
    _exit(0);
}

pid_t pool_forkserver_start(const struct pool_worker_cfg *cfg, int nslots, int *ctl_fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        pool_seterr(POOL_ESYS, "pool_create: socketpair: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        pool_seterr(POOL_ESYS, "pool_create: fork: %s", strerror(e));
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        fs_main(cfg, nslots, sv[1]);
    }
    close(sv[1]);
    *ctl_fd = sv[0];
    return pid;
}
