"""The Conv layer with channels, bias, dilation and groups against loops written for this test (and torch, if present)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcli.checking import gradient_check
from convcli.errors import ParameterError, ShapeError
from convcli.layers import _channels, conv_backward, conv_forward

# ----------------------------------------------------------------------------- the reference


def _pads(padding, span):
    """Pad widths written out from the issue's rules (independent of convcli's pad_widths)."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "full":
        return (span[0] - 1,) * 2, (span[1] - 1,) * 2
    if padding == "same":
        return tuple(((s - 1) // 2, (s - 1) - (s - 1) // 2) for s in span)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph), (pw, pw)


def reference(X, w, b, padding, stride, dilation, groups, flip=False, border="zero", dA=None):
    """``(A, dX, dw, db)`` by loops over every output pixel: the definition, nothing vectorized."""
    N, C, H, W = X.shape
    K, Cg, Fh, Fw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    span = (dh * (Fh - 1) + 1, dw * (Fw - 1) + 1)
    pads = _pads(padding, span)
    mode = "constant" if border == "zero" else border
    Xp = np.pad(X, ((0, 0), (0, 0)) + pads, mode=mode)
    k_eff = w[:, :, ::-1, ::-1] if flip else w
    oh, ow = (Xp.shape[2] - span[0]) // sh + 1, (Xp.shape[3] - span[1]) // sw + 1
    A = np.zeros((N, K, oh, ow))
    dA = np.ones_like(A) if dA is None else dA
    dXp, dk = np.zeros_like(Xp), np.zeros_like(w)
    per_group = K // groups
    for n in range(N):
        for k in range(K):
            g = k // per_group
            for y in range(oh):
                for x in range(ow):
                    rows = slice(y * sh, y * sh + span[0], dh)
                    cols = slice(x * sw, x * sw + span[1], dw)
                    window = Xp[n, g * Cg : (g + 1) * Cg, rows, cols]
                    A[n, k, y, x] = np.sum(window * k_eff[k]) + (0.0 if b is None else b[k])
                    dXp[n, g * Cg : (g + 1) * Cg, rows, cols] += dA[n, k, y, x] * k_eff[k]
                    dk[k] += dA[n, k, y, x] * window
    dw = dk[:, :, ::-1, ::-1] if flip else dk
    # carry dXp back through the padding: each padded cell is a copy of some pixel
    source = np.arange(H * W).reshape(H, W)
    if mode == "constant":
        index = np.pad(source, pads, mode="constant", constant_values=-1)  # zero padding copies no pixel
    else:
        index = np.pad(source, pads, mode=mode)
    dX = np.zeros((N, C, H * W))
    for (i, j), source in np.ndenumerate(index):
        if source >= 0:
            dX[:, :, source] += dXp[:, :, i, j]
    return A, dX.reshape(X.shape), dw, dA.sum(axis=(0, 2, 3))


def close(a, b, rtol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(np.abs(b).max(initial=0.0), 1e-300)
    assert np.abs(a - b).max(initial=0.0) <= rtol * scale, np.abs(a - b).max() / scale


pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


@st.composite
def layer_cases(draw, borders=("zero",)):
    groups = draw(st.integers(1, 3))
    C, K = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    Fh, Fw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilation = draw(pairs)
    padding = draw(st.one_of(st.sampled_from(["valid", "same", "full"]), st.integers(0, 2),
                             st.tuples(st.integers(0, 2), st.integers(0, 3))))
    stride = (1, 1) if padding == "same" else draw(pairs)
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    span = (dilation[0] * (Fh - 1) + 1, dilation[1] * (Fw - 1) + 1)
    pads = _pads(padding, span)
    assume(H + sum(pads[0]) >= span[0] and W + sum(pads[1]) >= span[1])
    border = draw(st.sampled_from(borders))
    assume(border == "zero" or max(max(p) for p in pads) < min(H, W))  # reflect needs pads < size
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((draw(st.integers(1, 2)), C, H, W))
    w = rng.standard_normal((K, C // groups, Fh, Fw))
    b = rng.standard_normal(K) if draw(st.booleans()) else None
    options = dict(padding=padding, stride=stride, dilation=dilation, groups=groups,
                   flip=draw(st.booleans()), border=border)
    return X, w, b, options, rng


# ----------------------------------------------------------------------------- forward and backward


@settings(max_examples=150, deadline=None)
@given(layer_cases(borders=("zero", "reflect", "edge", "wrap", "symmetric")))
def test_forward_and_backward_match_the_loops(case):
    X, w, b, options, rng = case
    A = conv_forward(X, w, b, **options)
    dA = rng.standard_normal(A.shape)
    A_ref, dX_ref, dw_ref, db_ref = reference(X, w, b, dA=dA, **options)
    close(A, A_ref)
    grads = conv_backward(X, w, dA, b, **options)
    close(grads["X"], dX_ref)
    close(grads["w"], dw_ref)
    assert set(grads) == ({"X", "w", "b"} if b is not None else {"X", "w"})
    if b is not None:
        close(grads["b"], db_ref)


def test_odd_non_square_shapes_every_padding_with_dilation():
    rng = np.random.default_rng(5)
    X, w, b = rng.standard_normal((2, 4, 11, 7)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    for padding in ("valid", "same", "full", 2, (1, 3)):
        for stride in ((1, 1), (2, 3), (3, 1)):
            if padding == "same" and stride != (1, 1):
                continue
            options = dict(padding=padding, stride=stride, dilation=(2, 3), groups=2)
            dA = rng.standard_normal(conv_forward(X, w, b, **options).shape)
            A_ref, dX_ref, dw_ref, db_ref = reference(X, w, b, dA=dA, flip=False, **options)
            close(conv_forward(X, w, b, **options), A_ref)
            grads = conv_backward(X, w, dA, b, **options)
            for key, ref in (("X", dX_ref), ("w", dw_ref), ("b", db_ref)):
                close(grads[key], ref)


def test_same_padding_output_shape_with_dilation():
    # "same" pads d*(F-1) in total, split as (total // 2, rest): the output keeps the input's size
    A = conv_forward(np.ones((1, 2, 9, 8)), np.ones((3, 2, 4, 3)), padding="same", dilation=(3, 2))
    assert A.shape == (1, 3, 9, 8)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_groups_one_two_and_depthwise(groups):
    rng = np.random.default_rng(groups)
    X, w = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((8, 4 // groups, 3, 3))
    A = conv_forward(X, w, padding=1, groups=groups)
    # each group of kernels sees only its own group of channels: compute group by group with groups=1
    per = 8 // groups
    for g in range(groups):
        part = conv_forward(X[:, g * (4 // groups) : (g + 1) * (4 // groups)], w[g * per : (g + 1) * per], padding=1)
        close(A[:, g * per : (g + 1) * per], part)


def test_one_image_of_channels_and_one_output_channel():
    # the colour-kernel case: a (C, H, W) image with a (1, C, Fh, Fw) kernel gives one map, summed over R, G, B
    rng = np.random.default_rng(3)
    image, kernel = rng.standard_normal((3, 10, 12)), rng.standard_normal((1, 3, 3, 3))
    A = conv_forward(image, kernel, padding="same")
    assert A.shape == (1, 10, 12)
    per_channel = sum(conv_forward(image[c], kernel[0, c], padding="same") for c in range(3))
    close(A[0], per_channel)
    close(conv_forward(image[None], kernel, padding="same")[0], A)
    grads = conv_backward(image, kernel, np.ones_like(A), padding="same")
    assert grads["X"].shape == image.shape and grads["w"].shape == kernel.shape


def test_one_channel_forms_keep_their_meaning_with_bias_and_dilation():
    rng = np.random.default_rng(4)
    X, bank, b = rng.standard_normal((2, 9, 8)), rng.standard_normal((3, 3, 2)), rng.standard_normal(3)
    plain = conv_forward(X, bank, padding="same")
    close(conv_forward(X, bank, b, padding="same"), plain + b[:, None, None])
    close(conv_forward(X[0], bank[0], 0.5), conv_forward(X[0], bank[0]) + 0.5)
    # dilation on the old forms: the same numbers as the 4-D form with one channel, squeezed back
    dilated = conv_forward(X[0], bank[0], 1.5, padding="full", dilation=2)
    ref = reference(X[:1, None], bank[:1, None], [1.5], "full", (1, 1), (2, 2), 1)[0]
    close(dilated, ref[0, 0])
    grads = conv_backward(X[0], bank[0], np.ones_like(dilated), 1.5, padding="full", dilation=2)
    assert grads["X"].shape == (9, 8) and grads["w"].shape == (3, 2) and np.shape(grads["b"]) == ()
    assert grads["b"] == pytest.approx(dilated.size)


def test_chunked_and_threaded_paths_give_the_same_numbers(monkeypatch):
    rng = np.random.default_rng(8)
    X, w, b = rng.standard_normal((3, 4, 13, 11)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    dA = rng.standard_normal((3, 6, 13, 11))
    A_ref, dX_ref, dw_ref, db_ref = reference(X, w, b, "same", (1, 1), (1, 1), 2, dA=dA)
    for budget, threads in ((40, 1), (40, 2), (1 << 19, 2), (200, 3)):  # row bands of one image, threads
        monkeypatch.setattr(_channels, "COLS_BUDGET", budget)
        monkeypatch.setattr(_channels, "THREADS", threads)
        monkeypatch.setattr(_channels, "PARALLEL_WORK", 0)
        close(conv_forward(X, w, b, padding="same", groups=2), A_ref)
        for stride in ((1, 1), (2, 1)):  # the transposed correlation and the scatter
            options = dict(padding="same" if stride == (1, 1) else 1, stride=stride, groups=2)
            A_s, dX_s, dw_s, db_s = reference(X, w, b, options["padding"], stride, (1, 1), 2, dA=dA[..., ::stride[0], :])
            grads = conv_backward(X, w, dA[..., ::stride[0], :], b, **options)
            close(grads["X"], dX_s)
            close(grads["w"], dw_s)
            close(grads["b"], db_s)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.integers(1, 4))
def test_chunks_of_whole_images_are_shared_evenly_among_the_threads(n, per_chunk, threads):
    # every image once, in order; sizes differ by at most one, larger first; the longest thread's share
    # (chunks per thread times the largest chunk) is no more than the budget's own plan would give
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_channels, "THREADS", threads)
        plan = _channels.chunks(n, (2, 3), 5, images_budget=per_chunk * 30)
    assert [c[2:] for c in plan] == [(0, 2)] * len(plan)
    assert [n0 for n0, *_ in plan] == [0] + [n1 for _, n1, *_ in plan[:-1]] and plan[-1][1] == n
    sizes = [n1 - n0 for n0, n1, *_ in plan]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] - sizes[-1] <= 1
    assert len(plan) % threads == 0 or len(plan) == n
    naive = -(-n // per_chunk)  # the budget's plan: chunks of at most per_chunk, as many as that takes
    naive = min(n, -(-naive // threads) * threads)
    assert sizes[0] * -(-len(plan) // threads) <= -(-n // naive) * -(-naive // threads)
    assert len(plan) <= 2 * -(-n // per_chunk) + threads


def test_64_images_at_7_a_chunk_make_16_chunks_of_4_on_two_threads(monkeypatch):
    # 10 chunks of 6 or 7 leave one thread 33 images and the other 31 (35 at worst); 16 chunks of 4 give both 32
    monkeypatch.setattr(_channels, "THREADS", 2)
    assert [n1 - n0 for n0, n1, *_ in _channels.chunks(64, (2, 3), 5, images_budget=7 * 30)] == [4] * 16
    assert [n1 - n0 for n0, n1, *_ in _channels.chunks(7, (2, 3), 5, images_budget=2 * 30)] == [2, 2, 2, 1]


def test_more_kernels_than_channels_uses_the_scatter_and_agrees():
    rng = np.random.default_rng(9)
    X, w = rng.standard_normal((2, 2, 7, 6)), rng.standard_normal((5, 2, 3, 3))
    dA = rng.standard_normal((2, 5, 7, 6))
    _, dX_ref, dw_ref, _ = reference(X, w, None, 1, (1, 1), (1, 1), 1, dA=dA)
    grads = conv_backward(X, w, dA, padding=1)
    close(grads["X"], dX_ref)
    close(grads["w"], dw_ref)


def test_uint8_channels_and_lists_work():
    X = np.arange(2 * 3 * 5 * 5, dtype=np.uint8).reshape(2, 3, 5, 5)
    w = np.ones((1, 3, 2, 2))
    close(conv_forward(X, w), conv_forward(X.astype(float), w))
    close(conv_forward(X.tolist(), w.tolist(), [1.0]), conv_forward(X.astype(float), w) + 1.0)


# ----------------------------------------------------------------------------- gradient checks


@settings(max_examples=20, deadline=None)
@given(layer_cases())
def test_gradient_check_passes_for_channels_groups_dilation_bias(case):
    X, w, b, options, _ = case
    inputs = dict(X=X, w=w) if b is None else dict(X=X, w=w, b=b)
    result = gradient_check(conv_forward, conv_backward, options=options, **inputs)
    assert result.passed, str(result)
    assert result.upstream == "dA"


def test_gradient_check_catches_a_bias_gradient_that_forgets_dA():
    rng = np.random.default_rng(2)
    X, w, b = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(3)

    def wrong_backward(X, w, dA, b):
        grads = conv_backward(X, w, dA, b)
        grads["b"] = np.full(3, float(np.prod(dA.shape[2:]) * dA.shape[0]))  # the all-ones-upstream answer
        return grads

    result = gradient_check(conv_forward, wrong_backward, X=X, w=w, b=b)
    assert result["X"].passed and result["w"].passed and not result["b"].passed


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "X_shape, w_shape, kwargs, error, message",
    [
        ((2, 4, 6, 6), (3, 3, 3, 3), {}, ShapeError,
         "w.shape[1] must be C // groups = 4 (X has C = 4 channels, groups=1); got w shape (3, 3, 3, 3)"),
        ((2, 4, 6, 6), (4, 4, 3, 3), {"groups": 2}, ShapeError,
         "w.shape[1] must be C // groups = 2 (X has C = 4 channels, groups=2); got w shape (4, 4, 3, 3)"),
        ((2, 4, 6, 6), (3, 1, 3, 3), {"groups": 3}, ParameterError,
         "groups must divide the input channels C = 4; got groups=3"),
        ((2, 4, 6, 6), (3, 2, 3, 3), {"groups": 2}, ParameterError,
         "groups must divide the number of kernels K = 3 (w.shape[0]); got groups=2"),
        ((2, 4, 6, 6), (4, 4, 3, 3), {"groups": 0}, ParameterError, "groups must be a whole number >= 1; got 0"),
        ((2, 4, 6, 6), (4, 4, 3, 3), {"dilation": 0}, ParameterError, "dilation must be >= 1; got 0"),
        ((2, 4, 6, 6), (4, 4, 3, 3), {"dilation": (1, 0)}, ParameterError, "dilation must be >= 1; got (1, 0)"),
        ((2, 4, 6, 6), (4, 4, 3, 3), {"dilation": 1.5}, ParameterError,
         "dilation must be a whole number or a pair of them; got 1.5"),
        ((2, 4, 6, 6), (4, 4, 3, 3), {"dilation": 3}, ShapeError,
         "kernel of shape (3, 3) dilated by (3, 3) (spanning (7, 7)) is larger than the image of shape (6, 6)"
         " padded to (6, 6) (padding 'valid'); use a smaller kernel or more padding"),
        ((2, 4, 6, 6), (3, 3), {}, ShapeError,
         "X of shape (2, 4, 6, 6) is (N, C, H, W) and needs w of shape (K, C // groups, Fh, Fw); got w shape (3, 3)"),
        ((6, 6), (1, 1, 3, 3), {}, ShapeError,
         "with w of shape (K, C // groups, Fh, Fw), X must have shape (N, C, H, W) or (C, H, W); got shape (6, 6)"),
        ((6, 6), (3, 3), {"groups": 2}, ParameterError, "groups must divide the input channels C = 1; got groups=2"),
    ],
)
def test_bad_shapes_and_options_get_one_clear_error(X_shape, w_shape, kwargs, error, message):
    with pytest.raises(error) as info:
        conv_forward(np.ones(X_shape), np.ones(w_shape), **kwargs)
    assert str(info.value) == message
    with pytest.raises(error):
        conv_backward(np.ones(X_shape), np.ones(w_shape), None, **kwargs)


@pytest.mark.parametrize(
    "w_shape, b, message",
    [
        ((3, 2, 2, 2), np.ones(2), "b must have shape (3,), one number per kernel; got shape (2,)"),
        ((3, 2, 2, 2), 1.0, "b must have shape (3,), one number per kernel; got shape ()"),
        ((1, 2, 2, 2), np.ones((1, 1)), "b must have shape (1,), one number per kernel or a scalar; got shape (1, 1)"),
        ((2, 2), np.ones(2), "b must have shape (1,), one number per kernel or a scalar; got shape (2,)"),
    ],
)
def test_bad_bias_shape(w_shape, b, message):
    X = np.ones((1, 2, 5, 5)) if len(w_shape) == 4 else np.ones((5, 5))
    with pytest.raises(ShapeError) as info:
        conv_forward(X, np.ones(w_shape), b)
    assert str(info.value) == message


def test_dA_of_the_wrong_shape():
    with pytest.raises(ShapeError, match=r"dA must have the output's shape \(1, 3, 4, 4\); got shape \(1, 3, 5, 5\)"):
        conv_backward(np.ones((1, 2, 5, 5)), np.ones((3, 2, 2, 2)), np.ones((1, 3, 5, 5)))


# ----------------------------------------------------------------------------- torch, when installed


@settings(max_examples=60, deadline=None)
@given(layer_cases())
def test_matches_torch_when_installed(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    X, w, b, options, rng = case
    if options["flip"]:
        w_t = w[:, :, ::-1, ::-1].copy()
    else:
        w_t = w
    pads = _pads(options["padding"], [d * (f - 1) + 1 for d, f in zip(options["dilation"], w.shape[2:])])
    tX = torch.tensor(np.pad(X, ((0, 0), (0, 0)) + pads), requires_grad=True)
    tw = torch.tensor(w_t, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    tA = F.conv2d(tX, tw, tb, options["stride"], 0, options["dilation"], options["groups"])
    A = conv_forward(X, w, b, **options)
    close(A, tA.detach().numpy())
    dA = rng.standard_normal(A.shape)
    tA.backward(torch.tensor(dA))
    grads = conv_backward(X, w, dA, b, **options)
    (t, bt), (l, r) = pads
    close(grads["X"], tX.grad.numpy()[:, :, t : tX.shape[2] - bt, l : tX.shape[3] - r])
    close(grads["w"], tw.grad.numpy()[:, :, ::-1, ::-1] if options["flip"] else tw.grad.numpy())
    if b is not None:
        close(grads["b"], tb.grad.numpy())
