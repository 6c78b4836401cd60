"""convcli.layers against scipy.signal, and backward passes against the adjoint identity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from convcli.errors import ParameterError, ShapeError
from convcli.layers import conv_backward, conv_forward, dot_backward, dot_forward, pad_widths


def _reference(X, w, padding, stride, flip, border="zero"):
    """scipy's correlate2d on an image padded with numpy.pad, then strided."""
    (t, b), (l, r) = pad_widths(padding, w.shape, stride)
    mode = {"zero": "constant"}.get(border, border)
    Xp = np.pad(X, ((t, b), (l, r)), mode=mode)
    k = w[::-1, ::-1] if flip else w
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    return signal.correlate2d(Xp, k, mode="valid")[::sh, ::sw]


paddings = st.one_of(
    st.sampled_from(["valid", "same", "full"]),
    st.integers(0, 3),
    st.tuples(st.integers(0, 3), st.integers(0, 3)),
)


@st.composite
def conv_cases(draw):
    fh, fw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    h, w = draw(st.integers(fh, 12)), draw(st.integers(fw, 12))
    padding = draw(paddings)
    stride = 1 if padding == "same" else draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    flip = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return rng.standard_normal((h, w)), rng.standard_normal((fh, fw)), padding, stride, flip


# ----------------------------------------------------------------------------- dot


def test_dot_forward_is_sum_of_products():
    x = np.arange(9.0).reshape(3, 3)
    w = np.linspace(-1, 1, 9).reshape(3, 3)
    assert dot_forward(x, w) == pytest.approx(float(np.sum(x * w)))
    assert isinstance(dot_forward(x, w), float)


def test_dot_backward_scales_by_upstream_gradient():
    x = np.arange(9.0).reshape(3, 3)
    w = np.linspace(-1, 1, 9).reshape(3, 3)
    grads = dot_backward(x, w, da=-2.5)
    np.testing.assert_array_equal(grads["x"], -2.5 * w)
    np.testing.assert_array_equal(grads["w"], -2.5 * x)
    np.testing.assert_array_equal(dot_backward(x, w)["x"], w)  # default da = 1
    np.testing.assert_array_equal(dot_backward(x, w, None)["w"], x)  # the lab's default


def test_dot_shapes_must_match():
    with pytest.raises(ShapeError, match=r"x and w must have the same shape; got x \(3, 3\) and w \(2, 2\)"):
        dot_forward(np.ones((3, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError):  # ShapeError is a ValueError
        dot_backward(np.ones((3, 3)), np.ones((3, 2)))


# ----------------------------------------------------------------------------- forward vs scipy


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_forward_matches_scipy(case):
    X, w, padding, stride, flip = case
    np.testing.assert_allclose(conv_forward(X, w, padding=padding, stride=stride, flip=flip),
                               _reference(X, w, padding, stride, flip), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("kshape", [(3, 3), (2, 2), (4, 3), (1, 5)])
def test_named_modes_equal_scipy_correlate2d(mode, kshape):
    rng = np.random.default_rng(7)
    X, w = rng.standard_normal((10, 9)), rng.standard_normal(kshape)
    np.testing.assert_allclose(conv_forward(X, w, padding=mode), signal.correlate2d(X, w, mode=mode), atol=1e-12)


@pytest.mark.parametrize("mode", ["valid", "full"])
@pytest.mark.parametrize("kshape", [(3, 3), (2, 4), (5, 1)])
def test_flip_equals_scipy_convolve2d(mode, kshape):
    rng = np.random.default_rng(8)
    X, w = rng.standard_normal((9, 10)), rng.standard_normal(kshape)
    np.testing.assert_allclose(conv_forward(X, w, padding=mode, flip=True), signal.convolve2d(X, w, mode=mode), atol=1e-12)


def test_flip_same_for_odd_kernels_equals_convolve2d():
    rng = np.random.default_rng(9)
    X, w = rng.standard_normal((9, 10)), rng.standard_normal((3, 5))
    np.testing.assert_allclose(conv_forward(X, w, padding="same", flip=True), signal.convolve2d(X, w, mode="same"), atol=1e-12)


@pytest.mark.parametrize("border", ["reflect", "symmetric", "edge", "wrap"])
def test_borders_fill_padding_like_numpy_pad(border):
    rng = np.random.default_rng(10)
    X, w = rng.standard_normal((7, 8)), rng.standard_normal((3, 3))
    got = conv_forward(X, w, padding="same", border=border)
    np.testing.assert_allclose(got, _reference(X, w, "same", 1, False, border), atol=1e-12)
    assert not np.allclose(got, conv_forward(X, w, padding="same"))  # the border really changed something


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), conv_cases())
def test_batch_and_bank_equal_per_image_per_kernel(n, k, case):
    X, w, padding, stride, flip = case
    rng = np.random.default_rng(n * 10 + k)
    Xb = np.stack([X] + [rng.standard_normal(X.shape) for _ in range(n - 1)])
    wb = np.stack([w] + [rng.standard_normal(w.shape) for _ in range(k - 1)])
    A = conv_forward(Xb, wb, padding=padding, stride=stride, flip=flip)
    assert A.shape[:2] == (n, k)
    for a in range(n):
        for b in range(k):
            np.testing.assert_allclose(A[a, b], _reference(Xb[a], wb[b], padding, stride, flip), atol=1e-12)
    assert conv_forward(Xb, w, padding=padding, stride=stride, flip=flip).shape == (n,) + A.shape[2:]
    assert conv_forward(X, wb, padding=padding, stride=stride, flip=flip).shape == (k,) + A.shape[2:]


def test_output_shape_formula():
    X, w = np.zeros((11, 13)), np.zeros((3, 4))
    # H' = (H + pt + pb - Fh) // sh + 1
    assert conv_forward(X, w, padding=(2, 1), stride=(2, 3)).shape == ((11 + 4 - 3) // 2 + 1, (13 + 2 - 4) // 3 + 1)
    assert conv_forward(X, w, padding="same").shape == X.shape
    assert conv_forward(X, w, padding="full").shape == (13, 16)


def test_uint8_images_work():
    X = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    w = np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]])
    A = conv_forward(X, w)
    assert A.dtype == np.float64
    np.testing.assert_array_equal(A, signal.correlate2d(X.astype(float), w, "valid"))  # no uint8 wrap-around


# ----------------------------------------------------------------------------- refusals


def test_kernel_larger_than_image_is_an_error_not_an_empty_array():
    X = np.array([[1, 2], [3, 2]])
    w = np.array([[3, 4, 5], [3, 5, 2], [7, 2, 1]])  # the lab's example, which returned shape (0, 0)
    with pytest.raises(ShapeError, match=r"kernel of shape \(3, 3\) is larger than the image of shape \(2, 2\) padded to \(2, 2\)"):
        conv_forward(X, w)
    assert conv_forward(X, w, padding="same").shape == (2, 2)  # with padding it fits
    with pytest.raises(ShapeError):
        conv_backward(X, w)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"padding": "sometimes"}, "padding must be one of valid, same, full, a whole number or a pair; got 'sometimes'"),
        ({"padding": -1}, "padding must be >= 0; got -1"),
        ({"padding": (1, 2, 3)}, "padding must be a whole number or a pair of them; got (1, 2, 3)"),
        ({"padding": 1.5}, "padding must be a whole number or a pair of them; got 1.5"),
        ({"stride": 0}, "stride must be >= 1; got 0"),
        ({"stride": (1, -2)}, "stride must be >= 1; got (1, -2)"),
        ({"stride": True}, "stride must be a whole number or a pair of them; got True"),
        ({"padding": "same", "stride": 2}, "padding 'same' needs stride 1; got stride 2"),
        ({"border": "mirror"}, "border must be one of zero, reflect, symmetric, edge, wrap; got 'mirror'"),
    ],
)
def test_bad_options_raise_parameter_error(kwargs, message):
    with pytest.raises(ParameterError) as info:
        conv_forward(np.ones((5, 5)), np.ones((3, 3)), **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "X, w, message",
    [
        (np.ones(5), np.ones((3, 3)), r"X must have shape \(H, W\), \(N, H, W\) or \(N, C, H, W\); got shape \(5,\)"),
        (np.ones((2, 2, 5, 5)), np.ones((3, 3)), r"X of shape \(2, 2, 5, 5\) is \(N, C, H, W\) and needs w of shape \(K, C // groups, Fh, Fw\); got w shape \(3, 3\)"),
        (np.ones((5, 5)), np.ones(3), r"w must have shape \(Fh, Fw\), \(K, Fh, Fw\) or \(K, C // groups, Fh, Fw\); got shape \(3,\)"),
        (np.ones((0, 5)), np.ones((1, 1)), r"must not be empty"),
        ([["a", "b"]], np.ones((1, 1)), r"X must be an array of numbers"),
    ],
)
def test_bad_shapes_raise_shape_error(X, w, message):
    with pytest.raises(ShapeError, match=message):
        conv_forward(X, w)


def test_dA_must_have_the_output_shape():
    with pytest.raises(ShapeError, match=r"dA must have the output's shape \(3, 3\); got shape \(4, 4\)"):
        conv_backward(np.ones((5, 5)), np.ones((3, 3)), np.ones((4, 4)))


# ----------------------------------------------------------------------------- backward


@settings(max_examples=100, deadline=None)
@given(conv_cases(), st.sampled_from(["zero", "reflect", "symmetric", "edge", "wrap"]))
def test_backward_satisfies_the_adjoint_identity(case, border):
    """<conv_forward(X), G> == <X, dX> == <w, dw>, because the layer is linear in each argument."""
    X, w, padding, stride, flip = case
    kwargs = dict(padding=padding, stride=stride, flip=flip, border=border)
    A = conv_forward(X, w, **kwargs)
    G = np.random.default_rng(0).standard_normal(A.shape)
    grads = conv_backward(X, w, G, **kwargs)
    assert grads["X"].shape == X.shape and grads["w"].shape == w.shape
    inner = np.sum(A * G)
    assert np.sum(X * grads["X"]) == pytest.approx(inner, rel=1e-9, abs=1e-9)
    assert np.sum(w * grads["w"]) == pytest.approx(inner, rel=1e-9, abs=1e-9)


def test_backward_matches_the_textbook_formulas_for_valid_stride_1():
    """dX is a full correlation of dA with the rotated kernel; dw is a valid correlation of X with dA."""
    rng = np.random.default_rng(3)
    X, w = rng.standard_normal((9, 8)), rng.standard_normal((3, 2))
    dA = rng.standard_normal((7, 7))
    grads = conv_backward(X, w, dA)
    np.testing.assert_allclose(grads["X"], signal.convolve2d(dA, w, mode="full"), atol=1e-12)
    np.testing.assert_allclose(grads["w"], signal.correlate2d(X, dA, mode="valid"), atol=1e-12)


def test_backward_default_dA_is_all_ones():
    rng = np.random.default_rng(4)
    X, w = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    default, ones = conv_backward(X, w), conv_backward(X, w, np.ones((4, 4)))
    np.testing.assert_array_equal(default["X"], ones["X"])
    np.testing.assert_array_equal(default["w"], ones["w"])


def test_batch_backward_sums_dw_over_the_batch():
    rng = np.random.default_rng(5)
    Xb, w = rng.standard_normal((3, 7, 6)), rng.standard_normal((2, 3, 3))
    dA = rng.standard_normal((3, 2, 5, 4))
    grads = conv_backward(Xb, w, dA)
    expected_dw = sum(conv_backward(Xb[n], w, dA[n])["w"] for n in range(3))
    np.testing.assert_allclose(grads["w"], expected_dw, atol=1e-12)
    for n in range(3):
        np.testing.assert_allclose(grads["X"][n], conv_backward(Xb[n], w, dA[n])["X"], atol=1e-12)
