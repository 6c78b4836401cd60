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
  (:meth:`_Buffers.add_to_dX`), not a scatter of ``Fh*Fw`` taps;
- ``dw[k, c, i, j] = sum_q shifted[(k, j), q] * Xp[c, (y + i*dh)*Wp + v]``:
  the right factor is ``Fh`` contiguous slices of each channel of ``Xp``
  (``C*Fh`` rows), so ``dw`` (transposed) is ``rows @ shifted.T``; with a
  bias, a row of ones among ``rows`` gives ``db`` in the same product.

Per output pixel this copies ``K*Fw`` numbers and adds ``C*Fh``, where the
transposed correlation copies ``K*Fh*Fw`` and the scatter writes and adds
``C*Fh*Fw`` each; the products do about ``Wp/W'`` times the multiply-adds of
the plain sums (the zero columns).  The small factor of both products
(``C/g*Fh`` rows) is padded with zero rows to a multiple of :data:`BLOCK`:
OpenBLAS's double kernels work on blocks of 4 x 8, and a 15-row product
takes about a third longer than a 16-row one.  Chunks, threads and kept buffers are
those of :mod:`convcli.layers._channels`; what stays the same from chunk to
chunk (the zeros around the lines, between BLAS's rows and in the padding
rows) is written once per thread and chunk size (:class:`_Buffers`), so a
chunk costs eight numpy calls, two of them the products.
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

    ``strides`` must be ``(1, 1)`` (:func:`suits`).  ``db`` is None without
    ``bias``; with it, ``db`` comes out of the ``dw`` product when ``rows``
    has a padding row to spare (a row of ones meets ``dA``).
    """
    if tuple(strides) != (1, 1):
        raise ValueError(f"the shifted-rows backward needs stride 1; got {strides}")
    n, c, H, W = X.shape
    k, cg, fh, fw = w.shape
    (top, bottom), (left, right) = pads
    Hp, Wp = H + top + bottom, W + left + right
    oh, ow = dA.shape[2:]
    m = cg * fh
    height = -(-m // BLOCK) * BLOCK  # rows of W2 and of `rows`, m of them used
    ones = bias and height > m  # db from a row of ones in `rows`
    Xp = np.pad(X, ((0, 0), (0, 0), (top, bottom), (left, right))) if top or bottom or left or right else X
    Xp = np.ascontiguousarray(Xp).reshape(-1)
    dA = np.ascontiguousarray(dA)
    W2 = np.zeros((groups, height, k // groups * fw))  # W2[g, (i, c), (k, j)] = w[g*K/g + k, c, i, j]; rows past m zero
    W2[:, :m] = w.reshape(groups, k // groups, cg, fh, fw).transpose(0, 3, 2, 1, 4).reshape(groups, m, -1)
    plan = _channels.chunks(n, (oh, Wp), max(k * fw, groups * height), images_budget=IMAGES_BUDGET)
    whole = bool(plan) and plan[0][2:] == (0, oh)  # chunks of whole images write every number of theirs in dXp once
    dXp = (np.empty if whole else np.zeros)((n, c, Hp * Wp))

    def work(part, scratch):
        total, buffers = np.zeros((groups, height, W2.shape[2])), None
        for n0, n1, r0, r1 in part:
            if buffers is None or buffers.shape != (n1 - n0, r1 - r0):
                buffers = _Buffers((n1 - n0, r1 - r0), X.shape, w.shape, (Hp, Wp), dilations, groups, ones, scratch)
            shifted = buffers.shift(dA[n0:n1, :, r0:r1])
            np.matmul(W2, shifted, out=buffers.z)
            buffers.add_to_dX(dXp[n0:n1].reshape(n1 - n0, groups, cg, Hp * Wp), r0 * Wp)
            np.matmul(buffers.fill_rows(Xp, n0, r0), shifted.transpose(0, 1, 3, 2), out=buffers.products)
            total += buffers.products.sum(axis=0)
        return total

    total = sum(_channels._run(_channels._working(work), plan, 2 * dA.size * cg * fh * fw, whole_images=True))
    dw = total[:, :m].reshape(groups, cg, fh, k // groups, fw).transpose(0, 3, 1, 2, 4).reshape(w.shape)
    dX = dXp.reshape(n, c, Hp, Wp)[:, :, top : top + H, left : left + W]
    if not bias:
        return dX, dw, None
    return dX, dw, (total[:, m].reshape(k, fw)[:, 0].copy() if ones else dA.sum(axis=(0, 2, 3)))


class _Buffers:
    """One thread's buffers, and views of them, for chunks of ``shape = (images, output rows)``.

    Made when a chunk's shape differs from the last one's (equal chunks come
    one after another in a plan, so that is about once per thread and call):
    the parts that stay the same from chunk to chunk -- zeros in front of and
    after each line of ``dA``, the zero gaps between BLAS's rows of ``z``, the
    padding rows of ``rows`` -- are written here, once; each chunk then writes
    only its own numbers.  Shapes as in the module docstring: ``P`` numbers of
    lines per image (``rows*Wp``), ``L = P + (Fh-1)*dh*Wp``.
    """

    def __init__(self, shape, x_shape, w_shape, padded_hw, dilations, groups, ones, scratch):
        (nn, rows), (_, c, _, _), (k, cg, fh, fw), (Hp, Wp) = shape, x_shape, w_shape, padded_hw
        (dh, dwid), kg, m = dilations, k // groups, cg * fh
        height = -(-m // BLOCK) * BLOCK
        P, lead = rows * Wp, (fw - 1) * dwid
        self.shape, self.fh, self.cg, self.row, self.L = shape, fh, cg, dh * Wp, P + (fh - 1) * dh * Wp
        line = scratch(nn * k * (lead + P), "line").reshape(nn, k, lead + P)
        line[:, :, :lead] = 0.0
        self.grid = line[:, :, lead:].reshape(nn, k, rows, Wp)
        self.ow, self.wp = Wp - lead, Wp  # W' (stride 1): the columns past it are the shifts' overhang
        self.grid[..., self.ow :] = 0.0
        # shifted[m, k, j, q] = line[m, k, lead - j*dwid + q]: one copy per chunk
        self.shifted = scratch(nn * k * fw * P, "shifted").reshape(nn, groups, kg * fw, P)
        self.source = _channels._view(line.reshape(-1), lead, (nn, k, fw, P), (k * (lead + P), lead + P, -dwid, 1))
        # z: W2 @ shifted with BLAS's rows spaced (see add_to_dX); the gaps are zero
        L, step = self.L, cg * self.L - self.row
        region = max((fh - 1) * step + cg * L, height * L)  # per image and group
        buf = scratch(nn * groups * region, "z")
        outer = (groups * region, region)
        _channels._view(buf, P, (nn, groups, m, L - P), outer + (L, 1))[...] = 0.0
        self.z = _channels._view(buf, 0, (nn, groups, height, P), outer + (L, 1))
        if L == Hp * Wp:  # whole images: kernel row i's block of C/g lines, summed once
            self.blocks = _channels._view(buf, 0, (nn, groups, fh, cg * L), outer + (step, 1))
        else:
            self.blocks = _channels._view(buf, 0, (nn, groups, fh, cg, L), outer + (step, L, 1))
        # rows[(c, i), q] = Xp[c, (r0 + i*dh)*Wp + q]; rows past m: zeros, or ones that give db
        self.rows = scratch(nn * groups * height * P, "rows").reshape(nn, groups, height, P)
        self.rows[:, :, m:] = 0.0
        if ones:
            self.rows[:, :, m] = 1.0
        line_x = Hp * Wp
        self.rows_layout = (nn, groups, cg, fh, P), (c * line_x, cg * line_x, line_x, dh * Wp, 1)
        self.products = scratch(nn * groups * height * kg * fw, "products").reshape(nn, groups, height, kg * fw)

    def shift(self, dA: np.ndarray) -> np.ndarray:
        """``shifted[m, g, (k, j), y*Wp + v] = dA[m, g*K/g + k, y, v - j*dwid]`` (0 off the row), ``(n, g, K/g*Fw, P)``.

        ``dA`` (the chunk's) is laid out in lines of ``Wp`` after ``lead =
        (Fw-1)*dwid`` zeros; row ``j`` is then the line read from ``lead -
        j*dwid``: one copy for all rows.  (Copying row 0 into the others in
        place would be shorter to write, but numpy copies a source that
        overlaps its destination into a temporary first.)
        """
        self.grid[..., : self.ow] = dA
        self.shifted.reshape(self.source.shape)[...] = self.source
        return self.shifted

    def add_to_dX(self, lines: np.ndarray, start: int) -> None:
        """Add ``z`` (``W2 @ shifted``) onto ``lines[..., start:]``, kernel row ``i`` moved down by ``i*dh*Wp``.

        ``lines`` is ``(n, g, C/g, Hp*Wp)``, the padded gradient of the
        chunk's images, flat.  BLAS wrote the rows of ``z`` ``dh*Wp`` numbers
        apart more than they are long -- row ``(i, c)`` at ``(i*C/g + c)*L`` --
        and the gaps are zero, so the block of kernel row ``i``, ``C/g*L``
        numbers from ``i*(C/g*L - dh*Wp)``, is that row's contribution to
        ``C/g`` lines of length ``L`` already in place: ``Fh`` additions of
        whole blocks instead of ``Fh*C/g`` of rows.  Whole images are written
        (their lines are one line each, and no other chunk touches them);
        bands of rows of one image overlap, and are added.
        """
        nn, groups = lines.shape[:2]
        if self.blocks.ndim == 4:
            np.add.reduce(self.blocks, axis=2, out=lines.reshape(nn, groups, self.cg * self.L))
            return
        for i in range(self.fh):
            lines[..., start : start + self.L] += self.blocks[:, :, i]

    def fill_rows(self, Xp: np.ndarray, n0: int, r0: int) -> np.ndarray:
        """``rows`` with image ``n0``'s (and the next ones') rows from output row ``r0`` on: ``(n, g, height, P)``."""
        shape, strides = self.rows_layout
        self.rows[:, :, : shape[2] * shape[3]].reshape(shape)[...] = _channels._view(
            Xp, n0 * strides[0] + r0 * self.wp, shape, strides)
        return self.rows
