"""The Conv layer over channels, groups and dilation: windows x BLAS in bounded chunks (numpy only, private).

:func:`convcli.layers.conv_forward` sends its 4-D forms here (and any form
with ``dilation`` other than 1).  Images ``Xp`` arrive already padded, shape
``(N, C, Hp, Wp)``; kernels ``w`` have shape ``(K, C/g, Fh, Fw)`` for ``g``
groups, already flipped when ``flip=True``.

The work is cut into chunks of whole images, or of output rows of one image,
so that the window matrix of a chunk holds about :data:`COLS_BUDGET` numbers.
For each chunk the windows of all ``C`` channels are copied, one kernel tap
at a time, into a matrix ``cols`` of shape ``(g, C/g*Fh*Fw, pixels)`` per
image, and one stacked BLAS product ``(g, K/g, C/g*Fh*Fw) @ cols`` writes the
chunk's outputs in place.  The backward pass builds the same ``cols`` and
runs the chain rule through BLAS too: ``dw += dA @ cols.T`` and
``dcols = w.T @ dA``, whose taps are added back onto the padded grid.  Python
loops run over chunks and kernel taps only, never over channels or pixels.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

#: Numbers in one chunk's window matrix (2 MiB of float64): small enough to stay in cache.
COLS_BUDGET = 1 << 18


def output_hw(padded_hw, kernel_hw, strides, dilations) -> "tuple[int, int]":
    """``(Hp - d*(F-1) - 1) // s + 1`` on each axis."""
    return tuple((p - d * (f - 1) - 1) // s + 1 for p, f, s, d in zip(padded_hw, kernel_hw, strides, dilations))


def chunks(n_images: int, out_hw, column: int, budget: int = COLS_BUDGET) -> Iterator["tuple[int, int, int, int]"]:
    """``(n0, n1, r0, r1)``: images ``n0:n1`` and output rows ``r0:r1`` whose windows fit ``budget`` numbers.

    ``column`` is the length of one window (``C*Fh*Fw``).  Whole images go
    together when one image fits; otherwise one image is cut into bands of rows.
    """
    oh, ow = out_hw
    per_image = column * oh * ow
    if per_image <= budget:
        step = max(1, budget // max(per_image, 1))
        for n0 in range(0, n_images, step):
            yield n0, min(n0 + step, n_images), 0, oh
        return
    rows = max(1, budget // max(column * ow, 1))
    for n in range(n_images):
        for r0 in range(0, oh, rows):
            yield n, n + 1, r0, min(r0 + rows, oh)


def _tap_view(Xp: np.ndarray, i: int, j: int, r0: int, r1: int, ow: int, strides, dilations) -> np.ndarray:
    """The pixels kernel tap ``(i, j)`` meets for output rows ``r0:r1``: a view ``(n, C, r1-r0, ow)``."""
    (sh, sw), (dh, dw) = strides, dilations
    y0, x0 = r0 * sh + i * dh, j * dw
    return Xp[..., y0 : y0 + (r1 - r0 - 1) * sh + 1 : sh, x0 : x0 + (ow - 1) * sw + 1 : sw]


def _columns(Xp, kernel_hw, chunk, ow, strides, dilations, groups) -> np.ndarray:
    """The windows of a chunk as ``(n, g, C/g*Fh*Fw, pixels)`` float64 (copied one tap at a time)."""
    n0, n1, r0, r1 = chunk
    fh, fw = kernel_hw
    c = Xp.shape[1]
    cols = np.empty((n1 - n0, c, fh, fw, r1 - r0, ow))
    block = Xp[n0:n1]
    for i in range(fh):
        for j in range(fw):
            cols[:, :, i, j] = _tap_view(block, i, j, r0, r1, ow, strides, dilations)
    return cols.reshape(n1 - n0, groups, (c // groups) * fh * fw, (r1 - r0) * ow)


def _out_view(A: np.ndarray, chunk, groups: int) -> "tuple[np.ndarray, bool]":
    """The chunk's part of ``A`` as ``(n, g, K/g, pixels)``, and whether it is a view (not a copy)."""
    n0, n1, r0, r1 = chunk
    part = A[n0:n1, :, r0:r1]
    shaped = part.reshape(n1 - n0, groups, A.shape[1] // groups, -1)
    return shaped, np.shares_memory(shaped, A)


def forward(Xp: np.ndarray, w: np.ndarray, strides, dilations, groups: int) -> np.ndarray:
    """Cross-correlate padded images ``(N, C, Hp, Wp)`` with kernels ``(K, C/g, Fh, Fw)``: ``(N, K, H', W')``."""
    n, c = Xp.shape[:2]
    k, cg, fh, fw = w.shape
    oh, ow = output_hw(Xp.shape[2:], (fh, fw), strides, dilations)
    W = w.reshape(groups, k // groups, cg * fh * fw)
    A = np.empty((n, k, oh, ow))
    for chunk in chunks(n, (oh, ow), c * fh * fw):
        cols = _columns(Xp, (fh, fw), chunk, ow, strides, dilations, groups)
        target, in_place = _out_view(A, chunk, groups)
        if in_place:
            np.matmul(W, cols, out=target)
        else:
            n0, n1, r0, r1 = chunk
            A[n0:n1, :, r0:r1] = np.matmul(W, cols).reshape(n1 - n0, k, r1 - r0, ow)
    return A


def backward(Xp: np.ndarray, w: np.ndarray, dA: np.ndarray, strides, dilations, groups: int):
    """``(dXp, dw)`` for :func:`forward`: the gradient on the padded grid and the kernels' gradient."""
    n, c = Xp.shape[:2]
    k, cg, fh, fw = w.shape
    oh, ow = dA.shape[2:]
    W = w.reshape(groups, k // groups, cg * fh * fw)
    WT = np.ascontiguousarray(W.transpose(0, 2, 1))
    dXp = np.zeros(Xp.shape)
    dW = np.zeros_like(W)
    for chunk in chunks(n, (oh, ow), c * fh * fw):
        n0, n1, r0, r1 = chunk
        cols = _columns(Xp, (fh, fw), chunk, ow, strides, dilations, groups)
        dAc = dA[n0:n1, :, r0:r1].reshape(n1 - n0, groups, k // groups, -1)
        # A = W @ cols for every image, so dW sums dA @ cols.T over the images ...
        dW += np.matmul(dAc, cols.transpose(0, 1, 3, 2)).sum(axis=0)
        # ... and each window's pixels receive W.T @ dA, added back tap by tap
        dcols = np.matmul(WT, dAc).reshape(n1 - n0, c, fh, fw, r1 - r0, ow)
        block = dXp[n0:n1]
        for i in range(fh):
            for j in range(fw):
                _tap_view(block, i, j, r0, r1, ow, strides, dilations)[...] += dcols[:, :, i, j]
    return dXp, dW.reshape(w.shape)
