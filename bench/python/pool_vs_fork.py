#!/usr/bin/env python3
"""pool_vs_fork.py: a pool pays for its processes once; a process per task pays every time.

Ports document 004 (seeds/004_fb99f51ccaea3c91.txt, "python进程池": why process
pools exist, "without a pool every task creates a process anew, which wastes
time") with the Process program of document 002 (seeds/002_2fab88b10910dd43.txt,
section 1.1: start a Process, join it) to Python 3; phenomenon P9 of
PHENOMENA.md (CPython 3.11 here, 500 trivial tasks: Process per task 0.839 s,
Pool(4).map(chunksize=1) 0.024 s). The C counterpart is
scenarios/pool_vs_fork.lua, with the same parameters (n, workers, chunksize)
and strategy names:

  process_per_task  for each task: Process(target=run, args=(i,)), start(),
                    join(); one at a time, as document 002's program does
  map_async         Pool(workers).map_async(run, range(n), chunksize).get()
  merged            Pool(workers): one apply_async per task, get() after (with
                    a single stage, merged is just that)

What changed from the documents, and why:
  - run(a) returns the pid that ran it at once, as the scenario's built-in
    getpid task does (document 002's sleeps 5 s, prints and returns a * a),
    so that --check can count the processes: n for process_per_task, at most
    `workers` for a pool.
  - A Process's return value is lost, so each child sends its result down
    one shared pipe, which the parent reads before join(): what the C
    strategy does.
  - Document 004 runs pow through apply_async on a pool of cpu_count();
    here the pool has --workers processes.
  - --chunksize is map_async's: 1 by default, as PHENOMENA.md measured and the
    scenario does; 0 for CPython's own ceil(n / (4 * workers)).
  - Processes come from get_context('fork'), Linux's default up to Python
    3.13 and the one PHENOMENA.md's figures were measured with: it is also
    the cheapest way to start a process, the fairest baseline.
  - Whole commands are timed (hyperfine), so the pool's start-up is in the
    figure; the C scenario's wall_s leaves it out (its startup_s).

Runs one variant and exits 0; hyperfine does the timing (bench/hyperfine.sh).
--check also verifies the results and counts the processes that ran them.
"""
import multiprocessing
import os
import sys

import ports  # the command line the ports share (bench/python/ports.py)

ARGS = None  # the parsed command line


def run(a):
    return os.getpid()


def run_and_send(a, conn):  # not in the documents: the result comes back
    conn.send(run(a))


def process_per_task(ctx, n):
    reader, writer = ctx.Pipe(duplex=False)
    results = []
    for i in range(n):
        p = ctx.Process(target=run_and_send, args=(i, writer))
        p.start()
        results.append(reader.recv())  # before join: a full pipe would block the child
        p.join()
    return results


def map_async(ctx, n):
    pool = ctx.Pool(ARGS.workers)
    results = pool.map_async(run, range(n), chunksize=ARGS.chunksize or None).get()
    pool.close()
    pool.join()
    return results


def merged(ctx, n):
    pool = ctx.Pool(ARGS.workers)
    handles = [pool.apply_async(run, args=(i,)) for i in range(n)]
    results = [h.get() for h in handles]
    pool.close()
    pool.join()
    return results


IMPLS = {f.__name__: f for f in (process_per_task, map_async, merged)}


def parse_args(argv=None):
    ap = ports.parser(__doc__, IMPLS, {}, 'process_per_task')
    ap.add_argument('--n', type=int, default=500, help='tasks (default 500)')
    ap.add_argument('--workers', type=int, default=4, help='pool processes (default 4)')
    ap.add_argument('--chunksize', type=int, default=1,
                    help="map_async's (default 1; 0: CPython's default)")
    return ap.parse_args(argv)


def main():
    global ARGS
    ARGS = parse_args()
    if ports.resolve(ARGS, IMPLS, {}) is None:
        return 0
    pids = IMPLS[ARGS.impl](multiprocessing.get_context('fork'), ARGS.n)
    if not ARGS.check:
        return 0
    distinct = len(set(pids))
    if ARGS.impl == 'process_per_task':
        ok, want = distinct == ARGS.n, 'n = %d' % ARGS.n
    else:
        ok, want = 1 <= distinct <= ARGS.workers, 'at most %d' % ARGS.workers
    ok = ok and len(pids) == ARGS.n and os.getpid() not in pids
    return ports.verdict(ARGS, '%d results from %d processes (want %s)'
                         % (len(pids), distinct, want), ok)


if __name__ == '__main__':
    sys.exit(main())
