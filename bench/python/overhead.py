#!/usr/bin/env python3
"""overhead.py: what one trivial task costs through each pool API.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its timing of map_async against apply_async
with a callback and against imap on 20 000 tasks of `a * a` (sections 1.2.4
and 1.2.5) and its ProcessPoolExecutor programs (section 2.3), to Python 3;
phenomenon P6. The CPython twin of scenarios/overhead.lua.

  apply_sync         pool.apply(run) per task: a round trip each
  async_get_after    apply_async for all, then get() on each
  callback_chain     apply_async(run, callback=my_callback)    (one message per task)
  map_async          pool.map_async(run, range(n)).get()       (one message per chunk)
  imap               for i in pool.imap(run, range(n))         (chunksize 1)
  imap_unordered     the same, unordered
  executor_submit    ProcessPoolExecutor: submit all, as_completed
  executor_map_c1    ProcessPoolExecutor.map(run, range(n), chunksize=1)
  executor_map_c834  the same with chunksize 834 (map_async's default for 20 000 on 6)

chunksize sets the chunksize of map_async, imap, imap_unordered and
executor_map (0 keeps each API's own). Changed from the document: nothing is
printed; the document's time.time() becomes the span ports.py times; only the
label's API runs; Pool from get_context('fork').
"""
import sys
from concurrent.futures import as_completed

import ports
from ports import traced

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (20000, 10000, 'trivial tasks'),
    'workers': (6, 6, 'pool processes'),
    'chunksize': (0, 0, "chunk size of map/imap/executor map (0: the API's default)"),
}
CANNOT = {'messages_sent': 'ProcessPoolExecutor: its call queue is internal; counted for Pool only',
          'transport': "CPython's Pool has one medium: pickled messages through pipes"}


def run(a):
    return a * a


def _cs(p, api_default):
    return p.chunksize if p.chunksize > 0 else api_default


def apply_sync(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    data = [pool.apply(traced(run), args=(i,)) for i in range(p.n)]
    r.result(len(data))
    r.finish(pool)


def async_get_after(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    handles = [pool.apply_async(traced(run), args=(i,)) for i in range(p.n)]
    data = [h.get() for h in handles]
    r.result(len(data))
    r.finish(pool)


def callback_chain(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    data = []

    def my_callback(result):
        data.append(result)
        r.result()
        if r.results == p.n:
            r.stop_clock()

    for i in range(p.n):
        pool.apply_async(traced(run), args=(i,), callback=r.callback(my_callback))
    pool.close()
    pool.join()
    r.finish(pool)


def map_async(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    future = pool.map_async(traced(run), range(p.n), chunksize=_cs(p, None))
    data = future.get()
    r.result(len(data))
    r.finish(pool)


def imap(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    data = [i for i in pool.imap(traced(run), range(p.n), chunksize=_cs(p, 1))]
    r.result(len(data))
    r.finish(pool)


def imap_unordered(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    data = [i for i in pool.imap_unordered(traced(run), range(p.n), chunksize=_cs(p, 1))]
    r.result(len(data))
    r.finish(pool)


def executor_submit(r, p):
    executor = r.executor(p.workers)
    r.tasks_total = p.n
    work_dict = {executor.submit(traced(run), i): i for i in range(p.n)}
    data = [future.result() for future in as_completed(work_dict)]
    r.result(len(data))
    r.finish(executor)


def executor_map(r, p):
    executor = r.executor(p.workers)
    r.tasks_total = p.n
    data = list(executor.map(traced(run), range(p.n), chunksize=_cs(p, 1)))
    r.result(len(data))
    r.finish(executor)


LABELS = {f.__name__: (f, {}) for f in (apply_sync, async_get_after, callback_chain, map_async,
                                        imap, imap_unordered, executor_submit)}
LABELS['executor_map_c1'] = (executor_map, {'chunksize': 1})
LABELS['executor_map_c834'] = (executor_map, {'chunksize': 834})
# The scenario runs four APIs again on poolbench's shared-memory transport
# (issue 14); CPython has one medium (pickled messages through pipes), so its
# twin runs the same program under both labels: the three side by side.
for _name in ('apply_sync', 'callback_chain', 'map_async', 'imap'):
    LABELS[_name + '_shm'] = LABELS[_name]

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
