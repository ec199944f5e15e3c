#!/usr/bin/env python3
"""early_stop.py: stop the whole pool as soon as one task returns True.

Ports document 001 (seeds/001_f61eaeda99fb6a3d.txt, "python多进程multiprocessing
子进程返回值": getting the return values of child processes), its basic use
and "advanced use" examples one and two, to Python 3; phenomena P4 and P5.
The CPython twin of scenarios/early_stop.lua: same parameters, labels, figures;
its stop rule (a result is True) gives answer_s, stopped_s, tasks_after_stop.

  map_async               map_async(test, range(n)).get(), then look: collect
                          all, then check (n*t/w)
  async_get_after         example one: every handle into a queue, then get()
                          them in order until True, terminate
  producer_consumer       example two: a thread submits, another get()s the
                          handles as they come, terminate at True
  imap_unordered_c16      imap_unordered(test, range(n), chunksize=16) + break
                          + terminate (PHENOMENA's best: 1.13 s against 1.0 s)
  callback_chain          apply_async(test, callback=...): the callback, in the
                          parent, sees True and the main thread terminates
  async_get_after_long, producer_consumer_long   the same on n_long tasks, hit
                          at k_long: P5, the submit loop longer than the answer

Changed from the document: Python 3 (range, queue, print()); the loops end
when the tasks run out (the document's `while 1` waits forever when no task
returns True); example two's Pool() is Pool(workers), its 50 000 000
submissions n, and the producer ends the queue with None; Pool from
get_context('fork'). Items are numbered from 1, as the scenario's.
"""
import queue
import sys
import threading
import time

import ports
from ports import P, traced

SOURCE = '001_f61eaeda99fb6a3d.txt'
PARAMS = {
    'n': (5000, 1000, 'tasks'),
    'k': (1000, 200, 'the item whose task returns true (the hit)'),
    'task_ms': (1, 1, 'sleep per task, ms'),
    'workers': (10, 10, 'pool processes'),
    'chunksize': (0, 0, "chunk size (0: the API's default); imap_unordered_c16 sets 16"),
    'n_long': (600000, 300000, 'tasks of the P5 variants (*_long)'),
    'k_long': (1000, 200, 'the hit of the P5 variants'),
    'long': (0, 0, '1: n_long tasks, hit at k_long (the *_long variants set it)'),
}
CANNOT = {'messages_sent': "CPython's task handler puts messages on the pipe behind the "
                           "submit loop and stops at terminate(): facts.submitted counts the "
                           "apply_async calls, what the P5 check means by messages sent"}


def test(p):
    time.sleep(P.task_ms / 1000)
    if p == (P.k_long if P.long else P.k):
        return True
    else:
        return False


def _n(p):
    return p.n_long if p.long else p.n


def map_async(r, p):
    n = _n(p)
    pool = r.pool(processes=p.workers)
    r.tasks_total = n
    values = pool.map_async(traced(test), range(1, n + 1), chunksize=p.chunksize or None).get()
    r.result(len(values))
    r.facts['found'] = values.index(True) + 1 if True in values else 0
    r.finish(pool)


def async_get_after(r, p):
    n = _n(p)
    pool = r.pool(processes=p.workers)
    r.tasks_total = n
    q = queue.Queue()
    for i in range(1, n + 1):
        q.put(pool.apply_async(traced(test), args=(i,)))
    r.facts['submitted'] = n
    i = 1
    while not q.empty():
        r.result()
        if q.get().get():
            r.answer()
            r.facts['found'] = i
            break
        i += 1
    r.finish(pool)  # terminate() after the answer, as the document; close() otherwise


def producer_consumer(r, p):
    n = _n(p)
    pool = r.pool(processes=p.workers)
    r.tasks_total = n
    result = queue.Queue()
    submitted = [0]

    def pool_th():
        for i in range(1, n + 1):
            if r.answer_s:  # not in the document: stop submitting after the answer
                break
            try:
                result.put(pool.apply_async(traced(test), args=(i,)))
                submitted[0] += 1
            except ValueError:  # Pool not running, after terminate()
                break
        result.put(None)  # not in the document: the end of the tasks

    def result_th():
        i = 1
        while 1:
            h = result.get()
            if h is None:
                break
            r.result()
            if h.get():
                r.answer()
                r.facts['found'] = i
                r.terminate(pool)  # the document's pool.terminate(), bounded (ports.py)
                break
            i += 1

    t1 = threading.Thread(target=pool_th)
    t2 = threading.Thread(target=result_th)
    t1.start()
    t2.start()
    t1.join()
    t2.join()
    r.facts['submitted'] = submitted[0]
    r.finish(pool)


def imap_unordered(r, p):
    n = _n(p)
    pool = r.pool(processes=p.workers)
    r.tasks_total = n
    it = pool.imap_unordered(traced(test), range(1, n + 1), chunksize=p.chunksize or 1)
    for found in it:
        r.result()
        if found:
            r.answer()
            break
    r.finish(pool)


def callback_chain(r, p):
    n = _n(p)
    pool = r.pool(processes=p.workers)
    r.tasks_total = n
    done = threading.Event()

    def callback(result):  # runs in the parent, on the result-handler thread
        r.result()
        if result:
            r.answer()
        if result or r.results == n:
            done.set()

    submitted = 0
    for i in range(1, n + 1):
        if r.answer_s:
            break
        pool.apply_async(traced(test), args=(i,), callback=r.callback(callback))
        submitted += 1
    r.facts['submitted'] = submitted
    done.wait()
    r.finish(pool)


LABELS = {
    'map_async': (map_async, {}),
    'async_get_after': (async_get_after, {}),
    'producer_consumer': (producer_consumer, {}),
    'imap_unordered_c16': (imap_unordered, {'chunksize': 16}),
    'callback_chain': (callback_chain, {}),
    'async_get_after_long': (async_get_after, {'long': 1}),
    'producer_consumer_long': (producer_consumer, {'long': 1}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
