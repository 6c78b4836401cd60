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

from convcli.errors import ParameterError, ShapeError
from convcli.layers import _channels, _fastconv
from convcli.layers._geometry import (
    BORDERS,
    Padding,
    _as_float,
    _border_mode,
    _geometry,
    _output_hw,
    _pad,
    _pair,
    _unpad,
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
        needs a 4-D ``w``.  Any real dtype; the arithmetic is float64.
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
    A : ndarray of float64
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
    One-channel forms without dilation run on the paths that
    :func:`convcli.layers._fastconv.choose` picks: stride 1 with up to 3
    kernels runs in cache-sized blocks, bit for bit the numbers of the plain
    tap loop (and of ``scipy.ndimage.correlate``); 4 or more kernels are one
    BLAS product per image (equal to rounding); the rest is the tap loop.
    Channels, groups and dilation run in :mod:`convcli.layers._channels`:
    the windows of all channels times the kernels in one BLAS product per
    bounded chunk.

    Examples
    --------
    >>> conv_forward([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
    array([[-4., -4.],
           [-4., -4.]])
    >>> conv_forward(np.ones((1, 3, 4, 4)), np.ones((2, 3, 3, 3)), [0.5, -1.0]).shape
    (1, 2, 2, 2)
    """
    if _channels_form(X, w, dilation, groups):
        X4, w4, squeeze = _prepare_channels(X, w, groups)
        bias = _bias(b, w4.shape[0])
        pads, strides = _geometry(X4.shape[2:], w4.shape[2:], padding, stride, dilation)
        Xp = _pad(X4, pads, border)
        A = _channels.forward(Xp, _flipped(w4, flip), strides, _pair(dilation, "dilation", minimum=1), groups)
    else:
        X3, w3, squeeze = _prepare(X, w, keep_dtype=True)
        bias = _bias(b, w3.shape[0])
        pads, strides = _geometry(X3.shape[1:], w3.shape[1:], padding, stride)
        A = _forward(X3, _flipped(w3, flip), pads, strides, border)
    if bias is not None:
        A += bias.reshape(-1, 1, 1)
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
    """Pick a path by :func:`convcli.layers._fastconv.choose`; every path gives the same numbers."""
    path = _fastconv.choose(w3.shape[0], strides)
    if path == "general":
        return _correlate(_pad(X3, pads, border), w3, strides)
    if _border_mode(border) != "constant":  # the fast paths pad with zeros themselves
        X3, pads = _pad(X3, pads, border), ((0, 0), (0, 0))
    if path == "taps":
        return _fastconv.correlate_taps(X3, w3, pads)
    return _fastconv.correlate_matmul(X3, w3, pads, strides)


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
        X4, w4, squeeze = _prepare_channels(X, w, groups)
        bias = _bias(b, w4.shape[0])
        dilations = _pair(dilation, "dilation", minimum=1)
        pads, strides = _geometry(X4.shape[2:], w4.shape[2:], padding, stride, dilation)
        Xp = _pad(X4, pads, border)
        out_hw = _channels.output_hw(Xp.shape[2:], w4.shape[2:], strides, dilations)
        dA4 = _upstream(dA, (X4.shape[0], w4.shape[0]) + out_hw, squeeze)
        dXp, dw_eff = _channels.backward(Xp, _flipped(w4, flip), dA4, strides, dilations, groups)
        dX = _unpad(dXp, X4.shape, pads, border).reshape(np.shape(X))
        grads = {"X": dX, "w": np.ascontiguousarray(_flipped(dw_eff, flip)).reshape(np.shape(w))}
    else:
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


def _correlate(Xp: np.ndarray, w: np.ndarray, strides) -> np.ndarray:
    """Cross-correlate padded images ``(N, Hp, Wp)`` with kernels ``(K, Fh, Fw)``.

    Returns ``(N, K, H', W')``.  Loops over kernel taps only: each tap adds a
    shifted, strided view of the whole batch times that tap's weights.
    """
    n, k = Xp.shape[0], w.shape[0]
    out_hw = _output_hw(Xp.shape[1:], w.shape[1:], strides)
    A = np.zeros((n, k) + out_hw)
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
    paths convert block by block, so a uint8 picture needs no float64 copy).
    """
    real = keep_dtype and isinstance(X, np.ndarray) and X.dtype.kind in "biuf"
    X = X if real else _as_float(X, "X")
    w = _as_float(w, "w")
    if X.ndim not in (2, 3):
        raise ShapeError(f"X must have shape (H, W), (N, H, W) or (N, C, H, W); got shape {X.shape}")
    if w.ndim not in (2, 3):
        raise ShapeError(f"w must have shape (Fh, Fw), (K, Fh, Fw) or (K, C // groups, Fh, Fw); got shape {w.shape}")
    if 0 in X.shape or 0 in w.shape:
        raise ShapeError(f"X and w must not be empty; got X {X.shape} and w {w.shape}")
    squeeze = (X.ndim == 2, w.ndim == 2)
    return (X[None] if squeeze[0] else X), (w[None] if squeeze[1] else w), squeeze


def _channels_form(X, w, dilation, groups) -> bool:
    """Whether the channels path computes this call: a 4-D form, dilation or groups."""
    return np.ndim(w) == 4 or np.ndim(X) == 4 or _pair(dilation, "dilation", minimum=1) != (1, 1) or groups != 1


def _prepare_channels(X, w, groups):
    """float64 ``(N, C, H, W)`` images and ``(K, C/groups, Fh, Fw)`` kernels, and which axes to squeeze out.

    One-channel forms (2-D/3-D ``X`` and ``w``, here because of ``dilation``)
    become ``C = 1``; one ``(C, H, W)`` image with a 4-D ``w`` becomes ``N = 1``.
    """
    X, w = _as_float(X, "X"), _as_float(w, "w")
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ParameterError(f"groups must be a whole number >= 1; got {groups!r}")
    if X.ndim in (2, 3) and w.ndim in (2, 3):
        squeeze = (X.ndim == 2, w.ndim == 2)
        X4, w4 = X.reshape((-1, 1) + X.shape[-2:]), w.reshape((-1, 1) + w.shape[-2:])
    elif w.ndim == 4 and X.ndim in (3, 4):
        squeeze = (X.ndim == 3, False)
        X4, w4 = (X[None] if X.ndim == 3 else X), w
    elif w.ndim == 4:
        raise ShapeError(
            f"with w of shape (K, C // groups, Fh, Fw), X must have shape (N, C, H, W) or (C, H, W); got shape {X.shape}"
        )
    elif X.ndim == 4:
        raise ShapeError(
            f"X of shape {X.shape} is (N, C, H, W) and needs w of shape (K, C // groups, Fh, Fw); got w shape {w.shape}"
        )
    else:
        raise ShapeError(f"X must have shape (H, W), (N, H, W) or (N, C, H, W); got shape {X.shape} (w {w.shape})")
    if 0 in X4.shape or 0 in w4.shape:
        raise ShapeError(f"X and w must not be empty; got X {X.shape} and w {w.shape}")
    c, (k, cg) = X4.shape[1], w4.shape[:2]
    if c % groups:
        raise ParameterError(f"groups must divide the input channels C = {c}; got groups={groups}")
    if k % groups:
        raise ParameterError(f"groups must divide the number of kernels K = {k} (w.shape[0]); got groups={groups}")
    if cg * groups != c:
        raise ShapeError(
            f"w.shape[1] must be C // groups = {c // groups} (X has C = {c} channels, groups={groups});"
            f" got w shape {w.shape}"
        )
    return X4, w4, squeeze


def _bias(b, n_kernels: int) -> "np.ndarray | None":
    """The bias as a float64 array of shape ``(K,)`` (or ``()`` for one kernel), or None."""
    if b is None:
        return None
    b = _as_float(b, "b")
    if b.shape == (n_kernels,) or (b.ndim == 0 and n_kernels == 1):
        return b
    scalar = " or a scalar" if n_kernels == 1 else ""
    raise ShapeError(f"b must have shape ({n_kernels},), one number per kernel{scalar}; got shape {b.shape}")


def _flipped(w: np.ndarray, flip: bool) -> np.ndarray:
    """The kernels rotated by 180 degrees on their last two axes when ``flip``."""
    return w[..., ::-1, ::-1] if flip else w


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
