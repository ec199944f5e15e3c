#!/usr/bin/env python3
"""serialized_get.py: get() inside the submit loop serializes a two-stage pipeline.

Ports document 000 (seeds/000_80a7a203a5a748e6.txt, "multiprocessing进程池与回调函数":
process pools and callback functions) to Python 3; phenomena P1 and P2 of
PHENOMENA.md. The C counterpart is scenarios/serialized_get.lua, with the same
parameters (n, workers, a_ms, b_ms) and the same strategy names:

  async_get_loop   the document's original: getA's result is fetched with get()
                   inside the loop, then getB is submitted (n*a + b)
  merged           its first fix: getC = getB(getA(x)) in one task (ceil(n/w)*(a+b))
  callback_chain   its second fix: apply_async(getA, callback=getB); getB runs in
                   the parent, one callback at a time (a + n*b)
  map_async        map_async(getA) then map_async(getB), as the scenario does

What changed from the document, and why:
  - getA and getB sleep a_ms and b_ms (the document's do no work, so there
    was nothing to time); infoList has n items instead of 2.
  - The prints inside the tasks are gone (output is not what is measured);
    getB records the pid it ran in instead, so that --check can show the
    document's point that every getB of the callback version ran in the
    parent (P2).
  - The document's loop never reads getB's results; here the handles are kept
    and read after close() and join(), so that --check can verify them.
  - Python 3: print is a function. The pool comes from get_context('fork'):
    fork is Linux's default up to Python 3.13 (PHENOMENA.md's figures were
    measured with it); 3.14 changed the default to forkserver, so it is named.
    The tasks read the parameters from the global ARGS, which fork copies.

Runs one variant and exits 0; hyperfine does the timing (bench/hyperfine.sh).
--check also verifies the results and prints a one-line summary.
"""
import multiprocessing
import os
import sys
import time

import ports  # the command line the ports share (bench/python/ports.py)

ARGS = None  # the parsed command line; forked workers inherit it


def getA(info):
    time.sleep(ARGS.a_ms / 1000)
    info['test1'] = 'test1'
    info['test2'] = 'test2'
    return info


def getB(info):
    time.sleep(ARGS.b_ms / 1000)
    a = {}
    a['test'] = info['test1'] + '_' + info['test2']
    a['pid'] = os.getpid()  # not in the document: where getB ran (P2)
    return a


def getC(info):
    return getB(getA(info))


def async_get_loop(pool, infoList):
    handles = []
    for info in infoList:
        basicinfo = pool.apply_async(getA, (info,))
        baseinfo = basicinfo.get()  # waits for getA, here, in the loop
        handles.append(pool.apply_async(getB, (baseinfo,)))
    pool.close()
    pool.join()
    return [h.get() for h in handles]


def merged(pool, infoList):
    handles = [pool.apply_async(getC, (info,)) for info in infoList]
    pool.close()
    pool.join()
    return [h.get() for h in handles]


def callback_chain(pool, infoList):
    results = []  # appended by the pool's result-handler thread

    def getB_callback(info):  # the document passes callback=getB
        results.append(getB(info))

    for info in infoList:
        pool.apply_async(getA, args=(info,), callback=getB_callback)
    pool.close()
    pool.join()
    return results


def map_async(pool, infoList):
    a = pool.map_async(getA, infoList).get()
    b = pool.map_async(getB, a).get()
    pool.close()
    pool.join()
    return b


IMPLS = {f.__name__: f for f in (async_get_loop, merged, callback_chain, map_async)}


def parse_args(argv=None):
    ap = ports.parser(__doc__, IMPLS, {}, 'async_get_loop')
    ap.add_argument('--n', type=int, default=8, help='items (default 8)')
    ap.add_argument('--workers', type=int, default=4, help='pool processes (default 4)')
    ap.add_argument('--a-ms', type=float, default=50, help='stage A per item, ms (default 50)')
    ap.add_argument('--b-ms', type=float, default=50, help='stage B per item, ms (default 50)')
    return ap.parse_args(argv)


def main():
    global ARGS
    ARGS = parse_args()
    if ports.resolve(ARGS, IMPLS, {}) is None:
        return 0
    ctx = multiprocessing.get_context('fork')
    infoList = [{'a': 'a%d' % i, 'b': 'b%d' % i} for i in range(ARGS.n)]
    pool = ctx.Pool(ARGS.workers)
    results = IMPLS[ARGS.impl](pool, infoList)
    if not ARGS.check:
        return 0
    parent = os.getpid()
    in_parent = sum(1 for r in results if r['pid'] == parent)
    want_in_parent = ARGS.n if ARGS.impl == 'callback_chain' else 0
    ok = (len(results) == ARGS.n
          and all(r['test'] == 'test1_test2' for r in results)
          and in_parent == want_in_parent)
    return ports.verdict(ARGS, '%d results, %d getB in the parent (pid %d), want %d and %d'
                         % (len(results), in_parent, parent, ARGS.n, want_in_parent), ok)


if __name__ == '__main__':
    sys.exit(main())
