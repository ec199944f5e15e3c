#!/usr/bin/env python3
"""chunk_skew.py: a large chunksize leaves workers idle.

Ports document 003 (seeds/003_148c127c0e6336ae.txt, "【Hard Python】【第一章-多进程】
3、Pool,多任务并行进程池": Pool, the multi-task process pool), its starmap
program and its reading of _map_async (16 tasks, chunksize 14, pool 2: one
worker runs 14, the other 2, and a third worker gets nothing), to Python 3;
phenomenon P7 of PHENOMENA.md. The C counterpart is scenarios/chunk_skew.lua,
with the same parameters (n, task_ms, workers, chunksize) and strategy names:

  map_async        starmap_async(_test_func, test_data, chunksize).get(), the
                   document's starmap (same _map_async underneath)
  imap             imap over the same pairs, same chunksize
  imap_unordered   the same, unordered
  executor_map     ProcessPoolExecutor.map, which chunks the same way
  map_async_w3     map_async on 3 workers: still 14 + 2, the third idle
  map_async_default  map_async with CPython's default chunksize

chunksize 0 means the API's default: ceil(n / (4 * workers)) for map_async,
1 for the others. Makespan ~ (largest chunk a worker runs) * t.

What changed from the document, and why:
  - _test_func(a, b) sleeps task_ms (the document's only adds) and returns
    (pid, a + b) instead of printing "pid: result", so that --check can count
    the tasks per worker and see that each chunk ran on one worker.
  - 16 tasks and Pool(4) are --n and --workers; the document's thought
    experiment (chunksize 14, pool 2 or 3) is --chunksize 14 --workers 2.
  - The pool comes from get_context('fork') (the document ran on Windows,
    hence its SpawnProcess; fork is Linux's default up to Python 3.13 and the
    one PHENOMENA.md's figures were measured with); the task reads task_ms
    from the global ARGS, which fork copies.

Runs one variant and exits 0; hyperfine does the timing (bench/hyperfine.sh).
--check also verifies the results and prints the tasks per worker.
"""
import os
import sys
import time

import ports  # the command line the ports share (bench/python/ports.py)

ARGS = None  # the parsed command line; forked workers inherit it


def _test_func(a, b):
    time.sleep(ARGS.task_ms / 1000)
    result = a + b
    return os.getpid(), result


def _test_pair(pair):  # imap and Executor.map have no star form
    return _test_func(*pair)


def _cs(api_default):
    return ARGS.chunksize if ARGS.chunksize > 0 else api_default


def map_async(pool, test_data):
    results = pool.starmap_async(_test_func, test_data, chunksize=_cs(None)).get()
    pool.close()
    pool.join()
    return results


def imap(pool, test_data):
    results = list(pool.imap(_test_pair, test_data, chunksize=_cs(1)))
    pool.close()
    pool.join()
    return results


def imap_unordered(pool, test_data):
    results = list(pool.imap_unordered(_test_pair, test_data, chunksize=_cs(1)))
    pool.close()
    pool.join()
    return sorted(results, key=lambda r: r[1])  # a + b = 4i + 1 gives the order back


def executor_map(executor, test_data):
    return list(executor.map(_test_pair, test_data, chunksize=_cs(1)))


IMPLS = {f.__name__: f for f in (map_async, imap, imap_unordered, executor_map)}

# The scenario's labels that run a variant with parameters changed, as in
# the `impls` table of scenarios/chunk_skew.lua: the document's pool of 3
# (still 14 + 2), and CPython's default chunksize (ceil(n / (4 * workers))).
LABELS = {
    'map_async_w3': ('map_async', {'workers': 3}),
    'map_async_default': ('map_async', {'chunksize': 0}),
}


def chunk_of(i):
    """The chunk task i went in, as _map_async (or imap, or Executor.map) cut them."""
    if ARGS.chunksize > 0:
        size = ARGS.chunksize
    elif ARGS.impl.startswith('map_async'):
        size, extra = divmod(ARGS.n, 4 * ARGS.workers)
        size += bool(extra)
    else:
        size = 1
    return i // size


def parse_args(argv=None):
    ap = ports.parser(__doc__, IMPLS, LABELS, 'map_async')
    ap.add_argument('--n', type=int, default=16, help='tasks (default 16)')
    ap.add_argument('--task-ms', type=float, default=50, help='one task, ms (default 50)')
    ap.add_argument('--workers', type=int, default=2, help='pool processes (default 2)')
    ap.add_argument('--chunksize', type=int, default=14,
                    help="tasks per chunk (default 14; 0: the API's default)")
    return ap.parse_args(argv)


def main():
    global ARGS
    ARGS = parse_args()
    impl = ports.resolve(ARGS, IMPLS, LABELS)
    if impl is None:
        return 0
    test_data = [(2 * i, 2 * i + 1) for i in range(ARGS.n)]
    results = ports.run(IMPLS, impl, ARGS.workers, test_data)
    if not ARGS.check:
        return 0
    chunk_pid, whole = {}, True
    for i, (pid, value) in enumerate(results):
        whole = whole and chunk_pid.setdefault(chunk_of(i), pid) == pid
    counts = ports.tasks_per_worker([pid for pid, _ in results], ARGS.workers)
    ok = [v for _, v in results] == [4 * i + 1 for i in range(ARGS.n)] and whole
    return ports.verdict(ARGS, 'tasks per worker %s, every chunk on one worker' % counts, ok)


if __name__ == '__main__':
    sys.exit(main())
