"""The channels path's buffers: fresh memory holding old data, results kept by callers, calls from several threads.

The reference is ``test_rowgrad``'s, written for the tests: windows by
``sliding_window_view`` and one ``einsum`` per quantity, nothing of convcli's.
"""

import sys
import threading

import numpy as np
import pytest

from convcli.layers import _channels, conv_backward, conv_forward
from test_rowgrad import reference as conv_reference  # windows and einsum, nothing of convcli's


def reference(X, w, b, dA, pad: int, stride: int, groups: int):
    """``(A, dX, dw, db)`` of the grouped correlation with zero padding ``pad`` on every side."""
    return conv_reference(X, w, b, dA, ((pad, pad), (pad, pad)), (1, 1), groups, stride=(stride, stride))


def case(seed: int, n=3, groups=2, channels=4, kernels=6, hw=(13, 11), f=3, pad=1, stride=1):
    rng = np.random.default_rng(seed)
    X, w = rng.standard_normal((n, channels) + hw), rng.standard_normal((kernels, channels // groups, f, f))
    b = rng.standard_normal(kernels)
    oh, ow = ((s + 2 * pad - f) // stride + 1 for s in hw)
    dA = rng.standard_normal((n, kernels, oh, ow))
    return (X, w, b, dA, pad, stride, groups), reference(X, w, b, dA, pad, stride, groups)


def run(X, w, b, dA, pad, stride, groups):
    A = conv_forward(X, w, b, padding=pad, stride=stride, groups=groups)
    grads = conv_backward(X, w, dA, b, padding=pad, stride=stride, groups=groups)
    return A, grads["X"], grads["w"], grads["b"]


def assert_close(got, expected, rtol=1e-11):
    for name, a, e in zip(("A", "dX", "dw", "db"), got, expected):
        assert a.shape == e.shape, (name, a.shape, e.shape)
        scale = max(np.abs(e).max(), 1e-300)
        assert np.abs(a - e).max() <= rtol * scale, (name, np.abs(a - e).max() / scale)


class _RecyclingNumpy:
    """numpy, except that 1-D ``empty(size)`` behaves like malloc at its worst, deterministically.

    A freed array of the same size comes back (same address) with other data
    in it -- here NaN, as if a temporary had used that memory meanwhile.  An
    array still referenced anywhere (a view, a kept buffer) is never handed out.
    """

    def __init__(self):
        self.freed = {}
        self.recycled = 0

    def __getattr__(self, name):
        return getattr(np, name)

    def empty(self, shape, *args, **kwargs):
        if not isinstance(shape, (int, np.integer)) or args or kwargs:
            return np.empty(shape, *args, **kwargs)
        arrays = self.freed.setdefault(int(shape), [])
        for array in arrays:
            if sys.getrefcount(array) <= 3:  # the list, the loop variable, getrefcount's argument: nobody else
                self.recycled += 1
                array.fill(np.nan)
                return array
        arrays.append(np.empty(shape))
        return arrays[-1]


@pytest.mark.parametrize("budget, threads", [(40, 1), (40, 2), (100, 3)])
@pytest.mark.parametrize("stride", [1, 2])
def test_fresh_chunk_buffers_at_a_reused_address_still_get_their_row_of_ones(monkeypatch, budget, threads, stride):
    # Chunks larger than twice the budget get fresh, unkept memory; malloc may hand the address of
    # an earlier buffer back with anything in it.  The bias row of ones must still be written.
    recycling = _RecyclingNumpy()
    monkeypatch.setattr(_channels, "np", recycling)
    monkeypatch.setattr(_channels, "_local", threading.local())  # no buffers kept by earlier tests
    monkeypatch.setattr(_channels, "COLS_BUDGET", budget)
    monkeypatch.setattr(_channels, "THREADS", threads)
    monkeypatch.setattr(_channels, "PARALLEL_WORK", 0)
    arguments, expected = case(3, stride=stride)
    for _ in range(2):  # a job keeps its buffer while its chunks keep their shape; the next job's comes back recycled
        assert_close(run(*arguments), expected)
    assert recycling.recycled > 0  # the hazard was really set up


def test_results_returned_earlier_do_not_change_after_later_calls(monkeypatch):
    monkeypatch.setattr(_channels, "PARALLEL_WORK", 0)
    monkeypatch.setattr(_channels, "THREADS", 2)
    kept = []
    for seed, budget in enumerate((1 << 19, 40, 300, 1 << 19, 40)):
        monkeypatch.setattr(_channels, "COLS_BUDGET", budget)
        arguments, expected = case(seed, n=1 + seed % 3, stride=1 + seed % 2)
        got = run(*arguments)
        assert_close(got, expected)
        kept.append((got, [a.copy() for a in got], expected))
    for got, copies, expected in kept:
        for a, copy in zip(got, copies):
            np.testing.assert_array_equal(a, copy)  # nothing handed out is a view of a buffer reused later
        assert_close(got, expected)


def test_calls_from_several_threads_at_once_agree_with_the_reference(monkeypatch):
    monkeypatch.setattr(_channels, "PARALLEL_WORK", 0)
    monkeypatch.setattr(_channels, "THREADS", 2)
    monkeypatch.setattr(_channels, "COLS_BUDGET", 40)  # row bands, fresh buffers and kept ones, nested pools
    cases = [case(seed, n=1 + seed % 2, groups=1 + seed % 2, hw=(7 + seed, 6), stride=1 + seed % 2) for seed in range(4)]
    results, errors = {}, []

    def caller(index):
        try:
            for round in range(3):
                arguments, _ = cases[(index + round) % len(cases)]
                results[index, round] = (index + round) % len(cases), run(*arguments)
        except Exception as error:  # noqa: BLE001 -- reported by the test below
            errors.append(error)

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert errors == [] and len(results) == 12
    for which, got in results.values():
        assert_close(got, cases[which][1])
