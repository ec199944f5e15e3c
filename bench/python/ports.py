"""ports.py: what every CPython twin in bench/python/ shares.

Each bench/python/X.py is the CPython twin of scenarios/X.lua: the document's
program, ported to Python 3, one function per strategy label the scenario
lists, run with the scenario's parameters, reporting the figures poolbench's
JSON report gives (docs/report-format.md, "A result"; the twins' own keys are
in its section "The CPython twins' JSON"). A twin keeps only its document's
code and its parameters; the rest lives here:

  - the command line: --set name=value (repeatable), --quick, --impl a,b,
    --repeat N, --list (the labels), --params (name default quick),
    --json FILE (- for stdout); bad usage exits 2;
  - the timing span, as poolbench's strat_pool_create / strat_pool_finish
    (impls/strategy.c) measure it: startup_s is creating the pool; wall_s
    runs from the moment the pool exists (t0) to the last result
    (Run.stop_clock, or, when the strategy never stops the clock itself, to
    the start of Run.finish, before close/terminate and join); answer_s is
    when the stop rule said yes, stopped_s when every worker was joined after
    it. Interpreter start-up and imports are never inside;
  - per-worker counts: every task goes through traced(fn), which records in
    shared memory (inherited through fork) the worker's pid, its tasks, their
    busy time, its failed tasks and the tasks it started after the answer;
  - message counts: the Pool is a subclass whose task and result pipes count
    the messages they carry (one per apply_async, one per chunk of a map),
    and whose Process factory counts the workers started;
  - the bounded wait: Run.bound_s, the limit a twin puts on a get() that
    CPython might never end (gh-66587), with the message to report;
  - peak memory: each label runs in its own forked child of the driver,
    which resets the kernel's high-water mark (5 > /proc/self/clear_refs)
    and reads VmHWM at the end, falling back to getrusage's ru_maxrss, which
    for a fresh child is that child's own peak (peak_rss_method says which);
  - the JSON writer, with poolbench's top level.

Nothing is left running: every pool is terminated or closed and joined by
Run.finish, executors are shut down, and the label's child is reaped.
"""
import argparse
import json
import multiprocessing
import multiprocessing.pool
import multiprocessing.util
import os
import platform
import resource
import sys
import threading
import time
import traceback
import types
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import sharedctypes

START_METHOD = 'fork'  # Linux's default up to 3.13, the one PHENOMENA.md's figures used
CTX = multiprocessing.get_context(START_METHOD)

# The parameters of the label running: the twin's tasks read them as P.name,
# as the scenario's Lua tasks read P; forked workers inherit them.
P = types.SimpleNamespace()

# The repository's root, so that 'file' reads bench/python/X.py from anywhere.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

now = time.monotonic  # CLOCK_MONOTONIC, as poolbench's pool_now


# ---- per-worker counts: shared memory written by the tasks ---------------------

SLOTS = 8192  # processes one label may start (respawns included)
_shared = None  # (pid, tasks, failed, after_stop, busy, next_slot, answer_t, lock)
_my_slot = (0, -1)  # (pid, slot) of this worker, claimed at its first task


def _trace_reset():
    global _shared, _my_slot
    if _shared is None:
        _shared = (sharedctypes.RawArray('l', SLOTS), sharedctypes.RawArray('l', SLOTS),
                   sharedctypes.RawArray('l', SLOTS), sharedctypes.RawArray('l', SLOTS),
                   sharedctypes.RawArray('d', SLOTS), sharedctypes.RawValue('l', 0),
                   sharedctypes.RawValue('d', 0.0), CTX.Lock())
    for arr in _shared[:5]:
        for i in range(SLOTS):
            arr[i] = 0
    _shared[5].value = 0
    _shared[6].value = 0.0
    _my_slot = (0, -1)


def _slot():
    global _my_slot
    pid = os.getpid()
    if _my_slot[0] != pid:
        with _shared[7]:
            s = _shared[5].value
            _shared[5].value = s + 1
        s = min(s, SLOTS - 1)
        _shared[0][s] = pid
        _my_slot = (pid, s)
    return _my_slot[1]


class traced:
    """traced(fn): fn, counting in shared memory who ran it, how long, and
    whether it raised. A picklable wrapper: fn travels by name, as it would."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        if _shared is None:  # a worker not forked from the twin (forkserver): not counted
            return self.fn(*args, **kwargs)
        s = _slot()
        t = now()
        answer = _shared[6].value
        if answer and t > answer:
            _shared[3][s] += 1
        try:
            return self.fn(*args, **kwargs)
        except BaseException:
            _shared[2][s] += 1
            raise
        finally:
            _shared[1][s] += 1
            _shared[4][s] += now() - t


def _per_worker():
    out = []
    for s in range(min(_shared[5].value, SLOTS)):
        if _shared[1][s]:
            out.append({'slot': s, 'pid': _shared[0][s], 'tasks': _shared[1][s],
                        'busy_s': _shared[4][s]})
    return out


# ---- the pool: CPython's, with its messages and processes counted -------------

class CountingPool(multiprocessing.pool.Pool):
    """multiprocessing.Pool, unchanged but for three counters: task messages
    put on the in-queue, result messages read from the out-queue (the
    shutdown sentinels not counted) and worker processes started."""

    started = 0
    processes = []

    @staticmethod
    def Process(ctx, *args, **kwds):
        p = ctx.Process(*args, **kwds)
        CountingPool.started += 1
        CountingPool.processes.append(p)
        return p

    def _setup_queues(self):
        super()._setup_queues()
        self.sent = self.received = 0
        put, get = self._quick_put, self._quick_get

        def counted_put(obj):
            if obj is not None:
                self.sent += 1
            return put(obj)

        def counted_get():
            obj = get()
            if obj is not None:
                self.received += 1
            return obj

        self._quick_put, self._quick_get = counted_put, counted_get


# ---- one run of one label -----------------------------------------------------

class Run:
    """One repetition of one strategy: its clock and its figures. A
    strategy function gets (run, p) and calls run.pool() or run.executor(),
    run.result() / run.error() per final result, and run.finish(pool)."""

    def __init__(self, label, impl, params, bound_s):
        self.label, self.impl, self.params = label, impl, params
        self.bound_s = bound_s  # the longest a twin waits where CPython may hang
        self.t0 = self.t_create = 0.0
        self.startup_s = self.wall_s = self.answer_s = self.stopped_s = 0.0
        self.results = self.errors = self.errors_unobserved = 0
        self.first_error = None
        self.note = None
        self.callbacks = self.callback_pid = self.callbacks_max_overlap = 0
        self._cb_now = 0
        self._cb_lock = threading.Lock()
        self.stopped_early = False
        self.sent = self.received = None
        self.bytes_sent = None  # set by a twin that counts the bytes of its task messages
        self.tasks_total = 0
        self.facts = {}
        self.worker_deaths = 0
        self.executor_started = None
        self.hung = False
        self.per_worker = None  # set by a strategy whose workers the trace cannot see
        self.start_method = START_METHOD
        _trace_reset()
        CountingPool.started = 0
        CountingPool.processes = []

    # the clock
    def _start(self):
        self.t0 = now()
        self.startup_s = self.t0 - self.t_create

    def pool(self, processes, **kwds):
        """ctx.Pool(processes, ...), timed as poolbench's pool_create."""
        self.t_create = now()
        pool = CountingPool(processes, context=CTX, **kwds)
        self._start()
        return pool

    def executor(self, max_workers, ctx=None, **kwds):
        """ProcessPoolExecutor(max_workers, mp_context=fork, ...). CPython
        starts its processes on the first submit, so startup_s is small and
        the processes' start lands in wall_s."""
        self.t_create = now()
        ex = ProcessPoolExecutor(max_workers=max_workers, mp_context=ctx or CTX, **kwds)
        self._start()
        return ex

    def no_pool(self):
        """A strategy without a pool (a process per task): t0 is now."""
        self.t_create = now()
        self._start()

    def stop_clock(self):
        if self.wall_s == 0:
            self.wall_s = now() - self.t0

    def answer(self):
        """The stop rule said yes: answer_s, and the moment after which a
        task that starts counts in tasks_after_stop."""
        if self.answer_s == 0:
            t = now()
            self.answer_s = t - self.t0
            _shared[6].value = t
            self.stopped_early = True
            self.stop_clock()  # wall_s of a stopping strategy: when the answer came

    # the results
    def result(self, count=1):
        self.results += count

    def error(self, exc, count=1, item=None):
        self.results += count
        self.errors += count
        if self.first_error is None:
            msg = exc if isinstance(exc, str) else '%s: %s' % (type(exc).__name__, exc)
            self.first_error = ('item %d: ' % item if item is not None else '') + msg

    def hang(self, what):
        """The message of a wait given up at bound_s."""
        self.hung = True
        return ("hung: CPython's %s never noticed the dead worker (gh-66587); gave up after "
                "%.1f s" % (what, self.bound_s))

    def callback(self, fn):
        """fn as a callback: counted, with the pid it ran in and how many ran
        at once (poolbench's callbacks, callback_pid, callbacks_max_overlap)."""
        def cb(value):
            with self._cb_lock:
                self._cb_now += 1
                self.callbacks_max_overlap = max(self.callbacks_max_overlap, self._cb_now)
                self.callbacks += 1
                self.callback_pid = os.getpid()
            try:
                return fn(value)
            finally:
                with self._cb_lock:
                    self._cb_now -= 1
        return cb

    def finish(self, pool, terminate=None):
        """Stops the clock (if the strategy has not), then terminate()s the
        pool when the stop rule said yes (or terminate=True), else close()s
        it, and joins: nothing is left running. A pool or an executor."""
        self.stop_clock()
        terminate = self.stopped_early if terminate is None else terminate
        if isinstance(pool, ProcessPoolExecutor):
            procs = dict(pool._processes or {})
            self.executor_started = max(self.executor_started or 0, len(procs))
            pool.shutdown(wait=True, cancel_futures=True)
            # A broken executor terminates its other workers (SIGTERM): not deaths.
            self.worker_deaths = sum(1 for p in procs.values()
                                     if p.exitcode not in (0, None, -15))
        elif pool is not None:
            self.sent, self.received = pool.sent, pool.received
            self.worker_deaths = sum(1 for p in CountingPool.processes
                                     if p.exitcode not in (0, None))
            if terminate:
                self.terminate(pool)
            else:
                pool.close()
            if self.hung:  # a join would hang too: end the workers instead
                for proc in CountingPool.processes:
                    proc.kill()
            else:
                pool.join()
        if self.answer_s > 0 and self.stopped_s == 0:
            self.stopped_s = now() - self.t0

    TERMINATE_BOUND_S = 5.0

    def terminate(self, pool):
        """pool.terminate(), bounded. CPython's terminate() can hang for good
        (python/cpython#78178, bpo-33997, open): _help_stuff_finish() takes
        the inqueue's read lock, and a worker started during the shutdown
        holds it while it waits for a task that no one will send. Seen here
        about once in 15 runs of early_stop's producer_consumer_long. After
        TERMINATE_BOUND_S, once the task handler has ended (so no one else
        writes), one None per worker goes into the inqueue: the worker
        holding the lock reads it, exits and lets go, and terminate() goes
        on. The run's note says so; the figures before it stand."""
        t = threading.Thread(target=pool.terminate, name='bounded-terminate', daemon=True)
        t.start()
        t.join(self.TERMINATE_BOUND_S)
        for _ in range(20):
            if not t.is_alive():
                return
            if not pool._task_handler.is_alive():
                for _ in range(max(1, len(pool._pool))):
                    pool._inqueue._writer.send(None)
                self.note = ("CPython's terminate() hung (python/cpython#78178); "
                             "unblocked after %.0f s" % self.TERMINATE_BOUND_S)
            t.join(0.5)
        if t.is_alive():
            self.hung = True
            self.note = "CPython's terminate() hung (python/cpython#78178) and stayed hung"

    def freeze(self):
        """Keeps the figures as they are now: what a strategy runs after
        (lifecycle's second pool) adds only facts."""
        self._frozen = self.figures()

    def figures(self):
        if getattr(self, '_frozen', None):
            return self._frozen
        per_worker = self.per_worker if self.per_worker is not None else _per_worker()
        ran = sum(w['tasks'] for w in per_worker)
        failed = sum(_shared[2][s] for s in range(min(_shared[5].value, SLOTS)))
        started = CountingPool.started or max(self.executor_started or 0, len(per_worker))
        return {
            'startup_s': self.startup_s, 'answer_s': self.answer_s, 'stopped_s': self.stopped_s,
            'tasks_run': ran, 'tasks_total': self.tasks_total,
            'tasks_after_stop': sum(_shared[3][s] for s in range(min(_shared[5].value, SLOTS))),
            'results': self.results, 'errors': self.errors,
            'errors_unobserved': self.errors_unobserved if self.errors_unobserved >= 0 else failed,
            'first_error': self.first_error, 'note': self.note,
            'callbacks': self.callbacks, 'callback_pid': self.callback_pid,
            'callbacks_max_overlap': self.callbacks_max_overlap,
            'parent_pid': os.getpid(), 'stopped_early': self.stopped_early,
            'messages_sent': self.sent, 'messages_received': self.received,
            'bytes_sent': self.bytes_sent,
            'workers_started': started, 'worker_deaths': self.worker_deaths,
            'tasks_failed': failed, 'hung': self.hung,
            'facts': self.facts, 'per_worker': per_worker,
        }


# ---- one label, in its own child process --------------------------------------

def _peak_reset():
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return 'VmHWM'
    except OSError:
        return 'ru_maxrss'


def _peak_kb(method):
    if method == 'VmHWM':
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _run_label(twin, label, params, repeat):
    impl, overrides = twin.LABELS[label]
    p = dict(params)
    p.update(overrides)
    P.__dict__.clear()
    P.__dict__.update(p)
    method = _peak_reset()
    walls, cpus, last = [], [], None
    for _ in range(repeat):
        run = Run(label, impl.__name__, p, twin.bound_s(P) if hasattr(twin, 'bound_s') else 30.0)
        cpu0 = time.process_time()  # this process's CPU, every thread: poolbench's cpu_s
        try:
            impl(run, P)
            run_failed = False
        except Exception as e:  # the strategy could not run (its pool refused)
            run.first_error = run.first_error or '%s: %s' % (type(e).__name__, e)
            if run.t0:
                run.stop_clock()
            run_failed = True
        walls.append(run.wall_s)
        cpus.append(time.process_time() - cpu0)
        last = (run, run_failed)
    run, run_failed = last
    walls.sort()
    k = len(walls)
    out = {'impl': run.impl, 'label': label,
           'wall_s': walls[k // 2] if k % 2 else (walls[k // 2 - 1] + walls[k // 2]) / 2,
           'wall_min_s': walls[0], 'wall_max_s': walls[-1], 'repeats': repeat,
           'model_s': None, 'deviation': None,
           'cpu_s': sorted(cpus)[k // 2] if k % 2 else sum(sorted(cpus)[k // 2 - 1:k // 2 + 1]) / 2}
    out.update(run.figures())
    out.update({'run_failed': run_failed, 'interrupted': None,
                'peak_rss_kb': _peak_kb(method), 'peak_rss_method': method,
                'cores': os.cpu_count(), 'params': p, 'start_method': run.start_method,
                'cannot': getattr(twin, 'CANNOT', {}), 'differs': getattr(twin, 'DIFFERS', {})})
    return out


def _in_child(fn):
    """fn() in a forked child; its JSON-able value back through a pipe. The
    driver has no threads, so fork is safe; the child is always reaped."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        status = 0
        try:
            data = json.dumps(fn()).encode()
        except BaseException:
            data = json.dumps({'crash': traceback.format_exc()}).encode()
            status = 1
        with os.fdopen(w, 'wb') as f:
            f.write(data)
        # os._exit skips atexit, where multiprocessing removes the temporary
        # directories (pymp-*) its forkserver and spawn contexts made: run it.
        try:
            multiprocessing.util._exit_function()
        except Exception:
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        os._exit(status)
    os.close(w)
    with os.fdopen(r, 'rb') as f:
        data = f.read()
    os.waitpid(pid, 0)
    value = json.loads(data.decode() or '{"crash": "no output"}')
    if 'crash' in value:
        raise RuntimeError(value['crash'])
    return value


# ---- the command line ---------------------------------------------------------

def _number(text):
    """'16' -> 16, '0.5' -> 0.5, '1e3' -> 1000: integers stay integers."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number: %r' % text)
    return int(v) if v.is_integer() else v


def _show_counts(c):
    """Per-worker counts as the table shows them: over 8, their count and range."""
    if len(c) > 8:
        return '%d processes, %d-%d' % (len(c), min(c), max(c))
    return ' '.join(map(str, c)) or '-'


def main(twin):
    """The twin's command line; returns the exit status (0, or 2 for bad
    usage, as poolbench)."""
    doc = twin.__doc__ or ''
    ap = argparse.ArgumentParser(prog=os.path.basename(twin.__file__),
                                 description=doc.splitlines()[0],
                                 epilog='parameters (name default quick): ' + '; '.join(
                                     '%s %s %s' % (k, d, q) for k, (d, q, _) in
                                     twin.PARAMS.items()))
    ap.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                    help='a parameter of the scenario (repeatable)')
    ap.add_argument('--quick', action='store_true', help="the scenario's quick values")
    ap.add_argument('--impl', default='', help='labels to run, comma-separated (default all)')
    ap.add_argument('--repeat', type=int, default=1, help='runs per label (median reported)')
    ap.add_argument('--list', action='store_true', help='print the labels, one a line')
    ap.add_argument('--params', action='store_true',
                    help='print the parameters: name default quick, one a line')
    ap.add_argument('--json', metavar='FILE', help='write the JSON report (- for stdout)')
    a = ap.parse_args()
    params = {k: (q if a.quick else d) for k, (d, q, _) in twin.PARAMS.items()}
    for kv in a.set:
        k, eq, v = kv.partition('=')
        if not eq or k not in params:
            ap.error('--set %s: no parameter %r (known: %s)' % (kv, k, ', '.join(params)))
        try:
            params[k] = _number(v)
        except argparse.ArgumentTypeError as e:
            ap.error('--set %s: %s' % (kv, e))
    labels = [x for x in a.impl.split(',') if x] or list(twin.LABELS)
    for x in labels:
        if x not in twin.LABELS:
            ap.error('--impl: no label %r (known: %s)' % (x, ', '.join(twin.LABELS)))
    if a.repeat < 1:
        ap.error('--repeat: at least 1')
    if a.list:
        print('\n'.join(twin.LABELS))
        return 0
    if a.params:
        for k, (d, q, _) in twin.PARAMS.items():
            print(k, d, q)
        return 0
    results = []
    for label in labels:
        results.append(_in_child(lambda: _run_label(twin, label, params, a.repeat)))
        if not a.json:
            x = results[-1]
            print('%-24s wall %.3f s (%.3f-%.3f)  startup %.3f s  tasks %d/%d  per worker %s  '
                  'results %d  errors %d%s' % (
                      label, x['wall_s'], x['wall_min_s'], x['wall_max_s'], x['startup_s'],
                      x['tasks_run'], x['tasks_total'],
                      _show_counts([w['tasks'] for w in x['per_worker']]),
                      x['results'], x['errors'],
                      '  first error: ' + x['first_error'].splitlines()[0]
                      if x['first_error'] else ''))
    report = {
        'engine': 'CPython', 'python': platform.python_version(),
        'start_method': START_METHOD,
        'scenario': os.path.splitext(os.path.basename(twin.__file__))[0],
        'source': twin.SOURCE,
        'file': os.path.relpath(os.path.abspath(twin.__file__), _ROOT),
        'params': params, 'quick': a.quick, 'repeat': a.repeat,
        'machine': {'cores': os.cpu_count(),
                    'os': '%s %s' % (platform.system(), platform.release())},
        'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        'results': results,
    }
    if a.json == '-':
        json.dump(report, sys.stdout, indent=2)
        print()
    elif a.json:
        with open(a.json, 'w') as f:
            json.dump(report, f, indent=2)
            f.write('\n')
    return 0
