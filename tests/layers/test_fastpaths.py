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
from convcli.layers import _blas, _direct, _dispatch, _fastconv, _fftconv, _matmul, _separable, conv_backward, conv_forward, conv_forward_rows, pad_widths

BORDERS = ["zero", "reflect", "symmetric", "edge", "wrap"]


@contextmanager
def block_sizes(taps: int, matmul: int, threads: int = 3):
    """Temporarily set the fast paths' block budgets (in pixels), and split even tiny jobs over ``threads``.

    The taps budget is also the direct path's band size, so a small budget
    sends every image whose output is as wide as itself to :mod:`._direct`.
    """
    names = ("BLOCK_PIXELS", "THREADS", "PARALLEL_PIXELS")
    saved = [getattr(_fastconv, name) for name in names] + [_matmul.MATMUL_PIXELS, _direct.BAND_PIXELS,
                                                             _direct.MIN_PIXELS]
    for name, value in zip(names, (taps, threads, 0)):
        setattr(_fastconv, name, value)
    _matmul.MATMUL_PIXELS, _direct.BAND_PIXELS, _direct.MIN_PIXELS = matmul, taps, 4 * taps
    try:
        yield
    finally:
        for name, value in zip(names, saved):
            setattr(_fastconv, name, value)
        _matmul.MATMUL_PIXELS, _direct.BAND_PIXELS, _direct.MIN_PIXELS = saved[-3:]


@contextmanager
def unfused():
    """The tap paths without BLAS ``axpy``: numpy's multiply and add, in the general path's order."""
    real = _blas.axpy
    _blas.axpy = lambda dtype: None
    try:
        yield
    finally:
        _blas.axpy = real


def test_blas_axpy_is_found_and_adds_in_place():
    """numpy's Linux wheels bundle OpenBLAS: the fused update must be found there (or the tap paths lose half their speed)."""
    if _blas._library() is None:
        pytest.skip("numpy's BLAS here is not an OpenBLAS (MKL, Accelerate): the tap paths use numpy's multiply and add")
    for dtype in (np.float64, np.float32):
        axpy = _blas.axpy(dtype)
        assert axpy is not None
        x, y = np.arange(10, dtype=dtype), np.ones(7, dtype)
        axpy(7, -0.5, x.ctypes.data + 3 * x.itemsize, y.ctypes.data)
        np.testing.assert_array_equal(y, 1 - 0.5 * x[3:])
    assert _blas.axpy(np.int64) is None


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


def plan(X_shape, w, padding="valid", stride=1, X=None):
    """The path the dispatcher picks for images of ``X_shape`` (zeros unless ``X``) and kernels ``w``."""
    X3 = np.zeros(X_shape) if X is None else X
    X3 = X3 if X3.ndim == 3 else X3[None]
    w3 = w if w.ndim == 3 else w[None]
    pads, strides = layers._geometry(X3.shape[1:], w3.shape[1:], padding, stride)
    groups = _dispatch.plan(X3, w3, pads, strides)
    assert sorted(c for _, indices, _ in groups for c in indices) == list(range(w3.shape[0]))  # each kernel once
    return groups[0][0] if len(groups) == 1 else [path for path, _, _ in groups]


EDGE_H = np.array([[1.0, 1, 1], [0, 0, 0], [-1, -1, -1]])


def gaussian(size, sigma=1.5):
    g = np.exp(-0.5 * (np.arange(size) - (size - 1) / 2) ** 2 / sigma**2)
    return np.outer(g, g) / g.sum() ** 2


def test_the_rule_that_picks_a_path():
    rng = np.random.default_rng(0)
    big = (512, 512)
    assert plan(big, rng.standard_normal((3, 3)), "same") == "taps"
    assert plan(big, rng.standard_normal((_fastconv.BANK_MIN - 1, 3, 3)), "same") == "taps"
    assert plan(big, rng.standard_normal((_fastconv.BANK_MIN, 3, 3)), "same") == "matmul"
    assert plan(big, rng.standard_normal((_fastconv.BANK_MIN, 3, 3)), stride=(2, 3)) == "matmul"
    assert plan(big, rng.standard_normal((3, 3)), stride=(1, 2)) == "general"
    assert plan(big, rng.standard_normal((31, 31)), stride=2) == "general"  # FFT only for stride 1
    assert plan(big, EDGE_H, "same") == "taps"  # 6 fused taps straight into the output beat 5 taps and 2 copies
    assert plan(big, gaussian(5), "same") == "separable"
    assert plan(big, gaussian(7), "same") == "separable"
    assert plan(big, rng.standard_normal((15, 15)), "same") == "fft"
    assert plan((2000, 2000), rng.standard_normal((300, 300)), "same") == "fft"
    assert plan((20, 28, 28), rng.standard_normal((3, 3))) == "taps"  # small images: no FFT for a small kernel
    mixed = np.stack([rng.standard_normal((5, 5)), gaussian(5), np.ones((5, 5))])
    assert plan(big, mixed, "same") == ["taps", "separable"]  # each kernel its own path
    assert plan(big, rng.standard_normal((8, 31, 31)), "same") == "fft"
    X = np.zeros(big)
    X[7, 9] = np.inf  # an inf would spread over a whole FFT tile
    assert plan(big, rng.standard_normal((15, 15)), "same", X=X) == "taps"
    assert _fastconv.choose_backward(1, (1, 1)) == "taps"
    assert _fastconv.choose_backward(_fastconv.BANK_MIN, (1, 1)) == "general"
    assert _fastconv.choose_backward(1, (2, 2)) == "general"


def test_conv_forward_really_takes_the_fast_paths(monkeypatch):
    calls = []
    for module, name in ((_fastconv, "correlate_taps"), (_matmul, "correlate_matmul"),
                         (_separable, "correlate_separable"), (_fftconv, "correlate_fft"),
                         (_direct, "correlate_direct")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **kw: calls.append(_name) or _real(*a, **kw))
    rng = np.random.default_rng(1)
    conv_forward(np.ones((60, 60)), rng.standard_normal((3, 3)))
    conv_forward(np.ones((60, 60)), np.ones((5, 3, 3)))
    conv_forward(np.ones((60, 60)), np.ones((5, 5)))
    conv_forward(np.ones((60, 60)), rng.standard_normal((21, 21)), padding="same")
    conv_forward(np.ones((60, 60)), np.ones((3, 3)), stride=2)  # general
    assert calls == ["correlate_taps", "correlate_matmul", "correlate_separable", "correlate_fft"]
    calls.clear()
    conv_forward(np.ones((300, 300)), rng.standard_normal((3, 3)), padding="same")  # large, as wide as its map
    assert calls == ["correlate_direct", "correlate_taps", "correlate_taps"]  # the two edge columns: block path


@contextmanager
def forced(path):
    """Make the dispatcher pick ``path`` for every stride-1 job it can (the separable path needs factors)."""
    real = _dispatch.plan

    def pick(X3, w3, pads, strides):
        everything = list(range(w3.shape[0]))
        if tuple(strides) != (1, 1):
            return real(X3, w3, pads, strides)
        if path == "separable":
            factors = [_separable.factor(k) for k in w3]
            if all(f is not None for f in factors):
                return [("separable", everything, factors)]
            return [("taps", everything, None)]
        if path == "taps" and w3.shape[0] >= _fastconv.BANK_MIN:
            return [("matmul", everything, None)]
        return [(path, everything, None)]

    _dispatch.plan = pick
    try:
        yield
    finally:
        _dispatch.plan = real


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
def test_taps_paths_equal_the_general_path(case, budget, n_threads):
    """Bitwise without the fused update (the same operations in the same order); to rounding with it.

    The direct path (small budgets) starts its sums from the first product, so
    it may give -0.0 where the general path gives 0.0: values, not bits, there.
    """
    with block_sizes(budget, 10**6, n_threads), forced("taps"), unfused():
        exact = conv_forward(**case)
    with block_sizes(budget, 10**6, n_threads), forced("taps"):
        fused = conv_forward(**case)
    general = general_forward(**case)
    np.testing.assert_array_equal(exact, general)
    if budget == 10**6:  # too few pixels for the direct path: the block path, bit for bit
        np.testing.assert_array_equal(bits(exact), bits(general))
    scale = np.abs(case["X"]).max() * np.abs(case["w"]).sum(axis=(-2, -1)).max() + 1.0
    np.testing.assert_allclose(fused, general, rtol=0, atol=1e-14 * scale)


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
def test_same_padding_is_scipy_ndimage(shape, kernel):
    """ndimage adds the taps in the same order, so without the fused update the numbers are identical.

    With it (the default), each update rounds once instead of twice: ndimage to
    rounding.  A rank-1 kernel such as edge-h goes to the separable path (see
    the test below) unless forced here.
    """
    rng = np.random.default_rng(1)
    X = rng.standard_normal(shape) * 100
    w = {
        "random": rng.standard_normal((3, 3)),
        "edge-h": np.array([[1.0, 1, 1], [0, 0, 0], [-1, -1, -1]]),
        "with-zero-row": np.vstack([rng.standard_normal((2, 5)), np.zeros((1, 5))])[[0, 2, 1]],
    }[kernel]
    reference = ndimage.correlate(X, w, mode="constant")
    with forced("taps"), unfused():
        np.testing.assert_array_equal(conv_forward(X, w, padding="same"), reference)
    with forced("taps"):
        A = conv_forward(X, w, padding="same")
    np.testing.assert_allclose(A, reference, rtol=0, atol=1e-14 * np.abs(X).max() * np.abs(w).sum())
    if kernel == "random":  # full rank, small: the dispatcher keeps the tap path itself
        np.testing.assert_array_equal(conv_forward(X, w, padding="same"), A)


@pytest.mark.parametrize("kernel", ["edge-h", "box5", "gauss7", "sobel", "rank2"])
def test_rank_one_and_two_kernels_are_ndimage_to_rounding_and_exact_on_integers(kernel):
    rng = np.random.default_rng(7)
    w = {
        "edge-h": EDGE_H,
        "box5": np.ones((5, 5)) / 25,
        "gauss7": gaussian(7),
        "sobel": np.outer([1.0, 2, 1], [-1.0, 0, 1]),
        "rank2": gaussian(9, 1.0) - gaussian(9, 2.5),  # a difference of Gaussians
    }[kernel]
    # 3x3 kernels: 6 fused taps straight into the output cost less than the two passes
    assert plan((301, 299), w, "same") == ("taps" if w.shape == (3, 3) else "separable")
    X = rng.standard_normal((301, 299)) * 100
    with forced("separable"):
        A = conv_forward(X, w, padding="same")
    ref = ndimage.correlate(X, w, mode="constant")
    np.testing.assert_allclose(A, ref, rtol=0, atol=1e-13 * np.abs(X).max() * np.abs(w).sum())
    pixels = rng.integers(0, 256, size=(301, 299), dtype=np.uint8)
    if np.array_equal(w, np.round(w)):  # integer image, integer kernel: every partial sum is exact
        with forced("separable"):
            np.testing.assert_array_equal(conv_forward(pixels, w, padding="same"),
                                          ndimage.correlate(pixels.astype(float), w, mode="constant"))


def test_factor_finds_the_rank_and_checks_it():
    rng = np.random.default_rng(8)
    (u, v), = _separable.factor(EDGE_H)
    np.testing.assert_array_equal(np.outer(u, v), EDGE_H)  # integer kernels factor exactly
    assert len(_separable.factor(gaussian(7))) == 1
    dog = gaussian(9, 1.0) - gaussian(9, 2.5)
    factors = _separable.factor(dog)
    assert len(factors) == 2
    np.testing.assert_allclose(sum(np.outer(a, b) for a, b in factors), dog, rtol=0, atol=1e-16)
    assert _separable.factor(rng.standard_normal((3, 3))) is None
    assert _separable.factor(rng.standard_normal((5, 5)), max_rank=2) is None
    assert _separable.factor(np.zeros((3, 3))) is None
    nearly = gaussian(5) + 1e-9 * rng.standard_normal((5, 5))  # rank 1 only to 1e-9: not separable
    assert _separable.factor(nearly, max_rank=1) is None


@st.composite
def low_rank_cases(draw):
    """Cases whose kernels are sums of one or two outer products (integers or floats)."""
    case = draw(cases(kernels=st.sampled_from([None, 1, 2, 3]), strided=False))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = np.atleast_3d(case["w"]).reshape((-1,) + case["w"].shape[-2:])
    fh, fw = max(2, w.shape[1]), max(2, w.shape[2])
    rank = draw(st.sampled_from([1, 2]))
    integers = draw(st.booleans())
    make = (lambda n: rng.integers(-2, 3, size=n).astype(float)) if integers else rng.standard_normal
    kernels = [sum(np.outer(make(fh), make(fw)) for _ in range(rank)) for _ in range(w.shape[0])]
    kernels = [k if np.abs(k).max() > 0 else np.ones((fh, fw)) for k in kernels]
    case["w"] = kernels[0] if case["w"].ndim == 2 else np.stack(kernels)
    h, wd = np.shape(case["X"])[-2:]
    if h < fh or wd < fw:
        case["padding"] = "full"
    return case


@settings(max_examples=150, deadline=None)
@given(low_rank_cases(), budgets, threads)
def test_separable_path_equals_the_general_path_to_rounding(case, budget, n_threads):
    with block_sizes(budget, 10**6, n_threads), forced("separable"):
        fast = conv_forward(**case)
    general = general_forward(**case)
    assert fast.shape == general.shape
    scale = np.abs(case["X"]).max() * np.abs(case["w"]).sum(axis=(-2, -1)).max() + 1.0
    np.testing.assert_allclose(fast, general, rtol=0, atol=1e-13 * scale)
    assert not np.signbit(fast[fast == 0]).any()  # no -0.0, as the general path


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_separable_path_meets_non_finite_pixels_like_the_general_path(bad):
    X = np.arange(400.0).reshape(20, 20)
    X[3, 4] = bad
    w = np.outer([1.0, 0, -1], [1.0, 2, 0])
    with block_sizes(60, 60), forced("separable"):
        fast = conv_forward(X, w, padding="same")
    np.testing.assert_array_equal(fast, general_forward(X, w, padding="same"))


@st.composite
def fft_cases(draw):
    """Images, kernels of 2 to 9 on a side, any zero-filled padding; tiles small enough to need many."""
    fh, fw = draw(st.integers(2, 9)), draw(st.integers(2, 9))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    n, k = draw(st.sampled_from([None, 1, 3])), draw(st.sampled_from([None, 1, 2, 5]))
    padding = draw(st.one_of(st.sampled_from(["same", "full"]), st.tuples(st.integers(0, 9), st.integers(0, 9))))
    pads = pad_widths(padding, (fh, fw))
    if h + sum(pads[0]) < fh or w + sum(pads[1]) < fw:
        padding = "full"
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((h, w) if n is None else (n, h, w)) * draw(st.sampled_from([1.0, 1e3]))
    wk = rng.standard_normal((fh, fw) if k is None else (k, fh, fw))
    tile = (draw(st.integers(fh + 1, fh + 20)), draw(st.integers(fw + 1, fw + 20)))
    return dict(X=X, w=wk, padding=padding, flip=draw(st.booleans()), border=draw(st.sampled_from(BORDERS))), tile


@settings(max_examples=150, deadline=None)
@given(fft_cases(), st.sampled_from([1, 2, 3]), st.sampled_from([1, 64, 10**6]))
def test_fft_path_equals_the_general_path_to_rounding(case_tile, n_threads, batch_pixels):
    case, tile = case_tile
    real = _fftconv.correlate_fft
    saved = _fftconv.FFT_PIXELS
    _fftconv.FFT_PIXELS = batch_pixels  # one tile per FFT call, or a few, or all
    try:
        with block_sizes(10**6, 10**6, n_threads), forced("fft"):
            _fftconv.correlate_fft = lambda X, w, pads, dtype, tile=None: real(X, w, pads, dtype, tile=case_tile[1])
            fast = conv_forward(**case)
    finally:
        _fftconv.correlate_fft, _fftconv.FFT_PIXELS = real, saved
    general = general_forward(**case)
    assert fast.shape == general.shape and fast.dtype == np.float64
    scale = np.abs(case["X"]).max() * np.abs(case["w"]).sum(axis=(-2, -1)).max()
    np.testing.assert_allclose(fast, general, rtol=0, atol=1e-13 * scale)


@pytest.mark.parametrize("size, kernel, padding", [((300, 257), (31, 31), "same"), ((128, 200), (45, 17), "valid"),
                                                   ((90, 90), (90, 90), "full")])
def test_large_kernels_take_the_fft_path_and_agree_with_scipy(size, kernel, padding):
    rng = np.random.default_rng(9)
    X, w = rng.uniform(0, 255, size), rng.standard_normal(kernel)
    assert plan(size, w, padding) == "fft"
    A = conv_forward(X, w, padding=padding)
    ref = scipy_reference(X, w, padding, 1, False, "zero")
    np.testing.assert_allclose(A, ref, rtol=0, atol=1e-12 * 255 * np.abs(w).sum())


@pytest.mark.parametrize("path", ["taps", "separable", "fft", "matmul", "general"])
def test_float32_images_and_kernels_compute_in_float32(path):
    """Both float32: float32 arithmetic and result, within float32 rounding of the float64 result."""
    rng = np.random.default_rng(10)
    X = rng.standard_normal((2, 70, 90)).astype(np.float32)
    w = {"separable": np.stack([gaussian(5)] * 2), "matmul": rng.standard_normal((5, 3, 3))}.get(
        path, rng.standard_normal((2, 5, 5))).astype(np.float32)
    stride = 2 if path == "general" else 1
    with forced(path if path != "general" else "taps"):
        A = conv_forward(X, w, padding=(2, 2), stride=stride)
    assert A.dtype == np.float32
    exact = general_forward(X.astype(np.float64), w.astype(np.float64), padding=(2, 2), stride=stride)
    scale = np.abs(X).max() * np.abs(w).sum(axis=(-2, -1)).max()
    np.testing.assert_allclose(A, exact, rtol=0, atol=5e-6 * scale)
    if path == "taps":  # without the fused update: the same float32 operations in the same order as the general path
        with forced("taps"), unfused():
            np.testing.assert_array_equal(conv_forward(X, w, padding=(2, 2)),
                                          layers._correlate(np.pad(X, ((0, 0), (2, 2), (2, 2))), w, (1, 1), np.float32))
    for mixed in ((X, w.astype(np.float64)), (X.astype(np.float64), w), (X.astype(np.float16), w)):
        assert conv_forward(*mixed, padding=(2, 2)).dtype == np.float64  # float64 unless both are float32



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


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("kernel_hw", [(3, 3), (2, 4), (5, 1)])
def test_direct_path_reads_any_image_and_meets_non_finite_pixels(dtype, kernel_hw):
    """Images converted band by band, bands reaching into the padding, wrapped edge columns redone, inf and NaN."""
    rng = np.random.default_rng(11)
    X = (rng.standard_normal((3, 50, 95)) * 50).astype(dtype)[:, ::2, ::3]  # (3, 25, 32), not contiguous
    if dtype != np.uint8:
        X[0, 0, 0], X[1, 12, 31], X[2, 24, 5] = np.inf, np.nan, -np.inf  # a corner, a right edge, the last row
    w = rng.standard_normal((2,) + kernel_hw).astype(dtype if dtype == np.float32 else np.float64)
    w[:, 0, -1] = 0.0  # a zero tap meets the bad pixels: 0 * inf is NaN
    X3, w3 = X.astype(np.float64), w.astype(np.float64)
    for budget in (1, 40, 100):
        with block_sizes(budget, 10**6, 2), forced("taps"):
            assert _direct.applies(X, w, layers._geometry(X.shape[1:], kernel_hw, "same", 1)[0])
            fast = conv_forward(X, w, padding="same")
        assert fast.dtype == (np.float32 if dtype == np.float32 else np.float64)
        with block_sizes(budget, 10**6, 2), forced("taps"), unfused():
            exact = conv_forward(X, w, padding="same")
        if dtype == np.float32:  # the general path's float32 arithmetic
            pads = layers._geometry(X.shape[1:], kernel_hw, "same", 1)[0]
            general = layers._correlate(np.pad(X, ((0, 0),) + pads), w, (1, 1), np.float32)
        else:
            general = general_forward(X3, w, padding="same")
        np.testing.assert_array_equal(exact, general)  # NaN where the general path has NaN, and inf alike
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(general))
        finite = np.isfinite(general)
        scale = np.abs(X3[np.isfinite(X3)]).max() * np.abs(w3).sum(axis=(-2, -1)).max()
        np.testing.assert_allclose(fast[finite], general[finite], rtol=0, atol=2e-6 * scale if dtype == np.float32 else 1e-13 * scale)


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
        with block_sizes(33, 33), unfused():  # the same float64 operations as the general path
            np.testing.assert_array_equal(conv_forward(X, w, padding=(1, 2)), exact)
            np.testing.assert_array_equal(bits(conv_forward(np.ascontiguousarray(X), w)),
                                          bits(general_forward(X.astype(np.float64), w)))
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


def test_each_kernel_gives_the_same_numbers_alone_or_in_a_bank():
    """Fewer than BANK_MIN kernels: each takes its own path, so splitting a bank changes no bit."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((2, 200, 170))
    for bank in (np.stack([rng.standard_normal((5, 5)), gaussian(5), EDGE_H.repeat(2, 0)[:5].repeat(2, 1)[:, :5]]),
                 np.stack([rng.standard_normal((21, 21)), gaussian(21, 4.0)])):
        whole = conv_forward(X, bank, padding="same")
        for c in range(len(bank)):
            np.testing.assert_array_equal(whole[:, c], conv_forward(X, bank[c], padding="same"))


def test_a_large_bank_goes_through_the_fft_in_groups_with_the_same_numbers(monkeypatch):
    rng = np.random.default_rng(12)
    X, w = rng.standard_normal((2, 60, 50)), rng.standard_normal((7, 9, 9))
    whole = _fftconv.correlate_fft(X, w, ((4, 4), (4, 4)), tile=(32, 32))
    monkeypatch.setattr(_fftconv, "SPECTRA_BYTES", 2 * 32 * 17 * 16)  # two kernels' spectra at a time
    grouped = _fftconv.correlate_fft(X, w, ((4, 4), (4, 4)), tile=(32, 32))
    np.testing.assert_array_equal(grouped, whole)
    np.testing.assert_allclose(whole, general_forward(X, w, padding=(4, 4)), rtol=0, atol=1e-12 * np.abs(w).sum())
