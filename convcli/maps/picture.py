"""The 8-bit picture of one grey image's map, made strip by strip: what ``convcli convolve -o map.png`` writes.

numpy only.  The float64 map of a 4096x4096 photo is 128 MB; its picture is
16 MB.  :func:`map_picture` never holds the map: it correlates strips of output
rows (:func:`convcli.layers.conv_forward_rows`), keeps what the picture needs
(the limits of the scale; the map itself in 2 or 4 bytes a value when it is
whole numbers), and turns the strips into levels with
:func:`convcli.maps.levels.to_uint8` -- the same bytes as the picture of the
whole map.
"""

from __future__ import annotations

import math

import numpy as np

from convcli.errors import ShapeError
from convcli.layers import INTEGER_TAPS, IntegerCorrelation, conv_forward_rows, pad_widths
from convcli.maps.levels import to_uint8
from convcli.maps.single import MapStats, check_finite, image_and_kernel

#: Integer maps spanning fewer values than this get their levels from a lookup table in :func:`map_picture`.
LUT_VALUES = 1 << 16
#: Map values per strip in :func:`map_picture` (16 MiB of float64; large enough for conv's threads).
STRIP_PIXELS = 1 << 21


def map_picture(X: np.ndarray, kernel: np.ndarray, *, normalize: str = "minmax", padding="valid", stride=1,
                flip: bool = False, border: str = "zero", names: tuple[str, str] = ("image", "kernel"),
                strip_pixels: int | None = None, moments: bool = True) -> "tuple[np.ndarray, MapStats]":
    """The 8-bit picture of a grey image's map and the map's summary: :func:`picture_of_map`, made whole.

    Parameters and returns as :func:`picture_of_map`, with ``levels`` an
    ndarray of uint8, shape ``(H', W')``.
    """
    picture, stats = picture_of_map(X, kernel, normalize=normalize, padding=padding, stride=stride, flip=flip,
                                    border=border, names=names, strip_pixels=strip_pixels, moments=moments)
    return np.asarray(picture), stats


def picture_of_map(X: np.ndarray, kernel: np.ndarray, *, normalize: str = "minmax", padding="valid", stride=1,
                   flip: bool = False, border: str = "zero", names: tuple[str, str] = ("image", "kernel"),
                   strip_pixels: int | None = None, moments: bool = True) -> "tuple[np.ndarray | Picture, MapStats]":
    """The 8-bit picture of a grey image's map, made strip by strip, and the map's summary.

    The same bytes as ``to_uint8(convolve_map(X, kernel, ...), normalize)``,
    without ever holding the float64 map: a first pass over strips of output
    rows (:func:`convcli.layers.conv_forward_rows`) finds the min and max (and
    the mean and standard deviation), a second recomputes each strip and
    scales it with those limits (:func:`convcli.maps.levels.to_uint8`).  Extra
    memory is one strip of about ``strip_pixels`` float64 values plus the uint8
    picture, for twice the convolution work.

    When the map is whole numbers (an integer picture and an integer kernel:
    ``edge-h``, Sobel, Laplacian...), the first pass keeps it in 2 or 4 bytes a
    value -- computed in that integer type by :class:`IntegerCorrelation`, the
    same numbers without float64 strips -- and there is no second
    convolution; each of its values gets its level
    once, from :func:`~convcli.maps.levels.to_uint8` itself, and the picture is
    looked up (see :func:`_exact_integer_type`) strip by strip, when the
    picture is written (:class:`Picture`): the encoder's threads look up their
    own strips.

    Parameters
    ----------
    X : ndarray, shape ``(H, W)``, any real dtype (a uint8 picture is not copied)
    kernel : ndarray, shape ``(Fh, Fw)``
    normalize : {"minmax", "abs", "clip", "signed"}
    padding, stride, flip, border, names
        As for :func:`convcli.maps.single.convolve_map`.
    strip_pixels : int, optional
        Map values per strip (whole rows, at least one); :data:`STRIP_PIXELS` by default.
    moments : bool
        Also compute the mean and standard deviation (else they are NaN in the
        summary): ``convcli convolve --quiet`` shows no summary and skips them.

    Returns
    -------
    levels : ndarray of uint8, shape ``(H', W')`` (as for ``convolve_map``), or a :class:`Picture` of that
        shape for a whole-number map (``np.asarray`` makes it an array)
    stats : MapStats
        As :func:`~convcli.maps.single.map_stats` of the map.  A whole-number
        map's mean comes from an exact integer sum, and an int16 map's standard
        deviation too; otherwise they are summed strip by strip and can differ
        from ``A.mean()`` and ``A.std()`` in the last bits.
    """
    X, kernel = image_and_kernel(X, kernel, padding, stride, names)
    if X.ndim != 2:
        raise ShapeError(f"map_picture takes a grey image (H, W); got shape {X.shape} (use convolve_map)")
    if kernel.ndim != 2:
        raise ShapeError(f"map_picture takes a 2-D kernel; got shape {kernel.shape} (use convolve_map)")
    options = dict(padding=padding, stride=stride, flip=flip, border=border)
    height, width = _map_shape(X.shape, kernel.shape, padding, stride)
    rows = max(1, int(STRIP_PIXELS if strip_pixels is None else strip_pixels) // width)
    strips = [(r, min(r + rows, height)) for r in range(0, height, rows)]

    exact = _exact_integer_type(X, kernel)  # the map is whole numbers: keep it exactly instead of recomputing
    kept = None if exact is None else np.empty((height, width), exact)
    integer = None if kept is None else IntegerCorrelation.of(X, kernel, **options)
    sums = _Moments(exact is np.int16) if moments else None
    lo, hi = np.inf, -np.inf
    for r0, r1 in strips:
        if integer is not None:  # whole numbers in integer arithmetic, straight into the kept map
            strip = integer.rows(r0, r1, kept[r0:r1])
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                strip = conv_forward_rows(X, kernel, r0, r1, **options)
            if kept is not None:  # whole numbers, finite by construction: the rest from the small copy
                kept[r0:r1] = np.rint(strip, out=strip)  # float64 paths may be off by rounding (FFT, factors)
                strip = kept[r0:r1]
        low, high = float(strip.min()), float(strip.max())  # NaN if the strip holds one
        if not (math.isfinite(low) and math.isfinite(high)):
            check_finite(strip, lambda at: (names[0], names[1], (at[0] + r0, at[1])))
        lo, hi = min(lo, low), max(hi, high)
        if sums is not None:
            with np.errstate(over="ignore", invalid="ignore"):  # values near ±1.8e308: an inf mean, as numpy's
                sums.add(strip)
    mean, std = sums.result() if sums is not None else (math.nan, math.nan)
    stats = MapStats((height, width), lo, hi, mean, std)

    if kept is not None and hi - lo < LUT_VALUES:
        return Picture(kept, lo, hi, normalize), stats
    levels = np.empty((height, width), np.uint8)
    for r0, r1 in strips:
        strip = conv_forward_rows(X, kernel, r0, r1, **options) if kept is None else kept[r0:r1].astype(np.float64)
        levels[r0:r1] = to_uint8(strip, normalize, limits=(lo, hi))
    return levels, stats


class Picture:
    """The 8-bit picture of a whole-number map, looked up strip by strip when it is asked for.

    ``kept`` is the map itself (int16 or int32, ``(H', W')``), ``lo`` and
    ``hi`` its limits: every whole number ``lo..hi`` gets its level once, from
    :func:`~convcli.maps.levels.to_uint8` itself, and :meth:`rows` looks the
    map's values up (an int16 map indexes the table by its own bits, with no
    subtraction pass).  :func:`convcli.maps.png.write_png` calls :meth:`rows`
    from its encoding threads, so the look-up runs in parallel with the
    deflating and the whole picture is never held; ``np.asarray(picture)``
    makes all of it.
    """

    dtype = np.dtype(np.uint8)
    ndim = 2

    def __init__(self, kept: np.ndarray, lo: float, hi: float, normalize: str) -> None:
        values = np.arange(lo, hi + 1)
        lut = to_uint8(values, normalize, limits=(lo, hi))
        if kept.dtype == np.int16:
            self._lut = np.zeros(1 << 16, np.uint8)
            self._lut[values.astype(np.int16).view(np.uint16)] = lut
            self._kept, self._offset = kept.view(np.uint16), 0
        else:
            self._lut, self._kept, self._offset = lut, kept, int(lo)
        self.shape = kept.shape

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0..r1`` of the picture, uint8 ``(r1 - r0, W')``; safe to call from several threads."""
        index = self._kept[r0:r1]
        if self._offset:
            index = np.subtract(index, self._offset, dtype=np.int64)
        return np.take(self._lut, index)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, np.uint8)
        step = max(1, STRIP_PIXELS // max(1, self.shape[1]))
        for r0 in range(0, self.shape[0], step):
            out[r0 : r0 + step] = self.rows(r0, min(r0 + step, self.shape[0]))
        return out if dtype is None else out.astype(dtype)


class _Moments:
    """Running sums for a map's mean and standard deviation, fed strip by strip.

    An integer map is summed exactly (int64 per strip, Python integers in
    all).  An int16 map (``exact``) has its squares summed exactly too (they
    fit int32); other maps sum the squares of their distance to the first
    strip's mean in float64, which keeps the variance accurate when the values
    are far from zero.
    """

    def __init__(self, exact: bool) -> None:
        self.exact, self.count = exact, 0
        self.total = self.squares = 0  # exact: Python ints
        self.shifted = self.shifted_squares = 0.0  # otherwise: float sums of (value - shift)
        self.shift: float | None = None

    def add(self, strip: np.ndarray) -> None:
        self.count += strip.size
        integer = strip.dtype.kind in "iu"
        self.total += int(strip.sum(dtype=np.int64)) if integer else float(strip.sum(dtype=np.float64))
        if self.exact:
            self.squares += int(np.square(strip, dtype=np.int32).sum(dtype=np.int64))
            return
        self.shift = float(strip.mean(dtype=np.float64)) if self.shift is None else self.shift
        deviation = np.subtract(strip, self.shift, dtype=np.float64)
        self.shifted += float(deviation.sum())
        self.shifted_squares += float(np.square(deviation, out=deviation).sum())

    def result(self) -> "tuple[float, float]":
        """``(mean, std)``: the population standard deviation, numpy's default."""
        n = self.count
        if self.exact:
            return self.total / n, math.sqrt((n * self.squares - self.total**2) / (n * n))
        variance = self.shifted_squares / n - (self.shifted / n) ** 2
        return self.total / n, math.sqrt(max(variance, 0.0))


def _exact_integer_type(X: np.ndarray, kernel: np.ndarray):
    """int16 or int32 when every map value is a whole number that type holds exactly, else None.

    An integer picture correlated with an integer kernel (``edge-h``, Sobel,
    Laplacian...) gives whole numbers of at most ``max|X| * sum|w|``; float64
    computes them exactly (far below 2**53), so :func:`map_picture` can keep
    the first pass's strips in 2 or 4 bytes a value and skip the second
    convolution, with the same levels to the bit.  When they span fewer than
    :data:`LUT_VALUES` values, each value's level is computed once by
    :func:`~convcli.maps.levels.to_uint8` and looked up.
    """
    if X.dtype.kind not in "biu" or not np.array_equal(kernel, np.rint(kernel)) or X.size == 0:
        return None
    bound = float(max(abs(int(X.min())), abs(int(X.max())))) * float(np.abs(kernel).sum())
    for kind in (np.int16, np.int32):
        if bound <= np.iinfo(kind).max:
            return kind
    return None


def _map_shape(image_hw, kernel_hw, padding, stride) -> "tuple[int, int]":
    """``(H', W')`` with ``H' = (H + pad_top + pad_bottom - Fh) // sh + 1`` (likewise ``W'``)."""
    pads = pad_widths(padding, kernel_hw, stride)  # validates padding and stride
    strides = (stride, stride) if np.ndim(stride) == 0 else tuple(stride)
    return tuple(int((n + sum(p) - f) // s + 1) for n, p, f, s in zip(image_hw[:2], pads, kernel_hw, strides))
