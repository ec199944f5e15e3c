#!/usr/bin/env python3
"""big_argument.py: a big argument sent with every task costs n copies.

Ports document 003 (seeds/003_148c127c0e6336ae.txt, "【Hard Python】【第一章-多进程】
3、Pool,多任务并行进程池": Pool, the multi-task process pool), its Pool, to a
trap beyond the documents (issue 13, item 1; PHENOMENA P17): a large
read-only argument written the plain way, pool.map(f, [(i, big) ...]),
against the two usual fixes. The CPython twin of scenarios/big_argument.lua:
same parameters, labels and figures.

  per_task     pool.map_async(f, [(i, big) for i in 1..n]).get(): pickled per task
  initializer  Pool(initializer=init, initargs=(big,)); f reads the global
  fork         a global built before Pool(); the fork start method inherits it

bytes_sent (the report's field, as poolbench's) counts the bytes written to
the workers' pipe (the twin wraps that connection's _send_bytes; CPython
counts no bytes itself). pickle memoizes an object met twice in one
message: the tasks of a chunk that share one string carry it once, so
CPython sends about ceil(n / chunksize) copies, not n (chunksize defaults
to ceil(n / (4w))), and its task handler thread pickles one chunk at a time,
so the parent never holds them all. Under the fork start method CPython's
initargs are inherited with the Process object, never pickled: the
initializer label sends no big bytes either, as poolbench's.
"""
import sys
import time

import ports
from ports import P, traced

SOURCE = '003_148c127c0e6336ae.txt'
PARAMS = {
    'n': (200, 100, 'tasks'),
    'size_kb': (1024, 512, "the argument's size, KiB"),
    'task_ms': (0, 0, 'sleep per task, ms'),
    'workers': (2, 2, 'pool processes'),
    'mode': (1, 1, 'set by each variant: 1 per task, 2 initializer, 3 inherited through fork'),
}

CANNOT = {
    'the argument crossed with every task': "pickle memoizes the argument within a chunk: "
                                            "CPython sends one copy per chunk, not per task",
    "the parent's peak memory grows": "CPython's task handler thread pickles and writes one chunk "
                                      "at a time: the copies are never all held at once",
}

BIG = None
WORKER_BIG = None


def with_arg(item):
    if P.task_ms > 0:
        time.sleep(P.task_ms / 1000)
    return len(item[1]) + item[0]


def init(big):
    global WORKER_BIG
    WORKER_BIG = big


def with_global(i):
    if P.task_ms > 0:
        time.sleep(P.task_ms / 1000)
    return len(WORKER_BIG) + i


def with_inherited(i):
    if P.task_ms > 0:
        time.sleep(P.task_ms / 1000)
    return len(BIG) + i


def _count_bytes(run, pool):
    """run.bytes_sent: the bytes the pool's task handler writes to the
    workers' pipe (CPython counts none itself): the connection's
    _send_bytes, wrapped on this one connection."""
    conn = pool._inqueue._writer
    send = conn._send_bytes
    run.bytes_sent = 0

    def counted(buf):
        run.bytes_sent += len(buf)
        return send(buf)
    conn._send_bytes = counted


def mapped(run, p):
    global BIG
    big = 'x' * (p.size_kb * 1024)
    if p.mode == 1:
        BIG, fn, items, kw = None, with_arg, [(i, big) for i in range(1, p.n + 1)], {}
    elif p.mode == 2:
        BIG, fn, items = None, with_global, list(range(1, p.n + 1))
        kw = {'initializer': init, 'initargs': (big,)}
    else:
        BIG, fn, items, kw = big, with_inherited, list(range(1, p.n + 1)), {}
    pool = run.pool(p.workers, **kw)
    _count_bytes(run, pool)
    run.tasks_total = p.n
    values = pool.map_async(traced(fn), items).get()
    run.result(len(values))
    run.facts['all_read'] = int(all(v == p.size_kb * 1024 + i for i, v in enumerate(values, 1)))
    run.finish(pool)


LABELS = {
    'per_task': (mapped, {'mode': 1}),
    'initializer': (mapped, {'mode': 2}),
    'fork': (mapped, {'mode': 3}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
