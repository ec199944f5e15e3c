#!/usr/bin/env python3
"""worker_death.py: a worker dies mid-task: CPython's Pool waits forever; the executor breaks.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), the closest document (the pool's APIs and how
their errors surface: no document shows a dying worker), to Python 3;
phenomenon P16, CPython's bug gh-66587. The CPython twin of
scenarios/worker_death.lua: the task of item k ends its worker with
os._exit(exit_code), or with signal > 0 kills it (os.kill, as the OOM killer
would).

  async_get_after       apply_async per item, get() after
  async_get_after_kill  the same, the worker killed by signal 9
  map_async             map_async(mortal, items).get()
  imap                  for each item: next()
  executor_submit       ProcessPoolExecutor: submit per item, result()

What CPython does, measured, never waited for: Pool starts a replacement
worker but never fails the job the dead one held, so its get() would wait
forever (gh-66587). Every wait on a Pool here has a bound, bound_s =
2 * ceil(n/w) * t_ms + 1 s (the scenario's "no hang" limit, plus slack);
a wait that reaches it counts as an error whose first_error reads "hung:
CPython's Pool never noticed the dead worker (gh-66587); gave up after N s",
with hung = true, and the pool is terminated. imap yields in order, so the
items after k stay behind the hung one: they count as errors too.
ProcessPoolExecutor marks itself broken and fails every pending future with
BrokenProcessPool. facts, as the scenario's stop rule records them:
values_back (items whose value came back), items_back_sum (their sum).
"""
import math
import os
import signal
import sys
import time
from concurrent import futures
from concurrent.futures import as_completed

import ports
from ports import P, traced

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (40, 12, 'tasks'),
    'workers': (4, 2, 'pool processes'),
    't_ms': (50, 20, 'each task (a sleep), ms'),
    'k': (5, 3, 'the item whose worker dies'),
    'exit_code': (7, 7, "the dying worker's exit status"),
    'signal': (0, 0, '0: exit with exit_code; else killed by this signal (the *_kill variant: 9)'),
    'tag': (1, 1, 'which record the results go to (set by each variant)'),
}
# Checks CPython fails by design (poolbench's compare prints why beside them).
DIFFERS = {
    'the run ended (no hang': "Pool never fails the job a dead worker held (gh-66587): get() "
                              "would wait forever; the twin gives up at its bound",
    'only the job the dead worker held failed': "Pool's imap waits forever at the lost item "
                                                "(gh-66587); ProcessPoolExecutor breaks and "
                                                "fails every pending future",
    'the worker died and was replaced': "ProcessPoolExecutor replaces no worker: it marks "
                                        "itself broken (BrokenProcessPool)",
}

CANNOT = {'first_error names the worker': "CPython's Pool reports no error at all (it hangs); "
                                          "BrokenProcessPool names no worker, pid or status"}


def bound_s(p):
    return 2 * math.ceil(p.n / p.workers) * p.t_ms / 1000 + 1.0


def mortal(x):
    if x == P.k:
        if P.signal > 0:
            os.kill(os.getpid(), P.signal)
            time.sleep(10)  # the signal is on its way; never returns from here
        os._exit(P.exit_code)
    time.sleep(P.t_ms / 1000)
    return x


def _left(r):
    return max(0.0, r.t0 + r.bound_s - time.monotonic())


def _values(r, got):
    r.facts['values_back'] = len(got)
    r.facts['items_back_sum'] = sum(got)


def async_get_after(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    handles = [pool.apply_async(traced(mortal), args=(i,)) for i in range(1, p.n + 1)]
    got = set()
    for i, h in enumerate(handles, 1):
        try:
            got.add(h.get(timeout=_left(r)))
            r.result()
        except ports.multiprocessing.TimeoutError:
            r.error(r.hang('Pool'), item=i)
        except Exception as e:
            r.error(e, item=i)
    _values(r, got)
    r.finish(pool, terminate=r.hung)


def map_async(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    try:
        values = pool.map_async(traced(mortal), range(1, p.n + 1)).get(timeout=_left(r))
        r.result(len(values))
        got = set(values)
    except ports.multiprocessing.TimeoutError:
        r.error(r.hang('Pool'), count=p.n)
        got = set()
    _values(r, got)
    r.finish(pool, terminate=r.hung)


def imap(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    it = pool.imap(traced(mortal), range(1, p.n + 1))
    got = set()
    for i in range(1, p.n + 1):
        try:
            got.add(it.next(timeout=_left(r)))
            r.result()
        except ports.multiprocessing.TimeoutError:
            # in order: the items after the hung one stay behind it
            r.error(r.hang('Pool'), count=p.n - i + 1, item=i)
            break
    _values(r, got)
    r.finish(pool, terminate=r.hung)


def executor_submit(r, p):
    executor = r.executor(p.workers)
    r.tasks_total = p.n
    work_dict = {executor.submit(traced(mortal), i): i for i in range(1, p.n + 1)}
    got = set()
    try:
        for future in as_completed(work_dict, timeout=r.bound_s):
            try:
                got.add(future.result())
                r.result()
            except Exception as e:  # BrokenProcessPool, for every pending future
                r.error(e, item=work_dict[future])
    except futures.TimeoutError:  # never seen: the executor breaks instead
        r.error(r.hang('ProcessPoolExecutor'), count=p.n - r.results)
    _values(r, got)
    r.finish(executor)


LABELS = {
    'async_get_after': (async_get_after, {'tag': 1}),
    'async_get_after_kill': (async_get_after, {'tag': 2, 'signal': signal.SIGKILL}),
    'map_async': (map_async, {'tag': 3}),
    'imap': (imap, {'tag': 4}),
    'executor_submit': (executor_submit, {'tag': 5}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
