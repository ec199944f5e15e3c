#!/usr/bin/env python3
"""imap_memory.py: map holds every input and result at once; imap streams them.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its advice of section 1.2.5 ("when memory is
short, use imap: slower than map, but it needs little memory"), to Python 3;
phenomenon P12 of PHENOMENA.md. The C counterpart is scenarios/imap_memory.lua,
with the same parameters (n items, payload bytes per result, scale, workers)
and strategy names:

  map_async       pool.map_async(run, items).get(): the input becomes a list,
                  every result is kept until the last one is in (memory ~ n)
  imap            for r in pool.imap(run, items): each result is used and
                  dropped (flat memory)
  imap_unordered  the same, unordered
  executor_map    ProcessPoolExecutor.map(run, items): a future per item,
                  all submitted at once (memory ~ n)
  imap_4n, map_async_4n   the same at scale = 4: 4 * n items, as the
                  scenario's labels; the peak memory of map grows 4x, imap's not

The items come from a generator, as a program that reads a large input
would produce them: map turns it into a list first, imap pulls from it.

What changed from the document, and why:
  - run(a) returns a string of `payload` bytes instead of a * a, as the
    scenario's big_result task does, so that what is held in memory is the
    results, at a size one can choose; the loop only adds up their lengths
    (the document prints each one). There are scale * n items.
  - --check prints the parent's peak resident memory (ru_maxrss), the figure
    the C side reports as peak_rss_kb, and verifies the total.
  - The pool comes from get_context('fork'), the Linux default up to Python
    3.13 with which PHENOMENA.md's figures were measured; Pool(6) is
    --workers (default 2, the scenario's).

Runs one variant and exits 0; hyperfine does the timing (bench/hyperfine.sh).
"""
import resource
import sys

import ports  # the command line the ports share (bench/python/ports.py)

ARGS = None  # the parsed command line; forked workers inherit it


def run(a):
    return 'x' * ARGS.payload


def items(n):
    for i in range(n):
        yield i


def map_async(pool, n):
    total = sum(len(r) for r in pool.map_async(run, items(n)).get())
    pool.close()
    pool.join()
    return total


def imap(pool, n):
    total = 0
    for r in pool.imap(run, items(n)):
        total += len(r)
    pool.close()
    pool.join()
    return total


def imap_unordered(pool, n):
    total = 0
    for r in pool.imap_unordered(run, items(n)):
        total += len(r)
    pool.close()
    pool.join()
    return total


def executor_map(executor, n):
    return sum(len(r) for r in executor.map(run, items(n)))


IMPLS = {f.__name__: f for f in (map_async, imap, imap_unordered, executor_map)}

# The scenario's labels that run a variant with parameters changed, as in
# the `impls` table of scenarios/imap_memory.lua.
LABELS = {
    'imap_4n': ('imap', {'scale': 4}),
    'map_async_4n': ('map_async', {'scale': 4}),
}


def parse_args(argv=None):
    ap = ports.parser(__doc__, IMPLS, LABELS, 'imap',
                      check_help='verify the total, print peak memory')
    ap.add_argument('--n', type=int, default=2000, help='items at scale 1 (default 2000)')
    ap.add_argument('--payload', type=int, default=8192, help='bytes per result (default 8192)')
    ap.add_argument('--scale', type=int, default=1, help='items = scale * n (default 1)')
    ap.add_argument('--workers', type=int, default=2, help='pool processes (default 2)')
    return ap.parse_args(argv)


def main():
    global ARGS
    ARGS = parse_args()
    impl = ports.resolve(ARGS, IMPLS, LABELS)
    if impl is None:
        return 0
    n = ARGS.scale * ARGS.n
    total = ports.run(IMPLS, impl, ARGS.workers, n)
    if not ARGS.check:
        return 0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    ok = total == n * ARGS.payload
    return ports.verdict(ARGS, '%d bytes of results, peak RSS %d kB' % (total, peak_kb), ok)


if __name__ == '__main__':
    sys.exit(main())
