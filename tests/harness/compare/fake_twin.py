#!/usr/bin/env python3
"""fake_twin.py: a stand-in CPython twin for tests/harness/test_compare.sh.

It answers as bench/python/ports.py's command line does (--params, --set,
--impl, --repeat, --json -) but measures nothing: fixed figures, so that the
test can tell what `poolbench compare` must print for CPython. map_async
takes 0.1 s and slow 0.3 s; map_async has a first_error (covered by
`cannot`) and a fact x (a check fails on it). FAKE_TWIN_FAIL=1: exits 3.
FAKE_TWIN_SLEEP=S: forks a child, and both sleep S seconds (a twin that
hangs, with a worker: poolbench must kill both); their pids are appended to
the file $FAKE_TWIN_PIDS.
"""
import json
import os
import sys

args = sys.argv[1:]
if '--params' in args:
    print('n 4 4\nworkers 2 2\nt_ms 10 10')
    sys.exit(0)
if os.environ.get('FAKE_TWIN_FAIL'):
    sys.exit(3)
if os.environ.get('FAKE_TWIN_SLEEP'):
    import time
    os.fork()
    with open(os.environ['FAKE_TWIN_PIDS'], 'a') as f:
        f.write('%d\n' % os.getpid())
    time.sleep(float(os.environ['FAKE_TWIN_SLEEP']))
sets = dict(args[i + 1].split('=', 1) for i, a in enumerate(args) if a == '--set')
labels = args[args.index('--impl') + 1].split(',') if '--impl' in args else ['map_async', 'slow']
n = int(sets['n'])
WALL = {'map_async': 0.1, 'slow': 0.3}
results = []
for label in labels:
    results.append({
        'label': label, 'impl': 'map_async', 'wall_s': WALL[label], 'results': n, 'errors': 0,
        'tasks_run': n, 'tasks_total': n, 'workers_started': 2,
        'first_error': 'boom' if label == 'map_async' else None,
        'facts': {'x': 1} if label == 'map_async' else {},
        'per_worker': [{'slot': 0, 'pid': 1, 'tasks': n, 'busy_s': 0.1}],
        'cannot': {'first_error names the worker': 'the fake twin names no worker'},
    })
json.dump({'engine': 'CPython', 'python': '3.99.0-fake', 'scenario': 'fake_twin',
           'sets': sets, 'results': results}, sys.stdout)
print()
