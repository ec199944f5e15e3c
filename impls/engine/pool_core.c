/*
 * pool_core.c: the pool's life: create, close, terminate, join, destroy,
 * and what a caller may ask about a running pool.
 *
 * States follow CPython: RUN, then CLOSE (no new work, queued work runs) or
 * TERMINATE (workers killed, unfinished jobs failed); join waits for the
 * end, and is refused while the pool still runs ("Pool is still running").
 *
 * pool_create forks the fork server first, while the caller has a single
 * thread (it checks), then starts the two threads (the task handler,
 * pool_taskq.c, and the result handler, pool_result_handler.c) and asks the
 * fork server for the workers. With start methods fork and spawn a launcher
 * thread (pool_launcher.c) stands in for the fork server, speaking its
 * protocol, and the caller may have threads. pool_destroy leaves no
 * process, descriptor or allocation behind.
 *
 * Every wait here has an end: terminate and join wait for the fork server's
 * news of the workers, which the result handler bounds (pool_watch.c: a
 * fork server that owes a reply past POOL_FS_REPLY_S is killed, and the
 * pool is broken, which ends these waits); join's wait for the job table
 * ends when the jobs do (a time limit bounds each task), or at once on a
 * broken or interrupted pool.
 *
 * pool_interrupt_all (for SIGINT and SIGTERM handlers) reaches every live
 * pool through a fixed table of descriptors, written only by create and
 * destroy, and read by the handler with nothing but atomics and write(2).
 */
#include "pool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- lifecycle -------------------------------------------------------------- */

void pool_options_default(pool_options *opt)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    *opt = (pool_options){.workers = n > 0 ? (int)n : 1};
}

/* ThreadSanitizer's runtime runs a background thread of its own, which
 * holds none of our locks; every other build must be single-threaded. */
#if defined(__SANITIZE_THREAD__)
#define POOL_OWN_THREADS 2
#else
#define POOL_OWN_THREADS 1
#endif

/* Threads of this process, from /proc/self/task. */
static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int check_options(const pool_options *opt, int *init_task)
{
    if (opt->workers < 1)
        return pool_seterr(POOL_EINVAL, "pool_create: workers must be at least 1 (got %d)",
                           opt->workers);
    if (opt->workers > 4096)
        return pool_seterr(POOL_EINVAL, "pool_create: workers must be at most 4096 (got %d)",
                           opt->workers);
    if (opt->maxtasksperchild < 0)
        return pool_seterr(POOL_EINVAL,
                           "pool_create: maxtasksperchild must be 0 (never) or more (got %ld)",
                           opt->maxtasksperchild);
    if (opt->imap_window < 0)
        return pool_seterr(POOL_EINVAL, "pool_create: imap_window must be 0 (default) or more");
    if (!(opt->task_timeout >= 0) || opt->task_timeout > 1e9)
        return pool_seterr(POOL_EINVAL, "pool_create: task_timeout must be 0 (no limit) or a "
                           "number of seconds up to 1e9 (got %g)", opt->task_timeout);
    *init_task = -1;
    if (opt->initializer) {
        *init_task = pool_task_index(opt->initializer);
        if (*init_task < 0)
            return pool_seterr(POOL_EINVAL, "pool_create: unknown initializer task '%s'",
                               opt->initializer);
        if (opt->initargs &&
            pool_msg_check_value(opt->initargs, opt->initargs_len, true, "initargs") != POOL_OK)
            return POOL_EINVAL;
    }
    if (opt->start_method < POOL_START_FORKSERVER || opt->start_method > POOL_START_SPAWN)
        return pool_seterr(POOL_EINVAL, "pool_create: start_method must be "
                           "POOL_START_FORKSERVER, POOL_START_FORK or POOL_START_SPAWN (got %d)",
                           opt->start_method);
    if (opt->start_method == POOL_START_SPAWN &&
        (opt->spawn_argv == NULL || opt->spawn_argv[0] == NULL))
        return pool_seterr(POOL_EINVAL, "pool_create: start method spawn needs spawn_argv "
                           "(the worker program to exec)");
    if (pool_start_method_check(opt->start_method, opt->transport) != POOL_OK)
        return POOL_EINVAL;
    /* A transport whose workers are not forked (MPI ranks) forks nothing:
     * threads are harmless, and a worker cannot be killed nor replaced. */
    const pool_transport_ops *ops = pool_transport_pick(opt->transport);
    if (ops && ops->start_workers) {
        if (opt->maxtasksperchild > 0)
            return pool_seterr(POOL_EINVAL, "pool_create: maxtasksperchild cannot mean anything "
                               "on the %s transport: a worker is not replaced (an MPI rank "
                               "lives as long as the job); set it to 0", ops->name);
        if (opt->task_timeout > 0)
            return pool_seterr(POOL_EINVAL, "pool_create: task_timeout cannot be kept on the %s "
                               "transport: the limit kills and replaces a worker, and killing "
                               "an MPI rank ends the whole job; set it to 0", ops->name);
        return POOL_OK;
    }
    if (opt->start_method != POOL_START_FORKSERVER)
        return POOL_OK; /* the launcher forks from a thread: threads are the point */
    int threads = count_threads();
    /* A thread just joined (the previous pool's handlers) can still be
     * listed for a moment: the kernel wakes pthread_join as the thread
     * exits, before it is released. Look again for up to 200 ms. */
    for (int i = 0; i < 200 && threads > POOL_OWN_THREADS; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        threads = count_threads();
    }
    if (threads > POOL_OWN_THREADS)
        return pool_seterr(POOL_ESTATE,
                           "pool_create: this process has %d threads; create pools before "
                           "starting threads (a fork would copy locks other threads hold)",
                           threads - POOL_OWN_THREADS + 1);
    return POOL_OK;
}

static void pool_free(pool *p)
{
    pool_taskq_clear(p);
    if (p->ws)
        for (int i = 0; i < p->nworkers; i++)
            free(p->ws[i].buf);
    free(p->ws);
    free(p->pids);
    free(p->spawn_at);
    free(p->tab);
    pool_unobserved_unref(p->unobs);
    free(p->trace);
    free(p->trace_hold);
    free(p->sent);
    free(p->cfg.initargs);
    if (p->cfg.spawn_argv)
        for (char **a = p->cfg.spawn_argv; *a; a++)
            free(*a);
    free(p->cfg.spawn_argv);
    if (p->cfg.shm_fd >= 0)
        close(p->cfg.shm_fd);
    for (int i = 0; i < 2; i++)
        if (p->wake_result[i] >= 0)
            close(p->wake_result[i]);
    if (p->ctl_fd >= 0)
        close(p->ctl_fd);
    if (p->tx)
        p->tx->ops->destroy(p->tx); /* after the threads that used it have ended */
    if (p->slots)
        munmap(p->slots, p->slots_size);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    pthread_cond_destroy(&p->task_cond);
    free(p);
}

/* The slot records: anonymous shared memory, inherited by fork; with spawn
 * a memfd the workers map (passed by descriptor), the initializer's
 * arguments after the slots. NULL on failure. */
static struct pool_slot_shm *map_slots(pool *p, const pool_options *opt)
{
    if (opt->start_method == POOL_START_SPAWN) {
        size_t args = opt->initializer && opt->initargs ? opt->initargs_len : 0;
        size_t slots = p->slots_size;
        p->slots_size += args;
        int fd = memfd_create("poolbench-pool", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t)p->slots_size) != 0) {
            if (fd >= 0)
                close(fd);
            return NULL;
        }
        void *m = mmap(NULL, p->slots_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return NULL;
        }
        p->cfg.shm_fd = fd;
        p->cfg.shm_size = p->slots_size;
        if (args)
            memcpy((char *)m + slots, opt->initargs, args);
        return m;
    }
    void *m = mmap(NULL, p->slots_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* Allocates a pool and what it owns in memory, the shared memory with its
 * queue lock included; every descriptor starts at -1. */
static pool *pool_alloc(const pool_options *opt)
{
    pool *p = calloc(1, sizeof *p);
    if (p == NULL) {
        pool_seterr(POOL_ESYS, "pool_create: out of memory");
        return NULL;
    }
    p->opt = *opt;
    p->opt.initializer = NULL; /* not owned; the index is kept in cfg */
    p->nworkers = opt->workers;
    p->ctl_fd = p->cfg.shm_fd = -1;
    p->wake_result[0] = p->wake_result[1] = -1;
    pthread_mutex_init(&p->lock, NULL);
    pool_cond_init(&p->cond);
    pool_cond_init(&p->task_cond);
    p->tab_cap = 64;
    p->tab = calloc(p->tab_cap, sizeof *p->tab);
    p->ws = calloc((size_t)p->nworkers, sizeof *p->ws);
    p->pids = calloc((size_t)p->nworkers, sizeof *p->pids);
    p->spawn_at = calloc((size_t)p->nworkers, sizeof *p->spawn_at);
    p->slots_size = (size_t)p->nworkers * sizeof(struct pool_slot_shm);
    p->slots = map_slots(p, opt);
    p->unobs = pool_unobserved_new();
    if (p->tab == NULL || p->ws == NULL || p->pids == NULL || p->spawn_at == NULL ||
        p->slots == NULL || p->unobs == NULL) {
        pool_free(p);
        pool_seterr(POOL_ESYS, "pool_create: out of memory");
        return NULL;
    }
    /* The transport's shared parts (its queue lock, its rings) are made
     * here, before the fork server forks, so that every worker has them. */
    const pool_transport_ops *ops = pool_transport_pick(opt->transport);
    if (ops == NULL || (p->tx = ops->create(p->nworkers, p->slots)) == NULL) {
        pool_free(p);
        return NULL;
    }
    return p;
}

/* Copies a NULL-terminated argv. NULL when out of memory. */
static char **copy_argv(const char *const *argv)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **c = calloc(n + 1, sizeof *c);
    for (size_t i = 0; c && i < n; i++)
        if ((c[i] = strdup(argv[i])) == NULL) {
            while (i-- > 0)
                free(c[i]);
            free(c);
            return NULL;
        }
    return c;
}

/* Start methods fork and spawn: the launcher thread stands in for the fork
 * server. The workers' ends of the transport stay open here (the launcher
 * passes them to each worker it forks or spawns) until the pool is freed. */
static int start_launcher(pool *p, const pool_options *opt)
{
    if (opt->start_method == POOL_START_SPAWN) {
        p->cfg.registry_hash = pool_registry_hash();
        p->cfg.spawn_argv = copy_argv(opt->spawn_argv);
        if (p->cfg.spawn_argv == NULL)
            return pool_seterr(POOL_ESYS, "pool_create: out of memory");
    }
    p->fs_thread_mode = true;
    if (pool_launcher_start(&p->cfg, p->nworkers, &p->ctl_fd, &p->fs_thread) != 0)
        return POOL_ESYS;
    /* The first workers are forked: a STARTED is owed for each (the result
     * handler, not yet running, counts them in). */
    for (int i = 0; i < p->nworkers; i++) {
        p->pending++;
        p->spawn_at[i] = pool_now();
    }
    return POOL_OK;
}

/* Fills the workers' configuration; then forks the fork server, which
 * takes the workers' ends of the transport with it. */
static int start_forkserver(pool *p, const pool_options *opt, int init_task)
{
    if (opt->initializer && opt->initargs) {
        p->cfg.initargs = malloc(opt->initargs_len);
        if (p->cfg.initargs == NULL)
            return pool_seterr(POOL_ESYS, "pool_create: out of memory");
        memcpy(p->cfg.initargs, opt->initargs, opt->initargs_len);
        p->cfg.initargs_len = opt->initargs_len;
    }
    p->cfg.tx = p->tx;
    p->cfg.init_task = init_task;
    p->cfg.maxtasks = opt->maxtasksperchild;
    p->cfg.timed = opt->trace || opt->task_timeout > 0;
    p->cfg.start_method = opt->start_method;
    if (opt->start_method != POOL_START_FORKSERVER)
        return start_launcher(p, opt);

    if (p->tx->ops->start_workers) { /* workers that are not forked: no fork server */
        p->fs_pid = 0;
        return p->tx->ops->start_workers(p->tx, &p->cfg, &p->ctl_fd);
    }
    /* This process has one thread (checked): a safe fork. */
    p->fs_pid = pool_forkserver_start(&p->cfg, p->nworkers, &p->ctl_fd);
    p->tx->ops->in_parent(p->tx); /* only the fork server and its workers read */
    return p->fs_pid < 0 ? POOL_ESYS : POOL_OK;
}

/* Starts the task and result handler threads (and the result handler's
 * wake-up pipe, made after the fork server's fork so it does not inherit it). */
static int start_threads(pool *p)
{
    if (pipe2(p->wake_result, O_CLOEXEC | O_NONBLOCK) != 0)
        return pool_seterr(POOL_ESYS, "pool_create: pipe: %s", strerror(errno));
    int rc = pool_taskq_start(p);
    if (rc != POOL_OK)
        return rc;
    if (pthread_create(&p->result_thread, NULL, pool_result_handler, p) != 0) {
        pool_taskq_stop(p);
        return pool_seterr(POOL_ESYS, "pool_create: cannot start the result handler");
    }
    return POOL_OK;
}

pool *pool_create(const pool_options *opt)
{
    pool_options def;
    if (opt == NULL) {
        pool_options_default(&def);
        opt = &def;
    }
    int init_task = -1;
    pool_registry_init();
    if (check_options(opt, &init_task) != POOL_OK)
        return NULL;
    pool *p = pool_alloc(opt);
    if (p == NULL)
        return NULL; /* pool_last_error says why */
    /* A fork copies the page tables of every page the caller has touched,
     * and the fork server passes its size on to each worker it forks: memory
     * the caller freed but its allocator kept (a heap that cannot shrink
     * from the top) would cost every fork ~4 ms per 256 MiB (bench/startup).
     * Handing it back first costs a walk of the heap's free lists. */
    malloc_trim(0);
    if (start_forkserver(p, opt, init_task) != POOL_OK) {
        pool_free(p);
        return NULL;
    }
    /* Before the result handler starts, which reads it: interrupts before
     * this pool was made are not its own. */
    p->intr_seen = pool_interrupts_so_far();
    if (start_threads(p) != POOL_OK) {
        close(p->ctl_fd); /* the fork server (or launcher) sees EOF and exits */
        p->ctl_fd = -1;
        if (p->fs_thread_mode)
            pthread_join(p->fs_thread, NULL);
        else if (p->fs_pid > 0)
            waitpid(p->fs_pid, NULL, 0);
        pool_free(p);
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    if (!p->fs_thread_mode) /* fork, spawn: the launcher has started them */
        for (int i = 0; i < p->nworkers; i++)
            pool_respawn(p, i);
    pthread_mutex_unlock(&p->lock);
    pool_live_add(p);
    return p;
}

int pool_close(pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->state == POOL_RUN)
        p->state = POOL_CLOSE;
    pthread_mutex_unlock(&p->lock);
    return POOL_OK;
}

int pool_terminate(pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->state = POOL_TERMINATE;
    pool_fs_request(p, POOL_FS_KILLALL); /* the workers' EXITED is owed, within a bound */
    size_t n;
    pool_job **v = pool_jobs_steal(p, &n);
    pool_taskq_clear(p);
    pthread_mutex_unlock(&p->lock);
    pool_jobs_abort(v, n, POOL_ETERMINATED, "the pool was terminated before the task finished");
    if (pool_on_result_thread(p))
        return POOL_OK; /* from a callback: the result handler reaps later */
    pthread_mutex_lock(&p->lock);
    /* Ends: the workers' EXITED arrive, or the fork server does not send
     * them in time and the result handler kills it (fs_gone). */
    while ((p->live > 0 || p->pending > 0) && !p->fs_gone)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return POOL_OK;
}

/* Waits until every worker has ended; kills them if they take longer than
 * `grace` seconds (a task stuck after close). Caller holds the lock. */
static void wait_workers(pool *p, double grace)
{
    double deadline = pool_deadline(grace);
    while ((p->live > 0 || p->pending > 0) && !p->fs_gone) {
        if (pool_cond_wait_until(&p->cond, &p->lock, deadline) == ETIMEDOUT) {
            pool_fs_request(p, POOL_FS_KILLALL);
            deadline = -1; /* bounded from here by the result handler's watch */
        }
    }
}

/* Lets the workers finish and end (caller holds the lock): after a close,
 * the queued work, then one EXIT message each; after a terminate they are
 * already being killed. Then the fork server is told to quit. */
static void end_workers(pool *p)
{
    /* Ends when the jobs do (each task bounded by task_timeout if set), or
     * at once when the pool breaks or is interrupted (the table empties). */
    while (p->state == POOL_CLOSE && p->tab_len > 0 && !p->fs_gone)
        pthread_cond_wait(&p->cond, &p->lock);
    p->shutting_down = true;
    if (p->state == POOL_CLOSE && !p->broken)
        pool_taskq_push_exits(p);
    wait_workers(p, 10.0);
    pool_fs_request(p, POOL_FS_QUIT); /* its socket's close is owed, within a bound */
}

int pool_join(pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->state == POOL_RUN) {
        pthread_mutex_unlock(&p->lock);
        return pool_seterr(POOL_ESTATE, "pool_join: the pool is still running "
                           "(close or terminate it first)");
    }
    if (p->joined) {
        pthread_mutex_unlock(&p->lock);
        return POOL_OK;
    }
    if (pool_on_result_thread(p)) {
        pthread_mutex_unlock(&p->lock);
        return pool_seterr(POOL_ESTATE, "pool_join: called from a callback, it would wait "
                           "for the thread it runs on");
    }
    end_workers(p);
    pthread_mutex_unlock(&p->lock);

    pool_taskq_stop(p);
    /* Returns once the fork server's socket closes (after QUIT, or when the
     * watch kills a fork server that does not answer); the result handler
     * reaps the fork server then (fs_ended). */
    pthread_join(p->result_thread, NULL);
    pthread_mutex_lock(&p->lock);
    p->joined = true;
    pthread_mutex_unlock(&p->lock);
    return POOL_OK;
}

void pool_destroy(pool *p)
{
    if (p == NULL)
        return;
    if (pool_on_result_thread(p))
        pool_panic("pool_destroy: called from a callback of the same pool");
    pthread_mutex_lock(&p->lock);
    bool running = p->state == POOL_RUN;
    pthread_mutex_unlock(&p->lock);
    if (running)
        pool_terminate(p);
    pool_join(p);
    pool_live_remove(p); /* before its wake-up pipe is closed */
    pool_free(p);
}

/* ---- introspection ----------------------------------------------------------- */

int pool_workers(const pool *p)
{
    return p->nworkers;
}

const char *pool_transport_name(const pool *p)
{
    return p->tx->ops->name;
}

pid_t pool_forkserver_pid(const pool *p)
{
    return p->fs_pid;
}

int pool_worker_pids(pool *p, pid_t *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->nworkers && n < max; i++)
        if (p->pids[i] != 0)
            out[n++] = p->pids[i];
    pthread_mutex_unlock(&p->lock);
    return n;
}

pid_t pool_job_holder(pool *p, uint64_t id)
{
    for (int i = 0; i < p->nworkers; i++)
        if (atomic_load(&pool_slot(p, i)->job) == id)
            return atomic_load(&pool_slot(p, i)->pid);
    return 0;
}

/* ---- interrupts: pool_interrupt_all, from a signal handler --------------------- */

/*
 * The live pools, as the write end of each one's result-handler wake-up
 * pipe, plus one (0: a free entry). Entries are claimed and released with
 * atomics by create and destroy; the signal handler only loads them and
 * write(2)s, which is async-signal-safe. A pool beyond the table's size is
 * not reached by interrupts (a program with more than POOL_LIVE_MAX pools
 * at once must interrupt the rest with pool_terminate).
 */
#define POOL_LIVE_MAX 64
static _Atomic int live_fd[POOL_LIVE_MAX];
/* Signal handlers inside pool_interrupt_all now: a destroy waits for it to
 * drop to 0 after releasing its entry, so no handler writes to a closed
 * (or reused) descriptor. */
static atomic_int live_writers;
/* How many interrupts so far: a pool created after one is not interrupted
 * by it, and one whose wake-up byte was lost (a full pipe) still sees it. */
static atomic_uint interrupts;

bool pool_interrupt_pending(const pool *p)
{
    return atomic_load(&interrupts) != p->intr_seen;
}

unsigned pool_interrupts_so_far(void)
{
    return atomic_load(&interrupts);
}

void pool_live_add(pool *p)
{
    for (int i = 0; i < POOL_LIVE_MAX; i++) {
        int empty = 0;
        if (atomic_compare_exchange_strong(&live_fd[i], &empty, p->wake_result[1] + 1))
            return;
    }
}

void pool_live_remove(pool *p)
{
    for (int i = 0; i < POOL_LIVE_MAX; i++) {
        int mine = p->wake_result[1] + 1;
        if (atomic_compare_exchange_strong(&live_fd[i], &mine, 0))
            break;
    }
    /* A handler that loaded the entry before it was released is done within
     * a write(2); the bound is only a guard. */
    double until = pool_now() + 1.0;
    while (atomic_load(&live_writers) > 0 && pool_now() < until)
        sched_yield();
}

void pool_interrupt_all(void)
{
    int saved = errno; /* a signal handler must leave errno as it found it */
    atomic_fetch_add(&live_writers, 1);
    atomic_fetch_add(&interrupts, 1);
    for (int i = 0; i < POOL_LIVE_MAX; i++) {
        int fd = atomic_load(&live_fd[i]) - 1;
        if (fd >= 0 && write(fd, "i", 1) < 0) {
            /* full: the result handler has wake-ups to read already */
        }
    }
    atomic_fetch_sub(&live_writers, 1);
    errno = saved;
}

/* ---- start methods ------------------------------------------------------------ */

static const char *const method_names[] = {"forkserver", "fork", "spawn"};

const char *pool_start_method_name(int method)
{
    return method >= 0 && method <= POOL_START_SPAWN ? method_names[method] : "?";
}

int pool_start_method_parse(const char *name)
{
    for (int i = 0; name && i <= POOL_START_SPAWN; i++)
        if (strcmp(name, method_names[i]) == 0)
            return i;
    return -1;
}
