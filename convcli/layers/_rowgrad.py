"""The channels backward for stride 1 with more kernels than channels: BLAS on shifted rows of dA (numpy only, private).

:func:`convcli.layers.conv.conv_backward` sends here the layers that
:func:`suits` (the first layer of a net: few channels ``C``, more kernels
``K``), and everything else to :func:`convcli.layers._channels.backward`.
Shapes are those of :mod:`convcli.layers._channels`: images ``X`` ``(N, C, H,
W)``, kernels ``w`` ``(K, C/g, Fh, Fw)`` for ``g`` groups, upstream gradient
``dA`` ``(N, K, H', W')``, zero ``pads`` giving the padded image ``Xp`` of
``(Hp, Wp)``, dilations ``(dh, dw)``, stride 1 (so ``W' = Wp - dw*(Fw-1)``).

The idea: lay each image's ``dA`` out in lines of the padded width ``Wp``
(the last ``Wp - W'`` columns zero, ``dw*(Fw-1)`` zeros in front), so that
``line[k, y*Wp + x] = dA[k, y, x]``.  Shifted right by ``j*dw`` numbers, the
line reads ``dA[k, y, v - j*dw]`` at ``q = y*Wp + v``, or a zero where the
window hangs over the row's edge (the overhang lands in the zero columns,
never on another row).  One contiguous copy per kernel tap column ``j``
gives ``shifted[(k, j), q]``, ``K*Fw`` rows, and with it both gradients are
BLAS products, per image and group:

- ``Z = W2 @ shifted`` with ``W2[(i, c), (k, j)] = w[k, c, i, j]`` is what
  kernel row ``i`` adds to the padded gradient ``dXp`` row ``y + i*dh``:
  ``dXp[c, (y + i*dh)*Wp + v] += Z[(i, c), y*Wp + v]``.  BLAS writes ``Z``
  with its rows spaced so that these are ``Fh`` sums of whole blocks
  (:func:`_add_to_dX`), not a scatter of ``Fh*Fw`` taps;
- ``dw[k, c, i, j] = sum_q shifted[(k, j), q] * Xp[c, (y + i*dh)*Wp + v]``:
  the right factor is ``Fh`` contiguous slices of each channel of ``Xp``
  (``C*Fh`` rows), so ``dw`` (transposed) is ``rows @ shifted.T``.

Per output pixel this copies ``K*Fw`` numbers and adds ``C*Fh``, where the
transposed correlation copies ``K*Fh*Fw`` and the scatter writes and adds
``C*Fh*Fw`` each; the products do about ``Wp/W'`` times the multiply-adds of
the plain sums (the zero columns).  The small factor of both products
(``C/g*Fh`` rows) is padded with zero rows to a multiple of :data:`BLOCK`:
OpenBLAS's double kernels work on blocks of 4 x 8, and a 15-row product
takes about a third longer than a 16-row one.  Chunks, threads and kept buffers are
those of :mod:`convcli.layers._channels`.
"""

from __future__ import annotations

import numpy as np

from convcli.layers import _channels

#: The small factor's rows are padded with zeros to a multiple of this (see the module docstring).
BLOCK = 8
#: Numbers per chunk of whole images: 4 MiB, as before :data:`._channels.IMAGES_BUDGET` (measured: each of
#: these chunks does more numpy calls than a forward chunk, and smaller chunks were slower).
IMAGES_BUDGET = 1 << 19


def suits(channels: int, w_shape, strides) -> bool:
    """Whether this path takes the backward: stride 1, more kernels than channels, and less memory moved.

    With ``K <= C`` the transposed correlation of :mod:`._channels` is as
    good and proven on large layers; this path is taken where it moves less
    memory than the scatter (``K*Fw + C*Fh < 2*C*Fh*Fw`` numbers per pixel).
    """
    k, _, fh, fw = w_shape
    return tuple(strides) == (1, 1) and k > channels and k * fw + channels * fh < 2 * channels * fh * fw


def backward(X, w, dA, pads, strides, dilations, groups: int, bias: bool):
    """``(dX, dw, db)`` with zero ``pads``, called and answering as :func:`convcli.layers._channels.backward`.

    ``strides`` must be ``(1, 1)`` (:func:`suits`).  ``db`` is None without ``bias``.
    """
    if tuple(strides) != (1, 1):
        raise ValueError(f"the shifted-rows backward needs stride 1; got {strides}")
    n, c, H, W = X.shape
    k, cg, fh, fw = w.shape
    kg, (dh, dwid), ((top, bottom), (left, right)) = k // groups, dilations, pads
    Hp, Wp = H + top + bottom, W + left + right
    oh, ow = dA.shape[2:]
    m = cg * fh
    height = -(-m // BLOCK) * BLOCK  # rows of W2 and of `rows`, m of them used
    Xp = np.pad(X, ((0, 0), (0, 0), (top, bottom), (left, right))) if top or bottom or left or right else X
    Xp = np.ascontiguousarray(Xp).reshape(n, c, Hp * Wp)
    dA = np.ascontiguousarray(dA)
    W2 = np.zeros((groups, height, kg * fw))  # W2[g, (i, c), (k, j)] = w[g*K/g + k, c, i, j]; rows past m stay zero
    W2[:, :m] = w.reshape(groups, kg, cg, fh, fw).transpose(0, 3, 2, 1, 4).reshape(groups, m, kg * fw)
    dXp = np.zeros((n, c, Hp * Wp))

    def work(part, scratch):
        total = np.zeros((groups, height, kg * fw))
        for n0, n1, r0, r1 in part:
            nn, P = n1 - n0, (r1 - r0) * Wp
            shifted = _shifted(dA[n0:n1, :, r0:r1], dwid, fw, Wp, scratch).reshape(nn, groups, kg * fw, P)
            _add_to_dX(dXp[n0:n1].reshape(nn, groups, cg, Hp * Wp), W2, shifted, r0 * Wp, fh, dh * Wp, scratch)
            rows = scratch(nn * groups * height * P, "rows").reshape(nn, groups, height, P)
            rows[:, :, m:] = 0.0  # the buffer may hold anything (denormals would slow BLAS down)
            line = Hp * Wp  # rows[(c, i), q] = Xp[c, (r0 + i*dh)*Wp + q]
            starts = (nn, groups, cg, fh, P), (c * line, cg * line, line, dh * Wp, 1)
            rows[:, :, :m].reshape(starts[0])[...] = _channels._view(Xp.reshape(-1), (n0 * c * Hp + r0) * Wp, *starts)
            total += np.matmul(rows, shifted.transpose(0, 1, 3, 2)).sum(axis=0)
        return total

    plan = _channels.chunks(n, (oh, Wp), max(k * fw, groups * height), images_budget=IMAGES_BUDGET)
    total = sum(_channels._run(_channels._working(work), plan, 2 * dA.size * cg * fh * fw, whole_images=True))
    dw = total[:, :m].reshape(groups, cg, fh, kg, fw).transpose(0, 3, 1, 2, 4).reshape(w.shape)
    dX = dXp.reshape(n, c, Hp, Wp)[:, :, top : top + H, left : left + W]
    return dX, dw, (dA.sum(axis=(0, 2, 3)) if bias else None)


def _add_to_dX(lines: np.ndarray, W2: np.ndarray, shifted: np.ndarray, start: int, fh: int, row: int, scratch) -> None:
    """Add ``W2 @ shifted`` onto ``lines[..., start:]``, kernel row ``i`` moved down by ``i*row`` numbers.

    ``lines`` is ``(n, g, C/g, Hp*Wp)``, the padded gradient of the chunk's
    images, flat; ``W2`` is ``(g, rows, K/g*Fw)`` with its rows ordered
    ``(i, c)`` (zero rows past ``C/g*Fh``); ``shifted`` is ``(n, g,
    K/g*Fw, P)``.  BLAS writes the rows of each product ``row`` numbers
    apart more than they are long -- row ``(i, c)`` at ``(i*C/g + c)*L`` with
    ``L = P + (Fh-1)*row`` -- and the gaps are zero, so the block of kernel
    row ``i``, ``C/g*L`` numbers from ``i*(C/g*L - row)``, is that row's
    contribution to ``C/g`` lines of length ``L`` already in place: ``Fh``
    additions of whole blocks instead of ``Fh*C/g`` of rows.
    """
    nn, groups, height, P = shifted.shape[0], shifted.shape[1], W2.shape[1], shifted.shape[3]
    cg = lines.shape[2]
    m, L = cg * fh, P + (fh - 1) * row
    step = cg * L - row  # from the block of kernel row i to that of row i + 1
    region = max((fh - 1) * step + cg * L, height * L)  # per image and group
    buf = scratch(nn * groups * region, "z")
    outer = (groups * region, region)
    _channels._view(buf, P, (nn, groups, m, L - P), outer + (L, 1))[...] = 0.0  # the gaps
    np.matmul(W2, shifted, out=_channels._view(buf, 0, (nn, groups, height, P), outer + (L, 1)))
    if L == lines.shape[3]:  # whole images (start 0): each image's lines are one line, written once
        blocks = _channels._view(buf, 0, (nn, groups, fh, cg * L), outer + (step, 1))
        np.add.reduce(blocks, axis=2, out=lines.reshape(nn, groups, cg * L))
        return
    blocks = _channels._view(buf, 0, (nn, groups, fh, cg, L), outer + (step, L, 1))
    for i in range(fh):
        lines[..., start : start + L] += blocks[:, :, i]


def _shifted(dA: np.ndarray, dwid: int, fw: int, Wp: int, scratch) -> np.ndarray:
    """``shifted[m, k, j, y*Wp + v] = dA[m, k, y, v - j*dwid]`` (zero off the row), shape ``(n, K, Fw, rows*Wp)``.

    ``dA`` is first laid out in lines of ``Wp`` (zeros past ``W'``) after
    ``lead = (Fw-1)*dwid`` zeros; row ``j`` is then the line read from
    ``lead - j*dwid``: one copy for all rows.  (Copying row 0 into the others
    in place would be shorter to write, but numpy copies a source that
    overlaps its destination into a temporary first.)
    """
    nn, k, rows, ow = dA.shape
    P, lead = rows * Wp, (fw - 1) * dwid
    line = scratch(nn * k * (lead + P), "line").reshape(nn, k, lead + P)
    line[:, :, :lead] = 0.0
    grid = line[:, :, lead:].reshape(nn, k, rows, Wp)
    grid[..., :ow] = dA
    grid[..., ow:] = 0.0
    shifted = scratch(nn * k * fw * P, "shifted").reshape(nn, k, fw, P)
    shifted[...] = _channels._view(line.reshape(-1), lead, (nn, k, fw, P), (k * (lead + P), lead + P, -dwid, 1))
    return shifted
