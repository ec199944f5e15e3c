#!/usr/bin/env python3
"""interrupt.py: a hung task holds map; get(timeout); Ctrl-C during map.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its blocking map and its get(timeout)
(section 1.2), to a trap beyond the documents (issue 13, item 7; PHENOMENA
P23): Ctrl-C during a map (bpo-8296: in Python 2 a Ctrl-C during Pool.map
was never delivered). The CPython twin of
scenarios/interrupt.lua: same parameters, labels and figures.

  map_async, imap, executor_map   the n tasks, the last hanging hang_s: each
                                  API waits for it
  get_timeout                     pool.map_async(f, items).get(timeout_ms),
                                  TimeoutError, then pool.terminate()
  sigint_map_async, sigint_imap, sigint_executor_map
                                  a child python (CHILD below) runs that API
                                  with the task hanging child_hang_s, in a
                                  session of its own; delay_ms after its pool
                                  is up, SIGINT goes to its whole process
                                  group, as Ctrl-C sends it to the foreground
                                  group. Measured in facts: exit_ms, exit_code
                                  (128 + the signal when it died of one, as a
                                  shell's $? and the scenario give it), hung
                                  (not gone within exit_bound_s: killed),
                                  processes_before, pool_processes (the
                                  child and its workers), survivors (its group's
                                  processes alive after grace_s, then killed),
                                  tracebacks (KeyboardInterrupt on its stderr);
                                  and the same with the usual fix, an
                                  initializer that ignores SIGINT in the
                                  workers (the *_init facts).

Every wait is bounded and every process of a child's group is killed at the
end, whatever happened.
"""
import os
import select
import signal
import subprocess
import sys
import time

import ports
from ports import traced

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (8, 8, 'tasks (the last one hangs)'),
    'task_ms': (20, 10, 'sleep per ordinary task, ms'),
    'hang_s': (1, 0.5, "the hung task's sleep, s"),
    'timeout_ms': (200, 100, "get_timeout's get(timeout), ms"),
    'workers': (2, 2, 'pool processes'),
    'child_hang_s': (60, 60, 'the hung task in the child runs, s (Ctrl-C comes long before)'),
    'delay_ms': (200, 100, "Ctrl-C comes this long after the child's pool is up, ms"),
    'exit_bound_s': (5, 2, 'a child not gone this long after the signal is killed and counted hung'),
    'grace_s': (1, 1, "how long the child's group may take to empty after its exit, s"),
}

# The program a child runs: argv = api workers n task_s hang_s ignore_sigint.
CHILD = r'''
import multiprocessing, signal, sys, time
from concurrent.futures import ProcessPoolExecutor
def task(s):
    time.sleep(s)
    return s
def ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
api, w, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
items = [float(sys.argv[4])] * n
items[-1] = float(sys.argv[5])
init = ignore_sigint if sys.argv[6] == '1' else None
ctx = multiprocessing.get_context('fork')
if api == 'executor_map':
    with ProcessPoolExecutor(w, mp_context=ctx, initializer=init) as ex:
        results = ex.map(task, items)
        print('ready', flush=True)
        list(results)
else:
    pool = ctx.Pool(w, initializer=init)
    print('ready', flush=True)
    if api == 'map_async':
        pool.map_async(task, items).get()
    else:
        list(pool.imap(task, items))
'''


def _live(pgid):
    """The processes of group pgid that are alive (zombies left out)."""
    out = subprocess.run(['pgrep', '-g', str(pgid)], capture_output=True, text=True,
                         timeout=10).stdout.split()
    live = []
    for pid in out:
        try:
            with open('/proc/%s/stat' % pid) as f:
                if f.read().rpartition(')')[2].split()[0] != 'Z':
                    live.append(int(pid))
        except OSError:
            pass
    return live


def child_run(p, api, sig, whole_group, ignore_sigint=False):
    """Runs CHILD with api in a session of its own, signals it delay_ms after
    its pool is up, and measures. Returns a dict of figures; leaves nothing."""
    args = [sys.executable, '-c', CHILD, api, str(p.workers), str(p.n),
            str(p.task_ms / 1000), str(p.child_hang_s), '1' if ignore_sigint else '0']
    child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    pgid = child.pid
    out = {}
    try:
        ready, _, _ = select.select([child.stdout], [], [], p.exit_bound_s)
        if ready:
            child.stdout.readline()
        time.sleep(p.delay_ms / 1000)
        out['processes_before'] = len(_live(pgid))
        t0 = time.monotonic()
        if whole_group:
            os.killpg(pgid, sig)
        else:
            os.kill(child.pid, sig)
        try:
            child.wait(p.exit_bound_s)
            out['hung'] = 0
        except subprocess.TimeoutExpired:
            out['hung'] = 1
        out['exit_ms'] = 1000 * (time.monotonic() - t0)
        while _live(pgid) and time.monotonic() - t0 < out['exit_ms'] / 1000 + p.grace_s:
            time.sleep(0.01)
        out['empty_ms'] = 1000 * (time.monotonic() - t0)
        out['survivors'] = len(_live(pgid))
    finally:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait(10)
        err = child.stderr.read().decode(errors='replace')
        child.stdout.close()
        child.stderr.close()
    rc = child.returncode
    out['exit_code'] = 128 - rc if rc < 0 else rc
    out['tracebacks'] = err.count('KeyboardInterrupt')
    return out


def task(seconds):
    time.sleep(seconds)
    return seconds


def _items(p):
    items = [p.task_ms / 1000] * p.n
    items[-1] = p.hang_s
    return items


def map_async(run, p):
    pool = run.pool(p.workers)
    run.tasks_total = p.n
    run.result(len(pool.map_async(traced(task), _items(p)).get()))
    run.finish(pool)


def imap(run, p):
    pool = run.pool(p.workers)
    run.tasks_total = p.n
    for _ in pool.imap(traced(task), _items(p)):
        run.result()
    run.finish(pool)


def executor_map(run, p):
    ex = run.executor(p.workers)
    run.tasks_total = p.n
    for _ in ex.map(traced(task), _items(p)):
        run.result()
    run.finish(ex)


def get_timeout(run, p):
    pool = run.pool(p.workers)
    run.tasks_total = p.n
    try:
        run.result(len(pool.map_async(traced(task), _items(p)).get(p.timeout_ms / 1000)))
        run.finish(pool)
    except multiprocessing_TimeoutError:
        run.error('TimeoutError: no result within %g s' % (p.timeout_ms / 1000), count=p.n)
        run.finish(pool, terminate=True)  # close() + join() would wait for the hung task


def sigint(api):
    def strategy(run, p):
        run.no_pool()
        run.tasks_total = p.n
        plain = child_run(p, api, signal.SIGINT, True)
        fixed = child_run(p, api, signal.SIGINT, True, ignore_sigint=True)
        run.stop_clock()
        run.facts.update(plain)
        run.facts.update({k + '_init': v for k, v in fixed.items()})
        run.facts['pool_processes'] = 1 + p.workers  # the child and its workers: fork has no server
        run.per_worker = []
        run.error('interrupted (in the child run)', count=p.n)
        run.note = ('Ctrl-C on %s: exit %d after %.0f ms, %d tracebacks, %d of %d left; '
                    'with SIGINT ignored in the workers: exit %d after %.0f ms%s, %d tracebacks' % (
                        api, plain['exit_code'], plain['exit_ms'], plain['tracebacks'],
                        plain['survivors'], plain['processes_before'], fixed['exit_code'],
                        fixed['exit_ms'], ' (hung: killed)' if fixed['hung'] else '',
                        fixed['tracebacks']))
    strategy.__name__ = 'sigint_' + api
    return strategy


from multiprocessing import TimeoutError as multiprocessing_TimeoutError  # noqa: E402

LABELS = {
    'map_async': (map_async, {}),
    'imap': (imap, {}),
    'executor_map': (executor_map, {}),
    'get_timeout': (get_timeout, {}),
    'sigint_map_async': (sigint('map_async'), {}),
    'sigint_imap': (sigint('imap'), {}),
    'sigint_executor_map': (sigint('executor_map'), {}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
