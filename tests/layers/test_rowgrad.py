"""The channels path's newer routes against a reference written for this test.

- the backward on shifted rows of ``dA`` (``_rowgrad``: stride 1, more kernels than channels);
- the forward's per-image window layout, where BLAS writes straight into the output.

The reference takes windows with ``sliding_window_view`` and does one
``einsum`` per quantity; ``dX`` is gathered tap by tap and carried back through
the padding with ``np.add.at`` -- nothing of convcli's.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from convcli.layers import _channels, _rowgrad, conv_backward, conv_forward
from test_channels import _pads as pad_widths  # the documented padding rules, written out for the tests


def reference(X, w, b, dA, pads, dilation, groups, border="zero", flip=False, stride=(1, 1)):
    """``(A, dX, dw, db)`` of the grouped, dilated, strided correlation with ``pads`` filled as ``border``.

    Also the reference of ``test_channels_buffers``.
    """
    N, C, H, W = X.shape
    K, cg, fh, fw = w.shape
    (dh, dw), (sh, sw) = dilation, stride
    k = w[:, :, ::-1, ::-1] if flip else w
    mode = "constant" if border == "zero" else border
    Xp = np.pad(X, ((0, 0), (0, 0)) + tuple(pads), mode=mode)
    span = (dh * (fh - 1) + 1, dw * (fw - 1) + 1)
    windows = sliding_window_view(Xp, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]  # (N, C, H', W', Fh, Fw)
    oh, ow = windows.shape[2:4]
    windows = windows.reshape(N, groups, cg, oh, ow, fh, fw)
    kg = k.reshape(groups, K // groups, cg, fh, fw)
    A = np.einsum("ngcyxij,gkcij->ngkyx", windows, kg).reshape(N, K, oh, ow)
    if b is not None:
        A = A + b[None, :, None, None]
    if dA is None:
        return A
    dAg = dA.reshape(N, groups, K // groups, oh, ow)
    dk = np.einsum("ngcyxij,ngkyx->gkcij", windows, dAg).reshape(w.shape)
    dXp = np.zeros_like(Xp)
    for i in range(fh):
        for j in range(fw):
            tap = np.einsum("ngkyx,gkc->ngcyx", dAg, kg[..., i, j]).reshape(N, C, oh, ow)
            dXp[:, :, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw] += tap
    source = np.arange(H * W).reshape(H, W)
    index = np.pad(source, pads, mode=mode) if mode != "constant" else np.pad(source, pads, constant_values=-1)
    dX = np.zeros((N, C, H * W))
    kept = index >= 0
    np.add.at(dX, (slice(None), slice(None), index[kept]), dXp[:, :, kept])
    return A, dX.reshape(X.shape), (dk[:, :, ::-1, ::-1] if flip else dk), dA.sum(axis=(0, 2, 3))


def close(got, expected, rtol=1e-11):
    assert got.shape == expected.shape, (got.shape, expected.shape)
    scale = max(np.abs(expected).max(initial=0.0), 1e-300)
    assert np.abs(got - expected).max(initial=0.0) <= rtol * scale, np.abs(got - expected).max() / scale


@st.composite
def rowgrad_cases(draw, borders=("zero", "reflect", "edge", "wrap", "symmetric")):
    """Layers that ``_rowgrad.suits``: more kernels than channels, odd sizes, groups, dilation, every padding."""
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 2))
    kg = cg + draw(st.integers(1, 4))
    C, K = groups * cg, groups * kg
    fh, fw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    assume(_rowgrad.suits(C, (K, cg, fh, fw), (1, 1)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    span = (dilation[0] * (fh - 1) + 1, dilation[1] * (fw - 1) + 1)
    padding = draw(st.one_of(st.sampled_from(["valid", "same", "full"]), st.integers(0, 3),
                             st.tuples(st.integers(0, 3), st.integers(0, 3))))
    pads = pad_widths(padding, span)
    H, W = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    assume(H + sum(pads[0]) >= span[0] and W + sum(pads[1]) >= span[1])
    border = draw(st.sampled_from(borders))
    assume(border == "zero" or max(max(p) for p in pads) < min(H, W))  # reflect needs pads < size
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((draw(st.integers(1, 3)), C, H, W))
    w = rng.standard_normal((K, cg, fh, fw))
    b = rng.standard_normal(K) if draw(st.booleans()) else None
    options = dict(padding=padding, dilation=dilation, groups=groups, flip=draw(st.booleans()), border=border)
    return X, w, b, options, pads, rng


# ----------------------------------------------------------------------------- the shifted-rows backward


@settings(max_examples=120, deadline=None)
@given(rowgrad_cases())
def test_shifted_rows_backward_matches_the_reference(case):
    X, w, b, options, pads, rng = case
    A = conv_forward(X, w, b, **options)
    dA = rng.standard_normal(A.shape)
    grads = conv_backward(X, w, dA, b, **options)
    A_ref, dX_ref, dw_ref, db_ref = reference(X, w, b, dA, pads, options["dilation"], options["groups"],
                                              options["border"], options["flip"])
    close(A, A_ref)
    close(grads["X"], dX_ref)
    close(grads["w"], dw_ref)
    assert set(grads) == ({"X", "w", "b"} if b is not None else {"X", "w"})
    if b is not None:
        close(grads["b"], db_ref)


@pytest.mark.parametrize("budget, threads", [(1 << 19, 1), (60, 1), (60, 2), (400, 3), (1 << 19, 2)])
@pytest.mark.parametrize("groups, dilation, pads", [
    (1, (1, 1), ((0, 0), (0, 0))), (2, (2, 1), ((2, 1), (0, 3))), (1, (1, 3), ((1, 1), (2, 2)))])
def test_shifted_rows_in_row_bands_and_threads(monkeypatch, budget, threads, groups, dilation, pads):
    # small budgets cut one image into bands of rows whose gradients overlap; threads take whole images
    monkeypatch.setattr(_channels, "COLS_BUDGET", budget)
    monkeypatch.setattr(_channels, "THREADS", threads)
    monkeypatch.setattr(_channels, "PARALLEL_WORK", 0)
    rng = np.random.default_rng(budget + threads + groups)
    X = rng.standard_normal((3, 2 * groups, 13, 11))
    w = rng.standard_normal((7 * groups, 2, 5, 3))
    dh, dw = dilation
    oh = 13 + sum(pads[0]) - dh * 4
    ow = 11 + sum(pads[1]) - dw * 2
    dA = rng.standard_normal((3, 7 * groups, oh, ow))
    assert _rowgrad.suits(2 * groups, w.shape, (1, 1))
    Xp = np.pad(X, ((0, 0), (0, 0)) + pads)
    dX, dw_, db = _rowgrad.backward(X, w, dA, pads, (1, 1), dilation, groups, True)
    _, dX_ref, dw_ref, db_ref = reference(X, w, None, dA, pads, dilation, groups)
    close(dX, dX_ref)
    close(dw_, dw_ref)
    close(db, db_ref)
    # and the same numbers as the scatter, which the channels path used before
    dXz, dwz, dbz = _channels.backward(Xp, w, dA, ((0, 0), (0, 0)), (1, 1), dilation, groups, True)
    close(dX, dXz[:, :, pads[0][0] : pads[0][0] + 13, pads[1][0] : pads[1][0] + 11])
    close(dw_, dwz)


def test_buffers_full_of_nan_do_not_leak(monkeypatch):
    # kept buffers hold anything: the zero gaps between BLAS's rows and the padding rows must be written every time
    real = _channels._Scratch.__call__

    def poisoned(self, size, slot):
        buffer = real(self, size, slot)
        buffer.fill(np.nan)
        return buffer

    monkeypatch.setattr(_channels._Scratch, "__call__", poisoned)
    monkeypatch.setattr(_channels, "COLS_BUDGET", 200)
    rng = np.random.default_rng(11)
    X, w = rng.standard_normal((2, 3, 9, 10)), rng.standard_normal((8, 3, 3, 4))
    dA = rng.standard_normal((2, 8, 7, 7))
    grads = conv_backward(X, w, dA, np.zeros(8))
    _, dX_ref, dw_ref, db_ref = reference(X, w, None, dA, ((0, 0), (0, 0)), (1, 1), 1)
    close(grads["X"], dX_ref)
    close(grads["w"], dw_ref)
    close(grads["b"], db_ref)


@pytest.mark.parametrize("w_shape", [(7, 2, 4, 3), (7, 2, 5, 3)])
def test_db_from_the_spare_row_of_ones_or_summed_when_there_is_none(w_shape):
    # C/g*Fh = 8 rows fill BLAS's block of 8: no spare row, db is dA summed; 10 rows leave 6, one of them ones
    rng = np.random.default_rng(13)
    X, w = rng.standard_normal((3, 2, 9, 8)), rng.standard_normal(w_shape)
    dA = rng.standard_normal((3, 7, 10 - w_shape[2], 6))
    assert _rowgrad.suits(2, w.shape, (1, 1))
    dX, dw_, db = _rowgrad.backward(X, w, dA, ((0, 0), (0, 0)), (1, 1), (1, 1), 1, True)
    _, dX_ref, dw_ref, db_ref = reference(X, w, None, dA, ((0, 0), (0, 0)), (1, 1), 1)
    close(dX, dX_ref)
    close(dw_, dw_ref)
    close(db, db_ref)
    assert _rowgrad.backward(X, w, dA, ((0, 0), (0, 0)), (1, 1), (1, 1), 1, False)[2] is None


def test_one_tap_rows_and_columns():
    # Fh = 1 leaves no gaps between BLAS's rows; Fw = 1 shifts nothing
    rng = np.random.default_rng(12)
    for shape in ((6, 2, 1, 3), (6, 2, 3, 1), (6, 2, 1, 1)):
        X, w = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal(shape)
        if not _rowgrad.suits(2, w.shape, (1, 1)):
            continue
        A = conv_forward(X, w, padding=1)
        dA = rng.standard_normal(A.shape)
        grads = conv_backward(X, w, dA, padding=1)
        _, dX_ref, dw_ref, _ = reference(X, w, None, dA, ((1, 1), (1, 1)), (1, 1), 1)
        close(grads["X"], dX_ref)
        close(grads["w"], dw_ref)


def test_which_layers_take_the_shifted_rows():
    assert _rowgrad.suits(3, (16, 3, 5, 5), (1, 1))  # a first layer: RGB to 16 maps
    assert not _rowgrad.suits(3, (16, 3, 5, 5), (2, 2))  # strides stay on the scatter
    assert not _rowgrad.suits(64, (64, 64, 3, 3), (1, 1))  # K <= C: the transposed correlation
    assert not _rowgrad.suits(3, (64, 3, 3, 3), (1, 1))  # 64*3 + 3*3 copied > 2*27 scattered
    with pytest.raises(ValueError, match="stride 1"):
        _rowgrad.backward(np.ones((1, 1, 4, 4)), np.ones((2, 1, 2, 2)), np.ones((1, 2, 2, 2)), ((0, 0), (0, 0)),
                          (2, 2), (1, 1), 1, False)


# ----------------------------------------------------------------------------- the forward's layout


@settings(max_examples=60, deadline=None)
@given(rowgrad_cases(borders=("zero",)), st.sampled_from([(1 << 19, 1), (50, 2), (300, 3)]), st.integers(1, 3))
def test_forward_written_in_place_matches_the_reference(case, budget_threads, stride):
    # whole images per chunk, bands of rows of one image, threads; strides keep every stride-th output
    X, w, b, options, pads, _ = case
    stride = 1 if options["padding"] == "same" else stride
    budget, threads = budget_threads
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_channels, "COLS_BUDGET", budget)
        patch.setattr(_channels, "THREADS", threads)
        patch.setattr(_channels, "PARALLEL_WORK", 0)
        A = conv_forward(X, w, b, stride=stride, **options)
    expected = reference(X, w, b, None, pads, options["dilation"], options["groups"], flip=options["flip"])
    close(A, expected[:, :, ::stride, ::stride])


def test_a_band_of_rows_wholly_in_the_padding(monkeypatch):
    # a small budget cuts the output into bands of one row; with padding 3 around one pixel the last bands read
    # no image row at all (their band is all border)
    monkeypatch.setattr(_channels, "COLS_BUDGET", 10)
    X, w = np.full((1, 1, 1, 1), 2.0), np.arange(6.0).reshape(1, 1, 2, 3)
    A = conv_forward(X, w, padding=3)
    close(A, reference(X, w, None, None, ((3, 3), (3, 3)), (1, 1), 1))


@pytest.mark.parametrize("layout", ["transposed", "reversed rows", "every other column"])
def test_forward_reads_images_of_any_memory_layout(layout):
    # the whole-image windows are a strided view of X itself when X needs no padding
    rng = np.random.default_rng(14)
    base = rng.standard_normal((4, 3, 11, 18))
    X = {"transposed": np.ascontiguousarray(base.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0),
         "reversed rows": base[:, :, ::-1],
         "every other column": base[:, :, :, ::2]}[layout]
    assert not X.flags.c_contiguous
    w = rng.standard_normal((5, 3, 3, 2))
    expected = reference(np.ascontiguousarray(X), w, None, None, ((0, 0), (0, 0)), (1, 1), 1)
    close(conv_forward(X, w), expected)
    close(conv_forward(X, w, stride=2, dilation=(2, 1)), reference(
        np.ascontiguousarray(X), w, None, None, ((0, 0), (0, 0)), (2, 1), 1, stride=(2, 2)))
