"""The fast paths in convcli.layers._fastconv give the general path's numbers (and scipy's).

Block sizes are shrunk inside the tests so that small arrays are cut into many
blocks -- bands of rows of one image and chunks of several images -- whose sizes
do not divide the image.  No timing here: speed lives in benchmarks/bench.py.
"""

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, signal

from convcli.layers import conv as layers
from convcli.errors import ParameterError
from convcli.layers import _fastconv, conv_backward, conv_forward, conv_forward_rows, pad_widths

BORDERS = ["zero", "reflect", "symmetric", "edge", "wrap"]


@contextmanager
def block_sizes(taps: int, matmul: int, threads: int = 3):
    """Temporarily set the fast paths' block budgets (in pixels), and split even tiny jobs over ``threads``."""
    names = ("BLOCK_PIXELS", "MATMUL_PIXELS", "THREADS", "PARALLEL_PIXELS")
    saved = [getattr(_fastconv, name) for name in names]
    for name, value in zip(names, (taps, matmul, threads, 0)):
        setattr(_fastconv, name, value)
    try:
        yield
    finally:
        for name, value in zip(names, saved):
            setattr(_fastconv, name, value)


def general_forward(X, w, *, padding="valid", stride=1, flip=False, border="zero"):
    """conv_forward's general path, called directly (no fast path)."""
    X3, w3, squeeze = layers._prepare(X, w)
    pads, strides = layers._geometry(X3.shape[1:], w3.shape[1:], padding, stride)
    w3 = w3[:, ::-1, ::-1] if flip else w3
    return layers._squeeze(layers._correlate(layers._pad(X3, pads, border), w3, strides), squeeze)


def general_backward(X, w, dA, *, padding="valid", stride=1, flip=False, border="zero"):
    """conv_backward's general path, called directly: (dX, dw) for 3-D X and w."""
    X3, w3 = np.asarray(X, float), np.asarray(w, float)
    pads, strides = layers._geometry(X3.shape[1:], w3.shape[1:], padding, stride)
    w_eff = w3[:, ::-1, ::-1] if flip else w3
    dX, dw = layers._backward_general(X3, w_eff, dA, pads, strides, border)
    return dX, (dw[:, ::-1, ::-1] if flip else dw)


def scipy_reference(X, w, padding, stride, flip, border):
    (t, b), (l, r) = pad_widths(padding, w.shape, stride)
    Xp = np.pad(X, ((t, b), (l, r)), mode=layers.BORDERS[border])
    k = w[::-1, ::-1] if flip else w
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    return signal.correlate2d(Xp, k, mode="valid")[::sh, ::sw]


def bits(a):
    """The exact bit patterns (so -0.0 differs from 0.0)."""
    return np.ascontiguousarray(a).view(np.int64)


paddings = st.one_of(
    st.sampled_from(["valid", "same", "full"]), st.integers(0, 4), st.tuples(st.integers(0, 4), st.integers(0, 2))
)
budgets = st.sampled_from([1, 7, 16, 37, 64, 150, 10**6])
threads = st.sampled_from([1, 2, 3])


@st.composite
def cases(draw, *, kernels, strided):
    """Images (N?, H, W), kernels (K?, Fh, Fw) and options; values sometimes small integers (exact zeros)."""
    fh, fw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(fh, 13)), draw(st.integers(fw, 13))
    n = draw(st.sampled_from([None, 1, 2, 5]))
    k = draw(kernels)
    padding = draw(paddings)
    stride = 1
    if strided and padding != "same":
        stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        make = lambda shape: rng.integers(-2, 3, size=shape).astype(float)  # noqa: E731  exact zeros, -0.0 products
    else:
        make = rng.standard_normal
    X = make((h, w) if n is None else (n, h, w))
    wk = make((fh, fw) if k is None else (k, fh, fw))
    return dict(
        X=X, w=wk, padding=padding, stride=stride, flip=draw(st.booleans()), border=draw(st.sampled_from(BORDERS))
    )


# ----------------------------------------------------------------------------- the rule


def test_the_rule_that_picks_a_path():
    assert _fastconv.choose(1, (1, 1)) == "taps"
    assert _fastconv.choose(_fastconv.BANK_MIN - 1, (1, 1)) == "taps"
    assert _fastconv.choose(_fastconv.BANK_MIN, (1, 1)) == "matmul"
    assert _fastconv.choose(_fastconv.BANK_MIN, (2, 3)) == "matmul"
    assert _fastconv.choose(1, (1, 2)) == "general"
    assert _fastconv.choose_backward(1, (1, 1)) == "taps"
    assert _fastconv.choose_backward(_fastconv.BANK_MIN, (1, 1)) == "general"
    assert _fastconv.choose_backward(1, (2, 2)) == "general"


def test_conv_forward_really_takes_the_fast_paths(monkeypatch):
    calls = []
    for name in ("correlate_taps", "correlate_matmul"):
        real = getattr(_fastconv, name)
        monkeypatch.setattr(_fastconv, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    conv_forward(np.ones((6, 6)), np.ones((3, 3)))
    conv_forward(np.ones((6, 6)), np.ones((5, 3, 3)))
    conv_forward(np.ones((6, 6)), np.ones((3, 3)), stride=2)  # general
    assert calls == ["correlate_taps", "correlate_matmul"]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(1, 30), st.integers(1, 5), st.integers(1, 3), budgets)
def test_blocks_cover_every_output_row_once(n, hp, wp, fh, stride, budget):
    fh = min(fh, hp)
    out_h = (hp - fh) // stride + 1
    seen = np.zeros((n, out_h), int)
    for n0, m, r0, rows_out, rows_in in _fastconv.blocks(n, (hp, wp), fh, out_h, stride=stride, budget=budget):
        assert m >= 1 and rows_out >= 1
        assert rows_in in (hp, (rows_out - 1) * stride + fh)  # a whole padded image, or just the band's rows
        assert r0 * stride + rows_in <= hp  # never reads past the padded image
        assert (r0 + rows_out - 1) * stride + fh <= r0 * stride + rows_in  # holds every window it computes
        seen[n0 : n0 + m, r0 : r0 + rows_out] += 1
    assert (seen == 1).all()


# ----------------------------------------------------------------------------- forward


@settings(max_examples=250, deadline=None)
@given(cases(kernels=st.sampled_from([None, 1, 2, 3]), strided=False), budgets, threads)
def test_taps_path_is_bitwise_the_general_path(case, budget, n_threads):
    with block_sizes(budget, 10**6, n_threads):
        fast = conv_forward(**case)
    general = general_forward(**case)
    np.testing.assert_array_equal(bits(fast), bits(general))


@settings(max_examples=150, deadline=None)
@given(cases(kernels=st.sampled_from([4, 5, 7]), strided=True), budgets, threads)
def test_matmul_path_equals_the_general_path_to_rounding(case, budget, n_threads):
    with block_sizes(10**6, budget, n_threads):
        fast = conv_forward(**case)
    general = general_forward(**case)
    assert fast.shape == general.shape
    scale = np.abs(case["X"]).max() * np.abs(case["w"]).sum(axis=(-2, -1)).max() + 1.0
    np.testing.assert_allclose(fast, general, rtol=0, atol=1e-13 * scale)


@settings(max_examples=100, deadline=None)
@given(cases(kernels=st.sampled_from([None, 2, 4]), strided=True), budgets)
def test_every_path_equals_scipy_per_image_and_kernel(case, budget):
    with block_sizes(budget, budget):
        A = conv_forward(**case)
    X, w = case["X"], case["w"]
    Xs = X if X.ndim == 3 else X[None]
    ws = w if w.ndim == 3 else w[None]
    A4 = A.reshape((Xs.shape[0], ws.shape[0]) + A.shape[-2:])
    opts = {key: case[key] for key in ("padding", "stride", "flip", "border")}
    for a in range(Xs.shape[0]):
        for b in range(ws.shape[0]):
            np.testing.assert_allclose(A4[a, b], scipy_reference(Xs[a], ws[b], **opts), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(2048, 37), (37, 2048), (301, 299), (5, 5)])
@pytest.mark.parametrize("kernel", ["random", "edge-h", "with-zero-row"])
def test_same_padding_is_bitwise_scipy_ndimage(shape, kernel):
    """ndimage adds the taps in the same order from 0.0, so the numbers are identical."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal(shape) * 100
    w = {
        "random": rng.standard_normal((3, 3)),
        "edge-h": np.array([[1.0, 1, 1], [0, 0, 0], [-1, -1, -1]]),
        "with-zero-row": np.vstack([rng.standard_normal((2, 5)), np.zeros((1, 5))])[[0, 2, 1]],
    }[kernel]
    A = conv_forward(X, w, padding="same")
    np.testing.assert_array_equal(A, ndimage.correlate(X, w, mode="constant"))


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_zero_taps_still_meet_non_finite_pixels(bad):
    """0 * inf is NaN in the general path; the taps path skips zero taps only in finite blocks."""
    X = np.arange(64.0).reshape(8, 8)
    X[3, 4] = bad
    w = np.array([[1.0, 0, 2], [0, 0, 0], [3, 0, -1]])
    with block_sizes(20, 20):
        fast = conv_forward(X, w, padding="same")
    np.testing.assert_array_equal(fast, general_forward(X, w, padding="same"))
    assert np.isnan(fast[3, 4])  # only the zero centre tap meets the bad pixel here


def test_all_zero_kernel_gives_positive_zeros():
    X = -np.arange(30.0).reshape(5, 6)
    A = conv_forward(X, np.zeros((2, 2)), padding="full")
    np.testing.assert_array_equal(bits(A), bits(np.zeros((6, 7))))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, np.float16, bool])
@pytest.mark.parametrize("kernels", [1, 2, 5])
def test_images_of_other_dtypes_are_computed_in_float64(dtype, kernels):
    """The fast paths read uint8/float32... images as they are, but multiply in float64 like the general path."""
    rng = np.random.default_rng(2)
    X = (rng.standard_normal((40, 60)) * 100).astype(dtype)[::2, ::3]  # not contiguous either
    w = rng.standard_normal((kernels, 3, 2)) / 3
    with block_sizes(33, 33):
        fast = conv_forward(X, w, padding=(1, 2))
        valid = conv_forward(np.ascontiguousarray(X), w)  # no padding: the image is read in place
    assert fast.dtype == np.float64
    exact = general_forward(X.astype(np.float64), w, padding=(1, 2))
    if kernels < _fastconv.BANK_MIN:
        np.testing.assert_array_equal(bits(fast), bits(exact))
        np.testing.assert_array_equal(bits(valid), bits(general_forward(X.astype(np.float64), w)))
    else:
        np.testing.assert_allclose(fast, exact, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(valid, general_forward(X.astype(np.float64), w), rtol=1e-13, atol=1e-12)


# ----------------------------------------------------------------------------- backward


@settings(max_examples=150, deadline=None)
@given(cases(kernels=st.sampled_from([None, 1, 2, 3]), strided=False), budgets, threads)
def test_backward_taps_path_equals_the_general_path(case, budget, n_threads):
    X, w = case["X"], case["w"]
    opts = {key: case[key] for key in ("padding", "stride", "flip", "border")}
    A = conv_forward(X, w, **opts)
    dA = np.random.default_rng(3).standard_normal(A.shape)
    with block_sizes(budget, budget, n_threads):
        fast = conv_backward(X, w, dA, **opts)
    X3 = X if X.ndim == 3 else X[None]
    w3 = w if w.ndim == 3 else w[None]
    dX, dw = general_backward(X3, w3, dA.reshape((X3.shape[0], w3.shape[0]) + A.shape[-2:]), **opts)
    assert fast["X"].shape == X.shape and fast["w"].shape == w.shape
    scale = (np.abs(dA).sum() + 1) * (np.abs(X).max() + np.abs(w).max() + 1)
    np.testing.assert_allclose(fast["X"], dX.reshape(X.shape), rtol=1e-12, atol=1e-13 * scale)
    np.testing.assert_allclose(fast["w"], dw.reshape(w.shape), rtol=1e-12, atol=1e-13 * scale)


def test_backward_large_padding_crops_the_upstream_gradient():
    """Padding wider than the kernel: some outputs see only padding, and dX must ignore them."""
    rng = np.random.default_rng(4)
    X, w = rng.standard_normal((4, 7)), rng.standard_normal((3, 2))
    A = conv_forward(X, w, padding=(5, 4))
    dA = rng.standard_normal(A.shape)
    fast = conv_backward(X, w, dA, padding=(5, 4))
    dX, dw = general_backward(X[None], w[None], dA[None, None], padding=(5, 4))
    np.testing.assert_allclose(fast["X"], dX[0], atol=1e-12)
    np.testing.assert_allclose(fast["w"], dw[0], atol=1e-12)


def test_backward_on_a_long_image_uses_many_bands():
    """Dot products longer than one BLAS piece, and bands that do not divide the image."""
    rng = np.random.default_rng(5)
    X, w = rng.standard_normal((203, 97)), rng.standard_normal((3, 3))
    dA = rng.standard_normal((203, 97))
    with block_sizes(1000, 1000):
        fast = conv_backward(X, w, dA, padding="same")
    np.testing.assert_allclose(fast["X"], signal.convolve2d(dA, w, mode="same"), atol=1e-11)
    np.testing.assert_allclose(fast["w"], signal.correlate2d(np.pad(X, 1), dA, mode="valid"), rtol=1e-11)
    long = conv_backward(np.tile(X, (1, 100)), w, np.tile(dA, (1, 100)), padding="same")  # pieces of 8192
    np.testing.assert_allclose(
        long["w"], signal.correlate2d(np.pad(np.tile(X, (1, 100)), 1), np.tile(dA, (1, 100)), mode="valid"), rtol=1e-10
    )


# ----------------------------------------------------------------------------- bands of rows


@settings(max_examples=200, deadline=None)
@given(cases(kernels=st.sampled_from([None, 2, 4]), strided=True), st.integers(-20, 20), st.integers(-20, 20), budgets)
def test_a_band_of_rows_is_that_slice_of_the_whole_output(case, start, stop, budget):
    with block_sizes(budget, budget):
        band = conv_forward_rows(case["X"], case["w"], start, stop, **{k: v for k, v in case.items() if k not in "Xw"})
    whole = conv_forward(**case)[..., start:stop, :]
    assert band.shape == whole.shape
    if case["w"].ndim == 3 and case["w"].shape[0] >= _fastconv.BANK_MIN:
        np.testing.assert_allclose(band, whole, rtol=1e-13, atol=1e-12)  # BLAS may group its sums differently
    else:
        np.testing.assert_array_equal(bits(band), bits(whole))


def test_strips_rebuild_the_whole_map():
    rng = np.random.default_rng(6)
    X = rng.integers(0, 256, size=(101, 64), dtype=np.uint8)
    w = np.array([[1.0, 1, 1], [0, 0, 0], [-1, -1, -1]])
    for border in BORDERS:
        strips = [conv_forward_rows(X, w, r, r + 16, padding="same", border=border) for r in range(0, 101, 16)]
        np.testing.assert_array_equal(np.vstack(strips), conv_forward(X, w, padding="same", border=border))


def test_band_bounds_must_be_whole_numbers():
    with pytest.raises(ParameterError, match=r"start/stop must be a whole number or a pair of them; got \(0, 2.5\)"):
        conv_forward_rows(np.ones((5, 5)), np.ones((3, 3)), 0, 2.5)
