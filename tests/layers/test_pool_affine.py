"""The Pool and Dense layers against loops written for this test (and torch, if present)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcli.checking import gradient_check
from convcli.errors import ParameterError, ShapeError
from convcli.layers import affine_backward, affine_forward, dot_forward, pool_backward, pool_forward

# ----------------------------------------------------------------------------- pool reference


def pool_reference(X, size, stride, padding, mode, dA=None):
    """``(A, dX)`` window by window: the real pixels of each window, the first maximum in row-major order."""
    X = np.asarray(X, dtype=float)
    lead, (H, W) = X.shape[:-2], X.shape[-2:]
    images = X.reshape(-1, H, W)
    (fh, fw), (sh, sw), (ph, pw) = size, stride, padding
    oh, ow = (H + 2 * ph - fh) // sh + 1, (W + 2 * pw - fw) // sw + 1
    A = np.zeros((len(images), oh, ow))
    dA = np.ones_like(A) if dA is None else np.asarray(dA).reshape(A.shape)
    dX = np.zeros_like(images)
    for m, image in enumerate(images):
        for y in range(oh):
            for x in range(ow):
                cells = [(r, c) for r in range(y * sh - ph, y * sh - ph + fh) for c in range(x * sw - pw, x * sw - pw + fw)
                         if 0 <= r < H and 0 <= c < W]
                values = [image[r, c] for r, c in cells]
                if mode == "max":
                    first = int(np.argmax(values))  # argmax returns the first maximum
                    A[m, y, x] = values[first]
                    dX[m][cells[first]] += dA[m, y, x]
                else:
                    A[m, y, x] = sum(values) / len(values)
                    for cell in cells:
                        dX[m][cell] += dA[m, y, x] / len(cells)
    return A.reshape(lead + (oh, ow)), dX.reshape(X.shape)


@st.composite
def pool_cases(draw):
    size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, size[0] // 2)), draw(st.integers(0, size[1] // 2)))
    lead = draw(st.sampled_from([(), (2,), (2, 3)]))
    H, W = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    assume(H + 2 * padding[0] >= size[0] and W + 2 * padding[1] >= size[1])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # small integers: many ties, so the first-maximum rule is exercised
    X = rng.integers(-2, 3, lead + (H, W)).astype(float) if draw(st.booleans()) else rng.standard_normal(lead + (H, W))
    special = draw(st.sampled_from([None, None, np.nan, np.inf, -np.inf]))
    if special is not None:  # one NaN or infinity somewhere: the first NaN is the maximum, as np.argmax has it
        X.reshape(-1)[rng.integers(X.size)] = special
    return X, size, stride, padding, draw(st.sampled_from(["max", "avg"])), rng


@settings(max_examples=150, deadline=None)
@given(pool_cases())
def test_pool_matches_the_loops(case):
    X, size, stride, padding, mode, rng = case
    A = pool_forward(X, size, stride=stride, mode=mode, padding=padding)
    dA = rng.standard_normal(A.shape)
    if rng.random() < 0.2:  # an infinite upstream gradient reaches only its window's maximum (inf * 0 is not taken)
        dA.reshape(-1)[rng.integers(dA.size)] = np.inf
    A_ref, dX_ref = pool_reference(X, size, stride or size, padding, mode, dA)
    np.testing.assert_allclose(A, A_ref, rtol=1e-13, atol=1e-13)
    dX = pool_backward(X, dA, size, stride=stride, mode=mode, padding=padding)["X"]
    np.testing.assert_allclose(dX, dX_ref, rtol=1e-13, atol=1e-13)


def test_max_ties_send_the_gradient_to_the_first_maximum():
    X = np.array([[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 0.0, 0.0]])
    A = pool_forward(X, 2)
    np.testing.assert_array_equal(A, [[3.0, 3.0]])
    dX = pool_backward(X, [[10.0, 20.0]], 2)["X"]
    np.testing.assert_array_equal(dX, [[0.0, 10.0, 20.0, 0.0], [0.0, 0.0, 0.0, 0.0]])


def test_overlapping_windows_add_their_gradients():
    X = np.array([[0.0, 5.0, 1.0]])
    dX = pool_backward(X, [[1.0, 2.0]], (1, 2), stride=1)["X"]  # 5 is the max of both windows
    np.testing.assert_array_equal(dX, [[0.0, 3.0, 0.0]])
    dX = pool_backward(X, [[1.0, 2.0]], (1, 2), stride=1, mode="avg")["X"]
    np.testing.assert_array_equal(dX, [[0.5, 1.5, 1.0]])


def test_avg_padding_is_not_counted_and_max_padding_is_minus_infinity():
    X = -np.ones((3, 3))
    # avg: the corner window holds 4 real pixels of 9 cells
    np.testing.assert_array_equal(pool_forward(X, 3, stride=2, mode="avg", padding=1), -np.ones((2, 2)))
    # max: padding never wins, even against negative pixels
    np.testing.assert_array_equal(pool_forward(X, 3, stride=2, padding=1), -np.ones((2, 2)))


def test_all_minus_infinity_window_sends_gradient_to_a_real_pixel():
    X = np.full((2, 2), -np.inf)
    dX = pool_backward(X, np.ones((3, 3)), 2, stride=1, padding=1)["X"]
    assert dX.sum() == 9.0  # no gradient lost to the padding


def test_pool_shapes_and_default_stride():
    X = np.arange(2 * 3 * 6 * 7, dtype=float).reshape(2, 3, 6, 7)
    assert pool_forward(X).shape == (2, 3, 3, 3)
    assert pool_forward(X[0, 0], 3).shape == (2, 2)
    assert pool_forward(X[0], (2, 3), stride=1).shape == (3, 5, 5)
    assert pool_backward(X, None)["X"].shape == X.shape


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"size": 4}, ShapeError, "pool window of size (4, 4) is larger than the input of shape (3, 5) padded to (3, 5)"
                                  " (padding 0); use a smaller size or more padding"),
        ({"size": (4, 2), "padding": (0, 1)}, ShapeError,
         "pool window of size (4, 2) is larger than the input of shape (3, 5) padded to (3, 7) (padding (0, 1));"
         " use a smaller size or more padding"),
        ({"size": 2, "padding": 2}, ParameterError, "padding must be at most half the window size (2, 2); got padding 2"),
        ({"size": 0}, ParameterError, "size must be >= 1; got 0"),
        ({"stride": (1, 0)}, ParameterError, "stride must be >= 1; got (1, 0)"),
        ({"mode": "min"}, ParameterError, "mode must be one of max, avg; got 'min'"),
        ({"size": 2.5}, ParameterError, "size must be a whole number or a pair of them; got 2.5"),
    ],
)
def test_pool_bad_options(kwargs, error, message):
    for call in (lambda: pool_forward(np.ones((3, 5)), **kwargs), lambda: pool_backward(np.ones((3, 5)), None, **kwargs)):
        with pytest.raises(error) as info:
            call()
        assert str(info.value) == message


def test_pool_bad_shapes():
    with pytest.raises(ShapeError, match=r"X must have shape \(H, W\), \(N, H, W\) or \(N, C, H, W\); got shape \(4,\)"):
        pool_forward(np.ones(4))
    with pytest.raises(ShapeError, match=r"dA must have the output's shape \(2, 2\); got shape \(3, 3\)"):
        pool_backward(np.ones((4, 4)), np.ones((3, 3)))


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("size, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), 1, (1, 0))])
def test_pool_gradient_check(mode, size, stride, padding):
    X = np.random.default_rng(0).standard_normal((2, 3, 7, 6))  # no ties: max pooling is differentiable here
    result = gradient_check(pool_forward, pool_backward, X=X, size=size, stride=stride, padding=padding,
                            options={"mode": mode})
    assert result.passed, str(result)
    assert [check.name for check in result.inputs] == ["X"]  # size, stride, padding passed through, not checked


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(pool_cases())
def test_pool_matches_torch_when_installed(case):  # only 4-D cases: torch pools (N, C, H, W)
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    X, size, stride, padding, mode, rng = case
    assume(X.ndim == 4)
    tX = torch.tensor(X, requires_grad=True)
    if mode == "max":
        tA = F.max_pool2d(tX, size, stride or size, padding)
    else:
        tA = F.avg_pool2d(tX, size, stride or size, padding, count_include_pad=False)
    A = pool_forward(X, size, stride=stride, mode=mode, padding=padding)
    np.testing.assert_allclose(A, tA.detach().numpy(), rtol=1e-12, atol=1e-14)
    dA = rng.standard_normal(A.shape)
    tA.backward(torch.tensor(dA))
    dX = pool_backward(X, dA, size, stride=stride, mode=mode, padding=padding)["X"]
    np.testing.assert_allclose(dX, tX.grad.numpy(), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- dense


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 5), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_affine_matches_the_loops(n, dims, m, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal([n] + dims)
    D = int(np.prod(dims))
    w, b = rng.standard_normal((D, m)), (rng.standard_normal(m) if bias else None)
    out = affine_forward(x, w, b)
    dout = rng.standard_normal((n, m))
    ref = np.array([[sum(x.reshape(n, D)[i, d] * w[d, j] for d in range(D)) + (b[j] if bias else 0.0)
                     for j in range(m)] for i in range(n)])
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    grads = affine_backward(x, w, dout, b)
    dx_ref = np.array([[sum(dout[i, j] * w[d, j] for j in range(m)) for d in range(D)] for i in range(n)])
    dw_ref = np.array([[sum(x.reshape(n, D)[i, d] * dout[i, j] for i in range(n)) for j in range(m)] for d in range(D)])
    np.testing.assert_allclose(grads["x"], dx_ref.reshape(x.shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["w"], dw_ref, rtol=1e-12, atol=1e-12)
    assert set(grads) == ({"x", "w", "b"} if bias else {"x", "w"})
    if bias:
        np.testing.assert_allclose(grads["b"], dout.sum(axis=0), rtol=1e-12)


def test_dot_layer_is_the_one_output_case():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    assert affine_forward(x[None], w.reshape(9, 1))[0, 0] == pytest.approx(dot_forward(x, w))


def test_affine_gradient_check():
    rng = np.random.default_rng(2)
    result = gradient_check(affine_forward, affine_backward, x=rng.standard_normal((4, 2, 3)),
                            w=rng.standard_normal((6, 5)), b=rng.standard_normal(5))
    assert result.passed and [c.name for c in result.inputs] == ["x", "w", "b"] and result.upstream == "dout"


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, message",
    [
        ((4,), (4, 2), None, "x must have shape (N, d1, ..., dk), at least 2 dimensions; got shape (4,)"),
        ((4, 2, 3), (5, 2), None,
         "w must have D = 6 rows (x of shape (4, 2, 3) is read as (N, D) = (4, 6)); got w shape (5, 2)"),
        ((4, 6), (6,), None, "w must have shape (D, M); got shape (6,)"),
        ((4, 6), (6, 2), (3,), "b must have shape (2,), one number per output; got shape (3,)"),
    ],
)
def test_affine_bad_shapes(x_shape, w_shape, b_shape, message):
    b = None if b_shape is None else np.ones(b_shape)
    with pytest.raises(ShapeError) as info:
        affine_forward(np.ones(x_shape), np.ones(w_shape), b)
    assert str(info.value) == message
    with pytest.raises(ShapeError, match=r"dout must have the output's shape \(4, 2\); got shape \(2, 4\)"):
        affine_backward(np.ones((4, 6)), np.ones((6, 2)), np.ones((2, 4)))


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_on_threads_gives_the_same_numbers(monkeypatch, mode):
    from convcli.layers import _threads, pool

    monkeypatch.setattr(pool, "PARALLEL_PIXELS", 0)
    monkeypatch.setattr(_threads, "THREADS", 3)
    rng = np.random.default_rng(6)
    X = rng.integers(-2, 3, (2, 4, 8, 6)).astype(float)
    dA = rng.standard_normal((2, 4, 4, 3))
    A_ref, dX_ref = pool_reference(X, (2, 2), (2, 2), (0, 0), mode, dA)
    np.testing.assert_allclose(pool_forward(X, 2, mode=mode), A_ref, rtol=1e-13)
    np.testing.assert_allclose(pool_backward(X, dA, 2, mode=mode)["X"], dX_ref, rtol=1e-13, atol=1e-15)
