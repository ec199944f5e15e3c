#!/usr/bin/env python3
"""worker_init.py: the initializer runs once per worker; maxtasksperchild replaces workers at a cost.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its list of Pool's parameters (initializer:
"every worker calls initializer(*initargs) when it starts"; maxtasksperchild:
"the tasks a worker may complete before it exits and a new worker replaces
it"), to Python 3; phenomenon P14. The CPython twin of scenarios/worker_init.lua.

  async_get_after     Pool(workers, initializer=init).apply_async per task, get() after
  async_get_after_mt  the same with maxtasksperchild = 25
  executor_submit     ProcessPoolExecutor(workers, initializer=init): submit, result()
  executor_submit_mt  the same with max_tasks_per_child = 25

init counts its runs in a global of the worker; whoami returns (pid, count).
facts: values_seen, not_one (tasks whose count was not 1), distinct_pids (processes that
ran tasks), max_count, as the scenario's recorder counts them.

Where CPython differs: ProcessPoolExecutor refuses max_tasks_per_child with
the 'fork' start method (3.11: ValueError "max_tasks_per_child is
incompatible with the 'fork' multiprocessing start method; supply a
different mp_context"), so executor_submit_mt cannot run under fork: it
reports run_failed with that error (CANNOT says so). Pool takes
maxtasksperchild under fork.
"""
import os
import sys

import ports

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (10000, 4000, 'trivial tasks'),
    'workers': (2, 2, 'pool processes'),
    'maxtasksperchild': (0, 0, 'tasks per worker before it is replaced (0: never; the _mt '
                               'variants set 25)'),
    'tag': (1, 1, 'which variant this is (set by each variant)'),
}

CANNOT = {'executor_submit_mt': "ProcessPoolExecutor refuses max_tasks_per_child with the "
                                "'fork' start method (ValueError): run_failed"}

INIT_RUNS = 0


def init():
    global INIT_RUNS
    INIT_RUNS += 1


def whoami(x):
    return os.getpid(), INIT_RUNS


def record(r, values):
    """The scenario's recorder: counts other than 1, distinct pids."""
    r.result(len(values))
    r.facts['values_seen'] = len(values)
    r.facts['not_one'] = sum(1 for _, c in values if c != 1)
    r.facts['distinct_pids'] = len({pid for pid, _ in values})
    r.facts['max_count'] = max((c for _, c in values), default=0)


def async_get_after(r, p):
    pool = r.pool(p.workers, initializer=init,
                  maxtasksperchild=p.maxtasksperchild or None)
    r.tasks_total = p.n
    handles = [pool.apply_async(ports.traced(whoami), args=(i,)) for i in range(1, p.n + 1)]
    record(r, [h.get() for h in handles])
    r.finish(pool)


def executor_submit(r, p):
    kwds = {'max_tasks_per_child': p.maxtasksperchild} if p.maxtasksperchild else {}
    executor = r.executor(p.workers, initializer=init, **kwds)  # fork: raises with kwds
    r.tasks_total = p.n
    futures = [executor.submit(ports.traced(whoami), i) for i in range(1, p.n + 1)]
    record(r, [f.result() for f in futures])
    r.finish(executor)


LABELS = {
    'async_get_after': (async_get_after, {'tag': 1}),
    'async_get_after_mt': (async_get_after, {'tag': 2, 'maxtasksperchild': 25}),
    'executor_submit': (executor_submit, {'tag': 3}),
    'executor_submit_mt': (executor_submit, {'tag': 4, 'maxtasksperchild': 25}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
