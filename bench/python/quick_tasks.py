#!/usr/bin/env python3
"""quick_tasks.py: quick tasks land unevenly; whoever reads the queue first takes them.

Ports document 003 (seeds/003_148c127c0e6336ae.txt, "【Hard Python】【第一章-多进程】
3、Pool,多任务并行进程池": Pool, the multi-task process pool), its opening
program, to Python 3: 16 quick tasks through Pool(4).starmap, which "all ran in
one process (rarely in two)" on the author's machine; phenomenon P8 of
PHENOMENA.md (CPython 3.11 here gave [6, 6, 2, 2]). The C counterpart is
scenarios/quick_tasks.lua, with the same parameters (n, workers, task_ms) and
strategy names:

  map_async        starmap_async(_test_func, test_data).get(), the document's
                   starmap (default chunksize: ceil(n / (4 * workers)))
  map_async_slow   the same with tasks of 20 ms (task_ms = 20): a worker is
                   busy long enough for the others to take their share
  imap_unordered   imap_unordered over the same pairs (chunksize 1)
  async_get_after  one apply_async per task, then get() on each

What changed from the document, and why:
  - _test_func(a, b) sleeps task_ms when it is not 0 (the default: the
    document's tasks do nothing) and returns (pid, a + b) instead of printing
    "pid: result",
    and --check prints the tasks per worker: the document's observation,
    without the output of every task.
  - pprint(process.active_children()) becomes the list of the pool's pids,
    taken the same way (multiprocessing.active_children()), so that idle
    workers count as 0.
  - 16 and Pool(4) are --n and --workers.
  - The pool comes from get_context('fork'): the document ran on Windows
    (SpawnProcess), where workers start slowly and one of them takes all;
    fork is Linux's default up to Python 3.13, the one PHENOMENA.md's figures
    were measured with.

Runs one variant and exits 0; hyperfine does the timing (bench/hyperfine.sh).
--check also verifies the results and prints the tasks per worker.
"""
import multiprocessing
import os
import sys
import time

import ports  # the command line the ports share (bench/python/ports.py)

ARGS = None  # the parsed command line; forked workers inherit it


def _test_func(a, b):
    if ARGS.task_ms:
        time.sleep(ARGS.task_ms / 1000)
    result = a + b
    return os.getpid(), result


def _test_pair(pair):  # imap_unordered has no star form
    return _test_func(*pair)


def map_async(pool, test_data):
    return pool.starmap_async(_test_func, test_data).get()


def imap_unordered(pool, test_data):
    return sorted(pool.imap_unordered(_test_pair, test_data), key=lambda r: r[1])


def async_get_after(pool, test_data):
    handles = [pool.apply_async(_test_func, pair) for pair in test_data]
    return [h.get() for h in handles]


IMPLS = {f.__name__: f for f in (map_async, imap_unordered, async_get_after)}

# The scenario's labels that run a variant with parameters changed, as in
# the `impls` table of scenarios/quick_tasks.lua.
LABELS = {'map_async_slow': ('map_async', {'task_ms': 20})}


def parse_args(argv=None):
    ap = ports.parser(__doc__, IMPLS, LABELS, 'map_async')
    ap.add_argument('--n', type=int, default=16, help='tasks (default 16)')
    ap.add_argument('--workers', type=int, default=4, help='pool processes (default 4)')
    ap.add_argument('--task-ms', type=float, default=0, help='sleep per task, ms (default 0)')
    return ap.parse_args(argv)


def main():
    global ARGS
    ARGS = parse_args()
    impl = ports.resolve(ARGS, IMPLS, LABELS)
    if impl is None:
        return 0
    test_data = [(2 * i, 2 * i + 1) for i in range(ARGS.n)]
    with multiprocessing.get_context('fork').Pool(ARGS.workers) as p:
        pids = [c.pid for c in multiprocessing.active_children()]
        results = IMPLS[impl](p, test_data)
        p.close()
        p.join()
    if not ARGS.check:
        return 0
    ran = [pid for pid, _ in results]
    counts = ports.tasks_per_worker(ran, ARGS.workers, known=pids)
    ok = ([v for _, v in results] == [4 * i + 1 for i in range(ARGS.n)]
          and len(set(pids) | set(ran)) == ARGS.workers)
    return ports.verdict(ARGS, 'tasks per worker %s' % counts, ok)


if __name__ == '__main__':
    sys.exit(main())
