"""Turning activation maps into pictures: scaling to 0..255 and upscaling.

numpy only; Pillow is imported where PNG bytes are made.
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ParameterError

NORMALIZATIONS = ("minmax", "abs", "clip", "signed")


def to_uint8(A: np.ndarray, mode: str = "minmax", *, limits: "tuple[float, float] | None" = None) -> np.ndarray:
    """Map an activation map to 8-bit grey levels.

    Parameters
    ----------
    A : ndarray, any shape
        The raw map.  For ``--color`` maps of shape ``(H, W, C)`` the scale is
        shared by all channels, so colours keep their balance.
    mode : {"minmax", "abs", "clip", "signed"}
        - ``minmax``: ``round(255 * (A - min) / (max - min))``, all 0 when max == min
          (Keras' ``array_to_img(scale=True)``).
        - ``abs``: ``round(255 * |A| / max|A|)``, all 0 when A is all 0.
        - ``clip``: ``clip(round(A), 0, 255)``.
        - ``signed``: ``round(127.5 + 127.5 * A / max|A|)``, so 0 is mid-grey
          (all 128 when A is all 0).
    limits : (min, max), optional
        The smallest and largest value of the whole map when ``A`` is only a
        part of it (a strip of rows): the scale comes from them instead of from
        ``A`` (``max|A|`` is ``max(|min|, |max|)``), so each part gets exactly
        the levels it has in the picture of the whole map.

    Returns
    -------
    ndarray of uint8, the shape of ``A``.

    Notes
    -----
    The arithmetic is float64, done in chunks of about a million values, so a
    huge map costs one uint8 copy plus a small buffer, and a nearly flat map
    still spans 0..255.  ``round`` is numpy's (halves go to the even level).

    Examples
    --------
    >>> A = np.array([[-2.0, 0.0], [1.0, 2.0]])
    >>> np.array_equal(to_uint8(A[1:], limits=(A.min(), A.max())), to_uint8(A)[1:])
    True
    """
    return _levels(np.asarray(A), mode, per_map=False, limits=limits)


def to_uint8_each(A: np.ndarray, mode: str = "minmax") -> np.ndarray:
    """:func:`to_uint8` applied to each map of a stack separately, in one vectorized pass.

    Parameters
    ----------
    A : ndarray, shape (n, H, W)
        ``n`` maps; each gets its own min, max or peak.
    mode : as for :func:`to_uint8`

    Returns
    -------
    ndarray of uint8, shape (n, H, W); ``out[i]`` equals ``to_uint8(A[i], mode)``
    bit for bit.
    """
    A = np.asarray(A)
    if A.ndim != 3:
        raise ParameterError(f"maps must have shape (n, H, W); got shape {A.shape}")
    return _levels(A, mode, per_map=True)


_CHUNK = 1 << 20  # values converted to float64 at a time


def _levels(A: np.ndarray, mode: str, *, per_map: bool, limits=None) -> np.ndarray:
    """The worker behind :func:`to_uint8` and :func:`to_uint8_each`.

    Every mode is ``rint(f(A) * scale + offset)`` clipped to 0..255, with
    ``f = abs`` for ``abs`` and the identity otherwise; the statistics are taken
    over the whole array, or over each ``A[i]`` when ``per_map``, or are the
    given ``limits`` (min, max).
    """
    if mode not in NORMALIZATIONS:
        raise ParameterError(f"normalize must be one of {', '.join(NORMALIZATIONS)}; got {mode!r}")
    out = np.empty(A.shape, np.uint8)
    if A.size == 0:
        return out
    scale, offset = _affine(A, mode, per_map, limits)
    rows = np.ascontiguousarray(A).reshape(A.shape[0] if A.ndim else 1, -1)
    flat_out = out.reshape(rows.shape)
    step = max(1, _CHUNK // rows.shape[1])
    for start in range(0, rows.shape[0], step):
        part = slice(start, start + step)
        work = rows[part].astype(np.float64)
        if mode == "abs":
            np.abs(work, out=work)
        work *= scale[part] if per_map else scale
        work += offset[part] if per_map else offset
        np.rint(work, out=work)
        np.clip(work, 0, 255, out=work)
        flat_out[part] = work
    return out


def _affine(A: np.ndarray, mode: str, per_map: bool, limits=None):
    """``(scale, offset)`` for :func:`_levels`: scalars, or columns ``(n, 1)`` when ``per_map``.

    The scale depends on ``A`` only through its min and max (given as
    ``limits``, or taken here).  A flat map (max == min, or a zero peak) gets
    scale 0, which yields the documented constant picture: 0 for minmax and
    abs, 128 for signed.
    """
    axis = tuple(range(1, A.ndim)) if per_map else None
    if mode == "clip":
        return (np.ones((A.shape[0], 1)), np.zeros((A.shape[0], 1))) if per_map else (1.0, 0.0)
    if limits is None:
        limits = np.min(A, axis=axis), np.max(A, axis=axis)
    lo, hi = (np.asarray(v).astype(np.float64) for v in limits)  # float64 before abs: |int8(-128)| is 128
    if mode == "minmax":
        half_span = hi / 2 - lo / 2  # halves: hi - lo overflows for limits near ±1.8e308
        scale = 127.5 / np.where(half_span > 0, half_span, np.inf)
        offset = -lo * scale
    else:  # abs, signed: scaled by the peak magnitude, max|A| = max(|min|, |max|) (NaN stays NaN)
        peak = np.maximum(np.abs(lo), np.abs(hi))
        factor = 255.0 if mode == "abs" else 127.5
        scale = factor / np.where(peak > 0, peak, np.inf)
        offset = np.zeros_like(scale) if mode == "abs" else np.full_like(scale, 127.5)
    if per_map:
        return scale.reshape(-1, 1), offset.reshape(-1, 1)
    return float(scale), float(offset)


def upscale(img: np.ndarray, size: int | None) -> np.ndarray:
    """Nearest-neighbour resizing so that the longer side is ``size`` pixels.

    ``img`` has shape ``(H, W)`` or ``(H, W, C)``.  Each side is scaled by the
    same factor ``size / max(H, W)`` and pixel ``(i, j)`` of the result takes
    source pixel ``(floor(i * H / H'), floor(j * W / W'))``.  ``None``, or the
    image's own size, returns ``img`` unchanged.  A smaller ``size`` shrinks the
    picture the same way (nearest neighbour, no smoothing).
    """
    if size is None:
        return img
    if int(size) < 1:
        raise ParameterError(f"size must be a whole number >= 1; got {size!r}")
    h, w = img.shape[:2]
    longest = max(h, w)
    if size == longest:
        return img
    new_h = max(1, round(h * size / longest))
    new_w = max(1, round(w * size / longest))
    rows = (np.arange(new_h) * h) // new_h
    cols = (np.arange(new_w) * w) // new_w
    return img[rows[:, None], cols[None, :]]
