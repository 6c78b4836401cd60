"""Turning activation maps into pictures: scaling to 0..255 and upscaling.

numpy only; Pillow is imported where PNG bytes are made.
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ParameterError

NORMALIZATIONS = ("minmax", "abs", "clip", "signed")


def to_uint8(A: np.ndarray, mode: str = "minmax") -> np.ndarray:
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

    Returns
    -------
    ndarray of uint8, the shape of ``A``.
    """
    A = np.asarray(A)
    if mode not in NORMALIZATIONS:
        raise ParameterError(f"normalize must be one of {', '.join(NORMALIZATIONS)}; got {mode!r}")
    if A.size == 0:
        return np.zeros(A.shape, np.uint8)
    # float32 is plenty for 256 grey levels and halves the memory of a big map.
    work = A.astype(np.float32, copy=True)
    if mode == "minmax":
        lo, hi = float(A.min()), float(A.max())
        if hi == lo:
            return np.zeros(A.shape, np.uint8)
        work -= np.float32(lo)
        work *= np.float32(255.0 / (hi - lo))
    elif mode == "abs":
        peak = float(np.abs(A).max())
        np.abs(work, out=work)
        if peak == 0:
            return np.zeros(A.shape, np.uint8)
        work *= np.float32(255.0 / peak)
    elif mode == "clip":
        pass
    else:  # signed
        peak = float(np.abs(A).max())
        if peak == 0:
            return np.full(A.shape, 128, np.uint8)
        work *= np.float32(127.5 / peak)
        work += np.float32(127.5)
    np.rint(work, out=work)
    np.clip(work, 0, 255, out=work)
    return work.astype(np.uint8)


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
