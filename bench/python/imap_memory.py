#!/usr/bin/env python3
"""imap_memory.py: map holds every input and result at once; imap streams them.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its advice of section 1.2.5 ("when memory is
short, use imap: slower than map, but it needs little memory"), to Python 3;
phenomenon P12. The CPython twin of scenarios/imap_memory.lua.

  imap          for r in pool.imap(run, items): each result used and dropped
  imap_4n       the same at scale = 4
  map_async     pool.map_async(run, items).get(): every result kept (memory ~ n)
  map_async_4n  the same at scale = 4

peak_rss_kb is the parent's peak during the label: each label runs in a
fresh child of the driver, which resets VmHWM (/proc/self/clear_refs) first.
Note that CPython's imap still hands its whole input to the task handler at
once (P25): the input here is a generator of small ints, so only the results
weigh. The scenario's imap runs with buffersize 4; this twin passes it only
where Pool.imap has it (not in 3.11: see _buffer). Changed from the document: run(a) returns payload bytes instead of
a * a, the loop adds up their lengths instead of printing them; Pool from
get_context('fork').
"""
import inspect
import multiprocessing.pool
import sys

import ports
from ports import P, traced

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (2000, 500, 'items at scale 1'),
    'payload': (8192, 8192, 'bytes per result'),
    'scale': (1, 1, 'items = scale * n (the *_4n variants set 4)'),
    'workers': (2, 2, 'pool processes'),
    'buffersize': (4, 4, "imap's chunks out at most (0: none, the whole input at the call)"),
}


def run(a):
    return 'x' * P.payload


def items(n):
    for i in range(n):
        yield i


def _buffer(p):
    """buffersize= where this CPython's Pool.imap has it (gh-64192); 3.11
    has not, and its imap over a generator stays flat here anyway: its task
    handler writes each task into the pipe and waits while the pipe is full,
    and this loop keeps up with the workers."""
    if p.buffersize and 'buffersize' in inspect.signature(multiprocessing.pool.Pool.imap).parameters:
        return {'buffersize': p.buffersize}
    return {}


def imap(r, p):
    n = p.scale * p.n
    pool = r.pool(p.workers)
    r.tasks_total = n
    total = 0
    for x in pool.imap(traced(run), items(n), 1, **_buffer(p)):
        total += len(x)
        r.result()
    r.facts['bytes'] = total
    r.finish(pool)


def map_async(r, p):
    n = p.scale * p.n
    pool = r.pool(p.workers)
    r.tasks_total = n
    results = pool.map_async(traced(run), items(n)).get()
    r.result(len(results))
    r.facts['bytes'] = sum(len(x) for x in results)
    r.finish(pool)


LABELS = {
    'imap': (imap, {}),
    'imap_4n': (imap, {'scale': 4}),
    'map_async': (map_async, {}),
    'map_async_4n': (map_async, {'scale': 4}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
