"""Stride-1 correlation of large images written straight into the output (numpy only, private).

The tap path of :mod:`convcli.layers._fastconv` copies each block of rows into
a zero-padded buffer, accumulates the taps in a second buffer and copies the
result out: two passes over the image that do no arithmetic.  When the output
is as wide as the image (``left + right == Fw - 1``: ``padding="same"`` and
its like), neither copy is needed.  With the image's rows ``W`` wide, output
pixel ``(r, c)`` of tap ``(i, j)`` reads the image's flat index
``(r - top + i) * W + c + j - left``, so for a band of output rows each tap is
one update of a 1-D slice of the output (contiguous, rows ``W`` wide) from a
1-D slice of the image: ``out += w[i, j] * image[offset : offset + length]``,
one fused BLAS ``axpy`` (:mod:`._blas`) or, without it, numpy's
``multiply`` and ``add``.

Reading column ``c + j - left`` past either end of a row wraps into the
neighbouring row.  Only the ``left`` first and ``right`` last output columns
read such pixels, and :func:`_edges` computes them again afterwards from a
narrow zero-padded strip of the image.  Bands that reach into the padding rows
above or below the image, and images that are not already contiguous in the
working dtype, read from a zero-padded copy of their rows instead.

Exactness: the taps are added in row-major order from ``0.0``, as in the
general path, but each ``axpy`` update rounds once (a fused multiply-add), so
pixels agree with the general path and with ``scipy.ndimage.correlate`` to
rounding (a few ``eps * sum|X * w|``), not bitwise -- and bit for bit with
the block path, so a pixel's value does not depend on the path, band or
block that computed it.  Without ``axpy`` they are the general path's
numbers exactly.  Zero taps are skipped unless the band holds an ``inf`` or
NaN, so ``0 * inf`` gives NaN as in the general path.
"""

from __future__ import annotations

import numpy as np

from convcli.layers import _blas, _fastconv

#: Output pixels per band (one ``ctypes`` call per tap and band costs about 1.5 us: fewer, longer bands win
#: over bands that would stay in the L2 cache).
BAND_PIXELS = 1 << 18
#: Images with fewer pixels go to the block path, which packs several images into one block.
MIN_PIXELS = 1 << 16


def applies(X: np.ndarray, w: np.ndarray, pads) -> bool:
    """Whether :func:`correlate_direct` can compute this stride-1 job: output as wide as the image, large images."""
    (_, _), (left, right) = pads
    return left + right == w.shape[2] - 1 and X.shape[1] * X.shape[2] >= MIN_PIXELS


def correlate_direct(X: np.ndarray, w: np.ndarray, pads, dtype=np.float64) -> np.ndarray:
    """Stride-1 cross-correlation with zero padding, each tap added straight into the output.

    Parameters
    ----------
    X : ndarray, shape ``(N, H, W)``, any real dtype
    w : ndarray, shape ``(K, Fh, Fw)``, float64
    pads : ((top, bottom), (left, right)), zeros, with ``left + right == Fw - 1`` (see :func:`applies`)
    dtype : float64 (default) or float32, the arithmetic and the result

    Returns
    -------
    A : ndarray of ``dtype``, shape ``(N, K, H', W)`` with ``H' = H + top + bottom - Fh + 1``
    """
    n, h, width = X.shape
    k, fh, fw = w.shape
    (top, bottom), (left, right) = pads
    out_h = h + top + bottom - fh + 1
    A = np.empty((n, k, out_h, width), dtype)
    if out_h <= 0:
        return A
    taps = [[(i * width + j - left, float(w[c, i, j])) for i in range(fh) for j in range(fw)] for c in range(k)]
    nonzero = [[(o, v) for o, v in tc if v != 0.0] for tc in taps]
    has_zeros = any(len(a) != len(b) for a, b in zip(taps, nonzero))
    fused, size_of = _blas.axpy(dtype), np.dtype(dtype).itemsize
    in_place = X.flags.c_contiguous and X.dtype == dtype
    image = X.reshape(-1) if in_place else None
    rows_per_band = max(1, BAND_PIXELS // width)
    plan = [(m, r0, min(rows_per_band, out_h - r0)) for m in range(n) for r0 in range(0, out_h, rows_per_band)]

    def work(part):
        scratch, tmp = None, None
        for m, r0, rows in part:
            length, reach = rows * width, (rows + fh - 1) * width
            start = (m * h + r0 - top) * width  # the band's first source row in the flat images
            if in_place and r0 - top >= 0 and r0 - top + rows + fh - 1 <= h and start - left >= 0 \
                    and start + reach + right <= image.size:
                source, base = image, start
            else:  # padding rows or a conversion: the band's rows copied, zero-padded, `left`/`right` spare elements
                if scratch is None or scratch.size < reach + left + right:
                    scratch = np.zeros(reach + left + right, dtype)
                _fill_rows(scratch[left : left + reach].reshape(rows + fh - 1, width), X[m], r0 - top)
                source, base = scratch, left
            finite = not has_zeros or bool(np.isfinite(np.sum(source[base - left : base + reach + right])))
            address = source.ctypes.data
            for c in range(k):
                out = A[m, c, r0 : r0 + rows].reshape(-1)
                out.fill(0.0)  # the sum starts from 0.0, as in the general path (so never -0.0)
                target = out.ctypes.data
                for offset, value in nonzero[c] if finite else taps[c]:
                    if fused is not None and value != 0.0:
                        fused(length, value, address + (base + offset) * size_of, target)
                    else:
                        if tmp is None or tmp.size < length:
                            tmp = np.empty(length, dtype)
                        piece = source[base + offset : base + offset + length]
                        np.add(out, np.multiply(piece, value, out=tmp[:length], dtype=dtype), out=out)

    _fastconv.run_with_blas(work, plan, A.size)
    _edges(A, X, w, pads, dtype)
    return A


def _fill_rows(rows: np.ndarray, image: np.ndarray, first: int) -> None:
    """Copy image rows ``first .. first + len(rows) - 1`` into ``rows`` ``(R, W)``, zeros for rows outside the image."""
    lo, hi = max(0, -first), min(rows.shape[0], image.shape[0] - first)
    rows[:lo] = 0.0
    if hi > lo:
        rows[lo:hi] = image[first + lo : first + hi]
    rows[max(hi, lo) :] = 0.0


def _edges(A: np.ndarray, X: np.ndarray, w: np.ndarray, pads, dtype) -> None:
    """Compute the ``left`` first and ``right`` last output columns again, from narrow strips of the padded images.

    Output column ``c`` reads padded columns ``c .. c + Fw - 1``; each strip
    holds just those columns of the zero-padded images and goes through the
    block path (:func:`convcli.layers._fastconv.correlate_taps`), whose
    updates are the same as here, so every column gets the same numbers as
    it would from the block path.
    """
    n, h, width = X.shape
    fw = w.shape[2]
    (top, bottom), (left, right) = pads
    for first, count in ((0, left), (width - right, right)):
        if count <= 0:
            continue
        strip = np.zeros((n, h + top + bottom, count + fw - 1), dtype)
        lo, hi = max(first - left, 0), min(first - left + count + fw - 1, width)  # the image columns in the strip
        if hi > lo:
            strip[:, top : top + h, lo - (first - left) : hi - (first - left)] = X[:, :, lo:hi]
        A[:, :, :, first : first + count] = _fastconv.correlate_taps(strip, w, ((0, 0), (0, 0)), dtype)
