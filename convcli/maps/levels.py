"""Turning activation maps into pictures: scaling to 0..255, colour maps and upscaling.

numpy only; matplotlib (the optional extra ``convcli[cmap]``) is imported only
when a colour map is asked for (:func:`apply_cmap`).
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
        - ``minmax``: ``round(255 * (A - min) / (max - min))``
          (Keras' ``array_to_img(scale=True)``); a constant map (max == min) is
          all 128, mid-grey, as ``signed`` draws a zero map.
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
    scale 0, which yields the documented constant picture: 128 for minmax and
    signed, 0 for abs.
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
        offset = np.where(half_span > 0, -lo * scale, 127.5)  # a constant map is mid-grey (rint(127.5) = 128)
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


def upscale_each(stack: np.ndarray, size: int | None) -> np.ndarray:
    """:func:`upscale` applied to each picture of a stack ``(n, H, W)`` or ``(n, H, W, C)`` at once."""
    if size is None or size == max(stack.shape[1:3]):
        return stack
    return np.asarray(upscale(np.moveaxis(stack, 0, 2), size)).transpose((2, 0, 1, *range(3, stack.ndim)))


#: What to install for ``--cmap``.
CMAP_EXTRA = "pip install 'convcli[cmap]'  (or: pip install matplotlib)"


def colormap_names() -> "list[str]":
    """The names of matplotlib's registered colour maps, sorted (``_r`` reversed ones included).

    Raises
    ------
    ParameterError
        When matplotlib is not installed (it is the optional extra ``convcli[cmap]``).
    """
    return sorted(_registry())


def _registry():
    try:
        import matplotlib
    except ImportError:
        raise ParameterError(f"cmap needs matplotlib, which is not installed: {CMAP_EXTRA}") from None
    return matplotlib.colormaps


def colormap_lut(name: str) -> np.ndarray:
    """The 256 RGB colours of matplotlib's colour map ``name``, as uint8 ``(256, 3)``.

    Raises
    ------
    ParameterError
        Without matplotlib (saying what to install), or for an unknown name
        (suggesting the closest registered names).
    """
    registry = _registry()
    if name not in registry:
        import difflib

        close = difflib.get_close_matches(str(name), list(registry), n=3, cutoff=0.6)
        hint = f"did you mean: {', '.join(close)}?" if close else "e.g. RdBu_r, coolwarm, seismic, viridis, gray"
        raise ParameterError(f"cmap {name!r} is not one of matplotlib's colour maps; {hint}")
    colours = registry[name].resampled(256)(np.linspace(0.0, 1.0, 256))[:, :3]
    return np.rint(colours * 255).astype(np.uint8)


def apply_cmap(levels: np.ndarray, name: str) -> np.ndarray:
    """Colour 8-bit grey levels with matplotlib's colour map ``name``.

    Parameters
    ----------
    levels : ndarray of uint8, shape ``(..., H, W)``
        Grey pictures from :func:`to_uint8` or :func:`to_uint8_each`: level
        ``v`` takes the colour map's colour at ``v / 255``.  With
        ``--normalize signed`` a zero activation is level 128, so a diverging
        map (``RdBu_r``, ``coolwarm``, ``seismic``) shows it in its middle colour.
    name : str
        A name in ``matplotlib.colormaps``.

    Returns
    -------
    ndarray of uint8, shape ``(..., H, W, 3)``
    """
    levels = np.asarray(levels)
    if levels.dtype != np.uint8:
        raise ParameterError(f"apply_cmap takes uint8 grey levels; got {levels.dtype}")
    return colormap_lut(name)[levels]
