#!/usr/bin/env python3
"""reproduction.py: writes docs/reproduction.md from the last `make compare`.

    bench/reproduction.py [RESULTS_DIR [OUT_FILE]]
        defaults: bench/results/compare  docs/reproduction.md

`make compare` (bench/compare.sh) runs `poolbench compare` on every scenario
and keeps each one's JSON in RESULTS_DIR (docs/report-format.md, "What
`poolbench compare` writes"); this turns them into the reproduction report:
its date, machine and both versions, then, per phenomenon, the figures the
document and PHENOMENA.md give (quoted, with their source, below in
PHENOMENA), CPython and poolbench measured here in the same interleaved run,
the model, and whether the ratios the checks rely on agree within 25%.

Why generated: the report's tables were typed by hand from one day's runs
and drifted from the code. The prose that explains the differences is
still written by hand, in bench/reproduction_notes.md (the sections of the
report of 2026-11-24), and placed under its scenario's tables; its figures
are that day's and say so.

Reads only RESULTS_DIR and the notes; writes only OUT_FILE. Exit status 1
when RESULTS_DIR holds no compare JSON.
"""
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Quoted from shared/PHENOMENA.md (the project's brief): per phenomenon, its
# description, document, the document's figure, the figure CPython 3.11 gave
# on a 2-core machine, and the model. P17 onwards give no figures (3 fields:
# description, source, model).
PHENOMENA = {
    'P1': ('`get()` inside the submit loop serializes a two-stage pipeline (A then B per item)', '000', '"1 min became 10 min"', 'n=8, w=4, a=b=50 ms: get-in-loop 0.478 s; merged getC 0.220 s; callback chaining 0.474 s', 'get-in-loop ≈ n·a + b; merged ≈ ⌈n/w⌉·(a+b); callback ≈ a + n·b'),
    'P2': ('callbacks run in the parent process, one at a time (so callback chaining only helps when B is cheap: the document misses this)', '000', "getB's pid = the parent's pid", 'see P1: the callback variant is as slow as get-in-loop when b = a', 'callbacks never overlap; all run in the parent'),
    'P3': ('`apply_async(...).get()` right after submitting is synchronous; collecting handles and calling `get()` after is parallel', '001, 002', '"efficiency very low"', '–', 'get-at-once ≈ n·t; get-after ≈ ⌈n/w⌉·t'),
    'P4': ('early termination: stop everything when one result is True', '001', '50 000 tasks, pool 10, True at task 10 000', 't=1 ms: collect-all-then-check 6.20 s; submit-all-then-check-queue 1.64 s; producer thread + consumer thread 1.38 s; imap_unordered(chunksize 16) + break + terminate 1.13 s', 'ideal ≈ k·t/w = 1.0 s; collect-all ≈ n·t/w; check-after-submit ≈ max(submit time of n, k·t/w)'),
    'P5': ('the submit loop itself costs time; a producer thread overlaps it with result checking', '001', '50 000 000 submissions', '–', 'submit cost per task × n'),
    'P6': ('per-task overhead depends on the API (messages per task)', '002', '20 000 trivial tasks, 6 workers: map_async 0.45 s; apply_async+callback 3.02 s; imap 4.17 s', 'map_async 0.037 s; apply_async+callback 0.652 s; imap 0.528 s; imap_unordered 0.562 s; apply (sync) 5.69 s. ProcessPoolExecutor: submit+as_completed 2.31 s; map(chunksize=1) 2.08 s; map(chunksize=834) 0.024 s', 'time ≈ startup + messages × cost per message'),
    'P7': ('chunk skew: a large chunksize leaves workers idle', '003', '16 tasks, chunksize 14, pool 2 → 14 + 2; pool 3 → still 14 + 2', 't=50 ms: counts [14, 2], 0.704 s for pool 2 and pool 3 (ideal 0.40 s and 0.30 s)', 'makespan ≈ (largest chunk)·t; default chunksize = ⌈n/(4·w)⌉'),
    'P8': ('quick tasks land unevenly: whoever reads the queue first takes them', '003', '16 quick tasks on 4 workers all ran on 1 worker (rarely 2)', '[6, 6, 2, 2]', 'per-worker counts depend on start-up race; report the imbalance'),
    'P9': ('a pool pays for its processes once; a process per task pays every time', '004', '–', '500 trivial tasks: Process per task 0.839 s; Pool(4).map(chunksize=1) 0.024 s', 'per-task process ≈ n·(fork + exit + wait)'),
    'P10': ('errors: map/get re-raise the first error; apply_async without get() or error_callback loses it silently; map_async reports only after every chunk ends (no fail-fast); submit needs result() or a done-callback', '002', '"map raises, submit needs add_done_callback"', '–', 'count of errors seen per API'),
    'P11': ('many writers, one file: a callback in the parent writes whole lines; workers writing directly may interleave', '002 §3.1', '–', '–', 'lines intact vs torn'),
    'P12': ('map materializes input and output; imap streams with flat memory', '002', '"use imap when memory is short"', '–', 'map peak memory ∝ n; imap flat'),
    'P13': ('lifecycle: join before close is an error; close refuses new work; terminate drops unfinished tasks', '004, 002', '–', 'CPython: ValueError("Pool is still running")', '–'),
    'P14': ('initializer runs once per worker; maxtasksperchild replaces a worker after N tasks, at a respawn cost', '002', '–', 'reported elsewhere: 3 956 tasks/s without, 237 tasks/s with max_tasks_per_child=25 (spawn)', 'throughput drops by respawn cost / N'),
    'P15': ("shared state: Value/Array in shared memory vs a Manager process (dict, list, Queue proxies); `d['k'].append(x)` changes a copy, not the shared dict; an unlocked shared counter loses updates", '002 §1.3–1.4', '20 tasks set d[k]=v: all 20 land', '–', 'manager access ≈ one round trip each; shared memory ≈ a memory access; lost updates grow with contention'),
    'P16': ("a worker that dies mid-task: CPython's Pool waits forever (bug tracker gh-66587); ProcessPoolExecutor fails every pending future (BrokenProcessPool)", '–', '–', '–', 'poolbench fails exactly the jobs the dead worker held, replaces it and goes on'),
    'P17': ('a large argument sent with every task vs once per worker (initializer) or inherited through fork', 'Ray anti-patterns ("passing the same large argument by value"); many Q&A', 'extra ≈ n · size / copy rate; parent memory ∝ size in flight'),
    'P18': ('a straggler: one task k times longer; chunking decides the makespan', 'CS149 asst1 (imbalance); Q&A', "makespan = the busiest worker's chunks, chunks handed to the first free worker"),
    'P19': ('get(timeout) raises but the task runs on, holding its worker; no per-task timeout in CPython', 'pathos#123; billiard has hard time limits', 'worker busy until the task ends; a time limit frees it at the limit'),
    'P20': ('start methods: fork, forkserver, spawn; 3.14 made forkserver the Linux default', 'cpython#100228; starfish#2055 (fork 48 s vs spawn 3089 s)', 'start-up ≈ workers · per-worker start cost of the method'),
    'P21': ('fork from a multithreaded parent can deadlock the child (a lock held by another thread)', 'cpython#100228 (3.12 DeprecationWarning)', 'the child hangs with probability ≈ share of time the lock is held'),
    'P22': ('parent killed → workers orphaned, blocked on a dead pipe', 'bbot#3203 (fixed with PR_SET_PDEATHSIG)', "orphans = workers alive after the parent's death"),
    'P23': ('Ctrl-C during Pool.map hangs or is slow to exit', 'bpo-8296', 'time to exit after SIGINT per API'),
    'P24': ('oversubscription: CPU-bound tasks with more workers than cores', 'CS149; Task Bench', 'speed-up ≈ min(w, cores)'),
    'P25': ('eager input: Executor.map / Pool.imap submit the whole input first', 'cpython#74028 (buffersize in 3.14), #64192', 'memory ∝ n without buffersize; flat with it'),
}

# Which scenario reproduces which phenomena, in the report's order.
SCENARIOS = [
    ('serialized_get', ['P1', 'P2']), ('get_placement', ['P3']),
    ('early_stop', ['P4', 'P5']), ('overhead', ['P6']), ('chunk_skew', ['P7']),
    ('quick_tasks', ['P8']), ('pool_vs_fork', ['P9']), ('errors', ['P10']),
    ('one_file', ['P11']), ('imap_memory', ['P12']), ('lifecycle', ['P13']),
    ('worker_init', ['P14']), ('shared_state', ['P15']), ('worker_death', ['P16']),
    ('big_argument', ['P17']), ('straggler', ['P18']), ('get_timeout', ['P19']),
    ('start_method', ['P20']), ('fork_with_threads', ['P21']),
    ('orphans', ['P22']), ('interrupt', ['P23']),
    ('oversubscription', ['P24']), ('eager_input', ['P25']),
]


def fmt(v, nd=3):
    if v is None:
        return '–'
    if isinstance(v, (int, float)) and abs(v) >= 1000:
        return '%.0f' % v
    return ('%.' + str(nd) + 'f') % v


def rfmt(v):
    """A ratio to three significant digits: 2.25, 0.0123, 130."""
    return '–' if v is None else '%.3g' % v


def agree(x):
    return '–' if x.get('agree') is None else ('yes' if x['agree'] else '**no**')


def notes_by_scenario(path):
    """The notes' sections, by the scenario file named in their heading."""
    if not os.path.exists(path):
        return {}, ''
    text = open(path).read()
    text = re.sub(r'<!--.*?-->\s*', '', text, count=1, flags=re.S)
    parts = re.split(r'(?m)^(?=## )', text)
    out, machines = {}, ''
    for part in parts:
        m = re.match(r'## .*?(\w+)\.lua', part)
        pid = re.match(r'## (P\d+)\b', part)
        by_id = [n for n, ids in SCENARIOS if pid and pid.group(1) in ids]
        if m:
            out.setdefault(m.group(1), []).append(part)
        elif by_id:  # a heading without its file (P15): its phenomenon's scenario
            out.setdefault(by_id[0], []).append(part)
        elif part.startswith('## The machines'):
            machines = part
        elif part.startswith('## '):  # a phenomenon no scenario reproduces (P15)
            out.setdefault('', []).append(part)
    return out, machines


def phenomenon_rows(ids):
    rows = []
    for pid in ids:
        q = PHENOMENA.get(pid)
        if q is None:
            continue
        if len(q) == 5:
            rows.append('| %s (PHENOMENA.md) | document %s: %s |' % (pid, q[1], q[2]))
            rows.append('| %s, CPython 3.11 on 2 cores (PHENOMENA.md, quoted) | %s |' % (pid, q[3]))
            rows.append('| %s, model (PHENOMENA.md) | %s |' % (pid, q[4]))
        else:
            rows.append('| %s (PHENOMENA.md) | source: %s |' % (pid, q[1]))
            rows.append('| %s, model (PHENOMENA.md) | %s |' % (pid, q[2]))
    return rows


def checks_line(who, checks):
    if not checks:
        return '%s: not judged' % who
    held = sum(1 for c in checks if c['ok'])
    na = sum(1 for c in checks if not c['ok'] and c.get('na'))
    line = '%s: %d of %d checks held' % (who, held, len(checks))
    if na:
        line += ', %d n/a' % na
    return line


def section(name, ids, j, notes):
    q = [PHENOMENA[p][0] for p in ids if p in PHENOMENA]
    out = ['## %s: %s (`scenarios/%s.lua`)' % (', '.join(ids), '; '.join(q), name), '']
    out += ['| | figure |', '|---|---|'] + phenomenon_rows(ids) + ['']
    if j is None:
        out += ['Not in this `make compare` run (no `%s.json` in the results).' % name, '']
    else:
        quick = ' (quick parameters)' if j.get('quick') else ''
        params = ', '.join('%s = %s' % kv for kv in j['params'].items())
        out += ['Measured here%s: %s; median of %d interleaved runs each, %s.' % (
            quick, params, j['repeat'], j['date']), '']
        if j.get('cpython_missing'):
            out += ['CPython: not measured: %s.' % j['cpython_missing'], '']
        out += ['| strategy | CPython measured here, s | poolbench measured here, s | model, s |',
                '|---|---|---|---|']
        for s in j['strategies']:
            out.append('| %s | %s | %s | %s |' % (s['label'], fmt(s['cpython_s']),
                                                   fmt(s['poolbench_s']), fmt(s['model_s'])))
        out.append('')
        if j['ratios']:
            out += ['| ratio the checks rely on | CPython | poolbench | model | agree within 25% |',
                    '|---|---|---|---|---|']
            for x in j['ratios']:
                out.append('| %s%s / %s | %s | %s | %s | %s |' % (
                    '**key** ' if x.get('key') else '', x['num'], x['den'], rfmt(x['cpython']),
                    rfmt(x['poolbench']), rfmt(x['model']), agree(x)))
            out.append('')
        out.append(checks_line('poolbench', j['checks']['poolbench']) + '; ' +
                   checks_line('CPython', j['checks']['cpython']) + '.')
        fails = [c for c in j['checks']['cpython'] if not c['ok']]
        for c in fails:
            out.append('- CPython %s: %s%s' % ('n/a' if c.get('na') else 'FAIL', c['name'],
                                               ': ' + c['na'] if c.get('na') else
                                               ' (%s)' % c['detail'].split('\n')[0]))
            if c.get('differs'):
                out.append('  (by design: %s)' % c['differs'])
        out += ['', '    build/poolbench compare scenarios/%s.lua --repeat %d' % (name, j['repeat']),
                '']
    for n in notes.get(name, []):
        # A section whose heading names its own day (", 2026-11-30)") is that
        # day's; the others are the report of 2026-11-24's.
        body = re.sub(r'^## (.*)\n', lambda m: '### Notes (hand-written, %s; their '
                      "figures are that day's): %s\n" % (
                          (re.findall(r'\d{4}-\d{2}-\d{2}', m.group(1)) or ['2026-11-24'])[-1],
                          m.group(1)), n, count=1)
        out += [body.rstrip(), '']
    return out


def main(argv):
    results = argv[1] if len(argv) > 1 else os.path.join(ROOT, 'bench/results/compare')
    target = argv[2] if len(argv) > 2 else os.path.join(ROOT, 'docs/reproduction.md')
    runs = {}
    for f in sorted(glob.glob(os.path.join(results, '*.json'))):
        try:
            j = json.load(open(f))
        except ValueError as e:
            print('reproduction.py: %s: %s' % (f, e), file=sys.stderr)
            continue
        if 'strategies' in j and 'ratios' in j:
            runs[j['scenario']] = j
    if not runs:
        print('reproduction.py: no compare results in %s: run make compare' % results,
              file=sys.stderr)
        return 1
    notes, machines = notes_by_scenario(os.path.join(ROOT, 'bench/reproduction_notes.md'))
    first = next(iter(runs.values()))
    dates = sorted(j['date'] for j in runs.values())
    pythons = sorted(set(j['python'] or 'not measured' for j in runs.values()))
    out = ['# Reproduction report', '',
           '<!-- Generated by bench/reproduction.py from %s (make compare). Do not edit: the '
           'prose is in bench/reproduction_notes.md. -->' % os.path.relpath(results, ROOT), '',
           'Every phenomenon of `shared/PHENOMENA.md`, reproduced by a self-checking scenario '
           'in `scenarios/`, run beside its CPython twin (`bench/python/NAME.py`) by '
           '`poolbench compare`: the same workload and parameters, both timed inside the '
           'process over the same span, interleaved (poolbench, CPython, poolbench, ... for '
           'each repeat), and judged by the same checks. For each: the document\'s figure and '
           'CPython 3.11\'s as PHENOMENA.md quotes them, CPython and poolbench measured here, '
           'the model, and whether the ratios the checks rely on agree (CPython\'s within 25% '
           'of poolbench\'s). A check CPython cannot meet by design (the twin\'s `cannot`) is '
           'listed n/a with the twin\'s reason, as is a failed check that read a field the twin '
           'names in `cannot`. The checks read only each strategy\'s result, its `facts` '
           'included (what an observe hook counts goes there through `pb.fact`), so on CPython '
           'they judge the twin\'s own figures.', '',
           '**Measured** %s to %s on this machine: %d cores, %s; poolbench %s; CPython %s '
           '(start method fork). Regenerate with `make compare` (about as long as every '
           'scenario takes on both engines, three times).' % (
               dates[0], dates[-1], first['machine']['cores'], first['machine']['os'],
               first['poolbench'], ', '.join(pythons)), '',
           '## Key ratios', '',
           'Each scenario\'s key ratio (the first of its `ratios`), poolbench against CPython: '
           'the figure `plots/out/compare.png` (`plots/compare.gp`, drawn by `make compare`).', '',
           '| phenomena | scenario | key ratio | CPython | poolbench | model | agree within 25% |',
           '|---|---|---|---|---|---|---|']
    for name, ids in SCENARIOS:
        j = runs.get(name)
        k = [x for x in (j or {}).get('ratios', []) if x.get('key')]
        if j and k:
            x = k[0]
            out.append('| %s | %s | %s / %s | %s | %s | %s | %s |' % (
                ', '.join(ids), name, x['num'], x['den'], rfmt(x['cpython']),
                rfmt(x['poolbench']), rfmt(x['model']), agree(x)))
        elif j:
            out.append('| %s | %s | (none declared) | | | | |' % (', '.join(ids), name))
    out.append('')
    for name, ids in SCENARIOS:
        if name in runs or name in notes:
            out += section(name, ids, runs.get(name), notes)
    for name in sorted(set(runs) - {n for n, _ in SCENARIOS}):
        out += section(name, [], runs[name], notes)
    for n in notes.get('', []):
        out += [n.rstrip(), '']
    if machines:
        out += [re.sub(r'^## ', '## ', machines.rstrip()), '']
    with open(target, 'w') as f:
        f.write('\n'.join(out).rstrip() + '\n')
    print('reproduction.py: %s from %d scenarios in %s' % (target, len(runs), results))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
