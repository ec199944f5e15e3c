#!/usr/bin/env python3
"""serialized_get.py: get() inside the submit loop serializes a two-stage pipeline.

Ports document 000 (seeds/000_80a7a203a5a748e6.txt, "multiprocessing进程池与回调函数":
process pools and callback functions) to Python 3; phenomena P1 and P2. The
CPython twin of scenarios/serialized_get.lua: same parameters, same labels,
the same figures (bench/python/ports.py runs it and writes them).

  async_get_loop   the document's original: getA's result fetched with get()
                   inside the loop, then getB submitted (n*a + b)
  merged           its first fix: getC = getB(getA(x)) in one task (ceil(n/w)*(a+b))
  callback_chain   its second fix: apply_async(getA, callback=getB); getB runs in
                   the parent, one callback at a time (a + n*b)
  map_async        map_async(getA) then map_async(getB), as the scenario does

Changed from the document: getA and getB sleep a_ms and b_ms (the document's
do no work); infoList has n items; the prints are gone; the loop keeps getB's
handles and reads them; Python 3 print; Pool from get_context('fork').
"""
import os
import sys
import time

import ports
from ports import P, traced

SOURCE = '000_80a7a203a5a748e6.txt'
PARAMS = {  # name: (default, quick, what), as scenarios/serialized_get.lua
    'n': (8, 8, 'items'),
    'workers': (4, 4, 'pool processes'),
    'a_ms': (50, 50, 'stage A per item, ms'),
    'b_ms': (50, 50, 'stage B per item, ms'),
}


def getA(info):
    time.sleep(P.a_ms / 1000)
    info['test1'] = 'test1'
    info['test2'] = 'test2'
    return info


def getB(info):
    time.sleep(P.b_ms / 1000)
    a = {}
    a['test'] = info['test1'] + '_' + info['test2']
    a['pid'] = os.getpid()  # not in the document: where getB ran (P2)
    return a


def getC(info):
    return getB(getA(info))


def info_list(p):
    return [{'a': 'a%d' % i, 'b': 'b%d' % i} for i in range(p.n)]


def async_get_loop(run, p):
    pool = run.pool(p.workers)
    run.tasks_total = 2 * p.n
    handles = []
    for info in info_list(p):
        basicinfo = pool.apply_async(traced(getA), (info,))
        baseinfo = basicinfo.get()  # waits for getA, here, in the loop
        handles.append(pool.apply_async(traced(getB), (baseinfo,)))
    for h in handles:
        h.get()
        run.result()
    run.finish(pool)


def merged(run, p):
    pool = run.pool(p.workers)
    run.tasks_total = p.n
    handles = [pool.apply_async(traced(getC), (info,)) for info in info_list(p)]
    for h in handles:
        h.get()
        run.result()
    run.finish(pool)


def callback_chain(run, p):
    pool = run.pool(p.workers)
    run.tasks_total = p.n

    def getB_callback(info):  # the document passes callback=getB: it runs here
        getB(info)
        run.result()
        if run.results == p.n:
            run.stop_clock()

    for info in info_list(p):
        pool.apply_async(traced(getA), args=(info,), callback=run.callback(getB_callback))
    pool.close()
    pool.join()
    run.finish(pool)


def map_async(run, p):
    pool = run.pool(p.workers)
    run.tasks_total = 2 * p.n
    a = pool.map_async(traced(getA), info_list(p)).get()
    b = pool.map_async(traced(getB), a).get()
    run.result(len(b))
    run.finish(pool)


LABELS = {f.__name__: (f, {}) for f in (async_get_loop, merged, callback_chain, map_async)}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
