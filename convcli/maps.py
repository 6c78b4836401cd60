"""Activation maps of one image: per-channel correlation, the scipy cross-check, summaries.

numpy only (scipy is imported inside :func:`scipy_reference`).  This is what
``convcli convolve`` computes; the layer math itself is :mod:`convcli.layers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcli.errors import ShapeError
from convcli.layers import BORDERS, conv_forward, pad_widths
from convcli.render import to_uint8

#: What ``--verify`` compares with.
REFERENCE = "scipy.signal.correlate2d"


def convolve_map(X: np.ndarray, kernel: np.ndarray, *, padding="valid", stride=1, flip: bool = False,
                 border: str = "zero", names: tuple[str, str] = ("image", "kernel")) -> np.ndarray:
    """Correlate one image with one kernel; colour channels separately.

    Parameters
    ----------
    X : ndarray, shape ``(H, W)`` or ``(H, W, C)``
    kernel : ndarray, shape ``(Fh, Fw)``
    padding, stride, flip, border
        As for :func:`convcli.layers.conv_forward`.
    names : (str, str)
        How to call the image and the kernel in an error message.

    Returns
    -------
    A : ndarray of float64, ``(H', W')`` or ``(H', W', C)`` with
        ``H' = (H + pad_top + pad_bottom - Fh) // stride + 1``.

    Raises
    ------
    ShapeError
        When the kernel is larger than the padded image (names both).
    """
    X = np.asarray(X, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    (top, bottom), (left, right) = pad_widths(padding, kernel.shape, stride)
    padded = (X.shape[0] + top + bottom, X.shape[1] + left + right)
    if kernel.shape[0] > padded[0] or kernel.shape[1] > padded[1]:
        grown = "" if padded == X.shape[:2] else f", {padded[0]}x{padded[1]} after padding {padding!r}"
        raise ShapeError(
            f"kernel {names[1]} ({kernel.shape[0]}x{kernel.shape[1]}) is larger than the image {names[0]} "
            f"({X.shape[0]}x{X.shape[1]}{grown}); use a smaller kernel or --padding same/full"
        )
    if X.ndim == 2:
        return conv_forward(X, kernel, padding=padding, stride=stride, flip=flip, border=border)
    channels = conv_forward(np.moveaxis(X, -1, 0), kernel, padding=padding, stride=stride, flip=flip, border=border)
    return np.ascontiguousarray(np.moveaxis(channels, 0, -1))


def scipy_reference(X: np.ndarray, kernel: np.ndarray, *, padding="valid", stride=1, flip: bool = False,
                    border: str = "zero") -> np.ndarray:
    """The same map computed independently: ``numpy.pad``, then ``scipy.signal.correlate2d(mode="valid")``.

    The kernel is rotated by 180 degrees for ``flip``, and the result is
    subsampled by ``stride``.  Shapes as for :func:`convolve_map`.
    """
    from scipy.signal import correlate2d

    X = np.asarray(X, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    w = np.rot90(kernel, 2) if flip else kernel
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    pads = pad_widths(padding, kernel.shape, stride)
    planes = [X] if X.ndim == 2 else [X[:, :, c] for c in range(X.shape[2])]
    outs = []
    for plane in planes:
        padded = np.pad(plane, pads, mode=BORDERS[border]) if any(sum(p) for p in pads) else plane
        outs.append(correlate2d(padded, w, mode="valid")[::sh, ::sw])
    return outs[0] if X.ndim == 2 else np.stack(outs, axis=-1)


@dataclass(frozen=True)
class Verification:
    """The outcome of comparing a map with :data:`REFERENCE`."""

    max_abs_diff: float
    tolerance: float
    reference: str = REFERENCE

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"conv check {verdict}: largest |convcli - {self.reference}| = {self.max_abs_diff:.3g} "
                f"(tolerance {self.tolerance:.3g})")


def verify_map(X: np.ndarray, kernel: np.ndarray, A: np.ndarray, *, padding="valid", stride=1,
               flip: bool = False, border: str = "zero") -> Verification:
    """Compare map ``A`` with :func:`scipy_reference`.

    The tolerance is ``1e-9 * max(1, max|X| * sum|kernel|)``: far above
    float64 rounding in a sum of ``Fh * Fw`` products, far below any real bug.
    A shape mismatch counts as an infinite difference.
    """
    reference = scipy_reference(X, kernel, padding=padding, stride=stride, flip=flip, border=border)
    scale = float(np.abs(X).max()) * float(np.abs(kernel).sum())
    tolerance = 1e-9 * max(1.0, scale)
    if reference.shape != np.shape(A):
        return Verification(float("inf"), tolerance)
    return Verification(float(np.abs(np.asarray(A) - reference).max()), tolerance)


@dataclass(frozen=True)
class MapStats:
    """Shape and value summary of a map."""

    shape: tuple[int, ...]
    min: float
    max: float
    mean: float

    def __str__(self) -> str:
        dims = "x".join(map(str, self.shape))
        return f"shape {dims}  min {self.min:.6g}  max {self.max:.6g}  mean {self.mean:.6g}"


def map_stats(A: np.ndarray) -> MapStats:
    """Shape, min, max and mean of ``A``."""
    A = np.asarray(A)
    return MapStats(tuple(int(d) for d in A.shape), float(A.min()), float(A.max()), float(A.mean()))


def preview_levels(A: np.ndarray, *, normalize: str = "minmax", max_width: int = 64,
                   max_height: int = 48) -> np.ndarray:
    """A small 8-bit picture of a map for a terminal preview.

    The map is normalized like a PNG (``normalize``), then shrunk by an integer
    factor ``f`` so it fits ``max_width x max_height`` cells.  Each ``f x f``
    block keeps its level farthest from the picture's median grey, so thin
    edges of either sign survive the shrinking (a block mean or nearest
    neighbour would wash them out).

    Returns
    -------
    ndarray of uint8, ``(ceil(H/f), ceil(W/f))`` or with a trailing channel axis
    """
    levels = to_uint8(A, normalize)
    h, w = levels.shape[:2]
    factor = max(1, -(-h // max_height), -(-w // max_width))
    if factor == 1:
        return levels
    hh, ww = -(-h // factor) * factor, -(-w // factor) * factor
    grown = np.pad(levels, ((0, hh - h), (0, ww - w)) + ((0, 0),) * (levels.ndim - 2), mode="edge")
    blocks = grown.reshape((hh // factor, factor, ww // factor, factor) + levels.shape[2:])
    blocks = np.moveaxis(blocks, 2, 1).reshape((hh // factor, ww // factor, factor * factor) + levels.shape[2:])
    grey = blocks.mean(axis=-1) if levels.ndim == 3 else blocks  # pick colour pixels by their grey level
    pick = np.abs(grey - np.median(levels)).argmax(axis=2)
    rows, cols = np.indices(pick.shape)
    return blocks[rows, cols, pick]
