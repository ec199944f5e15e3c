#!/usr/bin/env python3
"""straggler.py: one task k times longer: its chunk sets the makespan.

Ports document 003 (seeds/003_148c127c0e6336ae.txt, "【Hard Python】【第一章-多进程】
3、Pool,多任务并行进程池": Pool, the multi-task process pool), its chunk rule (a chunk runs whole on
one worker), to a trap beyond the documents (issue 13, item 2; PHENOMENA
P18): one task k times longer than the others, written the plain way. The
CPython twin of scenarios/straggler.lua: same parameters, labels and figures.

  map_async_c1       pool.map_async(f, items, chunksize=1).get()
  map_async_default  the same with CPython's default chunksize, ceil(n/(4w))
  map_async_nw       the same with chunksize ceil(n/w): one chunk per worker
  imap_unordered     for x in pool.imap_unordered(f, items, chunksize=1)

Task `at` (1-based) sleeps k * task_ms, the others task_ms. The scenario's
`chunksize` parameter is there for the labels to set, as in the scenario.
"""
import math
import sys
import time

import ports
from ports import traced

SOURCE = '003_148c127c0e6336ae.txt'
PARAMS = {
    'n': (32, 32, 'tasks'),
    'task_ms': (30, 30, 'sleep per ordinary task, ms'),
    'k': (8, 8, 'the straggler is k times longer'),
    'at': (1, 1, "the straggler's position (1 = first)"),
    'workers': (4, 4, 'pool processes'),
    'chunksize': (0, 0, "each variant sets its own (1, 0 = CPython's default); "
                        "map_async_nw uses ceil(n/w)"),
}


def task(seconds):
    time.sleep(seconds)
    return seconds


def _items(p):
    d = [p.task_ms / 1000] * p.n
    d[p.at - 1] = p.k * p.task_ms / 1000
    return d


def map_async(run, p):
    items = _items(p)
    pool = run.pool(p.workers)
    run.tasks_total = p.n
    c = p.chunksize if p.chunksize > 0 else None
    results = pool.map_async(traced(task), items, chunksize=c).get()
    run.result(len(results))
    run.finish(pool)


def map_async_nw(run, p):
    items = _items(p)
    pool = run.pool(p.workers)
    run.tasks_total = p.n
    results = pool.map_async(traced(task), items, chunksize=math.ceil(p.n / p.workers)).get()
    run.result(len(results))
    run.finish(pool)


def imap_unordered(run, p):
    items = _items(p)
    pool = run.pool(p.workers)
    run.tasks_total = p.n
    for _ in pool.imap_unordered(traced(task), items, chunksize=p.chunksize or 1):
        run.result()
    run.finish(pool)


LABELS = {
    'map_async_c1': (map_async, {'chunksize': 1}),
    'map_async_default': (map_async, {'chunksize': 0}),
    'map_async_nw': (map_async_nw, {}),
    'imap_unordered': (imap_unordered, {'chunksize': 1}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
