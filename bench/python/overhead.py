#!/usr/bin/env python3
"""overhead.py: what one trivial task costs through each pool API.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its timing of map_async against apply_async
with a callback and against imap on 20 000 tasks of `a * a` (sections 1.2.4
and 1.2.5), and its ProcessPoolExecutor programs (section 2.3), to Python 3;
phenomenon P6 of PHENOMENA.md. The C counterpart is scenarios/overhead.lua,
with the same parameters (n, workers) and strategy names:

  map_async        pool.map_async(run, range(n)).get()      (one message per chunk)
  callback_chain   apply_async(run, callback=my_callback)    (one message per task)
  async_get_after  apply_async for all, then get() on each
  imap             for i in pool.imap(run, range(n))          (chunksize 1)
  imap_unordered   the same, unordered
  apply_sync       pool.apply(run) per task: a round trip each
  executor_submit  ProcessPoolExecutor: submit all, as_completed
  executor_map     ProcessPoolExecutor.map(run, range(n))     (chunksize 1)
  executor_map_c1, executor_map_c834   the same with chunksize 1 and 834

--chunksize sets the chunksize of map_async, imap, imap_unordered and
executor_map (0, the default, keeps each API's own: ceil(n/(4w)) for
map_async, 1 for the others); PHENOMENA's executor_map figures are for 1 and
834.

What changed from the document, and why:
  - The document's programs print every result (print(future.get()), print(i)
    in the imap loop) and time themselves with time.time(); here nothing is
    printed (output is not what is measured) and hyperfine times the whole
    command, interpreter start-up included, like the C side's.
  - Only one API runs per invocation (the document comments the others out).
  - 20 000 and Pool(6) are --n and --workers.
  - The pool comes from get_context('fork'), the Linux default up to Python
    3.13 with which PHENOMENA.md's figures were measured.
  - async_get_after, apply_sync and imap_unordered are not timed in the
    document; section 1.2 lists them, and the scenario compares them too.

Runs one variant and exits 0; hyperfine does the timing (bench/hyperfine.sh).
--check also verifies every result (run(i) == i*i).
"""
import sys
from concurrent.futures import as_completed

import ports  # the command line the ports share (bench/python/ports.py)

ARGS = None  # the parsed command line


def run(a):
    return a * a


def _cs(api_default):
    return ARGS.chunksize if ARGS.chunksize > 0 else api_default


def map_async(pool, n):
    future = pool.map_async(run, range(n), chunksize=_cs(None))
    data = future.get()
    pool.close()
    pool.join()
    return data


def callback_chain(pool, n):
    data = []

    def my_callback(result):
        data.append(result)

    for i in range(n):
        pool.apply_async(run, args=(i,), callback=my_callback)
    pool.close()
    pool.join()
    return data


def async_get_after(pool, n):
    handles = [pool.apply_async(run, args=(i,)) for i in range(n)]
    data = [h.get() for h in handles]
    pool.close()
    pool.join()
    return data


def imap(pool, n):
    data = [i for i in pool.imap(run, range(n), chunksize=_cs(1))]
    pool.close()
    pool.join()
    return data


def imap_unordered(pool, n):
    data = [i for i in pool.imap_unordered(run, range(n), chunksize=_cs(1))]
    pool.close()
    pool.join()
    return data


def apply_sync(pool, n):
    data = [pool.apply(run, args=(i,)) for i in range(n)]
    pool.close()
    pool.join()
    return data


def executor_submit(executor, n):
    work_dict = {executor.submit(run, i): i for i in range(n)}
    return [future.result() for future in as_completed(work_dict)]


def executor_map(executor, n):
    return list(executor.map(run, range(n), chunksize=_cs(1)))


IMPLS = {f.__name__: f for f in (map_async, callback_chain, async_get_after, imap,
                                 imap_unordered, apply_sync, executor_submit, executor_map)}

# The scenario's labels that run a variant with parameters changed, as in
# the `impls` table of scenarios/overhead.lua: PHENOMENA's two executor_map
# figures (834 = ceil(20000 / (4 * 6)), what map_async would use).
LABELS = {
    'executor_map_c1': ('executor_map', {'chunksize': 1}),
    'executor_map_c834': ('executor_map', {'chunksize': 834}),
}


def parse_args(argv=None):
    ap = ports.parser(__doc__, IMPLS, LABELS, 'map_async')
    ap.add_argument('--n', type=int, default=20000, help='tasks (default 20000)')
    ap.add_argument('--workers', type=int, default=6, help='pool processes (default 6)')
    ap.add_argument('--chunksize', type=int, default=0,
                    help="items per message (default 0: the API's own default)")
    return ap.parse_args(argv)


def main():
    global ARGS
    ARGS = parse_args()
    impl = ports.resolve(ARGS, IMPLS, LABELS)
    if impl is None:
        return 0
    data = ports.run(IMPLS, impl, ARGS.workers, ARGS.n)
    if not ARGS.check:
        return 0
    ok = sorted(data) == [i * i for i in range(ARGS.n)]
    return ports.verdict(ARGS, '%d results, every one i*i' % len(data), ok)


if __name__ == '__main__':
    sys.exit(main())
