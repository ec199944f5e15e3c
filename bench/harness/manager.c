/*
 * manager.c: the manager process (its objects, its request loop), its start
 * and stop, and the client's bounded round trip (see manager.h for why).
 *
 * The server is single-threaded: it polls its listening socket and its
 * clients and answers one whole request at a time, so every request is
 * atomic with respect to the others (a counter's ADD never loses an update;
 * a read-modify-write done by a client with GET then SET can, as in
 * CPython). Values are kept as the msgpack bytes they arrived as: a dict
 * key is its packed bytes (so the Lua keys 1 and "1" differ), and a COPY
 * reply is the stored bytes concatenated under a map or array header.
 * Lookups are linear: the scenarios keep a few dozen keys.
 */
#include "manager.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the server's objects ------------------------------------------------------ */

typedef struct mgr_blob {
    char *p;
    size_t len;
} mgr_blob;

typedef struct mgr_obj {
    int kind;
    char *name;
    mgr_blob *keys, *vals; /* dict: keys[i] -> vals[i]; list/queue: vals[head..n) */
    size_t n, cap, head;
    long long count;       /* counter */
} mgr_obj;

static mgr_obj *srv_objs;
static size_t srv_nobjs;

static mgr_obj *srv_find(int kind, const char *name, size_t len)
{
    for (size_t i = 0; i < srv_nobjs; i++)
        if (srv_objs[i].kind == kind && strlen(srv_objs[i].name) == len &&
            memcmp(srv_objs[i].name, name, len) == 0)
            return &srv_objs[i];
    mgr_obj *o = realloc(srv_objs, (srv_nobjs + 1) * sizeof *o);
    if (o == NULL)
        return NULL;
    srv_objs = o;
    o = &srv_objs[srv_nobjs++];
    *o = (mgr_obj){.kind = kind, .name = strndup(name, len)};
    return o;
}

/* The packed bytes of o, as a blob of its own (the object's copy). */
static mgr_blob blob_of(const msgpack_object *o)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *o);
    return (mgr_blob){.p = sb.data, .len = sb.size};
}

static int obj_reserve(mgr_obj *o)
{
    if (o->n < o->cap)
        return 0;
    size_t cap = o->cap ? 2 * o->cap : 16;
    mgr_blob *k = realloc(o->keys, cap * sizeof *k);
    if (k == NULL)
        return -1;
    o->keys = k;
    mgr_blob *v = realloc(o->vals, cap * sizeof *v);
    if (v == NULL)
        return -1;
    o->vals = v;
    o->cap = cap;
    return 0;
}

static void obj_clear(mgr_obj *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->vals[i].p);
        if (o->kind == MGR_DICT)
            free(o->keys[i].p);
    }
    o->n = o->head = 0;
    o->count = 0;
}

/* The dict entry whose key packs as k, or -1. */
static long dict_index(const mgr_obj *o, const mgr_blob *k)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->keys[i].len == k->len && memcmp(o->keys[i].p, k->p, k->len) == 0)
            return (long)i;
    return -1;
}

/* ---- answering one request ------------------------------------------------------ */

static void reply_status(msgpack_packer *pk, int status)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, status);
}

static void reply_error(msgpack_packer *pk, const char *msg)
{
    reply_status(pk, MGR_ERROR);
    msgpack_pack_str_with_body(pk, msg, strlen(msg));
}

static void reply_nil(msgpack_packer *pk, int status)
{
    reply_status(pk, status);
    msgpack_pack_nil(pk);
}

static void reply_blob(msgpack_packer *pk, const mgr_blob *b)
{
    reply_status(pk, MGR_OK);
    msgpack_sbuffer_write(pk->data, b->p, b->len);
}

static void reply_copy(msgpack_packer *pk, const mgr_obj *o)
{
    reply_status(pk, MGR_OK);
    if (o->kind == MGR_DICT)
        msgpack_pack_map(pk, o->n);
    else
        msgpack_pack_array(pk, o->n - o->head);
    for (size_t i = o->kind == MGR_DICT ? 0 : o->head; i < o->n; i++) {
        if (o->kind == MGR_DICT)
            msgpack_sbuffer_write(pk->data, o->keys[i].p, o->keys[i].len);
        msgpack_sbuffer_write(pk->data, o->vals[i].p, o->vals[i].len);
    }
}

static void srv_dict(mgr_obj *o, int op, const msgpack_object *a, msgpack_packer *pk)
{
    mgr_blob k = blob_of(&a[0]);
    long i = dict_index(o, &k);
    if (op == MGR_GET) {
        if (i < 0)
            reply_nil(pk, MGR_EMPTY);
        else
            reply_blob(pk, &o->vals[i]);
    } else if (op == MGR_SET && i >= 0) {
        free(o->vals[i].p);
        o->vals[i] = blob_of(&a[1]);
        reply_nil(pk, MGR_OK);
    } else if (op == MGR_SET) {
        if (obj_reserve(o) != 0) {
            free(k.p);
            return reply_error(pk, "manager: out of memory");
        }
        o->keys[o->n] = k;
        o->vals[o->n++] = blob_of(&a[1]);
        return reply_nil(pk, MGR_OK);
    } else { /* MGR_DEL */
        if (i >= 0) {
            free(o->keys[i].p);
            free(o->vals[i].p);
            o->keys[i] = o->keys[o->n - 1];
            o->vals[i] = o->vals[--o->n];
        }
        reply_nil(pk, MGR_OK);
    }
    free(k.p);
}

static void srv_seq(mgr_obj *o, int op, const msgpack_object *a, msgpack_packer *pk)
{
    if (op == MGR_PUSH) {
        if (o->head > 0 && o->head == o->n)
            o->head = o->n = 0; /* a drained queue starts over */
        if (obj_reserve(o) != 0)
            return reply_error(pk, "manager: out of memory");
        o->vals[o->n++] = blob_of(&a[0]);
        return reply_nil(pk, MGR_OK);
    }
    if (op == MGR_POP) {
        if (o->head == o->n)
            return reply_nil(pk, MGR_EMPTY);
        reply_blob(pk, &o->vals[o->head]);
        free(o->vals[o->head++].p);
        return;
    }
    /* GET and SET: a 1-based index, as Lua's */
    if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 < 1 ||
        a[0].via.u64 > o->n - o->head)
        return reply_error(pk, "list index out of range");
    mgr_blob *v = &o->vals[o->head + a[0].via.u64 - 1];
    if (op == MGR_GET)
        return reply_blob(pk, v);
    free(v->p);
    *v = blob_of(&a[1]);
    reply_nil(pk, MGR_OK);
}

static void srv_counter(mgr_obj *o, int op, const msgpack_object *a, msgpack_packer *pk)
{
    bool is_int = a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                  a[0].type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    if ((op == MGR_ADD || op == MGR_SET) && !is_int)
        return reply_error(pk, "a counter takes integers");
    if (op == MGR_ADD)
        o->count += a[0].via.i64;
    else if (op == MGR_SET)
        o->count = a[0].via.i64;
    reply_status(pk, MGR_OK);
    msgpack_pack_int64(pk, o->count);
}

/* Which ops each kind takes (a bit per op). */
static bool op_allowed(int kind, int op)
{
    static const unsigned ops[] = {
        [MGR_DICT] = 1u << MGR_SET | 1u << MGR_GET | 1u << MGR_DEL,
        [MGR_LIST] = 1u << MGR_SET | 1u << MGR_GET | 1u << MGR_PUSH,
        [MGR_QUEUE] = 1u << MGR_PUSH | 1u << MGR_POP,
        [MGR_COUNTER] = 1u << MGR_SET | 1u << MGR_GET | 1u << MGR_ADD,
    };
    return op == MGR_LEN || op == MGR_COPY || op == MGR_CLEAR || (ops[kind] >> op & 1u);
}

/* Answers the request r (an unpacked [op, kind, name, a1, a2]) into pk. */
static void srv_answer(const msgpack_object *r, msgpack_packer *pk)
{
    if (r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size != 5)
        return reply_error(pk, "manager: malformed request");
    const msgpack_object *a = r->via.array.ptr;
    int op = (int)a[0].via.i64, kind = (int)a[1].via.i64;
    if (op == MGR_PING)
        return reply_nil(pk, MGR_OK);
    if (kind < MGR_DICT || kind > MGR_COUNTER || op < MGR_SET || op > MGR_ADD ||
        a[2].type != MSGPACK_OBJECT_STR || !op_allowed(kind, op))
        return reply_error(pk, "manager: unknown operation");
    mgr_obj *o = srv_find(kind, a[2].via.str.ptr, a[2].via.str.size);
    if (o == NULL)
        return reply_error(pk, "manager: out of memory");
    if (op == MGR_LEN) {
        reply_status(pk, MGR_OK);
        msgpack_pack_uint64(pk, o->n - o->head);
        return;
    }
    if (op == MGR_COPY)
        return reply_copy(pk, o);
    if (op == MGR_CLEAR) {
        obj_clear(o);
        return reply_nil(pk, MGR_OK);
    }
    if (kind == MGR_DICT)
        srv_dict(o, op, a + 3, pk);
    else if (kind == MGR_COUNTER)
        srv_counter(o, op, a + 3, pk);
    else
        srv_seq(o, op, a + 3, pk);
}

/* ---- the server's loop ------------------------------------------------------------ */

#define MGR_MAX_CLIENTS 1024
#define MGR_MAX_FRAME (64u << 20)

typedef struct srv_client {
    int fd;
    char *buf;
    size_t len, cap;
} srv_client;

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Answers every whole frame in c's buffer. -1 when the client must go. */
static int srv_frames(srv_client *c)
{
    size_t off = 0;
    while (c->len - off >= 4) {
        const unsigned char *h = (const unsigned char *)c->buf + off;
        uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (n > MGR_MAX_FRAME)
            return -1;
        if (c->len - off - 4 < n)
            break;
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_sbuffer_write(&sb, "\0\0\0\0", 4);
        if (msgpack_unpack_next(&u, c->buf + off + 4, n, NULL) == MSGPACK_UNPACK_SUCCESS)
            srv_answer(&u.data, &pk);
        else
            reply_error(&pk, "manager: malformed request");
        uint32_t len = (uint32_t)(sb.size - 4);
        unsigned char lh[4] = {len >> 24, len >> 16 & 255, len >> 8 & 255, len & 255};
        memcpy(sb.data, lh, 4);
        int rc = write_all(c->fd, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        msgpack_unpacked_destroy(&u);
        if (rc != 0)
            return -1;
        off += 4 + n;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return 0;
}

/* Reads what c sent. -1 when it closed or must go. */
static int srv_read(srv_client *c)
{
    if (c->cap - c->len < 65536) {
        size_t cap = c->cap ? 2 * c->cap : 131072;
        char *b = realloc(c->buf, cap);
        if (b == NULL)
            return -1;
        c->buf = b;
        c->cap = cap;
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (r <= 0)
        return -1;
    c->len += (size_t)r;
    return srv_frames(c);
}

static void srv_accept(int lfd, srv_client *cl, int *ncl)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (*ncl == MGR_MAX_CLIENTS) {
        close(fd);
        return;
    }
    /* A client that stops reading must not stall the others for long. */
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    cl[(*ncl)++] = (srv_client){.fd = fd};
}

static _Noreturn void srv_loop(int lfd)
{
    static srv_client cl[MGR_MAX_CLIENTS];
    static struct pollfd pf[MGR_MAX_CLIENTS + 1];
    int ncl = 0;
    for (;;) {
        pf[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < ncl; i++)
            pf[i + 1] = (struct pollfd){.fd = cl[i].fd, .events = POLLIN};
        if (poll(pf, (nfds_t)ncl + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(3);
        }
        for (int i = ncl - 1; i >= 0; i--) {
            if (pf[i + 1].revents == 0 || srv_read(&cl[i]) == 0)
                continue;
            close(cl[i].fd);
            free(cl[i].buf);
            cl[i] = cl[--ncl];
        }
        if (pf[0].revents & POLLIN)
            srv_accept(lfd, cl, &ncl);
    }
}

/* ---- start and stop ------------------------------------------------------------------ */

static pid_t mgr_server_pid, mgr_owner;
static struct sockaddr_un mgr_addr;
static socklen_t mgr_addrlen;
static double mgr_timeout_s = 5.0;

/* Threads of this process, from /proc/self/task (-1 if unreadable). */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* In the new server: only the listening socket and stderr stay open, so that
 * it holds none of the parent's pipes (a pool's EOF would never come). */
static void srv_detach(int lfd, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
    }
    int keep = lfd > 2 ? lfd : 3;
    if (lfd != keep) {
        dup2(lfd, keep);
        lfd = keep;
    }
#ifdef SYS_close_range
    if (syscall(SYS_close_range, keep + 1, ~0U, 0) == 0)
        goto closed;
#endif
    for (int fd = keep + 1; fd < 65536; fd++)
        close(fd);
closed:
    for (int fd = 3; fd < keep; fd++)
        close(fd);
}

int mgr_start(char *err, size_t errlen)
{
    if (mgr_server_pid > 0)
        return 0;
    if (thread_count() > 1) {
        snprintf(err, errlen, "pb.manager: the manager is forked from the parent while it has "
                 "one thread: start it in setup (pb.manager.start()), before the pools");
        return -1;
    }
    static unsigned serial;
    mgr_addr = (struct sockaddr_un){.sun_family = AF_UNIX};
    int len = snprintf(mgr_addr.sun_path + 1, sizeof mgr_addr.sun_path - 1,
                       "poolbench-manager-%ld-%u-%ld", (long)getpid(), ++serial, (long)time(NULL));
    mgr_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&mgr_addr, mgr_addrlen) != 0 ||
        listen(lfd, 128) != 0) {
        snprintf(err, errlen, "pb.manager: socket: %s", strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "pb.manager: fork: %s", strerror(errno));
        close(lfd);
        return -1;
    }
    if (pid == 0) {
        srv_detach(lfd, parent);
        srv_loop(lfd > 2 ? lfd : 3);
    }
    close(lfd);
    mgr_server_pid = pid;
    mgr_owner = parent;
    static bool registered; /* a backstop: the run's cleanup stops it first */
    if (!registered && atexit(mgr_stop) == 0)
        registered = true;
    return 0;
}

bool mgr_running(void)
{
    return mgr_server_pid > 0;
}

pid_t mgr_pid(void)
{
    return mgr_server_pid;
}

void mgr_set_timeout(double seconds)
{
    mgr_timeout_s = seconds;
}

double mgr_timeout(void)
{
    return mgr_timeout_s;
}

/* ---- the client's connection --------------------------------------------------------- */

static int conn_fd = -1;
static pid_t conn_pid;

static void conn_close(void)
{
    if (conn_fd >= 0)
        close(conn_fd);
    conn_fd = -1;
}

void mgr_stop(void)
{
    if (mgr_server_pid <= 0 || getpid() != mgr_owner)
        return;
    if (conn_pid == getpid())
        conn_close();
    kill(mgr_server_pid, SIGKILL);
    while (waitpid(mgr_server_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    mgr_server_pid = 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int conn_open(char *err, size_t errlen)
{
    if (conn_pid != getpid()) { /* a fork: the parent's connection is not ours */
        conn_close();
        conn_pid = getpid();
    }
    if (conn_fd >= 0)
        return 0;
    if (mgr_server_pid <= 0) {
        snprintf(err, errlen, "pb.manager: no manager: call pb.manager.start() in setup, "
                 "before the pools fork");
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&mgr_addr, mgr_addrlen) != 0) {
        snprintf(err, errlen, "pb.manager: the manager (pid %ld) is gone: connect: %s",
                 (long)mgr_server_pid, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    conn_fd = fd;
    return 0;
}

/* Waits for fd to be ready for `events` until the deadline. 0, or -1. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0)
            return -1;
        struct pollfd pf = {.fd = fd, .events = events};
        int rc = poll(&pf, 1, (int)(left * 1000) + 1);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* Reads exactly n bytes before the deadline. 0, -1 timeout, -2 closed. */
static int read_n(char *p, size_t n, double deadline)
{
    while (n > 0) {
        if (wait_fd(conn_fd, POLLIN, deadline) != 0)
            return -1;
        ssize_t r = recv(conn_fd, p, n, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return -2;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int send_frame(const msgpack_sbuffer *req, double deadline)
{
    uint32_t n = (uint32_t)req->size;
    unsigned char h[4] = {n >> 24, n >> 16 & 255, n >> 8 & 255, n & 255};
    struct iovec iov[2] = {{h, 4}, {req->data, req->size}};
    size_t total = 4 + req->size, sent = 0;
    while (sent < total) {
        if (wait_fd(conn_fd, POLLOUT, deadline) != 0)
            return -1;
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t w = sendmsg(conn_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w < 0)
            return -2;
        sent += (size_t)w;
        for (int i = 0; i < 2; i++) { /* skip what went */
            size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            w -= (ssize_t)k;
        }
    }
    return 0;
}

static int call_failed(int rc, char *err, size_t errlen)
{
    if (rc == -1)
        snprintf(err, errlen, "pb.manager: no reply from the manager (pid %ld) within %g s",
                 (long)mgr_server_pid, mgr_timeout_s);
    else
        snprintf(err, errlen, "pb.manager: the manager (pid %ld) is gone (connection closed)",
                 (long)mgr_server_pid);
    conn_close(); /* a half-read reply would desynchronise the next one */
    return -1;
}

int mgr_call(const msgpack_sbuffer *req, msgpack_unpacked *reply, char *err, size_t errlen)
{
    if (conn_open(err, errlen) != 0)
        return -1;
    double deadline = now_s() + mgr_timeout_s;
    int rc = send_frame(req, deadline);
    unsigned char h[4];
    if (rc != 0 || (rc = read_n((char *)h, 4, deadline)) != 0)
        return call_failed(rc, err, errlen);
    uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    char *buf = n <= MGR_MAX_FRAME ? malloc(n ? n : 1) : NULL;
    if (buf == NULL)
        return call_failed(-2, err, errlen);
    if ((rc = read_n(buf, n, deadline)) != 0) {
        free(buf);
        return call_failed(rc, err, errlen);
    }
    /* The unpacked strings point into buf: it lives until the next call. */
    static char *reply_buf;
    free(reply_buf);
    reply_buf = buf;
    msgpack_unpacked_init(reply);
    bool ok = msgpack_unpack_next(reply, buf, n, NULL) == MSGPACK_UNPACK_SUCCESS;
    if (!ok) {
        msgpack_unpacked_destroy(reply);
        snprintf(err, errlen, "pb.manager: a malformed reply");
        return -1;
    }
    return 0;
}
