#!/usr/bin/env python3
"""fork_with_threads.py: a worker forked while another thread holds a lock deadlocks on it.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its Pool(maxtasksperchild=...), to a trap
beyond the documents (issue 13, item 5). The CPython twin of
scenarios/fork_with_threads.lua, same labels, parameters and facts.

A thread of the parent holds LOG, a threading.Lock made when the module is
imported, hold_ms of every hold_ms + gap_ms. n tasks take and drop it, one
after another, each in a fresh worker (maxtasksperchild=1: the Pool's
worker-handler thread forks a replacement after every task).

  fork        a worker forked while the thread held LOG has a copy that is
              held forever. CPython's Pool has no task time limit, so the
              task bounds its own acquire (LOG.acquire(timeout=0.25)) and
              reports the deadlock as an error instead of hanging the pool.
  forkserver  the fork server is a fresh interpreter that imported this
              module: its LOG, and every worker's, is free.
  spawn       each worker imports this module: a fresh LOG.

CPython's logging module re-creates its own locks after a fork
(os.register_at_fork), so logging.info in a worker does not deadlock this
way; a lock of one's own (or of a C library, or malloc's in some libcs)
does. Python 3.12 added a DeprecationWarning when os.fork() runs in a
process with threads ("This process is multi-threaded, use of fork() may
lead to deadlocks in the child"); fact fork_warnings counts the ones this
Python raised (this machine's 3.11 raises none). 3.14 made forkserver the
default start method on Linux.
"""
import gc
import multiprocessing
import sys
import threading
import time
import warnings

import ports

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (8, 6, 'tasks, one per fresh worker'),
    'hold_ms': (45, 45, 'the thread holds the lock this long'),
    'gap_ms': (5, 5, 'then lets it go this long'),
    'workers': (2, 2, 'pool processes'),
    'maxtasksperchild': (1, 1, 'a fresh worker per task'),
}

LIMIT_S = 0.25  # the bound on the task's acquire, as the scenario's task_timeout

LOG = threading.Lock()


def log_line(i):
    if not LOG.acquire(timeout=LIMIT_S):
        return None  # deadlocked: the copy of LOG is held by a thread this process lacks
    LOG.release()
    return i


def with_holder(run, p, method):
    run.start_method = method
    stop = threading.Event()

    def hold():
        while not stop.is_set():
            with LOG:
                time.sleep(p.hold_ms / 1000)
            time.sleep(p.gap_ms / 1000)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        run.t_create = ports.now()
        pool = ports.CountingPool(p.workers, maxtasksperchild=p.maxtasksperchild,
                                  context=multiprocessing.get_context(method))
        run._start()
        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        until = time.monotonic() + 5  # until the thread holds LOG, as the scenario waits
        while not LOG.locked() and time.monotonic() < until:
            time.sleep(0.001)
        deadlocked = logged = 0
        for i in range(1, p.n + 1):
            v = pool.apply_async(log_line, (i,)).get(10 * LIMIT_S + 5)
            if v is None:
                deadlocked += 1
                run.error('deadlocked: the lock was held at the fork (acquire gave up after '
                          '%g s)' % LIMIT_S, item=i)
            else:
                logged += 1
                run.result()
        stop.set()
        holder.join(5)
        run.tasks_total = p.n
        run.per_worker = [{'slot': 0, 'pid': 0, 'tasks': p.n, 'busy_s': 0.0}]
        run.finish(pool)
    warned = sum(1 for w in seen if 'fork' in str(w.message) and 'thread' in str(w.message))
    run.facts.update({'deadlocked': deadlocked, 'logged': logged, 'tasks': p.n,
                      'fork_warnings': warned})
    run.note = ('%s: %d of %d tasks deadlocked on the lock; %d fork DeprecationWarnings '
                '(Python %s)' % (method, deadlocked, p.n, warned, sys.version.split()[0]))
    del pool
    gc.collect()


def _label(method):
    def fn(run, p):
        return with_holder(run, p, method)
    fn.__name__ = 'with_holder'
    return fn


LABELS = {m: (_label(m), {}) for m in ('fork', 'forkserver', 'spawn')}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
