#!/usr/bin/env python3
"""oversubscription.py: CPU-bound tasks on 1 to 4x the cores.

Ports document 004 (seeds/004_fb99f51ccaea3c91.txt, "python进程池": the
process pool), its Pool(processes=multiprocessing.cpu_count()),
to a trap beyond the documents (issue 13, item 8; PHENOMENA P24): CPU-bound
tasks on more workers than cores. The
CPython twin of scenarios/oversubscription.lua: same parameters (the
defaults computed from the core count, os.cpu_count(), as the scenario's
from pb.cores()), labels and figures; every result carries `cores`.

  w1        Pool(1).map_async(spin, items, chunksize=1).get()
  w_cores   the same on os.cpu_count() workers
  w_2cores  on twice as many
  w_4cores  on four times as many

spin(s) burns s seconds of CPU time (time.process_time), as poolbench's
built-in spin does, so a task shared with other processes takes longer
from its start to its end while burning the same CPU.
"""
import os
import sys
import time

import ports
from ports import traced

CORES = os.cpu_count() or 1
SOURCE = '004_fb99f51ccaea3c91.txt'
PARAMS = {
    'n': (8 * CORES, 4 * CORES, 'tasks (default 8 per core)'),
    'spin_ms': (50, 25, 'CPU time per task, ms'),
    'workers': (CORES, CORES, 'pool processes (default: the cores)'),
}


def spin(seconds):
    end = time.process_time() + seconds
    loops = 0
    while time.process_time() < end:
        loops += 1
    return loops


def map_async(run, p):
    items = [p.spin_ms / 1000] * p.n
    pool = run.pool(p.workers)
    run.tasks_total = p.n
    results = pool.map_async(traced(spin), items, chunksize=1).get()
    run.result(len(results))
    run.facts['cores'] = CORES
    run.finish(pool)


LABELS = {
    'w1': (map_async, {'workers': 1}),
    'w_cores': (map_async, {}),
    'w_2cores': (map_async, {'workers': 2 * CORES}),
    'w_4cores': (map_async, {'workers': 4 * CORES}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
