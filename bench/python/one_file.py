#!/usr/bin/env python3
"""one_file.py: many writers, one file: the parent's callback writes whole lines; workers may tear them.

Ports document 002 (seeds/002_2fab88b10910dd43.txt, "并发编程之 multiprocessing
和 concurrent.futures(二)": concurrency with multiprocessing and
concurrent.futures, part two), its apply_async example of section 1.2.2, whose
callback appends every result to result.txt (`with open("result.txt", "a+")
as f: f.write(str(result) + "\\n")`), to Python 3; phenomenon P11. The CPython
twin of scenarios/one_file.lua.

  callback_chain  make_line in the worker; the callback appends it, in the
                  parent, one callback at a time (the document's program)
  merged          each worker appends its own lines (write_direct)
  imap            the same through imap

Each label's file is a temporary file, read back at the end of the label
(facts: lines, intact, torn, missing, twice, size, expected_size: what the
scenario's scan gives its checks) and removed. What differs from the
scenario's Lua writer: CPython's f.write(line + "\\n") on a file opened "a+"
hands a line longer than its 8 KiB buffer to one write() call, which
O_APPEND appends whole, where Lua's stdio writes the line in two; so CPython's
direct writers may tear nothing, and the twin reports what it measured.
Changed from the document: a line is "id N " and line_bytes letters; items are
numbered from 1; Pool from get_context('fork').
"""
import os
import sys
import tempfile

import ports
from ports import P, traced

SOURCE = '002_2fab88b10910dd43.txt'
PARAMS = {
    'n': (400, 100, 'items (lines)'),
    'workers': (4, 4, 'pool processes'),
    'line_bytes': (65536, 65536, 'bytes per line (64 KiB: 16 times PIPE_BUF)'),
    'writer': (1, 1, 'which file the run appends to (set by each variant: 1 callback_chain, '
                     '2 merged, 3 imap)'),
}

PATH = None  # the label's file, set before its pool exists: the workers inherit it


def line_of(x, nbytes):
    return 'id %d %s' % (x, chr(ord('a') + x % 26) * nbytes)


def callback(result):
    """The document's callback: runs in the parent."""
    with open(PATH, "a+", encoding="utf-8") as f:
        f.write(str(result) + "\n")


def make_line(x):
    return line_of(x, P.line_bytes)


def write_direct(x):
    callback(line_of(x, P.line_bytes))  # the same append, from the worker
    return x


def scan(n, nbytes):
    """The file read back, as the scenario's scan: intact and torn lines."""
    s = {'lines': 0, 'intact': 0, 'torn': 0, 'size': 0, 'missing': 0, 'twice': 0}
    seen = {}
    with open(PATH, 'rb') as f:
        for raw in f:
            s['size'] += len(raw)
            line = raw.rstrip(b'\n').decode('utf-8', 'replace')
            s['lines'] += 1
            head = line.split(' ', 2)
            x = int(head[1]) if len(head) == 3 and head[0] == 'id' and head[1].isdigit() else 0
            if 1 <= x <= n and line == line_of(x, nbytes):
                s['intact'] += 1
                seen[x] = seen.get(x, 0) + 1
            else:
                s['torn'] += 1
    for x in range(1, n + 1):
        k = seen.get(x, 0)
        s['missing'] += k == 0
        s['twice'] += k > 1
    s['expected_size'] = sum(len(line_of(x, nbytes)) + 1 for x in range(1, n + 1))
    return s


def with_file(strategy):
    """Runs strategy(r, p) on a fresh temporary file, scans it, removes it."""
    def run(r, p):
        global PATH
        fd, PATH = tempfile.mkstemp(prefix='one_file-', suffix='.txt')
        os.close(fd)
        try:
            strategy(r, p)
            r.facts.update(scan(p.n, p.line_bytes))
        finally:
            os.remove(PATH)
    run.__name__ = strategy.__name__
    return run


@with_file
def callback_chain(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n

    def cb(line):
        callback(line)
        r.result()
        if r.results == p.n:
            r.stop_clock()

    for i in range(1, p.n + 1):
        pool.apply_async(traced(make_line), args=(i,), callback=r.callback(cb))
    pool.close()
    pool.join()
    r.finish(pool)


@with_file
def merged(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    handles = [pool.apply_async(traced(write_direct), args=(i,)) for i in range(1, p.n + 1)]
    for h in handles:
        h.get()
        r.result()
    r.finish(pool)


@with_file
def imap(r, p):
    pool = r.pool(p.workers)
    r.tasks_total = p.n
    for _ in pool.imap(traced(write_direct), range(1, p.n + 1)):
        r.result()
    r.finish(pool)


LABELS = {
    'callback_chain': (callback_chain, {'writer': 1}),
    'merged': (merged, {'writer': 2}),
    'imap': (imap, {'writer': 3}),
}

if __name__ == '__main__':
    sys.exit(ports.main(sys.modules[__name__]))
