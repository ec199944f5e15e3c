#!/usr/bin/env python3
"""eager_input.py: Pool.imap and Executor.map take their whole input at once; buffersize bounds it.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its advice of section 1.2.5 (imap "when memory
is short"), to Python 3; the CPython twin of scenarios/eager_input.lua
(phenomenon P25, issue 13 item 9). But CPython's Pool.imap hands its whole input to the task handler
at once (pool.py, _handle_tasks) and Executor.map submits every item before
it returns, so with a consumer slower than the workers the results pile up in
the parent. CPython 3.14 gave Executor.map a buffersize, and Pool.imap gets
one after gh-64192: at most buffersize tasks (chunks) submitted whose results
have not been yielded.

  imap_buffered(_4n)          pool.imap(run, items, 1, buffersize=4)
  executor_map_buffered(_4n)  executor.map(run, items, buffersize=4)
  imap(_4n)                   for r in pool.imap(run, items): consume(r)
  executor_map(_4n)           for r in executor.map(run, items): consume(r)

The consumer waits `consume` seconds on each result (time.sleep), as the
scenario's observe hook does (pb.sleep): a consumer waiting on I/O, which
leaves the GIL to the pool's result thread. peak_rss_kb is the parent's peak
during the label (each label in a fresh child of the driver, VmHWM reset
first). CPython 3.11 has neither buffersize: those labels fail with its
TypeError (CANNOT says so) where the interpreter is older than the feature.
Changed from the document: run(a) returns payload bytes; fork start method.
"""
import sys
import time

import ports
from ports import P, traced

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (1000, 300, 'items at scale 1'),
    'payload': (16384, 16384, 'bytes per result'),
    'consume': (0.0003, 0.001, 'seconds the consumer waits on each result (a sleep)'),
    'scale': (1, 1, 'items = scale * n (the *_4n labels set 4)'),
    'buffersize': (0, 0, 'chunks out at most (0: none; *_buffered set 4)'),
    'workers': (2, 2, 'pool processes'),
    'chunksize': (1, 1, 'items per task message (buffersize counts these chunks)'),
}
CANNOT = {
    label: "CPython %d.%d: %s has no buffersize (Executor.map gained it in 3.14, Pool.imap "
           "after gh-64192): run_failed with its TypeError" % (sys.version_info[:2] + (api,))
    for label, api in [('imap_buffered', 'Pool.imap'), ('imap_buffered_4n', 'Pool.imap'),
                       ('executor_map_buffered', 'Executor.map'),
                       ('executor_map_buffered_4n', 'Executor.map')]
} if sys.version_info < (3, 14) else {}


def run(a):
    return 'x' * P.payload


def consume(seconds):
    """The slow consumer: waits that long (pb.sleep)."""
    time.sleep(seconds)


def items(n):
    for i in range(n):
        yield i


def _kw(p):
    return {'buffersize': p.buffersize} if p.buffersize else {}


def imap(r, p):
    n = p.scale * p.n
    pool = r.pool(p.workers)
    r.tasks_total = n
    try:
        for x in pool.imap(traced(run), items(n), p.chunksize, **_kw(p)):
            consume(p.consume)
            r.result()
    finally:
        r.finish(pool)


def executor_map(r, p):
    n = p.scale * p.n
    ex = r.executor(p.workers)
    r.tasks_total = n
    try:
        for x in ex.map(traced(run), items(n), chunksize=p.chunksize, **_kw(p)):
            consume(p.consume)
            r.result()
    finally:
        r.finish(ex)


LABELS = {
    'imap_buffered': (imap, {'buffersize': 4}),
    'executor_map_buffered': (executor_map, {'buffersize': 4}),
    'imap_buffered_4n': (imap, {'buffersize': 4, 'scale': 4}),
    'executor_map_buffered_4n': (executor_map, {'buffersize': 4, 'scale': 4}),
    'imap': (imap, {}),
    'executor_map': (executor_map, {}),
    'imap_4n': (imap, {'scale': 4}),
    'executor_map_4n': (executor_map, {'scale': 4}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
