/*
 * pool_tasks_builtin.c: the tasks every pool knows, for scenarios and tests.
 *
 *   sleep(s)      waits s seconds: the stand-in for I/O-bound work, which shows
 *                 concurrency phenomena on any number of cores;
 *   spin(s)       burns CPU for s seconds: CPU-bound work, whose speed-up is
 *                 capped by the core count;
 *   square(x), identity(x): trivial work, to measure per-task overhead;
 *   fail(msg), die(code): failures, to see how each API reports them;
 *   getpid(), init_count(): who ran the task, and was it initialized once.
 */
#include "pool_internal.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int pool_worker_init_runs;

static int arg_number(const msgpack_object_array *args, unsigned i, double *out)
{
    if (args->size <= i)
        return -1;
    const msgpack_object *o = &args->ptr[i];
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
    default: return -1;
    }
}

static int task_sleep(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    double s;
    if (arg_number(args, 0, &s) != 0 || !(s >= 0) || s > 1e6)
        return pool_task_fail(ctx, "sleep: expects a number of seconds from 0 to 1e6");
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    msgpack_pack_nil(out);
    return 0;
}

static int task_spin(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    double s;
    if (arg_number(args, 0, &s) != 0 || !(s >= 0) || s > 1e6)
        return pool_task_fail(ctx, "spin: expects a number of seconds from 0 to 1e6");
    msgpack_pack_uint64(out, pool_spin(s));
    return 0;
}

static int task_square(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    if (args->size != 1)
        return pool_task_fail(ctx, "square: expects one number");
    const msgpack_object *o = &args->ptr[0];
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        int64_t v = o->via.i64, r;
        if (__builtin_mul_overflow(v, v, &r))
            return pool_task_fail(ctx, "square: %lld * %lld overflows", (long long)v, (long long)v);
        msgpack_pack_int64(out, r);
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
        msgpack_pack_double(out, o->via.f64 * o->via.f64);
        return 0;
    }
    return pool_task_fail(ctx, "square: expects one number");
}

static int task_identity(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    if (args->size != 1)
        return pool_task_fail(ctx, "identity: expects one value");
    msgpack_pack_object(out, args->ptr[0]);
    return 0;
}

static int task_fail(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    (void)out;
    if (args->size >= 1 && args->ptr[0].type == MSGPACK_OBJECT_STR)
        return pool_task_fail(ctx, "%.*s", (int)args->ptr[0].via.str.size, args->ptr[0].via.str.ptr);
    return pool_task_fail(ctx, "fail: task failed on purpose");
}

static int task_die(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    (void)out;
    double code;
    if (arg_number(args, 0, &code) != 0 || code == 0 || fabs(code) > 255)
        return pool_task_fail(ctx, "die: expects an exit status 1..255 or a signal -1..-64");
    if (code > 0)
        _exit((int)code); /* _exit: a worker must not run its parent's atexit handlers */
    signal((int)-code, SIG_DFL);
    raise((int)-code);
    _exit(128 + (int)-code); /* a signal that does not kill (SIGCHLD...) still ends the worker */
}

static int task_getpid(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    (void)args;
    (void)ctx;
    msgpack_pack_int64(out, getpid());
    return 0;
}

static int task_init_count(const msgpack_object_array *args, msgpack_packer *out,
                           pool_task_ctx *ctx)
{
    (void)args;
    (void)ctx;
    msgpack_pack_int(out, pool_worker_init_runs);
    return 0;
}

/* Called once, from the registry, before any user registration. */
void pool_builtin_register(void)
{
    pool_task_register_raw("sleep", task_sleep, NULL);
    pool_task_register_raw("spin", task_spin, NULL);
    pool_task_register_raw("square", task_square, NULL);
    pool_task_register_raw("identity", task_identity, NULL);
    pool_task_register_raw("fail", task_fail, NULL);
    pool_task_register_raw("die", task_die, NULL);
    pool_task_register_raw("getpid", task_getpid, NULL);
    pool_task_register_raw("init_count", task_init_count, NULL);
}
