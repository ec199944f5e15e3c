#!/usr/bin/env python3
"""orphans.py: SIGKILL the parent mid-map and count the workers left behind.

Ports document 003 (seeds/003_148c127c0e6336ae.txt, "【Hard Python】【第一章-多进程】
3、Pool,多任务并行进程池": Pool, the multi-task process pool), its pool's workers (printed there as
"started daemon": ended at the parent's normal exit, not at its death), to a
trap beyond the documents (issue 13, item 6; PHENOMENA P22): the parent
SIGKILLed mid-map. The CPython twin of
scenarios/orphans.lua: same parameters, labels and figures.

  map_async, executor_map   the n tasks, the last one sleeping hang_s
  sigkill_map_async, sigkill_executor_map
                            a child python (interrupt.py's CHILD) runs that
                            API with the long task sleeping child_hang_s, in
                            a session of its own; delay_ms after its pool is
                            up its main process gets SIGKILL (as from the OOM
                            killer). Measured in facts: processes_before,
                            pool_processes (1 + workers: fork has no
                            server, poolbench's child has one), survivors (its group's processes alive grace_s
                            after the kill: CPython's orphans), empty_ms,
                            exit_code (137). The survivors are killed
                            afterwards (SIGKILL to the group), whatever
                            happened: nothing is left.

Why CPython's workers stay: nothing runs in a SIGKILLed parent, and the
workers do not watch it. A Pool worker inside a task runs it to its end (here
child_hang_s, an orphan all that time); an idle Pool worker sees EOF on the
task pipe (it closed its own write end) and exits. ProcessPoolExecutor's
workers, busy or idle, stay: the idle ones block on the call queue.
"""
import signal
import sys

import ports
from interrupt import child_run, executor_map, map_async

SOURCE = '003_148c127c0e6336ae.txt'
PARAMS = {
    'n': (8, 8, 'tasks (the last one is long)'),
    'task_ms': (20, 10, 'sleep per ordinary task, ms'),
    'hang_s': (0.5, 0.3, "the long task's sleep, s"),
    'workers': (2, 2, 'pool processes'),
    'child_hang_s': (60, 60, 'the long task in the child runs, s (the kill comes long before)'),
    'delay_ms': (200, 100, "SIGKILL comes this long after the child's pool is up, ms"),
    'exit_bound_s': (5, 5, "the longest wait for the child's pool and for its exit, s"),
    'grace_s': (1, 1, 'survivors are counted this long after the kill, s'),
}


# The check CPython fails by design (poolbench's compare prints why beside it).
DIFFERS = {'no orphans': "CPython's workers do not watch their parent (poolbench's ask the "
                         "kernel for SIGKILL when it dies, PR_SET_PDEATHSIG): a busy one runs "
                         "its task on, an executor's idle ones block on the call queue"}

def sigkill(api):
    def strategy(run, p):
        run.no_pool()
        run.tasks_total = p.n
        o = child_run(p, api, signal.SIGKILL, False)
        run.stop_clock()
        run.facts.update(o)
        run.facts['pool_processes'] = 1 + p.workers  # the child and its workers: fork has no server
        run.per_worker = []
        run.error('killed (in the child run)', count=p.n)
        run.note = ('SIGKILL to the parent of %s: %d of %d processes left (waited up to %g s); '
                    'killed afterwards' % (api, o['survivors'], o['processes_before'], p.grace_s))
    strategy.__name__ = 'sigkill_' + api
    return strategy


LABELS = {
    'map_async': (map_async, {}),
    'executor_map': (executor_map, {}),
    'sigkill_map_async': (sigkill('map_async'), {}),
    'sigkill_executor_map': (sigkill('executor_map'), {}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
