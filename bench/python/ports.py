"""ports.py: the command line every port in bench/python/ shares.

Each port runs one variant of its document's program, named as poolbench
names it (--impl), so that bench/hyperfine.sh can time the C and the CPython
side of one variant in one run. A variant is a function in the port's IMPLS,
or a label in its LABELS that runs one of them with some parameters changed
(the scenario's `{impl=, label=, set=}`). The ports differ in their own
parameters; what is the same in all of them lives here.
"""
import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def parser(doc, impls, labels, default, check_help='verify the results'):
    """An ArgumentParser with --impl, --check and --list; add the port's own."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument('--impl', default=default, choices=list(impls) + list(labels))
    ap.add_argument('--check', action='store_true', help=check_help)
    ap.add_argument('--list', action='store_true', help='print the --impl names and exit')
    return ap


def resolve(args, impls, labels):
    """The function name to run, after applying a label's parameters to args;
    None after printing the names when --list was given."""
    if args.list:
        print('\n'.join(list(impls) + list(labels)))
        return None
    impl, overrides = labels.get(args.impl, (args.impl, {}))
    for key, value in overrides.items():
        setattr(args, key, value)
    return impl


def run(impls, impl, workers, *args):
    """Runs impls[impl](pool, *args): the pool is a ProcessPoolExecutor for an
    executor_ variant (document 002's concurrent.futures side), else a
    multiprocessing Pool; both forked ('fork', Linux's default up to 3.13,
    the start method PHENOMENA.md's figures were measured with)."""
    ctx = multiprocessing.get_context('fork')
    if impl.startswith('executor_'):
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as executor:
            return impls[impl](executor, *args)
    return impls[impl](ctx.Pool(workers), *args)


def tasks_per_worker(pids, workers, known=()):
    """How many tasks each worker ran, busiest first, idle workers as 0:
    the per_worker counts poolbench reports (P7, P8). `known` lists the pool's
    pids, so that a worker that ran nothing still counts."""
    per_pid = {pid: 0 for pid in known}
    for pid in pids:
        per_pid[pid] = per_pid.get(pid, 0) + 1
    counts = sorted(per_pid.values(), reverse=True)
    return counts + [0] * (workers - len(counts))


def verdict(args, what, ok):
    """Prints the --check line 'IMPL: WHAT: ok|FAILED'; the exit status."""
    print('%s: %s: %s' % (args.impl, what, 'ok' if ok else 'FAILED'))
    return 0 if ok else 1
