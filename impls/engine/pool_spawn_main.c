/*
 * pool_spawn_main.c: the entry point of a spawned worker (start method
 * spawn), in the fresh program the launcher exec'd (pool_launcher.c).
 *
 * The program is the client's (the engine knows nothing of it: poolbench's
 * is `poolbench worker`, which re-loads the scenario so that its Lua tasks
 * exist again). It registers its tasks, then calls pool_worker_spawn_main,
 * which reads the engine's argument, the last of argv:
 *
 *   --pool-worker=RESULT,TRANSPORT,TX0,TX1,SHM,SHMSIZE,SLOT,INIT,INITLEN,MAXTASKS,TIMED,HASH
 *
 * RESULT, TX0, TX1 and SHM are the descriptors the worker inherited (its
 * result pipe, the transport's own, named by the transport's spawn_fds and
 * given back to its wk_open, the memfd of the pool's slot records); the
 * initializer's packed arguments, INITLEN bytes, follow the slots in
 * that memory. TIMED is 1 when the worker reads the clock for each item
 * (the pool traces or keeps a time limit), else 0. HASH is the parent's registry hash: task messages name tasks
 * by index, so the program must have registered the same names in the same
 * order, and a worker whose registry differs fails as an initializer does
 * (the pool is broken, with a message that says so) instead of running the
 * wrong task.
 */
#include "pool_internal.h"
#include "pool_transport.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SPAWN_ARG "--pool-worker="

const char *pool_worker_spawn_arg(int argc, char **argv)
{
    if (argc < 1 || argv[argc - 1] == NULL)
        return NULL;
    const char *a = argv[argc - 1];
    return strncmp(a, SPAWN_ARG, strlen(SPAWN_ARG)) == 0 ? a + strlen(SPAWN_ARG) : NULL;
}

/* Parses the argument into cfg, slot and result_fd; maps the slot records
 * and rebuilds the worker's side of the transport. */
static int spawn_parse(const char *a, struct pool_worker_cfg *cfg, int *slot, int *result_fd)
{
    unsigned long long hash;
    char name[16];
    int tx[POOL_SPAWN_FDS];
    int n = 0, timed = -1;
    if (sscanf(a, "%d,%15[a-z],%d,%d,%d,%zu,%d,%d,%zu,%ld,%d,%llx%n", result_fd, name, &tx[0],
               &tx[1], &cfg->shm_fd, &cfg->shm_size, slot, &cfg->init_task, &cfg->initargs_len,
               &cfg->maxtasks, &timed, &hash, &n) != 12 || a[n] != '\0' ||
        (timed != 0 && timed != 1) ||
        cfg->shm_size < cfg->initargs_len + sizeof(struct pool_slot_shm))
        return -1;
    cfg->timed = timed == 1;
    int kind = pool_transport_parse(name);
    const pool_transport_ops *ops = kind > 0 ? pool_transport_pick(kind) : NULL;
    if (ops == NULL || ops->wk_open == NULL)
        return -1;
    cfg->registry_hash = hash;
    void *m = mmap(NULL, cfg->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, cfg->shm_fd, 0);
    if (m == MAP_FAILED)
        return -1;
    close(cfg->shm_fd); /* the mapping stays */
    size_t slots = cfg->shm_size - cfg->initargs_len;
    cfg->initargs = cfg->initargs_len ? (char *)m + slots : NULL;
    cfg->shm_fd = -1;
    cfg->start_method = POOL_START_SPAWN;
    cfg->tx = ops->wk_open(tx, m, (int)(slots / sizeof(struct pool_slot_shm)));
    return cfg->tx != NULL ? 0 : -1;
}

int pool_worker_spawn_main(int argc, char **argv)
{
    const char *a = pool_worker_spawn_arg(argc, argv);
    struct pool_worker_cfg cfg = {0};
    int slot = -1, result_fd = -1;
    if (a == NULL || spawn_parse(a, &cfg, &slot, &result_fd) != 0) {
        fprintf(stderr, "pool_worker_spawn_main: not a spawned worker's argument: %s\n",
                argc > 0 && argv[argc - 1] ? argv[argc - 1] : "(none)");
        return 2;
    }
    if (pool_registry_hash() != cfg.registry_hash) {
        char msg[256];
        snprintf(msg, sizeof msg, "spawned worker %d: its program registered other tasks than "
                 "its parent (%u names, not in the parent's order): a task index would name "
                 "another task", slot, pool_registry_count());
        pool_worker_fail_start(&cfg, slot, result_fd, msg);
    }
    pool_worker_main(&cfg, slot, result_fd);
}

void pool_worker_spawn_fail(int argc, char **argv, const char *msg)
{
    const char *a = pool_worker_spawn_arg(argc, argv);
    int result_fd;
    fprintf(stderr, "%s\n", msg);
    if (a != NULL && sscanf(a, "%d,", &result_fd) == 1 && result_fd > 2)
        pool_worker_fail_start(NULL, -1, result_fd, msg); /* spawn: the socket, its pipe */
}
