#!/usr/bin/env python3
"""pool_vs_fork.py: a pool pays for its processes once; a process per task pays every time.

Ports document 004 (seeds/004_fb99f51ccaea3c91.txt, "python进程池": without a
pool "every task creates a process anew, which wastes time") with the Process
program of document 002 (section 1.1: start a Process, join it) to Python 3;
phenomenon P9 (CPython 3.11 here, 500 trivial tasks: Process per task 0.839 s,
Pool(4).map(chunksize=1) 0.024 s). The CPython twin of scenarios/pool_vs_fork.lua.

  map_async         Pool(workers).map_async(run, range(n), chunksize).get()
  merged            Pool(workers): one apply_async per task, get() after
  process_per_task  for each task: Process(target=run, args=(i,)), start(),
                    join(); one at a time, as document 002's program does

Changed from the documents: run(a) returns the pid that ran it at once;
a Process's return value is lost, so each child sends it down one shared pipe,
which the parent reads before join(); chunksize is map_async's (1 as
PHENOMENA.md measured; 0: ceil(n/(4*workers))); Pool and Process from
get_context('fork').
"""
import os
import sys

import ports
from ports import traced

SOURCE = '004_fb99f51ccaea3c91.txt'
PARAMS = {
    'n': (500, 500, 'trivial tasks'),
    'workers': (4, 4, 'pool processes'),
    'chunksize': (1, 1, "map_async chunk size (1 as CPython's run; 0: ceil(n/(4*workers)))"),
}


def run(a):
    return os.getpid()


def run_and_send(a, conn):  # not in the documents: the result comes back
    conn.send(traced(run)(a))


def map_async(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    results = pool.map_async(traced(run), range(p.n), chunksize=p.chunksize or None).get()
    r.result(len(results))
    r.facts['distinct_pids'] = len(set(results))
    r.finish(pool)


def merged(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    handles = [pool.apply_async(traced(run), args=(i,)) for i in range(p.n)]
    results = [h.get() for h in handles]
    r.result(len(results))
    r.facts['distinct_pids'] = len(set(results))
    r.finish(pool)


def process_per_task(r, p):
    r.no_pool()
    r.tasks_total = p.n
    reader, writer = ports.CTX.Pipe(duplex=False)
    results = []
    for i in range(p.n):
        proc = ports.CTX.Process(target=run_and_send, args=(i, writer))
        proc.start()
        results.append(reader.recv())  # before join: a full pipe would block the child
        proc.join()
    r.stop_clock()
    r.result(len(results))
    r.facts['distinct_pids'] = len(set(results))
    reader.close()
    writer.close()


LABELS = {f.__name__: (f, {}) for f in (map_async, merged, process_per_task)}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
