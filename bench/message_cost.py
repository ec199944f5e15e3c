#!/usr/bin/env python3
"""message_cost.py: where CPython's Pool spends the cost of one message (lab 4).

multiprocessing.Pool moves each task through four stages (Lib/multiprocessing/
pool.py, 3.11): the caller puts (job, i, func, args, kwds) on a queue.SimpleQueue
in memory; the task-handler thread takes it and puts it on the inqueue, a
multiprocessing SimpleQueue: pickled (ForkingPickler.dumps) and written to a
pipe under a process-shared lock; a worker reads and unpickles it under
another lock, runs the function, and sends (job, i, (True, value)) back the
same way; the result-handler thread reads and unpickles it and sets the
result (or runs the callback), all threads sharing one GIL.

This times each stage alone, per message, n times, on this machine:
  pickle    dumps + loads of one task tuple and one result tuple
  thread    one queue.SimpleQueue hand-off between two threads and back
  pipe      one Connection round trip between two processes (send_bytes /
            recv_bytes of a pickled-size message), under the queue's lock
  pool      Pool.imap(f, range(n), chunksize=1): the whole, per task
The stages overlap in a real pool (several workers, two handler threads), so
they need not add up to the whole; their sizes say where the time goes.

  python3 bench/message_cost.py [-n N]
"""
import argparse
import multiprocessing as mp
import pickle
import queue
import threading
import time


def square(x):
    return x * x


def per(n, t0):
    return (time.perf_counter() - t0) / n * 1e6


def stage_pickle(n):
    task = (7, 0, square, (12345,), {})
    result = (7, 0, (True, 152399025))
    t0 = time.perf_counter()
    for _ in range(n):
        pickle.loads(pickle.dumps(task))
        pickle.loads(pickle.dumps(result))
    return per(n, t0)


def stage_thread(n):
    there, back = queue.SimpleQueue(), queue.SimpleQueue()

    def echo():
        while (x := there.get()) is not None:
            back.put(x)
    th = threading.Thread(target=echo)
    th.start()
    t0 = time.perf_counter()
    for i in range(n):
        there.put(i)
        back.get()
    us = per(n, t0)
    there.put(None)
    th.join()
    return us


def _pipe_echo(conn, lock):
    while (b := conn.recv_bytes()) != b'':
        with lock:
            conn.send_bytes(b)


def stage_pipe(n):
    here, there = mp.get_context('fork').Pipe()
    lock = mp.get_context('fork').Lock()
    p = mp.get_context('fork').Process(target=_pipe_echo, args=(there, lock))
    p.start()
    msg = pickle.dumps((7, 0, square, (12345,), {}))
    t0 = time.perf_counter()
    for _ in range(n):
        with lock:
            here.send_bytes(msg)
        here.recv_bytes()
    us = per(n, t0)
    here.send_bytes(b'')
    p.join()
    return us


def stage_pool(n):
    with mp.get_context('fork').Pool(6) as pool:
        t0 = time.perf_counter()
        for _ in pool.imap(square, range(n), chunksize=1):
            pass
        return per(n, t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-n', type=int, default=20000, help='messages per stage (default 20000)')
    n = ap.parse_args().n
    print('CPython %s, %d messages per stage, us per message (measured here):' %
          (mp.sys.version.split()[0], n))
    print('  pickle  dumps+loads, task and result   %7.2f' % stage_pickle(n))
    print('  thread  SimpleQueue hand-off and back  %7.2f' % stage_thread(n))
    print('  pipe    locked send_bytes round trip   %7.2f' % stage_pipe(n))
    print('  pool    Pool(6).imap, chunksize 1      %7.2f  (the whole, per task)' % stage_pool(n))


if __name__ == '__main__':
    main()
