"""Timing convcli and a reference side by side: the best of alternating rounds.

Shared by ``bench.py`` and ``bench_layers.py``.  It imports no numpy, so
``bench_layers.py`` can import it before it sets the BLAS thread variables.
"""

from __future__ import annotations

import gc
import time


def best_of(rounds: int, candidate, reference, *, candidate_runs: int = 1, reference_runs: int = 1,
            warm: bool = True, freeze: bool = False) -> "tuple[float, float]":
    """Best wall time in seconds of each callable over ``rounds`` alternating rounds.

    Each round runs the reference ``reference_runs`` times, then the candidate
    ``candidate_runs`` times (as ``timeit`` gives a quick statement more runs
    than a slow one).  With ``warm``, each side's turn starts with one untimed
    call, so that the timed calls find its threads awake and its memory
    touched, as repeated calls do: the first call after the other side's
    measures the hand-over instead (on a 2-vCPU machine a thread woken on an
    idle vCPU starts late -- a 3 ms layer took 5.7 ms after 10 ms of idling --
    and OpenMP, OpenCV and OpenBLAS workers spin for a while after a call,
    taking a CPU from whatever runs next).  Slow references (a loop of
    seconds) pass ``warm=False``.

    Garbage is collected before each turn, never inside a timed call.  With
    ``freeze``, the objects alive when timing starts are frozen first
    (:func:`gc.freeze`): with torch imported, each collection otherwise walks
    its 165,000 objects, about 80 ms that leave the CPU caches cold for the
    call that follows.
    """
    if freeze:
        gc.collect()
        gc.freeze()
    best = [float("inf"), float("inf")]  # reference, candidate
    try:
        for _ in range(rounds):
            for side, (func, runs) in enumerate(((reference, reference_runs), (candidate, candidate_runs))):
                gc.collect()
                if warm:
                    func()
                for _ in range(runs):
                    start = time.perf_counter()
                    func()
                    best[side] = min(best[side], time.perf_counter() - start)
    finally:
        if freeze:
            gc.unfreeze()
    return best[1], best[0]
