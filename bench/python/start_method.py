#!/usr/bin/env python3
"""start_method.py: fork, forkserver and spawn: what a worker costs to start, and what it inherits.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its Pool(initializer=...), to a trap beyond
the documents (issue 13, item 4). The CPython twin of
scenarios/start_method.lua, same labels, parameters and facts.

Each label is a start method (multiprocessing.get_context(method)) and a
pool of 1, 2 or 4 workers. The initializer stamps when its worker came up
(time.monotonic, one clock for every process on Linux) and the worker's CPU
time then (time.process_time: for a spawned worker, the new interpreter's
start and its imports; for a forked one, only what ran since the fork).
Probes, one per worker per round, each holding its worker 50 ms, report
them, with whether the worker sees a global the strategy set just before
creating the pool, and its open descriptors.

CPython's methods differ from poolbench's where it matters here: its fork
server is a fresh interpreter started at the first pool (it imports the
main module, preload ['__main__']), so its workers do NOT see a global the
parent set after import (poolbench's fork server is forked from the parent
at pool creation, and does); spawn starts an interpreter and imports the
main module per worker, tens of milliseconds each. Python 3.14 made
forkserver the default start method on Linux (this machine's Python is
older: the default here is fork).
"""
import gc
import multiprocessing
import os
import sys
import time

import ports
from ports import now

# Checks CPython fails by design (poolbench's compare prints why beside them).
DIFFERS = {
    "forkserver: setup's global is inherited": "CPython's fork server is a fresh interpreter "
                                               "started at the first pool: it has only what "
                                               "importing the main module makes",
    'spawn: a worker uses more CPU to start': "CPython's fork-server workers use tens of ms "
                                              "of CPU before their initializer runs (the "
                                              "figure beside; not traced further): spawn is "
                                              "far above fork, not 4x the fork server",
}

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'workers': (2, 2, 'pool processes (set by each label)'),
}

HOLD_S = 0.05  # each probe keeps its worker this long, so a round spreads out

SET_IN_SETUP = None  # set by the strategy before the pool exists
T_UP = CPU_UP = None  # in each worker: when its initializer ran, its CPU time then


def mark_up():
    global T_UP, CPU_UP
    T_UP, CPU_UP = now(), time.process_time()


def probe(hold):
    time.sleep(hold)
    return (os.getpid(), T_UP, CPU_UP, 1 if SET_IN_SETUP is not None else 0,
            len(os.listdir('/proc/self/fd')) - 1)


def startup(run, p, method):
    global SET_IN_SETUP
    SET_IN_SETUP = 42
    run.start_method = method
    run.t_create = now()
    pool = ports.CountingPool(p.workers, initializer=mark_up,
                              context=multiprocessing.get_context(method))
    run._start()
    seen, last, inherited, fds, cpu, probes = {}, 0.0, 1, 0, 0.0, 0
    for _ in range(20):
        if len(seen) == p.workers:
            break
        hs = [pool.apply_async(probe, (HOLD_S,)) for _ in range(p.workers)]
        probes += len(hs)
        for h in hs:
            pid, up, c, inh, nfd = h.get(30)
            if pid not in seen:
                seen[pid] = 0
                last, cpu = max(last, up), cpu + c
                inherited, fds = min(inherited, inh), max(fds, nfd)
            seen[pid] += 1
    n = len(seen)
    run.result(n)
    run.tasks_total = probes
    run.per_worker = [{'slot': i, 'pid': pid, 'tasks': k, 'busy_s': k * HOLD_S}
                      for i, (pid, k) in enumerate(seen.items())]
    up_ms = 1000 * (last - run.t_create)
    run.facts.update({'workers_up': n, 'up_ms': up_ms, 'per_worker_ms': up_ms / p.workers,
                      'inherited': inherited, 'fds': fds,
                      'cpu_ms': 1000 * cpu / n if n else 0})
    run.note = ('%s: %d workers up %.1f ms after pool creation (%.2f ms CPU each); the global '
                '%s; at most %d descriptors' % (method, n, up_ms, 1000 * cpu / max(n, 1),
                                                'seen' if inherited else 'not seen', fds))
    run.finish(pool)
    # The pool's queues hold semaphores the resource tracker (started by
    # forkserver and spawn) would report as leaked when this label's child
    # ends with os._exit: free them now.
    del pool, hs
    gc.collect()


def _label(method):
    def fn(run, p):
        return startup(run, p, method)
    fn.__name__ = 'startup'
    return fn


LABELS = {'%s_w%d' % (m, w): (_label(m), {'workers': w})
          for m in ('fork', 'forkserver', 'spawn') for w in (1, 2, 4)}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
