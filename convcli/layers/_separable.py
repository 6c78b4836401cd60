"""Separable and low-rank kernels: ``F x F`` taps become ``2F`` per rank (numpy only, private).

A kernel of rank 1 is an outer product ``w = u v^T`` (box, Gaussian, Sobel,
``edge-h``); correlating with it is a pass down the columns with ``u``
followed by a pass along the rows with ``v``.  A rank-2 kernel is the sum of
two such products.  :func:`factor` finds the factors and checks them: the
product of the factors must give back every weight to within
:data:`RANK_TOLERANCE` of the largest weight, or the kernel is not treated as
separable.  A rank-1 kernel whose factors multiply back to exactly its weights
(integer kernels such as ``edge-h`` or a box) is factored without the SVD.

The passes run on the tap path's blocks (:mod:`convcli.layers._fastconv`):
each block is copied once into a zero-padded flat buffer, the column pass
writes one intermediate buffer of the block's size, and the row pass
accumulates into a second one, each product after the first added by one
fused BLAS ``axpy`` (:mod:`convcli.layers._blas`) where numpy's BLAS has it.

Exactness: the sums are grouped differently from a direct sum over the taps,
so the results equal ``scipy.ndimage.correlate`` and the general path to
rounding (a few ``eps * sum|X * w|``), not bitwise -- except where every
partial sum is exact, as with integer images and integer kernels.  A block
holding an ``inf`` or NaN is computed with the kernel's own taps instead, so
non-finite pixels give exactly what the general path gives.
"""

from __future__ import annotations

import numpy as np

from convcli.layers import _blas, _fastconv

#: Largest difference between a kernel and its factors' product, relative to the largest weight.
RANK_TOLERANCE = 1e-13


def factor(w: np.ndarray, max_rank: int = 2):
    """Factors ``[(u, v), ...]`` with ``w == sum u v^T`` (checked), or None when ``w`` has a higher rank.

    Parameters
    ----------
    w : ndarray, shape ``(Fh, Fw)``
    max_rank : the most factors wanted

    Returns
    -------
    list of (u, v) with ``u`` of shape ``(Fh,)`` and ``v`` of shape ``(Fw,)``, or None
    """
    w = np.asarray(w, dtype=np.float64)
    scale = float(np.abs(w).max())
    if scale == 0.0 or not np.isfinite(scale):
        return None
    i0, j0 = np.unravel_index(int(np.abs(w).argmax()), w.shape)
    u, v = w[:, j0] / w[i0, j0], w[i0, :].copy()
    if np.array_equal(np.outer(u, v), w):  # exact, no SVD needed (integer kernels)
        return [(u, v)]
    U, s, Vt = np.linalg.svd(w)
    for rank in range(1, min(max_rank, len(s)) + 1):
        factors = [(U[:, r] * s[r], Vt[r].copy()) for r in range(rank)]
        if np.abs(sum(np.outer(a, b) for a, b in factors) - w).max() <= RANK_TOLERANCE * scale:
            return factors
    return None


def correlate_separable(X: np.ndarray, w: np.ndarray, factors: list, pads, dtype=np.float64) -> np.ndarray:
    """Stride-1 cross-correlation with kernels given as sums of outer products, zero padding.

    Parameters
    ----------
    X : ndarray, shape ``(N, H, W)``, any real dtype
    w : ndarray, shape ``(K, Fh, Fw)``, the kernels themselves (for non-finite blocks)
    factors : list of K lists of ``(u, v)``, from :func:`factor`
    pads : ((top, bottom), (left, right)), filled with zeros
    dtype : float64 or float32, the arithmetic

    Returns
    -------
    A : ndarray of ``dtype``, shape ``(N, K, H', W')``
        ``H' = H + top + bottom - Fh + 1`` (likewise ``W'``).
    """
    n, k, fh, fw = X.shape[0], w.shape[0], w.shape[1], w.shape[2]
    hp, wp = _fastconv._padded_shape(X, pads)
    out_h, out_w = hp - fh + 1, wp - fw + 1
    A = np.empty((n, k, out_h, out_w), dtype)
    passes = [
        [([(i * wp, float(a)) for i, a in enumerate(u) if a != 0.0], [(j, float(b)) for j, b in enumerate(v) if b != 0.0])
         for u, v in kernel_factors]
        for kernel_factors in factors
    ]
    taps = [[(i * wp + j, float(w[c, i, j])) for i in range(fh) for j in range(fw)] for c in range(k)]
    fused = _blas.axpy(dtype)

    def work(part):
        bufs = None
        for n0, m, r0, rows_out, buf in _fastconv._block_views(X, pads, part, dtype=dtype):
            if bufs is None or bufs[0].size < buf.size:
                bufs = [np.empty(buf.size, dtype) for _ in range(4)]
            acc, col, tmp, extra = bufs
            flat = buf.reshape(-1)
            length = ((m - 1) * buf.shape[1] + rows_out - 1) * wp + out_w
            finite = bool(np.isfinite(np.sum(flat)))
            for c in range(k):
                a = acc[:length]
                if not finite:
                    _weighted_sum(a, flat, taps[c], tmp, fused)
                else:
                    for rank, (down, along) in enumerate(passes[c]):
                        _weighted_sum(col[: length + fw - 1], flat, down, tmp, fused)
                        _weighted_sum(a if rank == 0 else extra[:length], col, along, tmp, fused)
                        if rank:
                            np.add(a, extra[:length], out=a)
                grid = acc[: buf.size].reshape(buf.shape)[:, :rows_out, :out_w]
                np.add(grid, 0.0, out=A[n0 : n0 + m, c, r0 : r0 + rows_out])  # no -0.0, as the general path

    _fastconv.run_with_blas(work, _fastconv._plan(X, pads, fh, out_h, budget=_fastconv.BLOCK_PIXELS), A.size)
    return A


def _weighted_sum(out: np.ndarray, src: np.ndarray, taps, tmp: np.ndarray, fused) -> None:
    """``out = sum(value * src[offset : offset + len(out)])`` over ``taps``, in their order, from the first product.

    ``out`` and ``src`` are contiguous 1-D arrays of one dtype; each product
    after the first is added by ``fused`` (BLAS ``axpy``, :mod:`._blas`) when
    there is one, else by numpy's ``multiply`` and ``add`` through ``tmp``.
    """
    length = out.size
    t = tmp[:length]
    if not taps:
        out.fill(0.0)
    source, target, size = src.ctypes.data, out.ctypes.data, src.itemsize
    for index, (offset, value) in enumerate(taps):
        piece = src[offset : offset + length]
        if index == 0:
            np.multiply(piece, value, out=out, dtype=out.dtype)
        elif fused is not None and value != 0.0:
            fused(length, value, source + offset * size, target)
        else:
            np.multiply(piece, value, out=t, dtype=out.dtype)
            np.add(out, t, out=out)
