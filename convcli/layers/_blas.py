"""numpy's own OpenBLAS, called where numpy has no function for the job (private; numpy and the stdlib only).

Two things the layers need are not in numpy's API:

- setting OpenBLAS's thread count while the layers run their own threads
  (:mod:`convcli.layers._threads`), as ``threadpoolctl`` does;
- ``y += a * x`` in one pass (BLAS ``axpy``, a fused multiply-add per element).
  numpy needs two passes and a temporary for it (``multiply`` then ``add``);
  the tap path of :mod:`convcli.layers._fastconv` is nothing but such updates,
  so ``axpy`` runs it about twice as fast.

Both are found in the OpenBLAS library numpy loaded (wheels bundle one in
``numpy.libs``/``numpy/.dylibs``; a source build links the system's), by the
symbol names its builds use: ``scipy_cblas_daxpy64_`` (numpy's wheels),
``cblas_daxpy64_``, ``cblas_daxpy`` and so on.  The integer width comes from
the library's own ``openblas_get_config()`` (``USE64BITINT``).  ``axpy`` is
tried on a small vector the first time and used only if it gives numpy's
answer.  Where no OpenBLAS can be found (MKL, Accelerate) every function here
returns None and callers keep to numpy.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from typing import Callable

import numpy as np

#: (prefix, suffix) of the symbol names, as OpenBLAS builds name them.
_NAMINGS = (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", ""))
_found: "dict[str, object]" = {}


def _candidates() -> "list[str]":
    """Paths of the OpenBLAS bundled with numpy, then of those this process has loaded (Linux).

    numpy's own comes first: scipy's wheels bundle another OpenBLAS, which
    may be loaded too.
    """
    root = os.path.dirname(os.path.dirname(np.__file__))
    paths = []
    for pattern in ("numpy.libs/*openblas*", "numpy/.dylibs/*openblas*"):
        paths += sorted(glob.glob(os.path.join(root, pattern)))
    try:
        with open("/proc/self/maps") as maps:
            paths += [line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line]
    except OSError:
        pass
    return list(dict.fromkeys(paths))


def _library() -> "tuple[ctypes.CDLL, tuple[str, str], type] | None":
    """numpy's OpenBLAS, its (prefix, suffix) naming and its BLAS integer type; None if not found (looked up once)."""
    if "library" not in _found:
        _found["library"] = None
        for path in _candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix, suffix in _NAMINGS:
                config = getattr(lib, f"{prefix}openblas_get_config{suffix}", None)
                if config is not None:
                    config.restype = ctypes.c_char_p
                    integer = ctypes.c_int64 if b"USE64BITINT" in (config() or b"") else ctypes.c_int
                    _found["library"] = (lib, (prefix, suffix), integer)
                    return _found["library"]
    return _found["library"]


def function(name: str):
    """The OpenBLAS function ``name`` (e.g. ``"openblas_get_num_threads"``) under numpy's naming, or None."""
    found = _library()
    if found is None:
        return None
    lib, (prefix, suffix), _ = found
    return getattr(lib, f"{prefix}{name}{suffix}", None)


def thread_functions():
    """``(get_num_threads, set_num_threads)`` of numpy's OpenBLAS, or None (looked up once)."""
    if "threads" not in _found:
        get, put = function("openblas_get_num_threads"), function("openblas_set_num_threads")
        if get is not None and put is not None:
            get.restype, put.argtypes = ctypes.c_int, [ctypes.c_int]
        _found["threads"] = (get, put) if get is not None and put is not None else None
    return _found["threads"]


#: ``axpy(n, a, x_address, y_address)``: ``y[:n] += a * x[:n]`` on contiguous buffers at those addresses.
Axpy = Callable[[int, float, int, int], None]


def axpy(dtype) -> "Axpy | None":
    """BLAS ``axpy`` for contiguous float64 or float32 vectors given by address; None where unavailable.

    The caller passes raw addresses (``array.ctypes.data`` plus a byte
    offset), so a loop over kernel taps pays for one ``ctypes`` call per tap
    and nothing else.  ctypes releases the GIL during the call.

    Every element gets the same rounding wherever it sits in the vector.
    OpenBLAS's vector kernel rounds ``a * x + y`` once (a fused multiply-add)
    but finishes a length that is not a multiple of its block (16 on
    Haswell) with a loop that rounds twice; so the last ``n % block``
    elements are computed by the vector kernel too, on a copy padded to one
    block.  The block is measured when the function is first made
    (:func:`_block`).  OpenBLAS must run on one thread meanwhile
    (:func:`convcli.layers._threads.one_thread`): its threads split a long
    vector at places of their own.  OpenBLAS skips the update entirely when
    ``a == 0`` (so ``0 * inf`` does not give NaN there).
    """
    dtype = np.dtype(dtype)
    key = f"axpy-{dtype.char}"
    if key not in _found:
        _found[key] = _checked_axpy(dtype)
    return _found[key]


def _checked_axpy(dtype: np.dtype) -> "Axpy | None":
    """The ``axpy`` of ``dtype`` if the library has it and its rounding is the same at every position."""
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        return None
    found = _library()
    raw = function("cblas_daxpy" if dtype == np.float64 else "cblas_saxpy")
    if found is None or raw is None:
        return None
    integer, real = found[2], (ctypes.c_double if dtype == np.float64 else ctypes.c_float)
    raw.restype = None
    raw.argtypes = [integer, real, ctypes.c_void_p, integer, ctypes.c_void_p, integer]
    block = _block(raw, dtype)
    if block is None:
        return None
    size, spare = dtype.itemsize, threading.local()

    def call(n: int, a: float, x: int, y: int) -> None:
        whole = n - n % block
        if whole:
            raw(whole, a, x, 1, y, 1)
        if whole < n:  # the tail, padded to one block, through the vector kernel as well
            if not hasattr(spare, "xs"):
                spare.xs, spare.ys = np.zeros(block, dtype), np.zeros(block, dtype)
            xs, ys, tail = spare.xs.ctypes.data, spare.ys.ctypes.data, (n - whole) * size
            ctypes.memmove(xs, x + whole * size, tail)
            ctypes.memmove(ys, y + whole * size, tail)
            raw(block, a, xs, 1, ys, 1)
            ctypes.memmove(y + whole * size, ys, tail)

    x = np.arange(1, 40, dtype=dtype)
    y = np.full(37, 0.5, dtype)
    call(37, 2.0, x.ctypes.data + x.itemsize, y.ctypes.data)
    return call if np.array_equal(y, 0.5 + 2.0 * x[1:38]) else None


def _block(raw, dtype: np.dtype) -> "int | None":
    """The smallest length ``B`` (1 .. 64) such that ``raw`` gives each element the same value in any call whose
    length is a multiple of ``B``, wherever the call starts; None if there is none."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(320).astype(dtype), rng.standard_normal(320).astype(dtype)
    a = 0.7310585786300049

    def run(start: int, n: int) -> np.ndarray:
        out = y.copy()
        raw(n, a, x.ctypes.data + start * dtype.itemsize, 1, out.ctypes.data + start * dtype.itemsize, 1)
        return out[start : start + n]

    reference = run(0, 320)
    for block in (1, 2, 4, 8, 16, 32, 64):
        if all(np.array_equal(run(start, n), reference[start : start + n])
               for start in (0, 1, 3, 5, 17, 64) for n in range(block, 256 - block, block * 3)):
            return block
    return None
