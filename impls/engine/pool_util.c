/*
 * pool_util.c: the engine's small shared services: per-thread error
 * messages, the monotonic clock, timed condition waits, and helpers that
 * pack argument arrays.
 *
 * Errors are reported the way dlerror() does: a status code is returned and a
 * sentence is kept per thread, so a caller on any thread can print exactly
 * what went wrong without the engine printing anything itself.
 */
#include "pool_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char pool_errbuf[1024] = "no error";
static _Thread_local int pool_errstatus;

int pool_seterr(int status, const char *fmt, ...)
{
    pool_errstatus = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pool_errbuf, sizeof pool_errbuf, fmt, ap);
    va_end(ap);
    return status;
}

const char *pool_last_error(void)
{
    return pool_errbuf;
}

int pool_last_status(void)
{
    return pool_errstatus;
}

const char *pool_status_name(int status)
{
    switch (status) {
    case POOL_OK: return "POOL_OK";
    case POOL_EINVAL: return "POOL_EINVAL";
    case POOL_ESTATE: return "POOL_ESTATE";
    case POOL_ETIMEDOUT: return "POOL_ETIMEDOUT";
    case POOL_ETASK: return "POOL_ETASK";
    case POOL_EWORKER: return "POOL_EWORKER";
    case POOL_ETERMINATED: return "POOL_ETERMINATED";
    case POOL_ENOTREADY: return "POOL_ENOTREADY";
    case POOL_EEND: return "POOL_EEND";
    case POOL_ESYS: return "POOL_ESYS";
    case POOL_EBROKEN: return "POOL_EBROKEN";
    case POOL_ETIMELIMIT: return "POOL_ETIMELIMIT";
    case POOL_EINTR: return "POOL_EINTR";
    }
    return "POOL_E?";
}

noreturn void pool_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("panic: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* What the engine's own exit statuses mean (pool_internal.h), or NULL. */
static const char *exit_meaning(int code)
{
    switch (code) {
    case POOL_EXIT_QUEUE_LOCK: return "POOL_EXIT_QUEUE_LOCK: the queue lock was unusable";
    case POOL_EXIT_NOMEM: return "POOL_EXIT_NOMEM: out of memory for a task message";
    case POOL_EXIT_QUEUE_CUT: return "POOL_EXIT_QUEUE_CUT: the queue closed mid-message";
    case POOL_EXIT_QUEUE_OVERRUN: return "POOL_EXIT_QUEUE_OVERRUN: a message overran its header";
    case POOL_EXIT_RESULT_PIPE: return "POOL_EXIT_RESULT_PIPE: it could not write its result";
    case POOL_EXIT_BAD_MESSAGE: return "POOL_EXIT_BAD_MESSAGE: an unreadable task message";
    case POOL_EXIT_FS_SETUP: return "POOL_EXIT_FS_SETUP: the fork server could not start";
    case POOL_EXIT_FS_POLL: return "POOL_EXIT_FS_POLL: the fork server's poll failed";
    case POOL_EXIT_INIT_FAILED: return "POOL_EXIT_INIT_FAILED: its initializer failed";
    case POOL_EXIT_REAPED_ELSEWHERE:
        return "POOL_EXIT_REAPED_ELSEWHERE: reaped by another part of the program, status lost";
    case POOL_EXIT_EXEC: return "POOL_EXIT_EXEC: the worker program could not be exec'd";
    case POOL_EXIT_SPAWN_ARG: return "POOL_EXIT_SPAWN_ARG: the spawned worker's argument was bad";
    }
    return NULL;
}

void pool_describe_exit(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status)) {
        snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else if (WIFEXITED(status)) {
        const char *why = exit_meaning(WEXITSTATUS(status));
        if (why)
            snprintf(buf, len, "exited with status %d (%s)", WEXITSTATUS(status), why);
        else
            snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    } else {
        snprintf(buf, len, "ended with wait status %#x", status);
    }
}

double pool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double pool_deadline(double timeout)
{
    return timeout < 0 ? -1.0 : pool_now() + timeout;
}

/* Every condition variable of the engine uses CLOCK_MONOTONIC (see
 * pool_cond_init), so a deadline from pool_now() can be used directly. */
int pool_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, double deadline)
{
    if (deadline < 0)
        return pthread_cond_wait(c, m);
    struct timespec ts;
    ts.tv_sec = (time_t)deadline;
    ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(c, m, &ts);
}

void pool_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

uint64_t pool_spin(double seconds)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    uint64_t loops = 0;
    volatile double x = 1.0;
    do {
        for (int i = 0; i < 1000; i++)
            x = x * 1.0000001 + 1e-9;
        loops++;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 < seconds);
    return loops;
}

int pool_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- packing helpers ---------------------------------------------------- */

void pool_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static msgpack_packer pool_args_begin(msgpack_sbuffer *buf, size_t n)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    return pk;
}

void pool_args0(msgpack_sbuffer *buf)
{
    pool_args_begin(buf, 0);
}

void pool_args_int(msgpack_sbuffer *buf, int64_t i)
{
    msgpack_packer pk = pool_args_begin(buf, 1);
    msgpack_pack_int64(&pk, i);
}

void pool_args_double(msgpack_sbuffer *buf, double d)
{
    msgpack_packer pk = pool_args_begin(buf, 1);
    msgpack_pack_double(&pk, d);
}

void pool_args_str(msgpack_sbuffer *buf, const char *s)
{
    msgpack_packer pk = pool_args_begin(buf, 1);
    pool_pack_str(&pk, s);
}
