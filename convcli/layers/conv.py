"""The Conv layer: 2-D cross-correlation, forward and backward (numpy only).

The names and call forms are the lab's (``dot_forward(x, w)``,
``conv_backward(X, w, dA)``), so the lab's own cells run against convcli
unchanged.  Unlike the lab, every backward pass scales by its upstream
gradient, and a kernel too large for the image is an error rather than an
empty array.

"Convolution" here is what deep learning means by it: 2-D cross-correlation,
``A[y, x] = sum_ij Xp[y*sh + i, x*sw + j] * w[i, j]`` over the padded image
``Xp`` -- the same as ``scipy.signal.correlate2d`` and torch's ``conv2d``.
``flip=True`` rotates the kernel by 180 degrees first, which is true
convolution (``scipy.signal.convolve2d``).
"""

from __future__ import annotations

import sys

import numpy as np

from convcli.errors import ShapeError
from convcli.layers import _channels, _dispatch, _fastconv, _rowgrad
from convcli.layers._geometry import (
    BORDERS,  # noqa: F401 (tests read conv.BORDERS)
    Padding,
    _as_float,
    _bias,
    _border_mode,
    _channels_form,
    _flipped,
    _geometry,
    _output_hw,
    _pad,
    _pair,
    _prepare_channels,
    _unpad,
    _zero_pads,
)

# ----------------------------------------------------------------------------- conv


def conv_forward(
    X,
    w,
    b=None,
    *,
    padding: Padding = "valid",
    stride=1,
    dilation=1,
    groups: int = 1,
    flip: bool = False,
    border: str = "zero",
):
    """The Conv layer: 2-D cross-correlation of images with kernels, summed over channels, plus a bias.

    Parameters
    ----------
    X : array_like
        ``(H, W)`` or a batch ``(N, H, W)`` of one-channel images; or
        ``(N, C, H, W)`` (or one ``(C, H, W)``) with ``C`` channels, which
        needs a 4-D ``w``.  Any real dtype; the arithmetic is float64, except
        one-channel forms where both ``X`` and ``w`` are float32 arrays: then
        it is float32 and so is ``A`` (about 7 significant digits, up to twice
        as fast, half the memory).
    w : array_like
        ``(Fh, Fw)`` or a bank ``(K, Fh, Fw)`` for one-channel images, or
        ``(K, C // groups, Fh, Fw)``.  Any size, even and non-square too.
    b : array_like, optional
        One bias per kernel, shape ``(K,)``; a scalar for a single kernel.
    padding : "valid", "same", "full", int or (ph, pw)
        ``valid`` adds nothing, ``full`` adds ``d*(F-1)`` on each side,
        ``same`` adds ``d*(F-1)`` in total, ``(d*(F-1)) // 2`` top/left and
        the rest bottom/right (as ``scipy.signal.correlate2d(mode="same")``
        and torch), and needs stride 1.
    stride : int or (sh, sw), each >= 1
    dilation : int or (dh, dw), each >= 1
        Spacing between kernel taps (torch's ``dilation``).
    groups : int >= 1
        Input channels ``C`` and kernels ``K`` are split into ``groups``
        equal groups; kernel group ``g`` sees only input group ``g``
        (``groups=C`` is a depthwise convolution).  Both must divide.
    flip : bool
        Rotate the kernel by 180 degrees first (true convolution).
    border : {"zero", "reflect", "symmetric", "edge", "wrap"}
        How the padding is filled (the :func:`numpy.pad` modes; ``zero`` is 0).

    Returns
    -------
    A : ndarray of float64 (float32 for one-channel float32 ``X`` and ``w``)
        ``(N?, K?, H', W')`` for one-channel images (``N`` only for a batch,
        ``K`` only for a bank); ``(N, K, H', W')`` for ``(N, C, H, W)`` and
        ``(K, H', W')`` for one ``(C, H, W)``, where
        ``H' = (H + pad_top + pad_bottom - dh*(Fh-1) - 1) // sh + 1`` (likewise ``W'``).
        On the 4-D form these are the numbers of
        ``torch.nn.functional.conv2d(X, w, b, stride, padding, dilation, groups)``.

    Raises
    ------
    ShapeError
        When the (dilated) kernel is larger than the padded image, an array
        has the wrong number of dimensions, ``w.shape[1]`` is not
        ``C // groups`` or ``b`` is not ``(K,)``.
    ParameterError
        For a bad ``padding``, ``stride``, ``dilation``, ``groups`` or ``border``.

    Notes
    -----
    One-channel forms without dilation run on the path that
    :func:`convcli.layers._dispatch.plan` picks by least measured cost.
    Stride 1 with up to 3 full-rank small kernels adds the taps in the plain
    tap loop's order (and ``scipy.ndimage.correlate``'s) in cache-sized
    blocks or bands, each as one fused multiply-add (BLAS ``axpy``), so
    rounded once where the loop rounds twice: the same numbers to rounding,
    and bit for bit where numpy's BLAS is not an OpenBLAS.  The other paths
    also agree with the loop to rounding
    (a few ``eps * sum|X * w|``), not bitwise: kernels of rank 1 or 2 (box,
    Gaussian, Sobel, ``edge-h``; checked by SVD) run as column and row passes,
    exact again on integer images with integer kernels; large kernels (about
    11x11 and up) go through the FFT in tiles, to about ``1e-13 * max|X| *
    sum|w|`` (exact zeros become tiny values); 4 or more kernels are one BLAS
    product per image; strides other than 1 with few kernels use the tap loop.
    Non-finite pixels never take the FFT path.
    Channels, groups and dilation run in :mod:`convcli.layers._channels`:
    the windows of all channels times the kernels in one BLAS product per
    image of a bounded chunk.

    Examples
    --------
    >>> conv_forward([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
    array([[-4., -4.],
           [-4., -4.]])
    >>> conv_forward(np.ones((1, 3, 4, 4)), np.ones((2, 3, 3, 3)), [0.5, -1.0]).shape
    (1, 2, 2, 2)
    """
    if _channels_form(X, w, dilation, groups):
        return _forward_channels(X, w, b, padding, stride, dilation, groups, flip, border)
    X3, w3, squeeze = _prepare(X, w, keep_dtype=True)
    bias = _bias(b, w3.shape[0])
    pads, strides = _geometry(X3.shape[1:], w3.shape[1:], padding, stride)
    A = _forward(X3, _flipped(w3, flip), pads, strides, border)
    if bias is not None:
        A += bias.reshape(-1, 1, 1)
    return _squeeze(A, squeeze)


def _forward_channels(X, w, b, padding, stride, dilation, groups, flip, border):
    """:func:`conv_forward` on the channels path (:mod:`convcli.layers._channels`)."""
    X4, w4, squeeze = _prepare_channels(X, w, groups)
    bias = _bias(b, w4.shape[0])
    pads, strides = _geometry(X4.shape[2:], w4.shape[2:], padding, stride, dilation)
    X4, pads = _zero_pads(X4, pads, border)
    dilations = _pair(dilation, "dilation", minimum=1)
    A = _channels.correlate(X4, _flipped(w4, flip), bias, pads, strides, dilations, groups)  # bias included
    return _squeeze(A, squeeze)


def conv_forward_rows(
    X, w, start: int, stop: int, *, padding: Padding = "valid", stride=1, flip: bool = False, border: str = "zero"
):
    """Output rows ``start:stop`` of :func:`conv_forward`, computing only those.

    The same numbers as ``conv_forward(X, w, ...)[..., start:stop, :]``, from
    only the input rows the band needs: a large image can be processed in
    strips, in memory proportional to a strip.  ``start`` and ``stop`` follow
    Python's slice rules.

    Returns
    -------
    ndarray of float64, shape ``(N?, K?, rows, W')``

    Examples
    --------
    >>> X = np.arange(30.0).reshape(6, 5)
    >>> np.array_equal(conv_forward_rows(X, np.ones((3, 3)), 1, 3, padding="same"),
    ...                conv_forward(X, np.ones((3, 3)), padding="same")[1:3])
    True
    """
    X3, w3, squeeze = _prepare(X, w, keep_dtype=True)
    pads, strides = _geometry(X3.shape[1:], w3.shape[1:], padding, stride)
    (top, bottom), cols = pads
    fh, sh = w3.shape[1], strides[0]
    out_hw = _output_hw((X3.shape[1] + top + bottom, X3.shape[2] + sum(cols)), w3.shape[1:], strides)
    start, stop, _ = slice(*_pair((start, stop), "start/stop", minimum=-sys.maxsize)).indices(out_hw[0])
    if stop <= start:
        return _squeeze(np.empty((X3.shape[0], w3.shape[0], 0, out_hw[1])), squeeze)
    band, band_rows = _fastconv.band(X3, (top, bottom), start * sh, (stop - 1) * sh + fh, _border_mode(border))
    A = _forward(band, w3[:, ::-1, ::-1] if flip else w3, (band_rows, cols), strides, border)
    return _squeeze(A, squeeze)


def _forward(X3, w3, pads, strides, border):
    """The path of :func:`convcli.layers._dispatch.plan`; every path gives the same numbers (to rounding)."""
    dtype = _compute_dtype(X3, w3)
    if _border_mode(border) != "constant":  # the fast paths pad with zeros themselves
        X3, pads = _pad(X3, pads, border), ((0, 0), (0, 0))
    A = _dispatch.forward(X3, w3, pads, strides, dtype)
    return A if A is not None else _correlate(_pad(X3, pads, "zero"), w3, strides, dtype)


def _compute_dtype(X3, w3) -> np.dtype:
    """float32 when both the images and the kernels are float32, else float64."""
    return np.dtype(np.float32 if X3.dtype == np.float32 and w3.dtype == np.float32 else np.float64)


def conv_backward(
    X,
    w,
    dA=None,
    b=None,
    *,
    padding: Padding = "valid",
    stride=1,
    dilation=1,
    groups: int = 1,
    flip: bool = False,
    border: str = "zero",
):
    """Backward pass of :func:`conv_forward`.

    Each output element is a Dot layer over one window of the padded image
    (all channels of its group) plus a bias,
    ``A[n, k, y, x] = dot(Xp[n, group(k), window(y, x)], w[k]) + b[k]``, so the
    chain rule sums the Dot layer's gradients over every window where a value
    was used:

    - ``dw[k] = sum_{n, y, x} dA[n, k, y, x] * Xp[n, group(k), window(y, x)]``
    - ``dXp[n, group(k), window(y, x)] += sum_k dA[n, k, y, x] * w[k]``
    - ``db[k] = sum_{n, y, x} dA[n, k, y, x]``

    and ``dX`` is ``dXp`` carried back through the padding (cropped for zero
    padding; folded back onto the pixels they copy for the other borders).

    Parameters
    ----------
    X, w, b, padding, stride, dilation, groups, flip, border
        As for :func:`conv_forward`.
    dA : array_like, the output's shape, optional
        The upstream gradient ``dL/dA``.  All ones when omitted (the lab's default).

    Returns
    -------
    dict
        ``{'X': dX, 'w': dw}`` with X's and w's shapes, plus ``'b': db`` in
        b's shape when a bias was given.  For a batch, ``dw`` and ``db`` sum
        over the batch.
    """
    if _channels_form(X, w, dilation, groups):
        return _backward_channels(X, w, dA, b, padding, stride, dilation, groups, flip, border)
    X3, w3, squeeze = _prepare(X, w)
    bias = _bias(b, w3.shape[0])
    pads, strides = _geometry(X3.shape[1:], w3.shape[1:], padding, stride)
    padded_hw = (X3.shape[1] + sum(pads[0]), X3.shape[2] + sum(pads[1]))
    dA4 = _upstream(dA, (X3.shape[0], w3.shape[0]) + _output_hw(padded_hw, w3.shape[1:], strides), squeeze)
    if _fastconv.choose_backward(w3.shape[0], strides) == "taps":
        dX3, dw_eff = _backward_taps(X3, _flipped(w3, flip), dA4, pads, border)
    else:
        dX3, dw_eff = _backward_general(X3, _flipped(w3, flip), dA4, pads, strides, border)
    dw3 = _flipped(dw_eff, flip)
    grads = {"X": dX3[0] if squeeze[0] else dX3, "w": np.ascontiguousarray(dw3[0] if squeeze[1] else dw3)}
    if bias is not None:
        grads["b"] = dA4.sum(axis=(0, 2, 3)).reshape(bias.shape)
    return grads


def _backward_channels(X, w, dA, b, padding, stride, dilation, groups, flip, border):
    """:func:`conv_backward` on the channels path; other borders are folded back by :func:`_unpad`.

    Stride 1 with more kernels than channels (:func:`convcli.layers._rowgrad.suits`)
    runs in :mod:`convcli.layers._rowgrad`, the rest in :func:`convcli.layers._channels.backward`.
    """
    X4, w4, squeeze = _prepare_channels(X, w, groups)
    bias = _bias(b, w4.shape[0])
    dilations = _pair(dilation, "dilation", minimum=1)
    pads, strides = _geometry(X4.shape[2:], w4.shape[2:], padding, stride, dilation)
    Xz, zero_pads = _zero_pads(X4, pads, border)
    padded_hw = (Xz.shape[2] + sum(zero_pads[0]), Xz.shape[3] + sum(zero_pads[1]))
    out_hw = _channels.output_hw(padded_hw, w4.shape[2:], strides, dilations)
    dA4 = _upstream(dA, (X4.shape[0], w4.shape[0]) + out_hw, squeeze)
    path = _rowgrad if _rowgrad.suits(X4.shape[1], w4.shape, strides) else _channels
    dXz, dw_eff, db = path.backward(Xz, _flipped(w4, flip), dA4, zero_pads, strides, dilations, groups, bias is not None)
    dX = dXz if Xz is X4 else _unpad(dXz, X4.shape, pads, border)
    grads = {"X": dX.reshape(np.shape(X)), "w": np.ascontiguousarray(_flipped(dw_eff, flip)).reshape(np.shape(w))}
    if bias is not None:
        grads["b"] = db.reshape(bias.shape)
    return grads


def _backward_general(X3, w, dA4, pads, strides, border):
    """``(dX, dw)`` by the chain rule, one kernel tap at a time (the reference path)."""
    Xp = _pad(X3, pads, border)
    out_shape = dA4.shape[2:]
    dXp = np.zeros_like(Xp)
    dw = np.empty_like(w)
    for i, j, window in _windows(Xp, w.shape[1:], out_shape, strides):
        # tap (i, j) of every kernel met every pixel of this shifted window
        dw[:, i, j] = np.einsum("nkyx,nyx->k", dA4, window, optimize=True)
        view = dXp[:, i : i + out_shape[0] * strides[0] : strides[0], j : j + out_shape[1] * strides[1] : strides[1]]
        view += np.einsum("nkyx,k->nyx", dA4, w[:, i, j], optimize=True)
    return _unpad(dXp, X3.shape, pads, border), dw


def _backward_taps(X3, w, dA4, pads, border):
    """``(dX, dw)`` for stride 1 in cache-sized blocks (see :mod:`convcli.layers._fastconv`)."""
    if _border_mode(border) == "constant":
        return _fastconv.correlate_transpose(dA4, w, pads), _fastconv.weight_gradient(X3, dA4, pads, w.shape[1:])
    Xp, no_pads = _pad(X3, pads, border), ((0, 0), (0, 0))
    dXp = _fastconv.correlate_transpose(dA4, w, no_pads)
    return _unpad(dXp, X3.shape, pads, border), _fastconv.weight_gradient(Xp, dA4, no_pads, w.shape[1:])


# ----------------------------------------------------------------------------- workers


def _correlate(Xp: np.ndarray, w: np.ndarray, strides, dtype=np.float64) -> np.ndarray:
    """Cross-correlate padded images ``(N, Hp, Wp)`` with kernels ``(K, Fh, Fw)``.

    Returns ``(N, K, H', W')`` of ``dtype``.  Loops over kernel taps only: each
    tap adds a shifted, strided view of the whole batch times that tap's weights.
    """
    n, k = Xp.shape[0], w.shape[0]
    out_hw = _output_hw(Xp.shape[1:], w.shape[1:], strides)
    A = np.zeros((n, k) + out_hw, dtype)
    for i, j, window in _windows(Xp, w.shape[1:], out_hw, strides):
        A += window[:, None, :, :] * w[None, :, i, j, None, None]
    return A


def _windows(Xp: np.ndarray, kernel_hw, out_hw, strides):
    """Yield ``(i, j, view)`` for every kernel tap: the pixels tap (i, j) meets, shape ``(N, H', W')``."""
    (sh, sw), (oh, ow) = strides, out_hw
    for i in range(kernel_hw[0]):
        for j in range(kernel_hw[1]):
            yield i, j, Xp[:, i : i + oh * sh : sh, j : j + ow * sw : sw]


# ----------------------------------------------------------------------------- validation


def _prepare(X, w, *, keep_dtype: bool = False):
    """``(N, H, W)`` images and float64 ``(K, Fh, Fw)`` kernels, and which axes to squeeze out.

    Images become float64, except real arrays with ``keep_dtype`` (the forward
    paths convert block by block, so a uint8 picture needs no float64 copy);
    with ``keep_dtype``, float32 kernels stay float32 for float32 images.
    """
    real = keep_dtype and isinstance(X, np.ndarray) and X.dtype.kind in "biuf"
    X = X if real else _as_float(X, "X")
    single = real and X.dtype == np.float32 and isinstance(w, np.ndarray) and w.dtype == np.float32
    w = w if single else _as_float(w, "w")
    if X.ndim not in (2, 3):
        raise ShapeError(f"X must have shape (H, W), (N, H, W) or (N, C, H, W); got shape {X.shape}")
    if w.ndim not in (2, 3):
        raise ShapeError(f"w must have shape (Fh, Fw), (K, Fh, Fw) or (K, C // groups, Fh, Fw); got shape {w.shape}")
    if 0 in X.shape or 0 in w.shape:
        raise ShapeError(f"X and w must not be empty; got X {X.shape} and w {w.shape}")
    squeeze = (X.ndim == 2, w.ndim == 2)
    return (X[None] if squeeze[0] else X), (w[None] if squeeze[1] else w), squeeze


def _squeeze(A: np.ndarray, squeeze) -> np.ndarray:
    if squeeze[1]:
        A = A[:, 0]
    if squeeze[0]:
        A = A[0]
    return A


def _upstream(dA, full_shape, squeeze) -> np.ndarray:
    """The upstream gradient as ``(N, K, H', W')``; all ones when ``dA`` is None."""
    if dA is None:
        return np.ones(full_shape)
    dA = _as_float(dA, "dA")
    expected = tuple(d for d, drop in zip(full_shape, (squeeze[0], squeeze[1], False, False)) if not drop)
    if dA.shape != expected:
        raise ShapeError(f"dA must have the output's shape {expected}; got shape {dA.shape}")
    return dA.reshape(full_shape)
