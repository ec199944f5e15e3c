#!/usr/bin/env python3
"""shared_state.py: a Manager's proxies cost a round trip and return copies; Value loses updates without its lock.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its section 1.3 (sharing data: Value, Array,
Manager; its two programs, 20 apply_async tasks setting dd[k] = v on a
manager dict and 20 putting "%d is done" on a manager Queue, and its
warning that d['k'] = []; d['k'].append(x) changes a copy), to Python 3;
phenomenon P15. The CPython twin of scenarios/shared_state.lua.

  dict_set          the document's run(d, k, v): d[k] = k*k from n apply_async tasks
  append_copy       d[k] = []; d[k].append(i): the append changes a copy
  append_reassign   l = d[k]; l.append(i); d[k] = l: the fix
  queue_put         the document's write(name, que): q.put("%d is done" % i)
  counter_unlocked  map_async: x = v.value; sleep(window); v.value = x + 1 (a Value)
  counter_locked    the same inside `with v.get_lock():`
  counter_manager   sleep(window); c.add(1) on a manager-side counter
  cost_shared       2*workers tasks, m reads of v.value each (a Value, default lock=True)
  cost_manager      2*workers tasks, m reads of d['x'] each (a manager dict)

facts: keys and wrong (dict_set), keys and values_in_lists (append_*),
drained and each_once (queue_put: distinct messages; 1 if each came
out once, else -1), final, lost and overlapping_pairs (counter_*: pairs of
windows, after the read and before the write, from different processes that
intersect, each a certain loss without the lock), per_access_s (cost_*: the
median over the tasks), rtt_s (a manager's empty round trip, from the
driver: the model of one access).

Changed from the document: the Manager is started before the Pool (the
document starts it after; poolbench's manager is started before the pools
fork, and so the manager's start-up stays out of wall_s here too); the
Value, its lock and the spans are module globals made before the pool forks
(a Value cannot be passed to apply_async: "Synchronized objects should only
be shared between processes through inheritance"); CPython's manager has no
atomic counter, so counter_manager registers one (a class whose add takes a
threading.Lock in the manager's server, whose threads serve each connection);
items are numbered from 1; Pool from get_context('fork').
"""
import functools
import sys
import threading
import time
from multiprocessing import sharedctypes
from multiprocessing.managers import SyncManager

import ports
from ports import CTX, P, now, traced

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (20, 20, 'tasks for the dict, append and queue programs (the document\'s 20)'),
    'workers': (4, 2, 'pool processes'),
    'incr': (200, 60, 'counter increments'),
    'window_ms': (2, 2, 'ms between a counter\'s read and its write (the race window)'),
    'm': (2000, 500, 'accesses per cost task'),
    'tag': (1, 1, 'which program the tasks run (set by each variant)'),
}


class Counter:
    """A counter living in the manager's process: add() is one round trip,
    its read-modify-write done there under a lock (the server has a thread
    per connection)."""

    def __init__(self):
        self._v = 0
        self._lock = threading.Lock()

    def add(self, k=1):
        with self._lock:
            self._v += k
            return self._v

    def get(self):
        return self._v


class StateManager(SyncManager):
    pass


StateManager.register('Counter', Counter)

# Made by a label before its pool forks, inherited by the workers.
V = None       # the counter Value, or the probe
SPANS = None   # 3 per item: pid, after the read, before the write


# ---- the tasks: the document's, and the scenario's -----------------------------

def set_square(d, i):
    d[i] = i * i  # the document's run(d, k, v): d[k] = v
    return i


def append_copy(d, i):
    k = 'k%d' % i
    d[k] = []
    d[k].append(i)  # the document's warning: appends to a copy
    return i


def append_reassign(d, i):
    k = 'k%d' % i
    d[k] = []
    lst = d[k]
    lst.append(i)
    d[k] = lst
    return i


def put_done(q, i):
    q.put('%d is done' % i)  # the document's write(name, que)
    return i


def _span(i, t1, t2):
    SPANS[3 * i - 3], SPANS[3 * i - 2], SPANS[3 * i - 1] = ports.os.getpid(), t1, t2


def incr_unlocked(i):
    x = V.value  # v.value += 1 is a load ...
    t1 = now()
    time.sleep(P.window_ms / 1000)
    t2 = now()
    V.value = x + 1  # ... and a store
    _span(i, t1, t2)
    return i


def incr_locked(i):
    with V.get_lock():
        x = V.value
        t1 = now()
        time.sleep(P.window_ms / 1000)
        t2 = now()
        V.value = x + 1
        _span(i, t1, t2)
    return i


def incr_manager(c, i):
    time.sleep(P.window_ms / 1000)
    c.add(1)
    return i


def probe_shared(i):
    x = None
    t0 = now()
    for _ in range(P.m):
        x = V.value
    return (now() - t0) / P.m + 0 * x


def probe_manager(d, i):
    x = None
    t0 = now()
    for _ in range(P.m):
        x = d['x']
    return (now() - t0) / P.m + 0 * x


# ---- what the parent reads afterwards ------------------------------------------

def overlaps(n):
    spans = sorted(((SPANS[3 * i], SPANS[3 * i + 1], SPANS[3 * i + 2]) for i in range(n)),
                   key=lambda s: s[1])
    count = 0
    for i, (pid, _, end) in enumerate(spans):
        for other_pid, start, _ in spans[i + 1:]:
            if start > end:
                break
            count += other_pid != pid
    return count


def median(xs):
    xs = sorted(xs)
    k = len(xs)
    return 0.0 if k == 0 else xs[k // 2] if k % 2 else (xs[k // 2 - 1] + xs[k // 2]) / 2


def rtt(d, k=201):
    """A manager's round trip from here: the median of k reads of d['x']."""
    ts = []
    for _ in range(k):
        t = now()
        d['x']
        ts.append(now() - t)
    return median(ts)


# ---- the strategies ------------------------------------------------------------

def _apply_all(r, p, fn):
    """The document's apply_async per task, get() after (async_get_after)."""
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    handles = [pool.apply_async(traced(fn), args=(i,)) for i in range(1, p.n + 1)]
    for i, h in enumerate(handles, 1):
        try:
            h.get()
            r.result()
        except Exception as e:
            r.error(e, item=i)
    r.finish(pool)


def _map_all(r, p, fn, n):
    pool = r.pool(p.workers)
    r.tasks_total = n
    try:
        values = pool.map_async(traced(fn), range(1, n + 1)).get()
        r.result(len(values))
    except Exception as e:
        r.error(e, count=n)
        values = []
    r.finish(pool)
    return values


def dict_set(r, p):
    with StateManager(ctx=CTX) as m:
        dd = m.dict()
        _apply_all(r, p, functools.partial(set_square, dd))
        d = dict(dd)
        r.facts.update(keys=len(d), wrong=sum(1 for k, v in d.items() if v != k * k))


def _append(fn):
    def label(r, p):
        with StateManager(ctx=CTX) as m:
            dd = m.dict()
            _apply_all(r, p, functools.partial(fn, dd))
            d = dict(dd)
            r.facts.update(keys=len(d), values_in_lists=sum(len(v) for v in d.values()))
    label.__name__ = 'async_get_after'
    return label


def queue_put(r, p):
    with StateManager(ctx=CTX) as m:
        q = m.Queue()
        _apply_all(r, p, functools.partial(put_done, q))
        drained = {}
        while not q.empty():
            m = q.get(True, 5)
            drained[m] = drained.get(m, 0) + 1
        each = drained.get('1 is done', 0)
        every = all(drained.get('%d is done' % i) == each for i in range(1, p.n + 1))
        r.facts['drained'] = len(drained)
        r.facts['each_once'] = 1 if every and each == 1 and len(drained) == p.n else -1


def _counter(fn):
    def label(r, p):
        global V, SPANS
        V = CTX.Value('q', 0)  # the document's Value, with its lock
        SPANS = sharedctypes.RawArray('d', 3 * p.incr)
        _map_all(r, p, fn, p.incr)
        r.facts.update(final=V.value, lost=p.incr - V.value, overlapping_pairs=overlaps(p.incr))
    label.__name__ = 'map_async'
    return label


def counter_manager(r, p):
    with StateManager(ctx=CTX) as m:
        c = m.Counter()
        _map_all(r, p, functools.partial(incr_manager, c), p.incr)
        final = c.get()
        r.facts.update(final=final, lost=p.incr - final)


def cost_shared(r, p):
    global V
    V = CTX.Value('q', 1)
    r.facts['per_access_s'] = median(_map_all(r, p, probe_shared, 2 * p.workers))


def cost_manager(r, p):
    with StateManager(ctx=CTX) as m:
        d = m.dict()
        d['x'] = 1
        r.facts['rtt_s'] = rtt(d)
        r.facts['per_access_s'] = median(
            _map_all(r, p, functools.partial(probe_manager, d), 2 * p.workers))


dict_set.__name__ = queue_put.__name__ = 'async_get_after'
counter_manager.__name__ = cost_shared.__name__ = cost_manager.__name__ = 'map_async'

LABELS = {
    'dict_set': (dict_set, {'tag': 1}),
    'append_copy': (_append(append_copy), {'tag': 2}),
    'append_reassign': (_append(append_reassign), {'tag': 3}),
    'queue_put': (queue_put, {'tag': 4}),
    'counter_unlocked': (_counter(incr_unlocked), {'tag': 5}),
    'counter_locked': (_counter(incr_locked), {'tag': 6}),
    'counter_manager': (counter_manager, {'tag': 7}),
    'cost_shared': (cost_shared, {'tag': 8}),
    'cost_manager': (cost_manager, {'tag': 9}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
