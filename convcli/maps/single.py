"""Activation maps of one image: per-channel correlation, the scipy cross-check, summaries.

numpy only (scipy is imported inside :func:`scipy_reference`).  This is what
``convcli convolve`` computes; the layer math itself is :mod:`convcli.layers`.
The 8-bit picture of a large map, made strip by strip without the float64 map,
is :mod:`convcli.maps.picture`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcli.errors import ImageFormatError, ParameterError, ShapeError
from convcli.io import pictures
from convcli.layers import BORDERS, conv_forward, pad_widths
from convcli.maps.levels import to_uint8

#: What ``--verify`` compares with (kernels of up to :data:`DIRECT_TAPS` taps; larger ones: :data:`FFT_REFERENCE`).
REFERENCE = "scipy.signal.correlate2d"
FFT_REFERENCE = "scipy.signal.fftconvolve"
DIRECT_TAPS = 15 * 15


def convolve_map(X: np.ndarray, kernel: np.ndarray, *, padding="valid", stride=1, flip: bool = False,
                 border: str = "zero", names: tuple[str, str] = ("image", "kernel")) -> np.ndarray:
    """Correlate one image with one kernel; colour channels separately, or summed by a 3-D kernel.

    Parameters
    ----------
    X : ndarray, shape ``(H, W)`` or ``(H, W, C)``
        Any real dtype; a uint8 picture is used as it is (no float64 copy).
    kernel : ndarray, shape ``(Fh, Fw)`` or ``(C, Fh, Fw)``
        A 2-D kernel is applied to each channel separately.  A ``(C, Fh, Fw)``
        kernel is one output channel of a conv layer: it needs an ``(H, W, C)``
        image (or a grey ``(H, W)`` / ``(H, W, 1)`` one, read as C equal
        channels) and gives one map, ``A = sum_c X[..., c] * kernel[c]``
        (:func:`convcli.layers.conv_forward` on ``(1, C, H, W)``).
    padding, stride, flip, border
        As for :func:`convcli.layers.conv_forward`.
    names : (str, str)
        How to call the image and the kernel in an error message.

    Returns
    -------
    A : ndarray of float64, ``(H', W')`` or ``(H', W', C)`` with
        ``H' = (H + pad_top + pad_bottom - Fh) // stride + 1``; ``(H', W')``
        for a 3-D kernel.

    Raises
    ------
    ShapeError
        When the kernel is larger than the padded image (names both), or a
        3-D kernel's C does not match the image's channels.
    ParameterError
        When the padded image would pass :data:`convcli.io.pictures.MAX_PIXELS`.
    ImageFormatError
        When the map overflows float64 (names the image and the kernel): a map
        that is not finite is never returned.
    """
    X, kernel = image_and_kernel(X, kernel, padding, stride, names)
    with np.errstate(over="ignore", invalid="ignore"):
        if kernel.ndim == 3:
            planes = np.moveaxis(_channels_for(X, kernel, names), -1, 0)[None]  # (1, C, H, W)
            A = conv_forward(planes, kernel[None], padding=padding, stride=stride, flip=flip, border=border)[0, 0]
        elif X.ndim == 2:
            A = conv_forward(X, kernel, padding=padding, stride=stride, flip=flip, border=border)
        else:
            channels = conv_forward(np.moveaxis(X, -1, 0), kernel, padding=padding, stride=stride, flip=flip,
                                    border=border)
            A = np.ascontiguousarray(np.moveaxis(channels, 0, -1))
    check_finite(A, lambda at: (names[0], names[1], at[:2]))
    return A


def _channels_for(X: np.ndarray, kernel: np.ndarray, names) -> np.ndarray:
    """``X`` as ``(H, W, C)`` for a ``(C, Fh, Fw)`` kernel: a grey image becomes C equal channels."""
    C = kernel.shape[0]
    if X.ndim == 2:
        X = X[..., None]
    if X.shape[2] == 1 and C != 1:
        X = np.broadcast_to(X, X.shape[:2] + (C,))
    if X.shape[2] != C:
        raise ShapeError(
            f"kernel {names[1]} has {C} channels (shape {kernel.shape}) but the image {names[0]} has "
            f"{X.shape[2]}; a (C, Fh, Fw) kernel needs a C-channel image"
        )
    return X


def pipeline_map(X: np.ndarray, kernels, *, padding="valid", stride=1, flip: bool = False,
                 border: str = "zero", names=None) -> np.ndarray:
    """Apply kernels one after another: each to the previous step's map, in float64 throughout.

    ``convcli convolve -k gaussian -k laplacian``: the Laplacian of the
    blurred image, with no rounding to 8 bits between the steps (as a
    ``-o - | convcli convolve -`` pipe has).  The options apply to every step,
    so with ``padding="valid"`` each step shrinks the map by ``Fh - 1, Fw - 1``.

    Parameters
    ----------
    X : ndarray, ``(H, W)`` or ``(H, W, C)``
    kernels : sequence of ndarray, each ``(Fh, Fw)``; the first may be ``(C, Fh, Fw)``
        (see :func:`convolve_map`), which turns a colour image into one map.
    padding, stride, flip, border : as for :func:`convolve_map`, for every step
    names : (image name, [kernel names]), optional, for error messages

    Returns
    -------
    A : ndarray of float64, the last step's map
    """
    kernels = list(kernels)
    image_name, kernel_names = names if names is not None else ("image", [f"#{i + 1}" for i in range(len(kernels))])
    A = X
    for step, (kernel, name) in enumerate(zip(kernels, kernel_names)):
        if step and np.ndim(kernel) == 3:
            raise ShapeError(f"kernel {name} is 3-D (C, Fh, Fw); only the first kernel of a pipeline may be")
        where = image_name if step == 0 else f"{image_name} after {', '.join(kernel_names[:step])}"
        A = convolve_map(A, kernel, padding=padding, stride=stride, flip=flip, border=border, names=(where, name))
    return A


def check_padded_size(padded: tuple[int, int], padding, what: str) -> None:
    """Refuse a padded image of more than :data:`convcli.io.pictures.MAX_PIXELS` pixels (the limit of
    ``--size`` and of inputs), before anything that large is allocated."""
    limit = pictures.MAX_PIXELS  # read now: the CLI may change it
    if limit is not None and padded[0] * padded[1] > limit:
        raise ParameterError(
            f"padding {padding!r} would make {what} {padded[0]}x{padded[1]} = {padded[0] * padded[1]:,} pixels, "
            f"more than the limit of {limit:,}; use a smaller padding"
        )


def check_finite(A: np.ndarray, names) -> None:
    """Refuse a map with infinite or NaN values (float64 overflow) with an ImageFormatError.

    ``names(at)`` gives ``(image, kernel, (row, column))`` for the index ``at``
    of the first bad value.  The inputs are finite, so only overflow makes them.
    """
    if A.dtype.kind != "f" or A.size == 0 or (np.isfinite(A.min()) and np.isfinite(A.max())):  # min/max keep NaN
        return
    at = tuple(int(i) for i in np.argwhere(~np.isfinite(A))[0])
    image, kernel, (row, col) = names(at)
    raise ImageFormatError(
        f"the map of {image} with kernel {kernel} overflows float64 (first at row {row}, column {col}): values "
        "times weights pass ±1.8e308; scale the image or the kernel down"
    )


def image_and_kernel(X, kernel, padding, stride, names):
    """``X`` as an array (its dtype kept) and a float64 kernel; ShapeError naming both if it does not fit.

    ``names`` are the image's and the kernel's names for the error message.
    """
    X = np.asarray(X)
    X = X if X.dtype.kind in "biuf" else X.astype(np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    check_fits(X.shape[:2], kernel.shape[-2:], padding=padding, stride=stride, names=names)
    return X, kernel


def check_fits(image_hw, kernel_hw, *, padding="valid", stride=1, names: tuple[str, str] = ("image", "kernel")
               ) -> None:
    """Refuse a kernel ``(Fh, Fw)`` larger than the padded image ``(H, W)`` (ShapeError naming both), or
    a padding that makes the image larger than :data:`convcli.io.pictures.MAX_PIXELS` (ParameterError).

    Needs only the shapes, so a kernel file can be checked from its header before its data is read.
    """
    (top, bottom), (left, right) = pad_widths(padding, kernel_hw, stride)
    h, w = (int(n) for n in image_hw[:2])
    padded = (h + top + bottom, w + left + right)
    check_padded_size(padded, padding, f"the image {names[0]}")
    if kernel_hw[0] > padded[0] or kernel_hw[1] > padded[1]:
        grown = "" if padded == (h, w) else f", {padded[0]}x{padded[1]} after padding {padding!r}"
        raise ShapeError(
            f"kernel {names[1]} ({kernel_hw[0]}x{kernel_hw[1]}) is larger than the image {names[0]} "
            f"({h}x{w}{grown}); use a smaller kernel or --padding same/full"
        )


def scipy_reference(X: np.ndarray, kernel: np.ndarray, *, padding="valid", stride=1, flip: bool = False,
                    border: str = "zero") -> np.ndarray:
    """The same map computed independently: ``numpy.pad``, then ``scipy.signal.correlate2d(mode="valid")``.

    The kernel is rotated by 180 degrees for ``flip``, and the result is
    subsampled by ``stride``.  Shapes as for :func:`convolve_map`.  Kernels of
    more than :data:`DIRECT_TAPS` taps use ``scipy.signal.fftconvolve`` with
    the rotated kernel instead (a direct 300x300 sum over a 2000x2000 image
    would take hours).
    """
    from scipy.signal import correlate2d, fftconvolve

    X = np.asarray(X, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    w = np.rot90(kernel, 2) if flip else kernel
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    pads = pad_widths(padding, kernel.shape[-2:], stride)
    planes = [X] if X.ndim == 2 else [X[:, :, c] for c in range(X.shape[2])]
    if kernel.ndim == 3:  # one output channel over C input channels: the sum of C correlations
        w = np.rot90(kernel, 2, axes=(1, 2)) if flip else kernel
        planes = planes * kernel.shape[0] if len(planes) == 1 else planes  # grey read as C equal channels
        total = 0.0
        for plane, wc in zip(planes, w):
            padded = np.pad(plane, pads, mode=BORDERS[border]) if any(sum(p) for p in pads) else plane
            total = total + correlate2d(padded, wc, mode="valid")[::sh, ::sw]
        return total
    outs = []
    for plane in planes:
        padded = np.pad(plane, pads, mode=BORDERS[border]) if any(sum(p) for p in pads) else plane
        if w.size > DIRECT_TAPS:
            outs.append(fftconvolve(padded, w[::-1, ::-1], mode="valid")[::sh, ::sw])
        else:
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


def verify_map(X: np.ndarray, kernel, A: np.ndarray, *, padding="valid", stride=1,
               flip: bool = False, border: str = "zero") -> Verification:
    """Compare map ``A`` with :func:`scipy_reference` (step by step for a pipeline of kernels).

    ``kernel`` is one kernel, or a list of them applied in turn (:func:`pipeline_map`).
    The tolerance is ``1e-9 * max(1, max|X| * prod(sum|kernel|))``: far above
    float64 rounding in a sum of ``Fh * Fw`` products, far below any real bug.
    A shape mismatch counts as an infinite difference.
    """
    X = np.asarray(X, dtype=np.float64)  # before abs: |int8(-128)| is 128 only in float
    steps = list(kernel) if isinstance(kernel, (list, tuple)) else [kernel]
    reference = X
    scale = float(np.abs(X).max())
    for step in steps:
        reference = scipy_reference(reference, step, padding=padding, stride=stride, flip=flip, border=border)
        scale *= float(np.abs(step).sum())
    tolerance = 1e-9 * max(1.0, scale)
    name = FFT_REFERENCE if max(np.size(step) for step in steps) > DIRECT_TAPS else REFERENCE
    if reference.shape != np.shape(A):
        return Verification(float("inf"), tolerance, name)
    return Verification(float(np.abs(np.asarray(A) - reference).max()), tolerance, name)


@dataclass(frozen=True)
class MapStats:
    """Shape and value summary of a map (``std`` is the population standard deviation, numpy's default)."""

    shape: tuple[int, ...]
    min: float
    max: float
    mean: float
    std: float = float("nan")

    @property
    def constant(self) -> bool:
        """True when every value is the same (``--normalize minmax`` draws it mid-grey)."""
        return self.min == self.max

    def __str__(self) -> str:
        dims = "x".join(map(str, self.shape))
        text = f"shape {dims}  min {self.min:.6g}  max {self.max:.6g}  mean {self.mean:.6g}  std {self.std:.6g}"
        return text + ("  (constant map: every value is the same)" if self.constant else "")

    def to_dict(self) -> dict:
        """``{"shape", "min", "max", "mean", "std", "constant"}`` as plain JSON-ready values."""
        return {"shape": list(self.shape), "min": self.min, "max": self.max, "mean": self.mean, "std": self.std,
                "constant": self.constant}


def map_stats(A: np.ndarray) -> MapStats:
    """Shape, min, max, mean and standard deviation of ``A``."""
    A = np.asarray(A)
    with np.errstate(over="ignore"):  # values near 1.8e308 may have no finite mean: it shows as inf
        mean, std = float(A.mean()), float(A.std())
    return MapStats(tuple(int(d) for d in A.shape), float(A.min()), float(A.max()), mean, std)


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
