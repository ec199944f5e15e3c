#!/usr/bin/env python3
"""early_stop.py: stop the whole pool as soon as one task returns True.

Ports document 001 (seeds/001_f61eaeda99fb6a3d.txt, "python多进程multiprocessing
子进程返回值": getting the return values of child processes), its "advanced use"
examples one and two, to Python 3; phenomena P4 and P5 of PHENOMENA.md. The
C counterpart is scenarios/early_stop.lua, with the same parameters (n,
task_ms, k, workers: n tasks of task_ms each, the True one is task k) and
strategy names:

  collect_all        the document's basic use: apply_async every task, close,
                     join, then look at the results (n*t/w; no C counterpart
                     by this name: map_async is the C side's collect-all)
  map_async          map_async(test, range(n)).get(), then look (n*t/w)
  async_get_after    example one: every apply_async handle into a queue, then
                     get() them in order until True, terminate (the answer is
                     seen only once the submit loop is over)
  producer_consumer  example two: a thread submits, another get()s the handles
                     from the queue as they come, terminate at True
  imap_unordered     imap_unordered(test, range(n), chunksize) + break +
                     terminate (PHENOMENA's best: 1.13 s against 1.0 s ideal)
  imap               the same with imap: results in input order
  executor_submit    ProcessPoolExecutor: submit all, as_completed, stop at
                     True with shutdown(cancel_futures=True)
  executor_map       ProcessPoolExecutor.map(test, range(n), chunksize), break
  apply_sync         pool.apply() per task: nothing is wasted, nothing overlaps

What changed from the document, and why:
  - Python 3: xrange is range, Queue is queue, print is a function.
  - The document's `while 1: if q.get().get()` waits forever when no task
    returns True (k >= n); here the loops end when the tasks run out.
  - Example one calls pool.join() after terminate(), fine; the basic use's
    join() on a running pool is refused by Python 3 (ValueError), so close()
    comes first.
  - Example two's Pool() (one process per CPU) is Pool(workers), its
    50 000 000 submissions are n, and the producer ends the queue with None
    so that the consumer stops when no task returns True.
  - The pool comes from get_context('fork'), the Linux default up to Python
    3.13 with which PHENOMENA.md's figures were measured; test() reads the
    parameters from the global ARGS, which fork copies.
  - imap_unordered, imap and the executor variants are not in document 001;
    they are the other ways to stop early that the scenario compares.

Runs one variant and exits 0; hyperfine does the timing (bench/hyperfine.sh).
--check also verifies that the True task found is task k (or none, k >= n).
"""
import multiprocessing
import queue
import sys
import threading
import time

import ports  # the command line the ports share (bench/python/ports.py)

ARGS = None  # the parsed command line; forked workers inherit it


def test(p):
    time.sleep(ARGS.task_ms / 1000)
    if p == (ARGS.k_long if ARGS.long else ARGS.k):
        return True
    else:
        return False


# Each variant returns the index of the task that returned True, or None.

def collect_all(pool, n):
    result = []
    for i in range(n):
        result.append(pool.apply_async(test, args=(i,)))
    pool.close()
    pool.join()
    for i, r in enumerate(result):
        if r.get():
            return i
    return None


def map_async(pool, n):
    values = pool.map_async(test, range(n), chunksize=ARGS.chunksize or None).get()
    pool.close()
    pool.join()
    return values.index(True) if True in values else None


def async_get_after(pool, n):
    q = queue.Queue()
    for i in range(n):
        q.put(pool.apply_async(test, args=(i,)))
    i = 0
    while not q.empty():
        if q.get().get():
            pool.terminate()
            pool.join()
            return i
        i += 1
    pool.close()
    pool.join()
    return None


def producer_consumer(pool, n):
    result = queue.Queue()
    found = []

    def pool_th():
        for i in range(n):
            try:
                result.put(pool.apply_async(test, args=(i,)))
            except Exception:  # ValueError: Pool not running, after terminate()
                break
        result.put(None)  # not in the document: the end of the tasks

    def result_th():
        i = 0
        while 1:
            r = result.get()
            if r is None:
                break
            if r.get():
                pool.terminate()
                found.append(i)
                break
            i += 1

    t1 = threading.Thread(target=pool_th)
    t2 = threading.Thread(target=result_th)
    t1.start()
    t2.start()
    t1.join()
    t2.join()
    if not found:
        pool.close()
    pool.join()
    return found[0] if found else None


def imap_unordered(pool, n):
    it = pool.imap_unordered(test, range(n), chunksize=ARGS.chunksize or 1)
    for found in it:
        if found:
            pool.terminate()
            pool.join()
            return ARGS.k_long if ARGS.long else ARGS.k  # unordered: only one is True
    pool.close()
    pool.join()
    return None


def callback_chain(pool, n):
    found = []

    def callback(result, i):  # runs in the parent, on the result-handler thread
        if result and not found:
            found.append(i)
            pool.terminate()  # from the result handler: CPython allows it

    for i in range(n):
        try:
            pool.apply_async(test, args=(i,), callback=lambda r, i=i: callback(r, i))
        except ValueError:  # Pool not running: the callback has terminated it
            break
    if not found:
        pool.close()
    pool.join()
    return found[0] if found else None


IMPLS = {f.__name__: f for f in (map_async, async_get_after, producer_consumer, imap_unordered,
                                 callback_chain, collect_all)}

# The scenario's labels that run a variant with parameters changed, as in
# the `impls` table of scenarios/early_stop.lua.
LABELS = {
    'imap_unordered_c16': ('imap_unordered', {'chunksize': 16}),
    'async_get_after_long': ('async_get_after', {'long': 1}),
    'producer_consumer_long': ('producer_consumer', {'long': 1}),
}


def parse_args(argv=None):
    ap = ports.parser(__doc__, IMPLS, LABELS, 'imap_unordered_c16',
                      check_help='verify the answer')
    ap.add_argument('--n', type=int, default=5000, help='tasks (default 5000)')
    ap.add_argument('--k', type=int, default=1000,
                    help='the item whose task returns True (default 1000)')
    ap.add_argument('--task-ms', type=float, default=1, help='one task, ms (default 1)')
    ap.add_argument('--workers', type=int, default=10, help='pool processes (default 10)')
    ap.add_argument('--chunksize', type=int, default=0,
                    help="chunk size (default 0: the API's default)")
    ap.add_argument('--n-long', type=int, default=600000,
                    help='tasks of the *_long labels (default 600000)')
    ap.add_argument('--k-long', type=int, default=1000,
                    help='the hit of the *_long labels (default 1000)')
    ap.add_argument('--long', type=int, default=0, choices=(0, 1),
                    help='1: n_long tasks, hit at k_long (default 0)')
    return ap.parse_args(argv)


def main():
    global ARGS
    ARGS = parse_args()
    impl = ports.resolve(ARGS, IMPLS, LABELS)
    if impl is None:
        return 0
    n, k = (ARGS.n_long, ARGS.k_long) if ARGS.long else (ARGS.n, ARGS.k)
    pool = multiprocessing.get_context('fork').Pool(processes=ARGS.workers)
    found = IMPLS[impl](pool, n)
    if not ARGS.check:
        return 0
    want = k if 0 <= k < n else None
    ok = found == want
    return ports.verdict(ARGS, 'True at task %s, want %s' % (
        'none' if found is None else found, 'none' if want is None else want), ok)


if __name__ == '__main__':
    sys.exit(main())
