"""The Conv layer over channels, groups and dilation: windows x BLAS in bounded chunks (numpy only, private).

:func:`convcli.layers.conv_forward` sends its 4-D forms here (and any form
with ``dilation`` or ``groups`` other than 1).  Images ``X`` have shape
``(N, C, H, W)``, float64; kernels ``w`` have shape ``(K, C/g, Fh, Fw)`` for
``g`` groups, already flipped when ``flip=True``; ``pads`` are zero padding
(other borders are padded in ``conv`` first and arrive with zero ``pads``).

:func:`correlate` cuts the work into chunks of whole images (in nearly
equal shares for the threads), or of output rows of one image, so that the
window matrix of a chunk holds about :data:`COLS_BUDGET` numbers.  For each
chunk the windows of all ``C`` channels are copied, in one strided copy
straight from the unpadded images (the zero border is written, never
padded), into a matrix ``cols`` of shape ``(n, g, C/g*Fh*Fw, pixels)``: the
windows of image ``m``'s output pixels, column by column.  A batched BLAS
product per group, ``(K/g, C/g*Fh*Fw) @ cols[m, g]``, writes the chunk's
outputs in place in ``A`` (no transposing copy); a bias rides along as one
more row of ones in ``cols``.  Large jobs split their chunks over
:data:`THREADS` threads with one-thread BLAS, as torch does
(:mod:`convcli.layers._threads`); each thread owns its buffers and writes its
own outputs.

The backward pass (:func:`backward`) is BLAS too: ``dw`` (and ``db``, from
the row of ones) is ``dA @ cols.T`` summed over chunks, and ``dX`` is either
the same correlation run on ``dA`` with the kernels rotated and their channel
axes swapped (a transposed convolution, for stride 1), or ``w.T @ dA`` added
back onto the grid tap by tap.  Stride-1 layers with more kernels than
channels, where both of those move more memory, are sent by ``conv`` to
:mod:`convcli.layers._rowgrad` instead, which shares this module's chunks,
threads and buffers.  Python loops run over chunks and kernel taps only,
never over channels or pixels.
"""

from __future__ import annotations

import threading

import numpy as np

from convcli.layers import _threads

#: Numbers in one chunk's window matrix (4 MiB of float64; measured best between 256 KiB and 16 MiB).
COLS_BUDGET = 1 << 19
#: Numbers in the window matrix of a chunk of whole images (2 MiB; measured best between 512 KiB and 4 MiB).
IMAGES_BUDGET = 1 << 18
#: Threads for jobs of at least :data:`PARALLEL_WORK` multiply-adds.
THREADS = _threads.THREADS
PARALLEL_WORK = 1 << 24


def output_hw(padded_hw, kernel_hw, strides, dilations) -> "tuple[int, int]":
    """``(Hp - d*(F-1) - 1) // s + 1`` on each axis."""
    return tuple((p - d * (f - 1) - 1) // s + 1 for p, f, s, d in zip(padded_hw, kernel_hw, strides, dilations))


def chunks(n_images: int, out_hw, column: int, budget: "int | None" = None,
           images_budget: "int | None" = None) -> "list[tuple[int, int, int, int]]":
    """``(n0, n1, r0, r1)``: images ``n0:n1`` and output rows ``r0:r1`` whose windows fit ``budget`` numbers.

    ``column`` is the numbers per output pixel that a chunk holds at once: the
    larger of one window (``C*Fh*Fw``) and the kernels (``K``).  Whole images
    go together when one image fits, at most ``images_budget`` (default
    :data:`IMAGES_BUDGET`) numbers of them (so that a chunk's windows are mostly still in cache when
    its product reads them), in chunks whose sizes differ by one at most, the
    larger first, and whose number shares them evenly among the :data:`THREADS`
    threads (:func:`_balanced`); otherwise one image is cut into bands of rows.
    """
    budget = COLS_BUDGET if budget is None else budget
    images_budget = min(budget, IMAGES_BUDGET if images_budget is None else images_budget)
    oh, ow = out_hw
    per_image = column * oh * ow
    if per_image <= budget:
        count = _balanced(n_images, -(-n_images // max(1, images_budget // max(per_image, 1))))
        larger, bounds = n_images % count if count else 0, [0]
        for i in range(count):  # the larger chunks first, so that chunks of one size come one after another
            bounds.append(bounds[-1] + n_images // count + (i < larger))
        return [(n0, n1, 0, oh) for n0, n1 in zip(bounds, bounds[1:])]
    rows = max(1, budget // max(column * ow, 1))
    return [(n, n + 1, r0, min(r0 + rows, oh)) for n in range(n_images) for r0 in range(0, oh, rows)]


# ----------------------------------------------------------------------------- windows


def _balanced(n_images: int, count: int) -> int:
    """The number of chunks, from ``count`` up to twice it, that shares ``n_images`` most evenly among the threads.

    The threads take chunks from one queue, so the longest thread does about
    ``count / THREADS`` chunks of the largest size; the count (a multiple of
    :data:`THREADS`, at most ``n_images``) that makes that least is taken, the
    smallest such on ties.  64 images at 7 a chunk give 16 chunks of 4, not 10 of 6 or 7.
    """
    if n_images <= 0:
        return 0
    best, best_load = None, None
    for candidate in range(-(-count // THREADS) * THREADS, 2 * count + THREADS, THREADS):
        candidate = min(candidate, n_images)
        load = -(-n_images // candidate) * -(-candidate // THREADS)
        if best_load is None or load < best_load:
            best, best_load = candidate, load
    return best


def _fill(windows: np.ndarray, X: np.ndarray, chunk, kernel_hw, pads, strides, dilations) -> None:
    """Copy the windows of a chunk into ``windows`` of shape ``(n, g, C/g, Fh, Fw, rows, W')``.

    Tap ``(i, j)`` of output pixel ``(y, x)`` reads ``X[y*sh + i*dh - top, x*sw + j*dw - left]``.
    The rows the chunk reads are first copied into a zero-bordered band (or
    read in place when no border is needed); then one strided view of all its
    windows is copied in a single numpy call, so the Python work per chunk
    does not grow with the number of taps.
    """
    n0, n1, r0, r1 = chunk
    n, g, cg, fh, fw, rows, ow = windows.shape
    (top, bottom), (left, right) = pads
    (sh, sw), (dh, dw) = strides, dilations
    H, W = X.shape[2:]
    span_h, span_w = (fh - 1) * dh + 1, (fw - 1) * dw + 1
    y0, y1 = r0 * sh - top, (r1 - 1) * sh + span_h - top  # the input rows the chunk reads (may overhang)
    x1 = (ow - 1) * sw + span_w - left
    if y0 >= 0 and y1 <= H and left == 0 and x1 <= W:
        band = X[n0:n1, :, y0:y1]
    else:
        band = np.zeros((n, X.shape[1], y1 - y0, max(x1, W) + left))
        a, b = max(y0, 0), min(y1, H)
        if a < b:  # a band of rows may lie wholly in the padding
            band[:, :, a - y0 : b - y0, left : left + W] = X[n0:n1, :, a:b]
    view = np.lib.stride_tricks.sliding_window_view(band, (span_h, span_w), axis=(2, 3))
    view = view[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :rows, :ow]  # (n, C, rows, W', Fh, Fw)
    windows[...] = view.transpose(0, 1, 4, 5, 2, 3).reshape(n, g, cg, fh, fw, rows, ow)


def image_windows(X: np.ndarray, kernel_hw, pads, strides, dilations, out_hw, groups: int) -> np.ndarray:
    """The windows of every image, a view ``(N, g, C/g, Fh, Fw, H', W')`` of ``X`` (or of a zero-padded copy).

    For plans of whole images (:func:`chunks`): each chunk's windows are then
    one copy from this view, with none of :func:`_fill`'s per-chunk set-up.
    """
    n, c, H, W = X.shape
    (top, bottom), (left, right) = pads
    if top or bottom or left or right:
        padded = np.zeros((n, c, H + top + bottom, W + left + right))
        padded[:, :, top : top + H, left : left + W] = X
        X = padded
    (fh, fw), (sh, sw), (dh, dw), (oh, ow) = kernel_hw, strides, dilations, out_hw
    s_n, s_c, s_h, s_w = X.strides  # tap (i, j) of output pixel (y, x) reads X[y*sh + i*dh, x*sw + j*dw]
    shape = (n, groups, c // groups, fh, fw, oh, ow)
    steps = (s_n, c // groups * s_c, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w)
    if not X.flags.c_contiguous:
        return np.lib.stride_tricks.as_strided(X, shape, steps, writeable=False)
    view = np.ndarray(shape, X.dtype, X, 0, steps)  # as as_strided does, without its Python set-up
    view.flags.writeable = False
    return view


def _view(buf: np.ndarray, offset: int, shape, strides) -> np.ndarray:
    """A writeable view of the 1-D ``buf`` from ``offset``, ``strides`` counted in numbers; checked to fit."""
    if 0 in shape:
        return buf[:0].reshape(shape)
    first = offset + sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    last = offset + sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    if first < 0 or last >= buf.size:
        raise ValueError(f"view {shape} / {strides} from {offset} does not fit a buffer of {buf.size}")
    unit = buf.itemsize
    return np.ndarray(shape, buf.dtype, buf, offset * unit, tuple(s * unit for s in strides))


def _run(work, plan: list, flops: int, *, whole_images: bool = False) -> list:
    """``work(chunks)`` over ``plan`` on :data:`THREADS` threads for large jobs (:func:`_threads.parallel`).

    With ``whole_images`` a thread takes all the chunks of an image at once,
    so threads that add into an output never share an image.
    """
    if flops < PARALLEL_WORK or THREADS <= 1:
        return [work(plan)]
    if whole_images:
        units = {}
        for chunk in plan:
            units.setdefault(chunk[0], []).append(chunk)
        return _threads.parallel(work, list(units.values()), THREADS)
    return _threads.parallel(work, [[chunk] for chunk in plan], THREADS)


_local = threading.local()


class _Scratch:
    """This thread's kept buffers (``cols``, ``dcols``, ...), taken by one job's work for its duration.

    Fresh memory costs a page fault per 4 KiB on first touch; a kept buffer
    (a few per thread, each up to about :data:`COLS_BUDGET` numbers) does not.
    While a job works, its thread's buffers are out of :data:`_local`, so a
    nested or re-entrant job on that thread gets fresh ones instead of writing
    into buffers still being read; :meth:`close` puts them back.  Nothing
    handed to a caller is ever a view of these buffers.
    """

    def __init__(self):
        self.kept = getattr(_local, "kept", None) or {}
        _local.kept = {}

    def __call__(self, size: int, slot: str) -> np.ndarray:
        """A buffer named ``slot`` of ``size`` numbers (contents undefined)."""
        buffer = self.kept.get(slot)
        if buffer is None or buffer.size < size:
            buffer = np.empty(size)
            if size <= 2 * COLS_BUDGET:  # an outsize chunk (one very wide row) is not kept
                self.kept[slot] = buffer
        return buffer[:size]

    def close(self) -> None:
        _local.kept = self.kept


def _working(work):
    """``work(part)`` given this thread's :class:`_Scratch` as ``work(part, scratch)``, put back afterwards."""

    def run(part):
        scratch = _Scratch()
        try:
            return work(part, scratch)
        finally:
            scratch.close()

    return run


class _Columns:
    """A reusable window buffer for the chunks of one job, ``(n, g, C/g*Fh*Fw [+1], pixels)``.

    ``cols[m, g]`` holds, column by column, the windows of the chunk's output
    pixels of image ``m`` in group ``g``, so a batched BLAS product
    ``kernels @ cols`` is laid out as the outputs ``(n, K, pixels)`` already.
    With ``ones`` the last row of each group is all ones: a bias column in the
    kernel matrix then adds the bias inside the product.
    """

    def __init__(self, X, kernel_hw, groups, pads, strides, dilations, ow, ones, scratch, whole=None):
        self.X, self.kernel_hw, self.groups, self.ones = X, tuple(kernel_hw), groups, ones
        self.pads, self.strides, self.dilations, self.ow = pads, strides, dilations, ow
        self.rows = (X.shape[1] // groups) * kernel_hw[0] * kernel_hw[1]
        self.scratch, self.whole = scratch, whole  # whole: image_windows(X, ...) when chunks are whole images
        self.shape = None  # (images, output rows) of the chunks the views below are laid out for

    def __call__(self, chunk) -> np.ndarray:
        n0, n1, r0, r1 = chunk
        if (n1 - n0, r1 - r0) != self.shape:
            self._lay_out(n1 - n0, r1 - r0)
        if self.whole is not None and (r0, r1) == (0, self.whole.shape[-2]):
            self.windows[...] = self.whole[n0:n1]
        else:
            _fill(self.windows, self.X, chunk, self.kernel_hw, self.pads, self.strides, self.dilations)
        return self.cols

    def _lay_out(self, n: int, rows: int) -> None:
        """The buffer's views for chunks of ``n`` images and ``rows`` output rows (and its bias row of ones)."""
        self.shape, height = (n, rows), self.rows + self.ones
        self.cols = self.windows = None  # an outsize (unkept) buffer goes before the next is made
        self.cols = self.scratch(n * self.groups * height * rows * self.ow, "cols").reshape(n, self.groups, height, -1)
        if self.ones:  # for every layout: the buffer may be fresh memory, or another layout's (one row per group)
            self.cols[:, :, -1] = 1.0
        cg = self.X.shape[1] // self.groups
        self.windows = self.cols[:, :, : self.rows].reshape((n, self.groups, cg) + self.kernel_hw + (rows, self.ow))


def _by_group(a: np.ndarray, chunk, groups: int) -> np.ndarray:
    """``a[n0:n1, :, r0:r1]`` of shape ``(n, K, rows, W')`` as a view ``(n, g, K/g, rows*W')``.

    A view because a chunk is whole images or rows of one image
    (:func:`chunks`); anything else is a bug, not a silent copy.
    """
    n0, n1, r0, r1 = chunk
    view = a[n0:n1, :, r0:r1].reshape(n1 - n0, groups, a.shape[1] // groups, -1)
    if not np.may_share_memory(view, a):
        raise RuntimeError(f"chunk {chunk} of an array of shape {a.shape} is not a view")
    return view


# ----------------------------------------------------------------------------- forward


def correlate(X, w, b, pads, strides, dilations, groups: int) -> np.ndarray:
    """Cross-correlate images ``(N, C, H, W)`` with kernels ``(K, C/g, Fh, Fw)`` plus bias: ``(N, K, H', W')``."""
    n, c, H, W = X.shape
    k, cg, fh, fw = w.shape
    padded = (H + sum(pads[0]), W + sum(pads[1]))
    oh, ow = output_hw(padded, (fh, fw), strides, dilations)
    kernels = w.reshape(groups, k // groups, cg * fh * fw)
    if b is not None:  # the bias as one more column, met by the row of ones
        kernels = np.concatenate([kernels, np.broadcast_to(b, (k,)).reshape(groups, k // groups, 1)], axis=2)
    kernels = np.ascontiguousarray(kernels)
    A = np.empty((n, k, oh, ow))
    plan = chunks(n, (oh, ow), max(c * fh * fw, k))
    whole = _whole(X, plan, (fh, fw), pads, strides, dilations, (oh, ow), groups)

    def work(part, scratch):
        columns = _Columns(X, (fh, fw), groups, pads, strides, dilations, ow, b is not None, scratch, whole)
        for chunk in part:
            cols = columns(chunk)
            np.matmul(kernels, cols, out=_by_group(A, chunk, groups))  # BLAS writes the outputs in place

    _run(_working(work), plan, A.size * cg * fh * fw)
    return A


def _whole(X, plan, kernel_hw, pads, strides, dilations, out_hw, groups) -> "np.ndarray | None":
    """:func:`image_windows` when ``plan`` is made of whole images, else None."""
    if plan and plan[0][2:] == (0, out_hw[0]):
        return image_windows(X, kernel_hw, pads, strides, dilations, out_hw, groups)
    return None


# ----------------------------------------------------------------------------- backward


def backward(X, w, dA, pads, strides, dilations, groups: int, bias: bool):
    """``(dX, dw, db)`` for :func:`correlate` with zero ``pads``; ``db`` is None without ``bias``.

    ``dw`` (and ``db``, from the row of ones) is ``dA @ cols.T`` summed over
    the chunks.  ``dX`` has ``X``'s shape: for stride 1 with no more kernels
    than channels it is the correlation of ``dA`` with the kernels rotated by
    180 degrees and their ``K``/``C`` axes swapped (per group), padded so that
    pixel ``(u, v)`` meets every window that read it; otherwise each chunk's
    ``dcols = w.T @ dA`` is added back onto the grid tap by tap, in the same
    pass as ``dw``.  (The first copies ``K*Fh*Fw`` rows of windows, the second
    adds ``C*Fh*Fw``: each is used where it moves less memory; stride 1 with
    more kernels than channels usually goes to :mod:`._rowgrad` before this.)
    """
    n, c = X.shape[:2]
    k, cg, fh, fw = w.shape
    oh, ow = dA.shape[2:]
    dA = np.ascontiguousarray(dA)  # chunks of it are views
    spans = ((fh - 1) * dilations[0], (fw - 1) * dilations[1])
    back_pads = tuple((s - p[0], s - p[1]) for s, p in zip(spans, pads))
    transposed = tuple(strides) == (1, 1) and min(min(p) for p in back_pads) >= 0 and k <= cg * groups
    scatter = None if transposed else _Scatter(X.shape, w, pads, strides, dilations, groups)
    plan = chunks(n, (oh, ow), max(c * fh * fw, k))
    whole = _whole(X, plan, (fh, fw), pads, strides, dilations, (oh, ow), groups)

    def work(part, scratch):
        columns = _Columns(X, (fh, fw), groups, pads, strides, dilations, ow, bias, scratch, whole)
        total = np.zeros((groups, k // groups, cg * fh * fw + bias))
        for chunk in part:
            dAg = _by_group(dA, chunk, groups)
            total += np.matmul(dAg, columns(chunk).transpose(0, 1, 3, 2)).sum(axis=0)
            if scatter is not None:
                scatter.add(chunk, dAg, ow, scratch)
        return total

    total = sum(_run(_working(work), plan, dA.size * cg * fh * fw, whole_images=not transposed))
    dw = total[:, :, : cg * fh * fw].reshape(w.shape)
    db = total[:, :, -1].reshape(k) if bias else None
    if transposed:
        rotated = w[:, :, ::-1, ::-1].reshape(groups, k // groups, cg, fh, fw).transpose(0, 2, 1, 3, 4)
        rotated = np.ascontiguousarray(rotated).reshape(groups * cg, k // groups, fh, fw)
        return correlate(dA, rotated, None, back_pads, (1, 1), dilations, groups), dw, db
    return scatter.result(), dw, db


class _Scatter:
    """``dX`` built chunk by chunk: ``dcols = w.T @ dA`` added back onto the zero-padded grid, tap by tap."""

    def __init__(self, x_shape, w, pads, strides, dilations, groups):
        n, c, H, W = x_shape
        k, cg, fh, fw = w.shape
        self.kernels_t = np.ascontiguousarray(w.reshape(groups, k // groups, cg * fh * fw).transpose(0, 2, 1))
        self.shape, self.kernel_hw, self.pads = (c, fh, fw), (fh, fw), pads
        self.strides, self.dilations = strides, dilations
        self.dXp = np.zeros((n, c, H + sum(pads[0]), W + sum(pads[1])))

    def add(self, chunk, dAg: np.ndarray, ow: int, scratch: _Scratch) -> None:
        """Add the windows of ``chunk``, given its upstream gradient ``dAg`` of shape ``(n, g, K/g, pixels)``."""
        n0, n1, r0, r1 = chunk
        (sh, sw), (dh, dw) = self.strides, self.dilations
        shape = dAg.shape[:2] + self.kernels_t.shape[1:2] + dAg.shape[3:]  # (n, g, C/g*Fh*Fw, pixels)
        dcols = np.matmul(self.kernels_t, dAg, out=scratch(int(np.prod(shape)), "dcols").reshape(shape))
        dcols = dcols.reshape((n1 - n0,) + self.shape + (r1 - r0, ow))
        block = self.dXp[n0:n1]
        for i in range(self.kernel_hw[0]):
            y0 = r0 * sh + i * dh
            for j in range(self.kernel_hw[1]):
                view = block[:, :, y0 : y0 + (r1 - r0 - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw]
                view += dcols[:, :, i, j]

    def result(self) -> np.ndarray:
        """``dX``: the padded grid cropped to the image."""
        (top, _), (left, _) = self.pads
        H, W = self.dXp.shape[2] - sum(self.pads[0]), self.dXp.shape[3] - sum(self.pads[1])
        return self.dXp[:, :, top : top + H, left : left + W]
