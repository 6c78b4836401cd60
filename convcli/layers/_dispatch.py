"""Which path computes a 2-D forward pass: a cost model measured on the paths themselves (private).

:func:`plan` estimates the time of each path that can compute a job and picks
the cheapest.  The estimates are the work each path does times a constant
measured by ``benchmarks/calibrate.py`` on 2 cores (AMD EPYC, numpy 2.4,
OpenBLAS, pocketfft).  Only the ratios between constants matter, so other
machines pick the same paths unless their FFT-to-multiply speed differs a lot;
then the choice is slightly off near the crossover, never wrong in its numbers.

=============  =======================================  ==========================================
path           when                                     cost (ns)
=============  =======================================  ==========================================
``taps``       stride 1, fewer than ``BANK_MIN`` kern.  ``pixels * (nonzero taps * TAP + K * PIXEL)`` (1)
``separable``  stride 1, every kernel of rank <= 2      ``pixels * (factor taps * TAP + K * SEPARABLE * PIXEL)``
``matmul``     ``BANK_MIN`` or more kernels, any stride ``pixels * Fh*Fw * (COPY + K * MAC)``
``fft``        stride 1, finite images                  ``FFT * tile_cost`` per kernel (:mod:`._fftconv`)
``general``    fewer than ``BANK_MIN`` kernels, strided the tap loop (no fast path)
=============  =======================================  ==========================================

(1) ``DIRECT`` instead of ``PIXEL`` where :mod:`._direct` computes the job.
``pixels`` counts output values per kernel over the batch.  The numbers each
path gives are documented in its module: all agree with the general path (and
``scipy.ndimage.correlate``) to rounding; ``taps`` is bitwise the general path
where numpy's BLAS has no ``axpy``.  A ``taps`` job on large images whose
output is as wide as the image runs in :mod:`._direct` (no block copies).
"""

from __future__ import annotations

import numpy as np

from convcli.layers import _direct, _fastconv, _fftconv, _matmul, _separable

#: ns per output value and kernel tap on the tap paths (one fused multiply-add, BLAS ``axpy``).
TAP = 0.12
#: ns per output value for a tap path's copies (block in, result out) and the output's first touch.
PIXEL = 1.9
#: ns per output value for the direct tap path (no copies: zeroing the output, its first touch).
DIRECT = 1.5
#: The separable path's extra copies and sums per output value, in units of ``PIXEL``.
SEPARABLE = 1.5
#: ns per output value and kernel tap to copy windows for the BLAS path, and per multiply-add in BLAS.
COPY, MAC = 0.35, 0.04
#: ns per unit of :func:`convcli.layers._fftconv.tile_cost`.
FFT = 0.45
#: Kernels larger than this on a side are not factored (an SVD would cost more than it could save).
MAX_FACTOR = 64


def plan(X3: np.ndarray, w3: np.ndarray, pads, strides) -> "list[tuple[str, list[int], object]]":
    """The paths for images ``(N, H, W)``, kernels ``(K, Fh, Fw)``, zero ``pads`` and ``strides``.

    Returns groups ``(path, kernel indices, detail)`` covering every kernel
    once; ``detail`` is the factors for ``separable`` (a list per kernel), the
    tile for ``fft``, else None.  With fewer than ``BANK_MIN`` kernels each
    kernel gets its own cheapest path, so a kernel's numbers never depend on
    the other kernels of the call (a bank split over several calls gives the
    same maps).
    """
    n, k = X3.shape[0], w3.shape[0]
    fh, fw = w3.shape[1:]
    hp, wp = X3.shape[1] + sum(pads[0]), X3.shape[2] + sum(pads[1])
    everything = list(range(k))
    if tuple(strides) != (1, 1):
        return [("matmul" if k >= _fastconv.BANK_MIN else "general", everything, None)]
    pixels = n * (hp - fh + 1) * (wp - fw + 1)
    fft = None
    if fh * fw >= 16 and min(fh, fw) >= 2:
        tile, units = _fftconv.tile_shape((fh, fw), (hp, wp), n, 1)
        fft = (tile, units * FFT)  # per kernel; a bank shares the images' transforms, counted once here
    if k >= _fastconv.BANK_MIN:
        matmul = pixels * fh * fw * (COPY + k * MAC)
        if fft is not None and fft[1] * (1 + k) / 2 < matmul and _finite(X3):
            return [("fft", everything, fft[0])]
        return [("matmul", everything, None)]
    per_pixel = DIRECT if _direct.applies(X3, w3, pads) else PIXEL
    choices = [_cheapest(kernel, pixels, fft, per_pixel) for kernel in w3]
    if any(path == "fft" for path, _ in choices) and not _finite(X3):  # an inf would spread over a whole tile
        choices = [_cheapest(kernel, pixels, None, per_pixel) for kernel in w3]
    groups = []
    for path in ("taps", "separable", "fft"):
        indices = [c for c, (chosen, _) in enumerate(choices) if chosen == path]
        if indices:
            detail = [choices[c][1] for c in indices] if path == "separable" else (fft[0] if path == "fft" else None)
            groups.append((path, indices, detail))
    return groups


def _cheapest(kernel: np.ndarray, pixels: int, fft, per_pixel: float) -> "tuple[str, object]":
    """``(path, factors or None)`` of least modelled cost for one kernel ``(Fh, Fw)``; ``per_pixel``: the tap path's."""
    fh, fw = kernel.shape
    costs = {"taps": (pixels * (int(np.count_nonzero(kernel)) * TAP + per_pixel), None)}
    if min(fh, fw) >= 2 and max(fh, fw) <= MAX_FACTOR:
        factors = _separable.factor(kernel)
        if factors is not None:
            taps = sum(int(np.count_nonzero(u)) + int(np.count_nonzero(v)) for u, v in factors)
            costs["separable"] = (pixels * (taps * TAP + SEPARABLE * PIXEL), factors)
    if fft is not None:
        costs["fft"] = (fft[1], None)
    path = min(costs, key=lambda name: costs[name][0])
    return path, costs[path][1]


def _finite(X3: np.ndarray) -> bool:
    return X3.dtype.kind in "biu" or bool(np.isfinite(X3).all())


def forward(X3: np.ndarray, w3: np.ndarray, pads, strides, dtype) -> "np.ndarray | None":
    """The forward pass by the planned fast paths, ``(N, K, H', W')`` of ``dtype``; None for the general path."""
    groups = plan(X3, w3, pads, strides)
    if len(groups) == 1:
        return _run_group(groups[0], X3, w3, pads, strides, dtype)
    n, k, fh, fw = X3.shape[0], w3.shape[0], w3.shape[1], w3.shape[2]
    A = np.empty((n, k, X3.shape[1] + sum(pads[0]) - fh + 1, X3.shape[2] + sum(pads[1]) - fw + 1), dtype)
    for group in groups:
        A[:, group[1]] = _run_group(group, X3, w3, pads, strides, dtype)
    return A


def _run_group(group, X3, w3, pads, strides, dtype):
    path, indices, detail = group
    w = w3 if len(indices) == w3.shape[0] else w3[indices]
    if path == "taps":
        if _direct.applies(X3, w, pads):
            return _direct.correlate_direct(X3, w, pads, dtype)
        return _fastconv.correlate_taps(X3, w, pads, dtype)
    if path == "separable":
        return _separable.correlate_separable(X3, w, detail, pads, dtype)
    if path == "fft":
        return _fftconv.correlate_fft(X3, w, pads, dtype, tile=detail)
    if path == "matmul":
        return _matmul.correlate_matmul(X3, w, pads, strides, dtype)
    return None
