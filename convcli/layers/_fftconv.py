"""Large kernels through the FFT, in tiles of bounded size (numpy only, private).

A stride-1 cross-correlation with a large kernel costs ``Fh*Fw`` multiply-adds
per output value on the tap paths; through the FFT it costs a few
``log(tile)`` per value, whatever the kernel's size.  The output is cut into
tiles (overlap-save, the dual of overlap-add: input tiles overlap by ``F - 1``
rows and columns, output tiles do not, so no tile is ever added to another):

- an input tile of ``bh x bw`` padded pixels is copied into a zeroed buffer
  (the image's zero padding is never built whole);
- ``numpy.fft.rfft2`` of the tile, times the conjugate spectrum of each kernel
  (zero-padded to the tile), back through ``irfft2``: the circular
  cross-correlation, whose top-left ``(bh - Fh + 1) x (bw - Fw + 1)`` values
  never wrap round and are exactly the tile's outputs.

Several small images (or tiles) go through one batched ``rfft2`` call, and the
batches run on the shared threads of :func:`convcli.layers._fastconv._run`
(numpy's FFT releases the GIL).  Memory is bounded by :data:`FFT_PIXELS` per
thread and :data:`SPECTRA_BYTES` of kernel spectra, independent of the
image's size and of the number of kernels.

The tile shape is the one of least modelled cost (:func:`tile_shape`), among
lengths with only the factors 2, 3 and 5 (which pocketfft does fastest).

Precision: the FFT rounds differently from a direct sum.  The result differs
from the tap paths by a few units of ``eps * max|X| * sum|w|`` times
``log2(bh*bw)`` -- about 1e-13 of the largest possible output in float64,
1e-5 in float32.  Exact zeros (for example where a kernel meets only zero
padding) come out as tiny values of that size, not 0.0.  Non-finite pixels are
not sent here (an ``inf`` would turn a whole tile into NaN): the dispatcher
checks first.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from convcli.layers import _fastconv

#: Padded pixels of the input tiles in one batched FFT call (per thread).
FFT_PIXELS = 1 << 20
#: The largest tile (pixels); the tile search never goes past it.
MAX_TILE = 1 << 21
#: Bytes of kernel spectra held at once; a larger bank is done in groups of kernels (same numbers).
SPECTRA_BYTES = 1 << 28


def _smooth_lengths(limit: int = 1 << 13) -> "list[int]":
    """Every ``2^a 3^b 5^c`` up to ``limit``, sorted."""
    out = []
    p2 = 1
    while p2 <= limit:
        p3 = p2
        while p3 <= limit:
            p5 = p3
            while p5 <= limit:
                out.append(p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return sorted(out)


SMOOTH = _smooth_lengths()


def next_smooth(n: int) -> int:
    """The least 5-smooth length ``>= n``."""
    for length in SMOOTH:
        if length >= n:
            return length
    return n


def _candidates(kernel: int, padded: int) -> "list[int]":
    """Tile lengths worth trying along one axis: 5-smooth, from ``kernel + 1`` to one tile for the whole axis."""
    whole = next_smooth(padded)
    low = max(8, kernel + 1)
    return [n for n in SMOOTH if low <= n <= whole] or [whole]


def tile_cost(tile, kernel_hw, padded_hw, n_images: int, n_kernels: int) -> float:
    """Modelled cost (in units of one real FFT butterfly) of the whole job with tiles ``(bh, bw)``.

    Per tile: one forward ``rfft2`` and, per kernel, one product and one
    inverse ``irfft2``; each FFT costs ``bh * bw * log2(bh * bw)`` and the
    product about as much as 4 butterflies per complex value.  The number of
    tiles is what covers the output.
    """
    (bh, bw), (fh, fw), (hp, wp) = tile, kernel_hw, padded_hw
    tiles = math.ceil((hp - fh + 1) / (bh - fh + 1)) * math.ceil((wp - fw + 1) / (bw - fw + 1))
    pixels = bh * bw
    per_tile = (1 + n_kernels) * pixels * math.log2(max(pixels, 2)) + n_kernels * 4 * pixels / 2
    return n_images * tiles * per_tile


@functools.lru_cache(maxsize=256)
def tile_shape(kernel_hw, padded_hw, n_images: int = 1, n_kernels: int = 1) -> "tuple[tuple[int, int], float]":
    """The input tile ``(bh, bw)`` of least :func:`tile_cost` (at most :data:`MAX_TILE` pixels), and that cost.

    The best square-ish tile, then a search along one axis at a time (two rounds):
    a hundred cost evaluations instead of ten thousand, remembered per shape
    (the strips of a map ask for the same shapes again).
    """
    kernel_hw, padded_hw = tuple(kernel_hw), tuple(padded_hw)
    rows, cols = _candidates(kernel_hw[0], padded_hw[0]), _candidates(kernel_hw[1], padded_hw[1])

    def cost(bh: int, bw: int) -> float:
        if bh * bw > MAX_TILE:
            return math.inf
        return tile_cost((bh, bw), kernel_hw, padded_hw, n_images, n_kernels)

    nearest = lambda n: min(cols, key=lambda m: abs(m - n))  # noqa: E731
    bh, bw = min(((n, nearest(n)) for n in rows), key=lambda t: cost(*t))  # the best square-ish tile first
    for _ in range(2):
        bh = min(rows, key=lambda n: cost(n, bw))
        bw = min(cols, key=lambda n: cost(bh, n))
    return (bh, bw), cost(bh, bw)


def correlate_fft(X: np.ndarray, w: np.ndarray, pads, dtype=np.float64, tile=None) -> np.ndarray:
    """Stride-1 cross-correlation with zero padding, through the FFT in tiles.

    Parameters
    ----------
    X : ndarray, shape ``(N, H, W)``, any real dtype, all values finite
    w : ndarray, shape ``(K, Fh, Fw)``
    pads : ((top, bottom), (left, right)), filled with zeros
    dtype : float64 or float32, the arithmetic (float32 uses complex64 spectra)
    tile : (bh, bw), optional
        The input tile; :func:`tile_shape` chooses it by default.

    Returns
    -------
    A : ndarray of ``dtype``, shape ``(N, K, H', W')``
        ``H' = H + top + bottom - Fh + 1`` (likewise ``W'``); equal to the
        direct sum to rounding (see the module's notes).
    """
    dtype = np.dtype(dtype)
    n, k = X.shape[0], w.shape[0]
    fh, fw = w.shape[1:]
    (top, bottom), (left, right) = pads
    hp, wp = X.shape[1] + top + bottom, X.shape[2] + left + right
    out_h, out_w = hp - fh + 1, wp - fw + 1
    bh, bw = tile or tile_shape((fh, fw), (hp, wp), n, k)[0]
    bh, bw = min(bh, next_smooth(hp)), min(bw, next_smooth(wp))
    th, tw = bh - fh + 1, bw - fw + 1
    group = max(1, SPECTRA_BYTES // (bh * (bw // 2 + 1) * 2 * dtype.itemsize))
    if k > group:  # each kernel's numbers do not depend on the others: do the bank in groups
        return np.concatenate(
            [correlate_fft(X, w[c : c + group], pads, dtype, (bh, bw)) for c in range(0, k, group)], axis=1
        )
    A = np.empty((n, k, out_h, out_w), dtype)
    spectra = np.conj(np.fft.rfft2(w.astype(dtype, copy=False), s=(bh, bw)))  # (K, bh, bw//2+1)
    jobs = [(i, y, x) for i in range(n) for y in range(0, out_h, th) for x in range(0, out_w, tw)]
    batch = max(1, FFT_PIXELS // (bh * bw))
    plan = [jobs[s : s + batch] for s in range(0, len(jobs), batch)]

    def work(part):
        tiles = np.zeros((batch, bh, bw), dtype)
        for group in part:
            stack = tiles[: len(group)]
            for slot, (i, y, x) in enumerate(group):
                _fill_tile(stack[slot], X[i], y - top, x - left)
            spectrum = np.fft.rfft2(stack)
            for c in range(k):
                out = np.fft.irfft2(spectrum * spectra[c], s=(bh, bw))
                for slot, (i, y, x) in enumerate(group):
                    rows, cols = min(th, out_h - y), min(tw, out_w - x)
                    A[i, c, y : y + rows, x : x + cols] = out[slot, :rows, :cols]

    _fastconv._run(work, plan, A.size)
    return A


def _fill_tile(tile: np.ndarray, image: np.ndarray, y: int, x: int) -> None:
    """Copy ``image[y:y+bh, x:x+bw]`` into ``tile``, zeros where that window leaves the image."""
    bh, bw = tile.shape
    h, w = image.shape
    y0, y1, x0, x1 = max(y, 0), min(y + bh, h), max(x, 0), min(x + bw, w)
    if y1 <= y0 or x1 <= x0:
        tile.fill(0)
        return
    if (y0 - y, x0 - x, y1 - y, x1 - x) != (0, 0, bh, bw):
        tile.fill(0)
    tile[y0 - y : y1 - y, x0 - x : x1 - x] = image[y0:y1, x0:x1]
