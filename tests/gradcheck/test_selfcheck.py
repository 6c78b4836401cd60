"""The self-check (``convcli gradcheck`` without --impl): its references are right, and it catches broken layers."""

import numpy as np
import pytest
from scipy import signal

from convcli import layers
from convcli.gradcheck.selfcheck import check_convcli, planned_checks
from convcli.gradcheck.selfcheck_layers import reference_conv4, reference_pool


def test_it_passes_and_counts_its_checks():
    records = check_convcli()
    assert len(records) == planned_checks() and all(r.status == "pass" for r in records)


def test_the_channel_reference_is_a_sum_of_scipy_correlations_per_group():
    rng = np.random.default_rng(1)
    X, w, b = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    A = reference_conv4(X, w, b, groups=2)
    for n in range(2):
        for k in range(6):
            g = k // 3
            expected = sum(signal.correlate2d(X[n, 2 * g + c], w[k, c], "valid") for c in range(2)) + b[k]
            np.testing.assert_allclose(A[n, k], expected, atol=1e-12)


def test_the_dilation_reference_is_a_kernel_with_holes():
    rng = np.random.default_rng(2)
    X, w = rng.standard_normal((1, 1, 9, 8)), rng.standard_normal((1, 1, 3, 2))
    holes = np.zeros((5, 3))
    holes[::2, ::2] = w[0, 0]
    np.testing.assert_allclose(reference_conv4(X, w, dilation=2)[0, 0], signal.correlate2d(X[0, 0], holes, "valid"),
                               atol=1e-12)


def test_the_pool_reference_by_hand():
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    assert reference_pool(X, 2, mode="max")[0, 0].tolist() == [[5, 7], [13, 15]]
    assert reference_pool(X, 3, stride=1, mode="avg")[0, 0].tolist() == [[5, 6], [9, 10]]
    assert reference_pool(X, 2, padding=1, mode="avg")[0, 0, 0].tolist() == [0, 1.5, 3]  # padding not counted


def test_a_broken_pool_backward_fails_only_its_checks(monkeypatch):
    real = layers.pool_backward
    monkeypatch.setattr(layers, "pool_backward", lambda *a, **k: {"X": 2 * real(*a, **k)["X"]})
    records = check_convcli(layers=["conv", "pool"])
    assert {r.name for r in records if r.status == "fail"} == {r.name for r in records if r.name.startswith("pool_backward[")}


def test_a_forward_that_drops_the_bias_fails_the_bias_configurations(monkeypatch):
    real = layers.conv_forward
    monkeypatch.setattr(layers, "conv_forward", lambda X, w, b=None, **k: real(X, w, None, **k))
    records = check_convcli(layers=["conv"])
    bad = {r.name for r in records if r.status == "fail"}
    # the forward against the loop, and db against finite differences of that forward
    assert bad == {r.name for r in records if "bias=True" in r.name and (r.kind == "forward" or r.name.endswith(":b"))}
