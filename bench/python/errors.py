#!/usr/bin/env python3
"""errors.py: who sees a task's error: map fails whole and late, fire-and-forget loses it.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its apply_async with callback and error_callback
(section 1.2.2) and its ProcessPoolExecutor program whose test(n) fails on
every even n (section 2.3: "map raises, submit needs add_done_callback"), to
Python 3; phenomenon P10. The CPython twin of scenarios/errors.lua.

  map_async               map_async(odd_only, items).get(): one error fails the
                          whole map, reported once every chunk has ended
  async_get_after_forget  apply_async for all, handles dropped (no get(), no
                          error_callback): the errors reach nobody
  executor_submit_forget  executor.submit(...) for all, futures dropped
  callback_chain          apply_async(callback=..., error_callback=...)
  imap                    for each item: next() raises at a failing item; go on
  executor_submit         the document's submit + as_completed + result()

errors_unobserved is measured, not seen by the program: every task runs
through ports.traced, which counts the tasks that raised. Changed from the
document: odd_only raises ValueError("even input N") (the document divides by
zero) and sleeps t_ms on odd items, slow_ms on item 1, as the scenario's task;
items are numbered from 1; Pool and executor from get_context('fork').
"""
import sys
import time
from concurrent.futures import as_completed

import ports
from ports import P, traced

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (40, 12, 'items (the even ones fail)'),
    'workers': (4, 2, 'pool processes'),
    't_ms': (20, 10, 'each odd item, ms'),
    'slow_ms': (400, 200, 'item 1 (the first of the first chunk), ms'),
    'forget': (0, 0, '1: drop the handles (fire and forget); set by the *_forget variants'),
}


def odd_only(x):
    if x % 2 == 0:
        raise ValueError('even input %d' % x)
    time.sleep((P.slow_ms if x == 1 else P.t_ms) / 1000)
    return x


def items(p):
    return range(1, p.n + 1)


def map_async(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    try:
        values = pool.map_async(traced(odd_only), items(p)).get()
        r.result(len(values))
    except Exception as e:  # the map is one job: every item an error
        r.error(e, count=p.n)
    r.finish(pool)


def async_get_after(r, p):  # with forget = 1: fire and forget
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    handles = [pool.apply_async(traced(odd_only), args=(i,)) for i in items(p)]
    if p.forget:
        handles = None  # nobody will look
        r.errors_unobserved = -1  # from the trace: the tasks that raised
        pool.close()
        pool.join()
    else:
        for i, h in zip(items(p), handles):
            try:
                h.get()
                r.result()
            except Exception as e:
                r.error(e, item=i)
    r.finish(pool)


def executor_submit(r, p):
    executor = r.executor(p.workers)
    r.tasks_total = p.n
    if p.forget:
        for i in items(p):
            executor.submit(traced(odd_only), i)  # no result(), no add_done_callback()
        r.errors_unobserved = -1
        executor.shutdown(wait=True)
    else:
        work_dict = {executor.submit(traced(odd_only), i): i for i in items(p)}
        for future in as_completed(work_dict):
            num = work_dict[future]
            try:
                future.result()
                r.result()
            except Exception as e:
                r.error(e, item=num)
    r.finish(executor)


def callback_chain(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n

    def callback(result):
        r.result()
        if r.results == p.n:
            r.stop_clock()  # the last result: the end of poolbench's span

    def error_callback(e):
        r.error(e)
        if r.results == p.n:
            r.stop_clock()

    for i in items(p):
        pool.apply_async(traced(odd_only), args=(i,), callback=r.callback(callback),
                         error_callback=r.callback(error_callback))
    pool.close()
    pool.join()
    r.finish(pool)


def imap(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    it = pool.imap(traced(odd_only), items(p))
    for i in items(p):
        try:
            next(it)
            r.result()
        except StopIteration:
            break
        except Exception as e:  # the failing item's error; the iteration goes on
            r.error(e, item=i)
    r.finish(pool)


LABELS = {
    'map_async': (map_async, {}),
    'async_get_after_forget': (async_get_after, {'forget': 1}),
    'executor_submit_forget': (executor_submit, {'forget': 1}),
    'callback_chain': (callback_chain, {}),
    'imap': (imap, {}),
    'executor_submit': (executor_submit, {}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
