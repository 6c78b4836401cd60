"""The bank path: many kernels at once as BLAS matrix products over sliding windows (numpy only, private).

A bank of :data:`convcli.layers._fastconv.BANK_MIN` or more kernels, any
stride.  Sliding windows over a chunk of images (or a band of rows of one
large image; the blocks of :mod:`convcli.layers._fastconv`) are copied into a
``(Fh*Fw, pixels)`` matrix per image and multiplied by the ``(K, Fh*Fw)``
kernel matrix with ``np.matmul`` (BLAS).  The chunk is bounded, so extra
memory stays small and in cache.  BLAS sums in its own order (with fused
multiply-adds), so these results agree with the general path to rounding
(about 1e-15 relative), not bitwise.
"""

from __future__ import annotations

import numpy as np

from convcli.layers import _fastconv

#: Output pixels per block (the window matrix is ``Fh*Fw`` times that).
MATMUL_PIXELS = 1 << 15


def correlate_matmul(X: np.ndarray, w: np.ndarray, pads, strides, dtype=np.float64) -> np.ndarray:
    """Cross-correlation with a bank of kernels as BLAS matrix products over sliding windows.

    For each block, the pixels under every kernel tap are copied into a
    ``(m, Fh*Fw, pixels)`` window matrix, and one ``np.matmul`` of the
    ``(K, Fh*Fw)`` kernel matrix with it writes ``(m, K, pixels)`` straight into
    the output (a small BLAS product per image, in cache).

    Parameters
    ----------
    X : ndarray, shape ``(N, H, W)``
    w : ndarray, shape ``(K, Fh, Fw)``
    pads : ((top, bottom), (left, right)), zero padding
    strides : (sh, sw)
    dtype : float64 (default) or float32, the arithmetic and the result

    Returns
    -------
    A : ndarray of ``dtype``, shape ``(N, K, H', W')`` with ``H' = (H + top + bottom - Fh) // sh + 1``
    """
    k, fh, fw = w.shape
    sh, sw = strides
    hp, wp = _fastconv._padded_shape(X, pads)
    out_h, out_w = (hp - fh) // sh + 1, (wp - fw) // sw + 1
    A = np.empty((X.shape[0], k, out_h, out_w), dtype)
    kernels = w.reshape(k, fh * fw).astype(dtype, copy=False)

    def work(part):
        cols = None
        for n0, m, r0, rows_out, buf in _fastconv._block_views(X, pads, part, stride=sh, dtype=dtype):
            pixels = rows_out * out_w
            if cols is None or cols.size < m * fh * fw * pixels:
                cols = np.empty(m * fh * fw * pixels, dtype)
            windows = cols[: m * fh * fw * pixels].reshape(m, fh, fw, rows_out, out_w)
            for i in range(fh):
                for j in range(fw):
                    windows[:, i, j] = buf[:, i : i + (rows_out - 1) * sh + 1 : sh, j : j + (out_w - 1) * sw + 1 : sw]
            windows = windows.reshape(m, fh * fw, pixels)
            if rows_out == out_h:  # whole images: A[n0:n0+m] is contiguous, BLAS writes into it
                np.matmul(kernels, windows, out=A[n0 : n0 + m].reshape(m, k, pixels))
            else:
                A[n0 : n0 + m, :, r0 : r0 + rows_out] = np.matmul(kernels, windows).reshape(m, k, rows_out, out_w)

    plan = _fastconv._plan(X, pads, fh, out_h, stride=sh, budget=MATMUL_PIXELS * sh * sw)
    _fastconv.run_with_blas(work, plan, A.size)
    return A
