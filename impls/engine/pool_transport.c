/*
 * pool_transport.c: what the transports share (pool_transport.h): choosing
 * one by kind or name, the claim of rule 2 in a worker's slot record, the
 * robust process-shared lock both local transports take to read the shared
 * queue, and the poll over worker pipes both use to sleep on the result
 * side.
 */
#include "pool_internal.h"
#include "pool_transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pool_transport_parse(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "socket") == 0)
        return POOL_TRANSPORT_SOCKET;
    if (strcmp(name, "shm") == 0)
        return POOL_TRANSPORT_SHM;
    if (strcmp(name, "mpi") == 0)
        return POOL_TRANSPORT_MPI;
    return -1;
}

/* Registered by a binary linked with MPI (pool_transport.h). */
static const pool_transport_ops *mpi_ops;

void pool_transport_register_mpi(const pool_transport_ops *ops)
{
    mpi_ops = ops;
}

int pool_transport_default(void)
{
    const char *env = getenv("POOLBENCH_TRANSPORT");
    if (env == NULL || env[0] == '\0')
        return POOL_TRANSPORT_SOCKET;
    return pool_transport_parse(env);
}

const pool_transport_ops *pool_transport_pick(enum pool_transport_kind kind)
{
    if (kind == POOL_TRANSPORT_DEFAULT) {
        int k = pool_transport_default();
        if (k < 0) {
            pool_seterr(POOL_EINVAL, "pool_create: POOLBENCH_TRANSPORT='%s' is not a "
                        "transport (valid: socket, shm); and mpi in the poolbench command under "
                        "mpirun", getenv("POOLBENCH_TRANSPORT"));
            return NULL;
        }
        kind = (enum pool_transport_kind)k;
    }
    if (kind == POOL_TRANSPORT_SOCKET)
        return &pool_transport_socket_ops;
    if (kind == POOL_TRANSPORT_SHM)
        return &pool_transport_shm_ops;
    if (kind == POOL_TRANSPORT_MPI) {
        if (mpi_ops == NULL)
            pool_seterr(POOL_EINVAL, "pool_create: the MPI transport is not in this program "
                        "(the poolbench command has it: mpirun -n N+1 poolbench run FILE "
                        "--transport mpi, docs/mpi.md)");
        return mpi_ops;
    }
    pool_seterr(POOL_EINVAL, "pool_create: transport %d is not a transport (valid: "
                "POOL_TRANSPORT_SOCKET, POOL_TRANSPORT_SHM)", (int)kind);
    return NULL;
}

int pool_start_method_check(int start_method, enum pool_transport_kind transport)
{
    const pool_transport_ops *ops = pool_transport_pick(transport);
    if (ops == NULL)
        return POOL_EINVAL;
    /* The fork server and fork hand a worker the whole transport by
     * inheritance; spawn only what spawn_fds names; a transport that starts
     * its own workers (MPI's ranks) takes no start method at all. */
    static const char works[] = "spawn works with socket; fork and forkserver with socket and "
                                "shm; mpi with forkserver only, the default";
    if (start_method != POOL_START_FORKSERVER && ops->start_workers != NULL)
        return pool_seterr(POOL_EINVAL, "pool_create: start method %s does not work with the %s "
                           "transport, whose workers are not forked (%s)",
                           pool_start_method_name(start_method), ops->name, works);
    if (start_method == POOL_START_SPAWN && ops->spawn_fds == NULL)
        return pool_seterr(POOL_EINVAL, "pool_create: start method spawn does not work with "
                           "the %s transport (%s)", ops->name, works);
    return POOL_OK;
}

void pool_shared_mutex_init(pthread_mutex_t *m)
{
    /* In shared memory, and it must survive its holder's death. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(m, &ma);
    pthread_mutexattr_destroy(&ma);
}

bool pool_shared_mutex_lock_or_exit(pthread_mutex_t *m)
{
    int rc = pthread_mutex_lock(m);
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(m); /* its holder died; the caller repairs the queue */
        return true;
    }
    if (rc != 0)
        _exit(POOL_EXIT_QUEUE_LOCK);
    return false;
}

int pool_shared_mutex_trylock_or_exit(pthread_mutex_t *m)
{
    int rc = pthread_mutex_trylock(m);
    if (rc == EBUSY)
        return 0;
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(m); /* as pool_shared_mutex_lock_or_exit */
        return 1;
    }
    if (rc != 0)
        _exit(POOL_EXIT_QUEUE_LOCK);
    return 1;
}

void pool_slot_claim(struct pool_slot_shm *me, const struct pool_wire_hdr *hdr)
{
    /* No item runs yet; job last, so a reader that sees the job sees the rest. */
    atomic_store(&me->t_start, 0.0);
    atomic_store(&me->chunk, hdr->chunk);
    atomic_store(&me->first, hdr->first);
    atomic_store(&me->item, hdr->first);
    atomic_store(&me->job, hdr->job);
}

void pool_grow_or_exit(char **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return;
    free(*buf);
    *cap = need;
    *buf = malloc(*cap ? *cap : 1);
    if (*buf == NULL)
        _exit(POOL_EXIT_NOMEM);
}

int pool_transport_poll(const int *fds, int nfds, struct pollfd *extra, int nextra,
                        int timeout_ms, bool *ready)
{
    struct pollfd pf[nextra + nfds + 1];
    int slot_of[nextra + nfds + 1];
    int n = 0;
    for (int i = 0; i < nextra; i++)
        pf[n++] = extra[i];
    for (int i = 0; i < nfds; i++)
        if (fds[i] >= 0) {
            slot_of[n] = i;
            pf[n++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        }
    int rc = poll(pf, (nfds_t)n, timeout_ms);
    if (rc <= 0)
        return rc;
    for (int i = 0; i < nextra; i++)
        extra[i].revents = pf[i].revents;
    for (int k = nextra; k < n; k++)
        if (pf[k].revents)
            ready[slot_of[k]] = true;
    return rc;
}

