#!/usr/bin/env python3
"""get_placement.py: where get() goes decides whether apply_async runs in parallel.

Ports document 001 (seeds/001_f61eaeda99fb6a3d.txt, "python多进程multiprocessing
子进程返回值": getting the return values of child processes), its "basic use"
and its warning about get() inside the loop, to Python 3; phenomenon P3 of
PHENOMENA.md. The C counterpart is scenarios/get_placement.lua, with the same
parameters (n, workers, task_ms) and strategy names:

  async_get_after  the document's basic use: every apply_async first, the
                   handles in a list, get() on each after (ceil(n/w)*t)
  async_get_loop   get() right after each apply_async, inside the loop: "as if
                   synchronous, very inefficient", says the document (n*t)
  apply_sync       pool.apply() per item, the blocking API (n*t)
  map_async        map_async(test, range(n)).get(), for comparison

What changed from the document, and why:
  - test(p) sleeps task_ms before returning p (the document's returns at
    once); n items instead of 50 000; workers instead of processes=10.
  - Python 3: xrange is range, print is a function, and the results are not
    printed (output is not what is measured; --check verifies them instead).
  - The document calls pool.join() on a running pool; Python 3 refuses that
    (ValueError: Pool is still running, P13), so close() comes first.
  - The pool comes from get_context('fork'), the Linux default up to Python
    3.13 with which PHENOMENA.md's figures were measured; the task reads its
    duration from the global ARGS, which fork copies.

Runs one variant and exits 0; hyperfine does the timing (bench/hyperfine.sh).
--check also verifies the results and prints a one-line summary.
"""
import multiprocessing
import sys
import time

import ports  # the command line the ports share (bench/python/ports.py)

ARGS = None  # the parsed command line; forked workers inherit it


def test(p):
    time.sleep(ARGS.task_ms / 1000)
    return p


def async_get_after(pool, n):
    result = []
    for i in range(n):
        result.append(pool.apply_async(test, args=(i,)))
    pool.close()
    pool.join()
    return [r.get() for r in result]


def async_get_loop(pool, n):
    values = []
    for i in range(n):
        values.append(pool.apply_async(test, args=(i,)).get())  # waits, in the loop
    pool.close()
    pool.join()
    return values


def apply_sync(pool, n):
    values = [pool.apply(test, args=(i,)) for i in range(n)]
    pool.close()
    pool.join()
    return values


def map_async(pool, n):
    values = pool.map_async(test, range(n)).get()
    pool.close()
    pool.join()
    return values


IMPLS = {f.__name__: f for f in (async_get_after, async_get_loop, apply_sync, map_async)}


def parse_args(argv=None):
    ap = ports.parser(__doc__, IMPLS, {}, 'async_get_after')
    ap.add_argument('--n', type=int, default=8, help='tasks (default 8)')
    ap.add_argument('--workers', type=int, default=4, help='pool processes (default 4)')
    ap.add_argument('--task-ms', type=float, default=50, help='one task, ms (default 50)')
    return ap.parse_args(argv)


def main():
    global ARGS
    ARGS = parse_args()
    if ports.resolve(ARGS, IMPLS, {}) is None:
        return 0
    pool = multiprocessing.get_context('fork').Pool(processes=ARGS.workers)
    values = IMPLS[ARGS.impl](pool, ARGS.n)
    if not ARGS.check:
        return 0
    ok = values == list(range(ARGS.n))
    return ports.verdict(ARGS, '%d results in order' % len(values), ok)


if __name__ == '__main__':
    sys.exit(main())
