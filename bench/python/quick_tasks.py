#!/usr/bin/env python3
"""quick_tasks.py: quick tasks land unevenly; whoever reads the queue first takes them.

Ports document 003 (seeds/003_148c127c0e6336ae.txt, "【Hard Python】【第一章-多进程】
3、Pool,多任务并行进程池": Pool, the multi-task process pool), its opening
program, to Python 3: 16 quick tasks through Pool(4).starmap, which "all ran in
one process (rarely in two)" on the author's Windows machine; phenomenon P8
(CPython 3.11 here: [6, 6, 2, 2]). The CPython twin of scenarios/quick_tasks.lua.

  map_async       starmap_async(_test_func, test_data).get(), the document's
                  starmap (default chunksize: ceil(n / (4 * workers)))
  map_async_slow  the same with tasks of 20 ms (task_ms = 20)

Changed from the document: _test_func sleeps task_ms when it is not 0 and
returns (pid, a + b) instead of printing; the per-worker counts replace
pprint(process.active_children()); Pool from get_context('fork').
"""
import os
import sys
import time

import ports
from ports import P, traced

SOURCE = '003_148c127c0e6336ae.txt'
PARAMS = {
    'n': (16, 16, 'tasks'),
    'workers': (4, 4, 'pool processes'),
    'task_ms': (0, 0, 'task length, ms: 0 is near zero'),
}
# Per label, over the repeats: (recorded, good), the scenario's facts
# repeats_recorded and repeats_good (its observe hook's, per repeat: n tasks
# on at most `workers` processes).
_REPEATS = {}


def _test_func(a, b):
    if P.task_ms:
        time.sleep(P.task_ms / 1000)
    result = a + b
    return os.getpid(), result


def map_async(run, p):
    test_data = [(2 * i, 2 * i + 1) for i in range(p.n)]
    with run.pool(p.workers) as pool:  # the document's `with Pool(4) as p`
        run.tasks_total = p.n
        results = pool.starmap_async(traced(_test_func), test_data).get()
        run.result(len(results))
        counts = {}
        for pid, _ in results:
            counts[pid] = counts.get(pid, 0) + 1
        seen, good = _REPEATS.get(p.task_ms, (0, 0))
        ok = sum(counts.values()) == p.n and len(counts) <= p.workers
        _REPEATS[p.task_ms] = (seen + 1, good + ok)
        run.facts['repeats_recorded'], run.facts['repeats_good'] = _REPEATS[p.task_ms]
        run.finish(pool)


LABELS = {'map_async': (map_async, {}), 'map_async_slow': (map_async, {'task_ms': 20})}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
