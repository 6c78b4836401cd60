"""The Pool layer: max and average pooling, forward and backward (numpy only).

Windows of ``size`` pixels every ``stride`` pixels, on the last two axes of
``(H, W)``, ``(N, H, W)`` or ``(N, C, H, W)``; each image and channel is
pooled on its own.  The numbers are those of torch's ``max_pool2d`` and
``avg_pool2d(count_include_pad=False)``: padding is implicit, ``-inf`` for
max and left out of the count for avg, and a max gradient goes to the first
maximum of its window (in row-major order) on ties.  Overlapping windows
(``stride < size``) add up their gradients.  Loops run over the window's
taps only; each tap is one strided view of the whole batch.
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ParameterError, ShapeError
from convcli.layers._geometry import _as_float, _pair

MODES = ("max", "avg")


def pool_forward(X, size=2, *, stride=None, mode: str = "max", padding=0) -> np.ndarray:
    """The Pool layer: the maximum or the mean of each window.

    Parameters
    ----------
    X : array_like, shape ``(H, W)``, ``(N, H, W)`` or ``(N, C, H, W)``
    size : int or (ph, pw), each >= 1
        The window.
    stride : int or (sh, sw), each >= 1, optional
        The step between windows; ``None`` means ``size`` (windows side by side).
    mode : {"max", "avg"}
    padding : int or (ph, pw), each at most half the window
        Implicit padding on each side: ``-inf`` for max; for avg the padded
        cells are not counted (torch's ``count_include_pad=False``).

    Returns
    -------
    ndarray of float64, shape ``(..., H', W')``
        ``H' = (H + 2*ph - size_h) // sh + 1`` (likewise ``W'``).

    Raises
    ------
    ShapeError
        When the window is larger than the padded input, or ``X`` has the
        wrong number of dimensions.
    ParameterError
        For a bad ``size``, ``stride``, ``mode`` or ``padding``.

    Examples
    --------
    >>> pool_forward([[1, 2, 0, 1], [3, 4, 1, 5]], 2)
    array([[4., 5.]])
    >>> pool_forward([[1, 2, 0, 1], [3, 4, 1, 5]], 2, mode="avg")
    array([[2.5 , 1.75]])
    """
    X3, geometry = _prepare(X, size, stride, mode, padding)
    if mode == "max":
        A = _max_forward(X3, *geometry)[0]
    else:
        A = _sum_forward(X3, *geometry) / _counts(X3.shape[1:], *geometry)
    return A.reshape(np.shape(X)[:-2] + A.shape[1:])


def pool_backward(X, dA=None, size=2, *, stride=None, mode: str = "max", padding=0) -> dict:
    """Backward pass of :func:`pool_forward`.

    - max: each window's ``dA`` goes to its maximum (the first one on ties);
    - avg: each window's ``dA`` is spread evenly over its ``count`` real pixels.

    Parameters
    ----------
    X, size, stride, mode, padding
        As for :func:`pool_forward`.
    dA : array_like, the output's shape, optional
        The upstream gradient; all ones when omitted.

    Returns
    -------
    dict
        ``{'X': dX}`` in X's shape.
    """
    X3, geometry = _prepare(X, size, stride, mode, padding)
    (fh, fw), (sh, sw), (ph, pw), (oh, ow) = geometry
    dA3 = _upstream(dA, np.shape(X)[:-2] + (oh, ow), X3.shape[0])
    dXp = np.zeros((X3.shape[0], X3.shape[1] + 2 * ph, X3.shape[2] + 2 * pw))
    if mode == "max":
        best, Xp = _max_forward(X3, *geometry)
        taken = np.zeros(best.shape, dtype=bool)
        nan = np.isnan(best)
        any_nan = bool(nan.any())
        real = None
        if ph or pw:  # a window of -inf pixels sends its gradient to its first real pixel, never to padding
            real = np.zeros(dXp.shape[1:], dtype=bool)
            real[ph : ph + X3.shape[1], pw : pw + X3.shape[2]] = True
        for (i, j), (view, out) in zip(np.ndindex(fh, fw), _taps(Xp, dXp, geometry)):
            chosen = view == best
            if any_nan:  # a NaN window sends its gradient to its first NaN
                chosen |= nan & np.isnan(view)
            if real is not None:
                chosen &= real[i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
            chosen &= ~taken
            taken |= chosen
            out += np.where(chosen, dA3, 0.0)
    else:
        share = dA3 / _counts(X3.shape[1:], *geometry)
        for _, out in _taps(None, dXp, geometry):
            out += share
    dX = dXp[:, ph : ph + X3.shape[1], pw : pw + X3.shape[2]]
    return {"X": np.ascontiguousarray(dX).reshape(np.shape(X))}


# ----------------------------------------------------------------------------- workers


def _taps(Xp, dXp, geometry):
    """Yield, for each tap ``(i, j)`` of the window, the views ``(Xp[...], dXp[...])`` of shape ``(M, H', W')``."""
    (fh, fw), (sh, sw), _, (oh, ow) = geometry
    for i in range(fh):
        for j in range(fw):
            rows, cols = slice(i, i + (oh - 1) * sh + 1, sh), slice(j, j + (ow - 1) * sw + 1, sw)
            yield (None if Xp is None else Xp[:, rows, cols]), (None if dXp is None else dXp[:, rows, cols])


def _max_forward(X3, size, strides, pads, out_hw):
    """The window maxima ``(M, H', W')`` and the ``-inf``-padded images they came from."""
    ph, pw = pads
    Xp = X3
    if ph or pw:
        Xp = np.full((X3.shape[0], X3.shape[1] + 2 * ph, X3.shape[2] + 2 * pw), -np.inf)
        Xp[:, ph : ph + X3.shape[1], pw : pw + X3.shape[2]] = X3
    best = None
    for view, _ in _taps(Xp, None, (size, strides, pads, out_hw)):
        if best is None:
            best = view.copy()
        else:
            np.maximum(best, view, out=best)
    return best, Xp


def _sum_forward(X3, size, strides, pads, out_hw):
    """The window sums ``(M, H', W')`` over zero-padded images."""
    ph, pw = pads
    Xp = np.pad(X3, ((0, 0), (ph, ph), (pw, pw))) if (ph or pw) else X3
    total = np.zeros((X3.shape[0],) + tuple(out_hw))
    for view, _ in _taps(Xp, None, (size, strides, pads, out_hw)):
        total += view
    return total


def _counts(image_hw, size, strides, pads, out_hw) -> np.ndarray:
    """How many real (unpadded) pixels each window covers: ``(H', W')``."""
    per_axis = []
    for n, f, s, p, o in zip(image_hw, size, strides, pads, out_hw):
        start = np.arange(o) * s - p
        per_axis.append(np.minimum(start + f, n) - np.maximum(start, 0))
    return np.outer(per_axis[0], per_axis[1]).astype(np.float64)


# ----------------------------------------------------------------------------- validation


def _prepare(X, size, stride, mode, padding):
    """``X`` as float64 ``(M, H, W)`` and the geometry ``(size, strides, pads, out_hw)``."""
    if mode not in MODES:
        raise ParameterError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    X = _as_float(X, "X")
    if X.ndim not in (2, 3, 4):
        raise ShapeError(f"X must have shape (H, W), (N, H, W) or (N, C, H, W); got shape {X.shape}")
    if 0 in X.shape:
        raise ShapeError(f"X must not be empty; got shape {X.shape}")
    window = _pair(size, "size", minimum=1)
    strides = window if stride is None else _pair(stride, "stride", minimum=1)
    pads = _pair(padding, "padding", minimum=0)
    if any(2 * p > f for p, f in zip(pads, window)):
        raise ParameterError(f"padding must be at most half the window size {window}; got padding {padding!r}")
    image_hw = X.shape[-2:]
    padded = tuple(n + 2 * p for n, p in zip(image_hw, pads))
    if any(f > n for f, n in zip(window, padded)):
        raise ShapeError(
            f"pool window of size {window} is larger than the input of shape {image_hw}"
            f" padded to {padded} (padding {padding!r}); use a smaller size or more padding"
        )
    out_hw = tuple((n - f) // s + 1 for n, f, s in zip(padded, window, strides))
    return X.reshape((-1,) + image_hw), (window, strides, pads, out_hw)


def _upstream(dA, shape, images: int) -> np.ndarray:
    """The upstream gradient as ``(M, H', W')``; all ones when ``dA`` is None."""
    if dA is None:
        return np.ones((images,) + tuple(shape[-2:]))
    dA = _as_float(dA, "dA")
    if dA.shape != tuple(shape):
        raise ShapeError(f"dA must have the output's shape {tuple(shape)}; got shape {dA.shape}")
    return dA.reshape((images,) + dA.shape[-2:])
