#!/usr/bin/env python3
"""chunk_skew.py: a large chunksize leaves workers idle.

Ports document 003 (seeds/003_148c127c0e6336ae.txt, "【Hard Python】【第一章-多进程】
3、Pool,多任务并行进程池": Pool, the multi-task process pool), its chunksize
walk-through, to Python 3; phenomenon P7 (16 tasks, chunksize 14: [14, 2] on 2
or 3 workers). The CPython twin of scenarios/chunk_skew.lua: same parameters,
labels and figures.

  map_async          starmap_async(_test_func, test_data, chunksize) on `workers`
  map_async_w3       the same on 3 workers: still [14, 2]
  map_async_default  CPython's default chunksize, ceil(n / (4 * workers))

Changed from the document: _test_func sleeps task_ms and returns a + b
instead of printing; Pool from get_context('fork') (the document ran on
Windows, spawn).
"""
import sys
import time

import ports
from ports import P, traced

SOURCE = '003_148c127c0e6336ae.txt'
PARAMS = {
    'n': (16, 16, 'tasks'),
    'task_ms': (50, 20, 'sleep per task, ms'),
    'workers': (2, 2, 'pool processes'),
    'chunksize': (14, 14, "map_async chunk size (0: CPython's default, ceil(n/(4*workers)))"),
}


def _test_func(a, b):
    time.sleep(P.task_ms / 1000)
    result = a + b
    return result


def map_async(run, p):
    test_data = [(2 * i, 2 * i + 1) for i in range(p.n)]
    pool = run.pool(p.workers)
    run.tasks_total = p.n
    results = pool.starmap_async(traced(_test_func), test_data,
                                 chunksize=p.chunksize or None).get()
    run.result(len(results))
    run.finish(pool)


LABELS = {
    'map_async': (map_async, {}),
    'map_async_w3': (map_async, {'workers': 3}),
    'map_async_default': (map_async, {'chunksize': 0}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
