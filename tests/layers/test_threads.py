"""convcli.layers._threads: one-thread BLAS around the layers' own threads, restored afterwards."""

import numpy as np
import pytest

from convcli.layers import _channels, _threads, conv_forward


def test_one_thread_sets_and_restores_nested():
    functions = _threads._find()
    if functions is None:
        pytest.skip("numpy's BLAS here is not an OpenBLAS convcli can find")
    get, _ = functions
    before = get()
    with _threads.one_thread() as arranged:
        assert arranged and get() == 1
        with _threads.one_thread() as again:
            assert again and get() == 1
        assert get() == 1  # the outer job still runs
    assert get() == before


def test_restored_after_an_error():
    functions = _threads._find()
    if functions is None:
        pytest.skip("numpy's BLAS here is not an OpenBLAS convcli can find")
    before = functions[0]()
    with pytest.raises(RuntimeError):
        with _threads.one_thread():
            raise RuntimeError("boom")
    assert functions[0]() == before


def test_without_a_findable_blas_the_layers_run_on_one_thread_of_their_own(monkeypatch):
    monkeypatch.setattr(_threads, "_find", lambda: None)
    with _threads.one_thread() as arranged:
        assert arranged is False
    monkeypatch.setattr(_channels, "PARALLEL_WORK", 0)
    monkeypatch.setattr(_channels, "THREADS", 2)
    calls = []
    original = _threads.pool
    monkeypatch.setattr(_threads, "pool", lambda threads: calls.append(threads) or original(threads))
    rng = np.random.default_rng(0)
    X, w = rng.standard_normal((4, 3, 6, 6)), rng.standard_normal((2, 3, 3, 3))
    expected = np.einsum("nchw,kchw->nk", X[:, :, 1:4, 1:4], w)
    np.testing.assert_allclose(conv_forward(X, w)[:, :, 1, 1], expected, rtol=1e-12)
    assert calls == []  # no threads of ours on top of a BLAS we cannot set
