#!/usr/bin/env python3
"""lifecycle.py: join before close is refused; close finishes queued work; terminate drops it.

Ports document 004 (seeds/004_fb99f51ccaea3c91.txt, "python进程池": close()
"stops the pool accepting new tasks", join() "must come after close or
terminate", terminate() "ends the workers, not processing the unfinished
tasks"), its apply_async / close / join program, to Python 3; phenomenon P13.
The CPython twin of scenarios/lifecycle.lua: one label, lifecycle, a probe
that reports what each rule did as facts, under the scenario's names:

  join_before_close_refused   pool.join() on a running pool raised ValueError
  submit_after_close_refused  apply_async after close() raised ValueError
  done_after_close            tasks queued before close() that still finished
  terminated_jobs             jobs not finished after terminate() and join() on
                              a second pool with the same work queued
  done_before_terminate       jobs of that pool that had finished
  terminate_s                 how long terminate() took

wall_s is the first pool's run (submit, join refused, close, refused
submit, every get()), as the scenario's. CPython never fails a job that
terminate() dropped: its get() would wait forever, so terminated_jobs counts
the handles still not ready() after terminate() and join(), and none is
waited on. Changed from the document: pow becomes nap (a sleep of t_ms);
Pool(cpu_count()) is Pool(workers); Pool from get_context('fork').
"""
import sys
import time

import ports
from ports import P, traced

SOURCE = '004_fb99f51ccaea3c91.txt'
PARAMS = {
    'n': (16, 8, 'tasks queued'),
    'workers': (4, 2, 'pool processes'),
    't_ms': (200, 100, 'each task (a sleep), ms'),
}


def nap(x):
    time.sleep(P.t_ms / 1000)
    return x


def lifecycle(r, p):
    pool = r.pool(processes=p.workers)
    r.tasks_total = p.n
    handles = [pool.apply_async(func=traced(nap), args=(i,)) for i in range(1, p.n + 1)]
    try:
        pool.join()  # before close(): CPython refuses
        r.facts['join_before_close_refused'] = 0
    except ValueError as e:
        r.facts['join_before_close_refused'] = 1
        r.note = 'join before close: ValueError(%r)' % str(e)
    pool.close()
    try:
        pool.apply_async(func=traced(nap), args=(0,))
        r.facts['submit_after_close_refused'] = 0
    except ValueError:
        r.facts['submit_after_close_refused'] = 1
    done = 0
    for h in handles:
        try:
            h.get()
            r.result()
            done += 1
        except Exception as e:
            r.error(e)
    r.facts['done_after_close'] = done
    r.finish(pool)
    r.freeze()  # the figures are the first pool's; the second adds facts

    # The second pool: the same work queued, then terminate() at once.
    second = ports.CountingPool(p.workers, context=ports.CTX)
    handles = [second.apply_async(func=traced(nap), args=(i,)) for i in range(1, p.n + 1)]
    t = time.monotonic()
    second.terminate()
    r.facts['terminate_s'] = time.monotonic() - t
    second.join()
    finished = sum(1 for h in handles if h.ready() and h.successful())
    r.facts['done_before_terminate'] = finished
    r.facts['terminated_jobs'] = sum(1 for h in handles if not h.ready())


LABELS = {'lifecycle': (lifecycle, {})}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
