#!/usr/bin/env python3
"""get_placement.py: get() right after apply_async is synchronous; get() after the loop is parallel.

Ports document 001 (seeds/001_f61eaeda99fb6a3d.txt, "python多进程multiprocessing
子进程返回值": getting the return values of child processes), its first two
programs, to Python 3; phenomenon P3 (document 002 says the same). The CPython
twin of scenarios/get_placement.lua: same parameters, labels and figures.

  async_get_loop   apply_async(test, (i,)).get() inside the loop: one at a time (n*t)
  async_get_after  every handle kept, get() after the loop (ceil(n/w)*t)
  apply_sync       pool.apply(test, (i,)) per task, what get-in-loop amounts to (n*t)

Changed from the document: test() sleeps task_ms instead of its own sleep;
xrange is range, print a function; the handles' values are read, not printed;
Pool(workers) from get_context('fork').
"""
import sys
import time

import ports
from ports import P, traced

SOURCE = '001_f61eaeda99fb6a3d.txt'
PARAMS = {
    'n': (8, 8, 'items (one task each)'),
    'workers': (4, 4, 'pool processes'),
    'task_ms': (50, 50, 'sleep per task, ms'),
}


def test(p):
    time.sleep(P.task_ms / 1000)
    return p


def async_get_loop(run, p):
    pool = run.pool(processes=p.workers)
    run.tasks_total = p.n
    for i in range(p.n):
        pool.apply_async(traced(test), args=(i,)).get()  # waits, in the loop
        run.result()
    run.finish(pool)


def async_get_after(run, p):
    pool = run.pool(processes=p.workers)
    run.tasks_total = p.n
    result = []
    for i in range(p.n):
        result.append(pool.apply_async(traced(test), args=(i,)))
    for r in result:
        r.get()
        run.result()
    run.finish(pool)


def apply_sync(run, p):
    pool = run.pool(processes=p.workers)
    run.tasks_total = p.n
    for i in range(p.n):
        pool.apply(traced(test), args=(i,))
        run.result()
    run.finish(pool)


LABELS = {f.__name__: (f, {}) for f in (async_get_loop, async_get_after, apply_sync)}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
