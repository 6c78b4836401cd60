"""The Pool layer: max and average pooling, forward and backward (numpy only).

Windows of ``size`` pixels every ``stride`` pixels, on the last two axes of
``(H, W)``, ``(N, H, W)`` or ``(N, C, H, W)``; each image and channel is
pooled on its own.  The numbers are those of torch's ``max_pool2d`` and
``avg_pool2d(count_include_pad=False)``: padding is implicit, ``-inf`` for
max and left out of the count for avg, and a max gradient goes to the first
maximum of its window (in row-major order) on ties.  Overlapping windows
(``stride < size``) add up their gradients.  Loops run over the window's
taps only; each tap is one strided view of the whole batch.  Windows that
tile the images exactly (stride = size, no padding, nothing left over: the
usual 2x2 pooling of even sizes) take a shorter way for max, one window row
segment at a time (:func:`_tiled_max`).
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ParameterError, ShapeError
from convcli.layers import _threads
from convcli.layers._geometry import _as_float, _pair

MODES = ("max", "avg")
#: Inputs with at least this many pixels are pooled on :data:`convcli.layers._threads.THREADS` threads.
PARALLEL_PIXELS = 1 << 18


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
    A = np.empty((X3.shape[0],) + geometry[3])

    def work(parts):
        for m0, m1 in parts:
            if mode == "max" and _tiled(X3, geometry):
                _tiled_max(X3[m0:m1], geometry, out=A[m0:m1].reshape(-1, geometry[3][1]))
            elif mode == "max":
                A[m0:m1] = _max_forward(X3[m0:m1], *geometry)[0]
            else:
                A[m0:m1] = _sum_forward(X3[m0:m1], *geometry) / _counts(X3.shape[1:], *geometry)

    _threads.parallel(work, _parts(X3), _threads.THREADS)
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
    (ph, pw), (oh, ow) = geometry[2:]
    dA3 = _upstream(dA, np.shape(X)[:-2] + (oh, ow), X3.shape[0])
    dX = np.empty(X3.shape)

    def work(parts):
        for m0, m1 in parts:
            if mode == "max":
                dXp = _max_backward(X3[m0:m1], dA3[m0:m1], geometry, dX[m0:m1] if not (ph or pw) else None)
            else:
                dXp = _avg_backward(X3[m0:m1], dA3[m0:m1], geometry)
            if not np.shares_memory(dXp, dX):
                dX[m0:m1] = dXp[:, ph : ph + X3.shape[1], pw : pw + X3.shape[2]]

    _threads.parallel(work, _parts(X3), _threads.THREADS)
    return {"X": dX.reshape(np.shape(X))}


def _parts(X3: np.ndarray) -> "list[list[tuple[int, int]]]":
    """Units of work for :func:`_threads.parallel`: ranges of images, a few per thread; one for small inputs."""
    pieces = min(4 * _threads.THREADS, X3.shape[0]) if X3.size >= PARALLEL_PIXELS else 1
    cuts = [X3.shape[0] * t // pieces for t in range(pieces + 1)]
    return [[(a, b)] for a, b in zip(cuts, cuts[1:])]


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
    views = [view for view, _ in _taps(Xp, None, (size, strides, pads, out_hw))]
    best = views[0].copy() if len(views) == 1 else np.maximum(views[0], views[1])
    for view in views[2:]:
        np.maximum(best, view, out=best)
    return best, Xp


def _max_backward(X3, dA3, geometry, out=None) -> np.ndarray:
    """The gradient on the padded grid (written into ``out`` if given): each window's ``dA`` at its first maximum.

    Taps are visited in row-major order; a tap takes the windows whose maximum
    it holds and no earlier tap took (``chosen > taken`` is ``chosen & ~taken``).
    """
    (fh, fw), (sh, sw), (ph, pw), (oh, ow) = geometry
    if out is None:
        out = np.empty((X3.shape[0], X3.shape[1] + 2 * ph, X3.shape[2] + 2 * pw))
    if _tiled(X3, geometry) and _tiled_max_backward(X3, dA3, geometry, out):
        return out
    best, Xp = _max_forward(X3, *geometry)
    dXp = out
    dXp[...] = 0.0
    nan = np.isnan(best)
    nan = nan if nan.any() else None
    real = None
    if ph or pw:  # a window of -inf pixels sends its gradient to its first real pixel, never to padding
        real = np.zeros(Xp.shape[1:], dtype=bool)
        real[ph : ph + X3.shape[1], pw : pw + X3.shape[2]] = True
    taken = None
    last = fh * fw - 1
    for t, (view, target) in enumerate(_taps(Xp, dXp, geometry)):
        i, j = divmod(t, fw)
        if t == last and t and nan is None and real is None:
            chosen = ~taken  # the last tap holds the maximum of every window not yet taken
        else:
            chosen = view == best
            if nan is not None:  # a NaN window sends its gradient to its first NaN
                chosen |= nan & np.isnan(view)
            if real is not None:
                chosen &= real[i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
            if taken is None:
                taken = chosen
            else:
                np.greater(chosen, taken, out=chosen)
                if t < last:
                    taken |= chosen
        if sh >= fh and sw >= fw:  # each pixel is in one window at most: place, don't add
            np.copyto(target, dA3, where=chosen)
        else:
            target += np.where(chosen, dA3, 0.0)
    return dXp


def _tiled(X3, geometry) -> bool:
    """Whether the windows tile the images exactly: side by side (stride = size), no padding, nothing left over."""
    (fh, fw), strides, pads, (oh, ow) = geometry
    return tuple(strides) == (fh, fw) and not any(pads) and X3.shape[1:] == (oh * fh, ow * fw)


def _first_max(parts, where: bool, out=None):
    """The elementwise maximum of the equal-shaped arrays ``parts`` and, with ``where``, which part holds it first.

    The index is a bool array for two parts (True: the second is strictly
    greater), else ``uint8``/``intp``; None for one part or without ``where``.
    NaN propagates into the maximum (its index is then meaningless).
    """
    if len(parts) == 1:
        if out is None:
            return parts[0], None
        np.copyto(out, parts[0])
        return out, None
    if len(parts) == 2:
        index = np.greater(parts[1], parts[0]) if where else None
        return np.maximum(parts[0], parts[1], out=out), index
    index = (parts[1] > parts[0]).astype(np.uint8 if len(parts) < 256 else np.intp) if where else None
    best = np.maximum(parts[0], parts[1], out=out)
    for t in range(2, len(parts)):
        if where:
            np.copyto(index, t, where=parts[t] > best)  # strictly greater: ties keep the earlier part
        np.maximum(best, parts[t], out=best)
    return best, index


def _holds(index, t: int):
    """Where the first maximum is part ``t`` (an index of :func:`_first_max`), as bools; True for one part."""
    if index is None:
        return True
    if index.dtype == bool:
        return index if t == 1 else ~index
    return index == t


def _tiled_max(X3, geometry, *, where=False, out=None):
    """Maxima of windows that tile the images (:func:`_tiled`): ``(best, rows, cols)``.

    Each image row is read as segments of ``fw`` pixels, one per window;
    the maxima of the segments, ``(M*H*W',)``, are then read as ``fh``
    segment maxima per window.  Both steps compare whole strided vectors, so
    numpy runs long inner loops.  ``best`` is ``(M*H', W')`` (written into
    ``out`` if given); with ``where``, ``cols`` says in which column of its
    segment each segment's first maximum is and ``rows`` in which row of its
    window the window's is -- together the window's first maximum in
    row-major order, as ties are broken by taking the earlier part.
    """
    (fh, fw), _, _, (oh, ow) = geometry
    segments = X3.reshape(-1, fw)
    top, cols = _first_max([segments[:, j] for j in range(fw)], where)
    stacked = top.reshape(-1, fh, ow)
    best, rows = _first_max([stacked[:, i] for i in range(fh)], where, out=out)
    return best, rows, cols


def _tiled_max_backward(X3, dA3, geometry, out) -> bool:
    """:func:`_max_backward` for windows that tile the images, into ``out``; False (nothing done) for NaN or inf.

    Each window's ``dA`` goes first to its first maximum's row (``fh``
    products with a bool mask), then along that row to its column (``fw``
    more): every pixel of ``out`` is written once.  A NaN window, or a
    non-finite ``dA`` (``inf * 0`` would be NaN), is left to the general loop.
    """
    (fh, fw), _, _, (oh, ow) = geometry
    best, rows, cols = _tiled_max(X3, geometry, where=True)
    if np.isnan(best).any() or not np.isfinite(dA3).all():
        return False
    grads = np.empty((best.shape[0], fh, ow))  # each window's dA on the row of its first maximum
    dA2 = dA3.reshape(-1, ow)
    for i in range(fh):
        np.multiply(dA2, _holds(rows, i), out=grads[:, i])
    segments, flat = out.reshape(-1, fw), grads.reshape(-1)  # views: `out` is always a contiguous block
    for j in range(fw):
        np.multiply(flat, _holds(cols, j), out=segments[:, j])
    return True


def _avg_backward(X3, dA3, geometry) -> np.ndarray:
    """The gradient on the zero-padded grid: each window's ``dA / count`` on every cell of it."""
    (ph, pw) = geometry[2]
    dXp = np.zeros((X3.shape[0], X3.shape[1] + 2 * ph, X3.shape[2] + 2 * pw))
    share = dA3 / _counts(X3.shape[1:], *geometry)
    for _, out in _taps(None, dXp, geometry):
        out += share
    return dXp


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
