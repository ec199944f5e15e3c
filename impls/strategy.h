/*
 * strategy.h: what every pool strategy is given and what it gives back.
 *
 * A strategy is one way of using a pool, the way a program in the documents
 * does: apply in a loop, apply_async with get() right after, callbacks,
 * map_async, imap... Each lives in its own file, impls/NAME.c, a page
 * or two, and is a client of the engine's public API (pool.h), never a
 * second engine. The harness (bench/) runs the same workload through several
 * strategies and compares what they measured.
 *
 * The workload. `n` items (a packed msgpack array) go through `nstages`
 * stages: stage s is a registered task, and the value of stage s for an item
 * is the argument of stage s+1 (a pipeline, like getA then getB in document
 * 000). With one stage, it is just "run this task on every item". An
 * optional stop rule looks at each final result in the parent; the first
 * time it says yes, the strategy stops as early as its API allows (document
 * 001's early termination). A strategy whose API cannot stop early (map_async
 * must wait for every chunk) does what the API allows and says so in `note`.
 *
 * The outcome. Wall time from the strategy's start (after its pool exists:
 * pool start-up is measured apart, in startup_s) to its last result; when a
 * stop rule fired, the time to the answer and the time until every worker
 * had stopped; counts of tasks and errors; the pool's trace, which the
 * harness turns into per-worker counts and timelines.
 */
#ifndef STRATEGY_H
#define STRATEGY_H

#include "pool.h"

#include <stdbool.h>
#include <stddef.h>

#define STRAT_MAX_STAGES 8
#define STRAT_MAX_FACTS 16

/* The stop rule: true when this final result is the answer. Called in the
 * parent, on whatever thread the strategy collects results on, never on two
 * threads at once (strat_stop_check serializes the calls). */
typedef bool (*strat_stop_fn)(void *ctx, const msgpack_object *result, size_t item);

/* An observer: told of every final result (status POOL_OK with its value,
 * or an error status with its message), serialized like the stop rule. It
 * changes nothing about the run: a scenario uses it to see the values. */
typedef void (*strat_observe_fn)(void *ctx, int status, const msgpack_object *result,
                                 const char *error, size_t item);

typedef struct strat_workload {
    /* The pool. */
    int workers;
    long chunksize;          /* map/imap/executor map; 0: the API's default */
    long buffersize;         /* imap/executor map: chunks out at most; 0: the whole
                                input submitted at the call (CPython's default) */
    long maxtasksperchild;   /* 0: never */
    const char *initializer; /* task name or NULL */
    const char *initargs;    /* its packed argument array (Pool(initializer, initargs)),
                                or NULL: none */
    size_t initargs_len;
    bool trace;              /* keep the engine's trace (timelines) */

    /* The work. */
    const char *items;       /* packed msgpack array of the n items */
    size_t items_len;
    size_t n;
    const char *stages[STRAT_MAX_STAGES];
    int nstages;             /* >= 1 */

    /* Early stop, optional. */
    strat_stop_fn stop;
    void *stop_ctx;

    /* Watching every final result, optional. */
    strat_observe_fn observe;
    void *observe_ctx;

    /* Optional: errors the strategy may leave unobserved (fire and forget).
     * When true, async strategies free handles without get() and count the
     * errors the engine saw as unobserved (document 002's lost errors). */
    bool fire_and_forget;

    /* Seconds one task may run (pool_options.task_timeout: past it the
     * worker is killed and replaced, the task fails with POOL_ETIMELIMIT);
     * 0: no limit. process_per_task keeps it itself. */
    double task_timeout;

    /* How chunks and results travel (pool_options.transport);
     * POOL_TRANSPORT_DEFAULT: POOLBENCH_TRANSPORT, else the socket. */
    enum pool_transport_kind transport;
} strat_workload;

typedef struct strat_outcome {
    double startup_s;    /* pool_create until it returned */
    double wall_s;       /* start of submission to the last result (or the stop) */
    double answer_s;     /* the stop rule said yes, from the start; 0: never */
    double stopped_s;    /* every worker had stopped, from the start; 0: no stop */
    double t0;           /* pool_now() at the start, to make trace times relative */

    size_t results;      /* final results collected */
    size_t errors;       /* final results that were errors (task failed, worker died) */
    size_t errors_unobserved; /* errors nobody looked at (engine's count) */
    size_t tasks_run;    /* task executions the workers ended (the engine's count) */
    size_t tasks_total;  /* task executions the strategy asks of the workers: n * nstages,
                          * or n when one task runs every stage of an item (strat_chain) */
    size_t tasks_after_stop; /* executions that started after the answer */
    bool stopped_early;  /* the strategy stopped before running everything */
    char first_error[256];
    char note[256];      /* what this strategy could not do, or did differently */

    /* Callbacks in the parent (P2). */
    size_t callbacks;
    int callback_pid;        /* the pid callbacks ran in (0: none ran) */
    int callbacks_max_overlap; /* most callbacks running at once (1 = never overlapped) */

    /* Named figures a strategy measures beyond the fields above (the lifecycle
     * probe's "join_before_close_refused" = 1, say); scenarios read them as
     * r[label].facts.NAME. */
    struct strat_fact {
        char name[32];
        double value;
    } facts[STRAT_MAX_FACTS];
    int nfacts;

    /* The engine's view. */
    pool_stats stats;
    pool_trace_rec *trace;  /* malloc'd copy, ntrace records (strat_outcome_free) */
    size_t ntrace;
    int worker_pids[64];    /* every pid that ran a task, in order of first sight */
    int nworker_pids;
    char transport[16];     /* the pool's transport ("socket", "shm"); "" when no pool */
} strat_outcome;

typedef struct strategy {
    const char *name;     /* the name scenarios use: "async_get_loop" */
    const char *source;   /* the document that shows it: "000", "001, 002" */
    const char *summary;  /* one line: what it does */
    /* Runs the workload; fills out. Returns 0, or -1 with out->first_error
     * set when the strategy could not run at all (its pool failed). */
    int (*run)(const strat_workload *w, strat_outcome *out);
} strategy;

/* Every strategy, NULL-terminated, in the order a report lists them. */
extern const strategy *const strat_all[];
/* The strategy of that name, or NULL. */
const strategy *strat_find(const char *name);

/* ---- the vocabulary every strategy shares (strategy.c) ------------------ */

/*
 * The "chain" task: runs every stage in one task, in the worker (document
 * 000's merged getC). Its arguments are [[stage names...], value].
 * strat_chain_args packs them for one item, from stage from_stage on.
 */
#define STRAT_CHAIN_TASK "strat_chain"
void strat_register_tasks(void); /* registers strat_chain; before any pool */

/* Argument packing. Each clears out, then packs one task's argument array.
 * A NULL value packs nil: pool.h hands back NULL for a nil result, and a
 * stage's result is the next stage's argument. */
void strat_args1(msgpack_sbuffer *out, const msgpack_object *value); /* [value] */
void strat_chain_args(msgpack_sbuffer *out, const strat_workload *w, int from_stage,
                      const msgpack_object *value);
/* The one task that runs item's whole pipeline: packs its arguments into
 * args and returns its name, the only stage ([item]) or the chain
 * ([[stages], item]) when there are several. */
const char *strat_pipeline_args(msgpack_sbuffer *args, const strat_workload *w,
                                const msgpack_object *item);

/* apply_async with no callbacks, the packed args as they are. */
pool_result *strat_apply_async(pool *p, const char *task, const msgpack_sbuffer *args);

/* The items one by one: the packed value of item i (pointers into w->items). */
typedef struct strat_items {
    msgpack_unpacked u;
} strat_items;
int strat_items_open(strat_items *it, const strat_workload *w);
const msgpack_object *strat_item(const strat_items *it, size_t i);
void strat_items_close(strat_items *it);

/* What tasks_total counts: every stage of every item is a task of its
 * own (n * nstages), or the workers run one task per item (n: the chain
 * task, or callback_chain's first stage). */
typedef enum strat_tasks {
    STRAT_TASK_PER_STAGE,
    STRAT_TASK_PER_ITEM,
} strat_tasks;

/* Opens the workload's items into *items (before any pool exists, so a bad
 * item array costs no pool), then creates the pool, timing it into
 * out->startup_s and setting out->t0 and out->tasks_total. NULL on failure,
 * with out->first_error set and nothing left open. items may be NULL. */
pool *strat_pool_create(const strat_workload *w, strat_outcome *out, strat_items *items,
                        strat_tasks tasks);

/* The last result is in: stops the wall clock. A strategy that waits for
 * nothing after its last result may leave it to strat_pool_finish. */
void strat_stop_clock(strat_outcome *out);

/* The end of every run: stops the clock unless the strategy did; at the
 * answer (stopped_early = answer) terminates the pool, as the Python does
 * after its `break`, otherwise closes it and lets queued work finish; joins
 * it, copies its stats and trace into out, destroys it, and closes items
 * (may be NULL). Handles outlive their pool (pool.h): free them after, so
 * that an unread failure is not counted as unobserved while the pool runs. */
void strat_pool_finish(pool *p, strat_outcome *out, strat_items *items, bool answer);

/* A strategy that cannot go on (out of memory, no thread): says why in
 * first_error, finishes the pool and items as strat_pool_finish does;
 * returns -1. */
int strat_give_up(pool *p, strat_outcome *out, strat_items *items, const char *why);

/* An array of n handles, all NULL (NULL when out of memory), and its
 * release: every handle, then the array. */
pool_result **strat_handles_new(size_t n);
void strat_handles_free(pool_result **h, size_t n);

/*
 * The items one by one, as an imap input (a pool_input_fn; pass the
 * strat_input as its ctx): the item itself when there is one stage, its
 * chain arguments [[stages], item] when there are several (then iterate with
 * pool_imap_star and STRAT_CHAIN_TASK).
 */
typedef struct strat_input {
    const strat_workload *w;
    const strat_items *items;
    size_t next;          /* the next item to hand out */
    msgpack_sbuffer args; /* scratch for the chain's arguments */
} strat_input;
void strat_input_init(strat_input *in, const strat_workload *w, const strat_items *items);
int strat_input_next(void *ctx, msgpack_packer *pk, char *err, size_t errlen);
void strat_input_destroy(strat_input *in);

/*
 * Records one final result: counts it or its error, applies the stop rule
 * (serialized), and returns true when this result is the answer (the first
 * time only; answer_s is set then).
 */
bool strat_final(const strat_workload *w, strat_outcome *out, int status,
                 const msgpack_object *value, const char *error, size_t item);

/* The pool refused item's submit (unknown task, closed or broken pool):
 * where Python's call would raise, this item's final error. */
void strat_refused(const strat_workload *w, strat_outcome *out, size_t item);

/*
 * In-order collect: get() on each of the n handles in submission order,
 * each through strat_final, until the answer (returns true then). NULL
 * handles are skipped: refused at submit, their error already recorded.
 */
bool strat_collect_in_order(const strat_workload *w, strat_outcome *out, pool_result **h,
                            size_t n);

/*
 * Reads an iterator (imap, imap_unordered, executor map) to its end, or to
 * the answer: each item through strat_final, an item's error too (the
 * iteration goes on past it, as CPython's does). An error that ends the whole
 * iteration (terminated, broken pool) counts once. `it` may be NULL: the
 * call that should have made it was refused, which also counts once.
 * Returns true when the stop rule fired.
 */
bool strat_drain_iter(const strat_workload *w, strat_outcome *out, pool_iter *it);

/* Callback bookkeeping: call enter/leave around a callback's body. */
void strat_callback_enter(strat_outcome *out);
void strat_callback_leave(strat_outcome *out);

/* Sets a named fact (replacing one of the same name); ignored past STRAT_MAX_FACTS. */
void strat_fact_set(strat_outcome *out, const char *name, double value);

void strat_outcome_free(strat_outcome *out);

/* ---- interruption: SIGINT, SIGTERM, the run's time limit ------------------- */

/*
 * strat_interrupt(why) is what a SIGINT or SIGTERM handler (or the run's
 * watchdog) calls: async-signal-safe. It records why (the first call wins;
 * why != 0, a signal number say), calls pool_interrupt_all() (every live
 * pool terminates, its unfinished and later jobs fail with POOL_EINTR and
 * whoever waits on them returns), and kills the process a strategy started
 * without a pool (strat_set_child). Strategies check strat_interrupted() in
 * their loops and stop submitting; the runner runs nothing more.
 */
void strat_interrupt(int why);
/* 0, or what strat_interrupt was first given. */
int strat_interrupted(void);
/* Back to "not interrupted" (tests). */
void strat_interrupt_reset(void);
/* The child a strategy waits for without a pool (process_per_task), or 0:
 * strat_interrupt kills it with SIGKILL. */
void strat_set_child(int pid);

#endif
