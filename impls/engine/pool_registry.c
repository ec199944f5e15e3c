/*
 * pool_registry.c: the table of named tasks.
 *
 * A worker cannot receive a C function pointer from its parent, but it can
 * receive a number: workers are forked from a copy of the parent, so they
 * hold the same table, and a task message names its task by index. That is
 * why tasks must be registered before pool_create(): the fork server copies
 * the table as it is at that moment, and every worker is forked from it.
 * A spawned worker (start method spawn) inherits no table: its program
 * registers the same tasks in the same order, and pool_registry_hash lets
 * it check that the indexes mean the same names as in its parent.
 */
#include "pool_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct pool_task_entry {
    char name[POOL_TASK_NAME_MAX];
    pool_task_fn fn;
    void *udata;
};

/* Guarded by registry_lock for writers; readers run after registration. */
static struct pool_task_entry registry[POOL_MAX_TASKS];
static unsigned registry_len;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void registry_init(void)
{
    pool_builtin_register();
}

static int registry_find(const char *name)
{
    for (unsigned i = 0; i < registry_len; i++)
        if (strcmp(registry[i].name, name) == 0)
            return (int)i;
    return -1;
}

int pool_task_register(const char *name, pool_task_fn fn, void *udata)
{
    /* Built-ins first, so that a user's task of the same name replaces them. */
    pthread_once(&registry_once, registry_init);
    return pool_task_register_raw(name, fn, udata);
}

int pool_task_register_raw(const char *name, pool_task_fn fn, void *udata)
{
    if (name == NULL || fn == NULL || name[0] == '\0')
        return pool_seterr(POOL_EINVAL, "pool_task_register: a task needs a name and a function");
    if (strlen(name) >= POOL_TASK_NAME_MAX)
        return pool_seterr(POOL_EINVAL, "pool_task_register: task name '%s' is longer than %d bytes",
                           name, POOL_TASK_NAME_MAX - 1);
    pthread_mutex_lock(&registry_lock);
    int i = registry_find(name);
    if (i < 0) {
        if (registry_len == POOL_MAX_TASKS) {
            pthread_mutex_unlock(&registry_lock);
            return pool_seterr(POOL_EINVAL, "pool_task_register: more than %d tasks", POOL_MAX_TASKS);
        }
        i = (int)registry_len++;
        snprintf(registry[i].name, sizeof registry[i].name, "%s", name);
    }
    registry[i].fn = fn;
    registry[i].udata = udata;
    pthread_mutex_unlock(&registry_lock);
    return POOL_OK;
}

void pool_registry_init(void)
{
    pthread_once(&registry_once, registry_init);
}

uint64_t pool_registry_hash(void)
{
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry_lock);
    uint64_t h = 14695981039346656037ull; /* FNV-1a over the names, each ended by its NUL */
    for (unsigned i = 0; i < registry_len; i++)
        for (const char *c = registry[i].name;; c++) {
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
            if (*c == '\0')
                break;
        }
    pthread_mutex_unlock(&registry_lock);
    return h;
}

unsigned pool_registry_count(void)
{
    pthread_once(&registry_once, registry_init);
    return registry_len;
}

/* The index this thread found last: apply_async names the same task call
 * after call, and one strcmp against it spares the registry's lock and its
 * scan. Safe to read unlocked: this thread found that entry under the lock,
 * and an entry's name never changes once written (registering a name again
 * only replaces its function). Compared by content, not by pointer: the
 * caller's buffer may hold another name next time. */
static _Thread_local int last_found = -1;

int pool_task_index(const char *name)
{
    pthread_once(&registry_once, registry_init);
    if (name == NULL)
        return -1;
    int last = last_found;
    if (last >= 0 && strcmp(registry[last].name, name) == 0)
        return last;
    pthread_mutex_lock(&registry_lock);
    int i = registry_find(name);
    pthread_mutex_unlock(&registry_lock);
    if (i >= 0)
        last_found = i;
    return i;
}

bool pool_task_exists(const char *name)
{
    return pool_task_index(name) >= 0;
}

const char *pool_task_name(unsigned index)
{
    return index < registry_len ? registry[index].name : "?";
}

int pool_task_fail(pool_task_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->errlen, fmt, ap);
    va_end(ap);
    ctx->failed = true;
    return -1;
}

int pool_task_slot(const pool_task_ctx *ctx)
{
    return ctx->slot;
}

void *pool_task_udata(const pool_task_ctx *ctx)
{
    return ctx->udata;
}

bool pool_task_runner_init(struct pool_task_runner *r, unsigned index, int slot, char *err,
                           size_t errlen)
{
    err[0] = '\0';
    if (index >= registry_len) {
        snprintf(err, errlen, "no task with index %u", index);
        return false;
    }
    *r = (struct pool_task_runner){
        .fn = registry[index].fn, .index = index,
        .ctx = {.slot = slot, .udata = registry[index].udata, .err = err, .errlen = errlen},
    };
    return true;
}

void pool_task_runner_no_message(const struct pool_task_runner *r, int rc)
{
    snprintf(r->ctx.err, r->ctx.errlen, "task '%s' failed (returned %d)",
             registry[r->index].name, rc);
}

int pool_task_run(unsigned index, const msgpack_object_array *args, msgpack_packer *out,
                  int slot, char *err, size_t errlen)
{
    struct pool_task_runner r;
    if (!pool_task_runner_init(&r, index, slot, err, errlen))
        return -1;
    return pool_task_runner_run(&r, args, out);
}

int pool_task_call(const char *name, const void *args, size_t args_len, msgpack_sbuffer *out)
{
    int index = pool_task_index(name);
    if (index < 0)
        return pool_seterr(POOL_EINVAL, "unknown task '%s'", name ? name : "(null)");
    int rc = pool_msg_check_value(args, args_len, true, "arguments");
    if (rc != POOL_OK)
        return rc;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_next(&u, args, args_len, &off); /* checked above */
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    char err[1024];
    rc = pool_task_run((unsigned)index, &u.data.via.array, &pk, -1, err, sizeof err);
    msgpack_unpacked_destroy(&u);
    if (rc != 0)
        return pool_seterr(POOL_ETASK, "%s", err);
    return POOL_OK;
}
