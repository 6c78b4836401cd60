"""The layers' worker threads, and one-thread BLAS while they run (private; numpy and the standard library only).

The channels path (:mod:`convcli.layers._channels`) splits a layer into
chunks of images and runs them on a few threads, each chunk one BLAS product
-- the way torch runs ``conv2d`` on the CPU (``parallel_for`` over the batch,
one-thread BLAS inside).  numpy has no per-call switch for BLAS threads, and
OpenBLAS's own threads inside each product, on top of ours, spin-wait on one
another: on a busy machine one layer then takes several times longer.  So
for the duration of such a job, :func:`one_thread` sets the OpenBLAS that
numpy loaded to one thread and restores it afterwards -- what
``threadpoolctl`` does, by the same OpenBLAS calls.  Nested and concurrent
jobs share one count under a lock, so the first sets and the last restores.

When numpy's BLAS is not an OpenBLAS that can be found (MKL, Accelerate,
another platform), :func:`one_thread` yields False and the caller keeps to
one thread of its own, leaving the threading to BLAS.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from convcli.layers import _blas

#: Threads for large jobs: the CPUs this process may use, at most 4 (memory bandwidth runs out).
THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
_POOLS: "dict[int, ThreadPoolExecutor]" = {}

_lock = threading.Lock()
_state = {"users": 0, "saved": None}


def pool(threads: int) -> ThreadPoolExecutor:
    """``threads`` worker threads, started on first use and kept (starting threads costs milliseconds)."""
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="convcli-layers")
    return _POOLS[threads]


def parallel(work, units: list, threads: int) -> list:
    """``work(items)`` on up to ``threads`` threads sharing one queue of ``units``; one result per thread.

    Each unit is a list of items; a thread takes a whole unit at a time and
    hands ``work`` its items one by one.  The calling thread works too, so a
    worker that is slow to wake up (on a busy machine that takes milliseconds)
    costs nothing: whoever is running takes the next unit.  The threads run
    with one-thread BLAS; where that cannot be arranged, the calling thread
    does everything and BLAS threads each product itself.
    """
    source, lock = iter(units), threading.Lock()

    def take():
        while True:
            with lock:
                unit = next(source, None)
            if unit is None:
                return
            yield from unit

    threads = min(threads, len(units))
    if threads <= 1:
        return [work(take())]
    with one_thread() as arranged:
        if not arranged:
            return [work(take())]
        helpers = [pool(threads - 1).submit(work, take()) for _ in range(threads - 1)]
        mine = work(take())
        return [mine] + [helper.result() for helper in helpers]


def _find():
    """``(get_num_threads, set_num_threads)`` of numpy's OpenBLAS, or None (see :mod:`._blas`)."""
    return _blas.thread_functions()


@contextmanager
def one_thread():
    """Run the block with numpy's OpenBLAS on one thread; yields whether that could be arranged."""
    functions = _find()
    if functions is None:
        yield False
        return
    get, put = functions
    with _lock:
        if _state["users"] == 0:
            _state["saved"] = get()
            put(1)
        _state["users"] += 1
    try:
        yield True
    finally:
        with _lock:
            _state["users"] -= 1
            if _state["users"] == 0:
                put(_state["saved"])
