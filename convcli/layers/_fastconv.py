"""Fast paths for :mod:`convcli.layers` (numpy only, private).

:func:`convcli.layers.conv_forward` and :func:`~convcli.layers.conv_backward`
keep a short general path that any reader can check against the lab; this
module holds the faster ways to compute the same numbers.  Which forward path
runs is decided by the cost model of :mod:`convcli.layers._dispatch` (which
also knows the separable and FFT paths of :mod:`._separable` and
:mod:`._fftconv`); the backward pass by :func:`choose_backward`:

``"taps"`` -- stride 1 and fewer than :data:`BANK_MIN` kernels.
    The image is cut into blocks of rows that stay in the CPU cache
    (:func:`blocks`, about :data:`BLOCK_PIXELS` pixels each).  Each block is copied once into a zero-padded scratch
    buffer, and the kernel taps are accumulated into a second buffer, so no
    temporary is ever the size of the image.  The buffer is flat: with rows
    ``Wp`` wide, tap ``(i, j)`` is the 1-D slice starting at ``i * Wp + j``,
    so every update runs over one long contiguous run: BLAS ``axpy``
    (:mod:`._blas`, one fused multiply-add per pixel) or, where numpy's BLAS
    has none, ``np.multiply(..., out=)`` and ``np.add(..., out=)``.  The taps
    are added in row-major order, like the general path and
    ``scipy.ndimage.correlate``: without ``axpy`` the results are bitwise
    equal to both; with it each update rounds once instead of twice, so they
    agree to rounding, and every pixel still gets the same value whatever
    block or band it falls in.  (Large images whose output is as wide as
    themselves skip the block copies: :mod:`._direct`.)
    Zero taps are skipped (as ndimage does) whenever the block is finite, so
    ``0 * inf`` still gives NaN as in the general path.
    The backward pass uses the same blocks: ``dX`` is the correlation of
    ``dA`` with the rotated kernel (:func:`correlate_transpose`), and ``dw`` is
    one BLAS dot product per tap and block (:func:`weight_gradient`).

``"matmul"`` -- a bank of :data:`BANK_MIN` or more kernels, any stride: :mod:`._matmul`,
    on these blocks.

``"general"`` -- everything else (strides other than 1 with few kernels).

Jobs of at least :data:`PARALLEL_PIXELS` output values are split into
consecutive runs of blocks, one per thread (:func:`_run`, at most
:data:`THREADS`), with OpenBLAS on one thread meanwhile
(:func:`run_with_blas`).  numpy's loops and BLAS release the GIL, each thread owns its
scratch buffers and writes its own part of the output, so the numbers are the
same as with one thread.  (``dw`` sums one partial result per thread, so its
last bits can depend on the thread count.)

All functions here take arrays already validated by ``layers``: images ``X``
of shape ``(N, H, W)`` (float64, or any real dtype for the forward paths,
converted block by block), float64 kernels ``w`` of shape ``(K, Fh, Fw)`` and
zero padding ``pads = ((top, bottom), (left, right))``.  Other borders are
handled in ``layers`` by padding first and passing zero ``pads`` here.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

from convcli.layers import _blas, _threads

#: Banks with at least this many kernels go to the BLAS (``"matmul"``) path.
BANK_MIN = 4
#: Padded pixels per scratch buffer of the tap path (three 1 MiB buffers; fewer numpy calls beat L2 residency).
BLOCK_PIXELS = 1 << 17
#: Jobs with at least this many output values are split over :data:`THREADS` threads.
PARALLEL_PIXELS = 1 << 20
#: Threads for large jobs: the CPUs this process may use, at most 4 (memory bandwidth runs out).
THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def choose_backward(n_kernels: int, strides) -> str:
    """Which path computes a backward pass: ``"taps"`` or ``"general"``."""
    return "taps" if n_kernels < BANK_MIN and tuple(strides) == (1, 1) else "general"


# ----------------------------------------------------------------------------- blocks


def blocks(n_images: int, padded_hw, kernel_h: int, out_h: int, *, stride: int = 1, budget: int = BLOCK_PIXELS):
    """Cut the output into blocks whose padded input holds about ``budget`` pixels.

    Yields ``(n0, m, r0, rows_out, rows_in)``: images ``n0 .. n0+m-1``, output
    rows ``r0 .. r0+rows_out-1`` of each, which need padded input rows
    ``r0*stride .. r0*stride+rows_in-1``.  Small images come whole, several to
    a block (``r0 == 0``); a large image comes one band of rows at a time
    (``m == 1``).  Bands overlap by ``kernel_h - stride`` input rows.
    """
    hp, wp = padded_hw
    if hp * wp <= budget:
        per_block = max(1, budget // (hp * wp))
        for n0 in range(0, n_images, per_block):
            yield n0, min(per_block, n_images - n0), 0, out_h, hp
        return
    band = max(1, (budget // wp - kernel_h) // stride + 1)
    for n in range(n_images):
        for r0 in range(0, out_h, band):
            rows_out = min(band, out_h - r0)
            yield n, 1, r0, rows_out, (rows_out - 1) * stride + kernel_h


def fill(buf: np.ndarray, X: np.ndarray, n0: int, p0: int, pads) -> None:
    """Copy images ``X[n0:n0+m]``, zero-padded by ``pads``, rows ``p0 ..`` into ``buf`` ``(m, rows_in, Wp)``.

    Only the image columns are written; the padding columns of ``buf`` must
    already be zero (they are never written, so a zeroed buffer stays valid).
    """
    m, rows_in, _ = buf.shape
    h, w = X.shape[1:]
    (top, _), (left, _) = pads
    lo, hi = max(0, top - p0), min(rows_in, h + top - p0)
    cols = slice(left, left + w)
    if lo > 0:
        buf[:, :lo, cols] = 0.0
    if hi > lo:
        buf[:, lo:hi, cols] = X[n0 : n0 + m, p0 + lo - top : p0 + hi - top]
    if hi < rows_in:
        buf[:, max(hi, lo) :, cols] = 0.0


def _padded_shape(X: np.ndarray, pads) -> "tuple[int, int]":
    (top, bottom), (left, right) = pads
    return X.shape[1] + top + bottom, X.shape[2] + left + right


def _plan(X, pads, kernel_h: int, out_h: int, *, budget: int, stride: int = 1) -> list:
    """The list of :func:`blocks` for images ``X`` padded by ``pads``."""
    return list(blocks(X.shape[0], _padded_shape(X, pads), kernel_h, out_h, stride=stride, budget=budget))


def _block_views(X, pads, plan, *, stride: int = 1, dtype=np.float64) -> Iterator:
    """The blocks of ``plan``, each with its padded pixels filled into one reused flat buffer.

    Yields ``(n0, m, r0, rows_out, buf)`` with ``buf`` a C-contiguous ``dtype``
    ``(m, rows_in, Wp)`` view of the buffer -- or of ``X`` itself when there is
    nothing to pad or convert.  Callers only read it.
    """
    if pads == ((0, 0), (0, 0)) and X.flags.c_contiguous and X.dtype == dtype:  # use the images in place
        for n0, m, r0, rows_out, rows_in in plan:
            yield n0, m, r0, rows_out, X[n0 : n0 + m, r0 * stride : r0 * stride + rows_in]
        return
    wp = _padded_shape(X, pads)[1]
    flat = np.zeros(max(m * rows_in * wp for _, m, _, _, rows_in in plan), dtype)
    for n0, m, r0, rows_out, rows_in in plan:
        buf = flat[: m * rows_in * wp].reshape(m, rows_in, wp)
        fill(buf, X, n0, r0 * stride, pads)
        yield n0, m, r0, rows_out, buf


def _run(work: Callable[[list], object], plan: list, pixels: int) -> list:
    """``[work(part), ...]`` over consecutive parts of ``plan``; in threads when ``pixels >= PARALLEL_PIXELS``.

    numpy and BLAS release the GIL inside their loops, so the parts run on
    separate cores.  Each ``work`` call owns its scratch buffers and writes a
    disjoint part of the output, so the numbers do not depend on the split.
    The threads are kept between calls (:func:`_pool`).
    """
    threads = min(THREADS, len(plan)) if pixels >= PARALLEL_PIXELS else 1
    if threads <= 1:
        return [work(plan)]
    size = -(-len(plan) // threads)
    parts = [plan[i : i + size] for i in range(0, len(plan), size)]
    return list(_pool(len(parts)).map(work, parts))


def run_with_blas(work: Callable[[list], object], plan: list, pixels: int) -> list:
    """:func:`_run` for ``work`` that calls BLAS, with OpenBLAS on one thread meanwhile.

    Each of our threads runs its own small BLAS calls, for which OpenBLAS's
    threads on top would only spin-wait (:mod:`convcli.layers._threads`);
    and ``axpy`` must not be split by OpenBLAS (:func:`._blas.axpy`).
    """
    with _threads.one_thread():
        return _run(work, plan, pixels)


_POOL: "tuple[int, int, ThreadPoolExecutor] | None" = None  # (process id, size, pool)


def _pool(size: int) -> ThreadPoolExecutor:
    """A thread pool of at least ``size`` threads, made once per process (a forked child makes its own).

    Starting threads for every call cost more than a small job (a strip of a
    map is one call).  Idle threads wait on a queue; Python joins them at exit.
    """
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] < size:
        _POOL = (os.getpid(), size, ThreadPoolExecutor(size, thread_name_prefix="convcli"))
    return _POOL[2]


def band(X: np.ndarray, row_pads, p0: int, p1: int, mode: str) -> "tuple[np.ndarray, tuple[int, int]]":
    """The input of rows ``p0:p1`` of the padded images, for a band of output rows.

    Parameters
    ----------
    X : ndarray, shape ``(N, H, W)``
    row_pads : (top, bottom), the rows the padding adds
    p0, p1 : the band's first and one-past-last padded row
    mode : the :func:`numpy.pad` mode of the border

    Returns
    -------
    (rows, (top', bottom'))
        Image rows ``(N, R, W)`` and the zero rows to add above and below them:
        a view of ``X`` for zero padding, else the rows the border repeats,
        copied (``top' = bottom' = 0``).
    """
    top, bottom = row_pads
    height = X.shape[1]
    if mode == "constant":
        lo = min(max(p0, top), p1)
        hi = max(min(p1, top + height), lo)
        return X[:, lo - top : hi - top], (lo - p0, p1 - hi)
    return X[:, np.pad(np.arange(height), (top, bottom), mode=mode)[p0:p1]], (0, 0)


# ----------------------------------------------------------------------------- taps


def correlate_taps(X: np.ndarray, w: np.ndarray, pads, dtype=np.float64) -> np.ndarray:
    """Stride-1 cross-correlation, zero padding, one block of rows at a time.

    Parameters
    ----------
    X : ndarray, shape ``(N, H, W)``, float64
    w : ndarray, shape ``(K, Fh, Fw)``, float64
    pads : ((top, bottom), (left, right)), each >= 0, filled with zeros
    dtype : float64 (default) or float32, the arithmetic and the result

    Returns
    -------
    A : ndarray of ``dtype``, shape ``(N, K, H', W')``
        With ``H' = H + top + bottom - Fh + 1`` (likewise ``W'``); the
        general path's numbers in the same dtype, to rounding with ``axpy``
        and bitwise without it.
    """
    n, k = X.shape[0], w.shape[0]
    fh, fw = w.shape[1:]
    hp, wp = _padded_shape(X, pads)
    out_h, out_w = hp - fh + 1, wp - fw + 1
    A = np.empty((n, k, out_h, out_w), dtype)
    taps = [[(i * wp + j, float(w[c, i, j])) for i in range(fh) for j in range(fw)] for c in range(k)]
    nonzero = [[(o, v) for o, v in tc if v != 0.0] for tc in taps]
    has_zeros = any(len(a) != len(b) for a, b in zip(taps, nonzero))

    fused = _blas.axpy(dtype)
    size_of = np.dtype(dtype).itemsize

    def work(part):
        acc = tmp = None
        for n0, m, r0, rows_out, buf in _block_views(X, pads, part, dtype=dtype):
            size = buf.size
            if acc is None or acc.size < size:
                acc, tmp = np.empty(size, dtype), np.empty(size, dtype)
            flat = buf.reshape(-1)
            # the last output pixel of the block is ((m-1)*rows_in + rows_out-1)*Wp + W'-1
            length = ((m - 1) * buf.shape[1] + rows_out - 1) * wp + out_w
            finite = not has_zeros or bool(np.isfinite(np.sum(flat)))
            source, target = flat.ctypes.data, acc.ctypes.data
            for c in range(k):
                use = nonzero[c] if finite else taps[c]
                a, t = acc[:length], tmp[:length]
                if not use:
                    a.fill(0.0)
                for index, (offset, value) in enumerate(use):
                    src = flat[offset : offset + length]
                    if index == 0:
                        np.multiply(src, value, out=a, dtype=dtype)
                    elif fused is not None and value != 0.0:
                        fused(length, value, source + offset * size_of, target)  # a += value * src, one rounding
                    else:
                        np.multiply(src, value, out=t, dtype=dtype)
                        np.add(a, t, out=a)
                grid = acc[:size].reshape(buf.shape)[:, :rows_out, :out_w]
                # "+ 0.0" copies out and makes the sum start from 0.0 like the general path (no -0.0)
                np.add(grid, 0.0, out=A[n0 : n0 + m, c, r0 : r0 + rows_out])

    run_with_blas(work, _plan(X, pads, fh, out_h, budget=BLOCK_PIXELS), A.size)
    return A


def correlate_transpose(dA: np.ndarray, w: np.ndarray, pads) -> np.ndarray:
    """The adjoint of :func:`correlate_taps` in its input: the ``dX`` of a stride-1 layer.

    ``dX[n] = sum_k correlate(dA[n, k], rot180(w[k]))`` with ``F - 1 - pad``
    zeros on each side (a negative amount crops ``dA`` instead).

    Parameters
    ----------
    dA : ndarray, shape ``(N, K, H', W')``
    w : ndarray, shape ``(K, Fh, Fw)``
    pads : the forward pass's ((top, bottom), (left, right))

    Returns
    -------
    dX : ndarray, shape ``(N, H, W)``
    """
    fh, fw = w.shape[1:]
    (top, bottom), (left, right) = pads
    want = ((fh - 1 - top, fh - 1 - bottom), (fw - 1 - left, fw - 1 - right))
    crop = tuple(slice(max(0, -lo), dA.shape[2 + axis] - max(0, -hi)) for axis, (lo, hi) in enumerate(want))
    pads_t = tuple((max(0, lo), max(0, hi)) for lo, hi in want)
    dX = None
    for c in range(w.shape[0]):
        part = correlate_taps(dA[:, c, crop[0], crop[1]], w[c : c + 1, ::-1, ::-1], pads_t)[:, 0]
        dX = part if dX is None else np.add(dX, part, out=dX)
    return dX


def weight_gradient(X: np.ndarray, dA: np.ndarray, pads, kernel_hw) -> np.ndarray:
    """``dw[k, i, j] = sum_{n,y,x} dA[n, k, y, x] * Xp[n, y + i, x + j]`` for a stride-1 layer.

    Computed block by block: the block's ``dA`` is laid out on the padded
    buffer's grid (zeros in the columns past ``W'``), so each tap is one
    contiguous BLAS dot product -- no im2col matrix.

    Parameters
    ----------
    X : ndarray, shape ``(N, H, W)``
    dA : ndarray, shape ``(N, K, H', W')``
    pads : ((top, bottom), (left, right)), zero padding
    kernel_hw : (Fh, Fw)

    Returns
    -------
    dw : ndarray, shape ``(K, Fh, Fw)``
    """
    fh, fw = kernel_hw
    k, out_h, out_w = dA.shape[1:]
    _, wp = _padded_shape(X, pads)

    def work(part):
        dw, grad = np.zeros((k, fh, fw)), None
        for n0, m, r0, rows_out, buf in _block_views(X, pads, part):
            size = buf.size
            if grad is None or grad.size < size:
                grad = np.empty(size)
            flat = buf.reshape(-1)
            length = ((m - 1) * buf.shape[1] + rows_out - 1) * wp + out_w
            g3 = grad[:size].reshape(buf.shape)
            g3.fill(0.0)  # the columns past W' and the rows past each image's H' stay zero
            for c in range(k):
                g3[:, :rows_out, :out_w] = dA[n0 : n0 + m, c, r0 : r0 + rows_out]
                g = grad[:length]
                for i in range(fh):
                    for j in range(fw):
                        dw[c, i, j] += _dot(g, flat[i * wp + j : i * wp + j + length])
        return dw

    return sum(_run(work, _plan(X, pads, fh, out_h, budget=BLOCK_PIXELS), dA.size))


def _dot(a: np.ndarray, b: np.ndarray, piece: int = 8192) -> float:
    """``a @ b`` for 1-D arrays, in pieces short enough that BLAS stays on one thread.

    OpenBLAS splits a dot product longer than 10,000 elements over threads,
    which costs more than it saves for data already in cache.
    """
    if a.size <= piece:
        return float(np.dot(a, b))
    return float(sum(np.dot(a[s : s + piece], b[s : s + piece]) for s in range(0, a.size, piece)))
