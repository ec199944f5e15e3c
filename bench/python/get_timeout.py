#!/usr/bin/env python3
"""get_timeout.py: get(timeout) raises, but the task runs on and holds its worker.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its apply_async and get(timeout), to a trap
beyond the documents (issue 13, item 3; PHENOMENA P19). The CPython twin
of scenarios/get_timeout.lua, same parameters, labels and facts (ms from
the strategy's start, on time.monotonic, which every process shares on
Linux).

  held     h = pool.apply_async(f, (long,)); h.get(timeout) raises
           multiprocessing.TimeoutError; the later tasks are submitted and
           wait for the one worker until the long task ends
  limited  CPython's Pool has no per-task time limit (billiard's Pool has:
           time_limit / soft_time_limit): run_failed, CANNOT says so
"""
import multiprocessing
import sys
import time

import ports
from ports import traced

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'long_ms': (300, 200, 'the long task, ms (limited sets 5000: past the limit)'),
    'timeout_ms': (100, 50, 'get(timeout), ms'),
    'later': (3, 2, 'tasks submitted after the timeout'),
    'later_ms': (20, 10, 'each later task, ms'),
    'workers': (1, 1, 'pool processes (one: the one held)'),
}

CANNOT = {'limited': "CPython's multiprocessing.Pool has no per-task time limit (billiard's "
                     "Pool, Celery's fork, has time_limit): run_failed"}


def timed(s):
    t = time.monotonic()
    time.sleep(s)
    return (t, time.monotonic())


def submit_after_timeout(run, p):
    pool = run.pool(p.workers)
    run.tasks_total = 1 + p.later
    t0 = run.t0
    ms = lambda t: 1000 * (t - t0)  # noqa: E731
    f = traced(timed)
    long = pool.apply_async(f, (p.long_ms / 1000,))
    try:
        long.get(p.timeout_ms / 1000)
        run.facts['timed_out'] = 0
    except multiprocessing.TimeoutError:
        run.facts['timed_out'] = 1
    run.facts['timeout_ms'] = ms(time.monotonic())
    run.facts['long_ms'] = p.long_ms
    later = [pool.apply_async(f, (p.later_ms / 1000,)) for _ in range(p.later)]
    start, end = long.get(2 * p.long_ms / 1000 + 5)
    run.facts['long_done'] = 1
    run.facts['long_killed'] = 0
    run.facts['long_end_ms'] = ms(end)
    run.result()
    run.facts['later_start_ms'] = min(ms(h.get(p.long_ms / 1000 + 5)[0]) for h in later)
    run.result(p.later)
    run.finish(pool)


def limited(run, p):
    raise NotImplementedError(CANNOT['limited'])


LABELS = {
    'held': (submit_after_timeout, {}),
    'limited': (limited, {'long_ms': 5000}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
