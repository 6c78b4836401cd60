"""Writing activation maps: PNG pictures, exact ``.npy`` arrays and float32 TIFFs.

Writes are atomic and never replace an existing file without ``force``
(:mod:`convcli.files`).  Pillow is imported where bytes are encoded.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from convcli import pictures
from convcli.errors import OutputError, ParameterError
from convcli.files import atomic_write_bytes, check_writable

#: Output extension -> format written by :func:`write_map`.
OUTPUT_TYPES = {".png": "png", ".npy": "npy", ".tif": "tiff", ".tiff": "tiff"}


def output_format(path: str | os.PathLike) -> str:
    """``"png"``, ``"npy"`` or ``"tiff"`` from ``path``'s extension; OutputError for others."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_TYPES:
        raise OutputError(
            f"output '{path}' has {'extension ' + repr(suffix) if suffix else 'no extension'}; "
            f"accepted: {', '.join(OUTPUT_TYPES)}"
        )
    return OUTPUT_TYPES[suffix]


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image ``(H, W)`` (grey), ``(H, W, 1)`` (grey) or ``(H, W, 3)`` (RGB)."""
    from PIL import Image

    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype != np.uint8 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ParameterError(f"encode_png needs uint8 (H, W) or (H, W, 3); got {img.dtype} {img.shape}")
    buffer = io.BytesIO()
    # level 3: about twice as fast as the default 6 on large maps, files ~10% larger
    Image.fromarray(np.ascontiguousarray(img)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def render_png(A: np.ndarray, *, normalize: str = "minmax", size: int | None = None) -> bytes:
    """PNG bytes of a map ``(H, W)`` or ``(H, W, C)``: :func:`~convcli.render.to_uint8`, upscale, encode."""
    from convcli.render import to_uint8, upscale

    A = np.asarray(A)
    if size is not None and int(size) >= 1:
        h, w = A.shape[:2]
        pixels = round(h * size / max(h, w)) * round(w * size / max(h, w))
        if pixels > pictures.MAX_PIXELS:
            raise ParameterError(
                f"size {size} would make a picture of {pixels:,} pixels, more than the limit of "
                f"{pictures.MAX_PIXELS:,}"
            )
    return encode_png(upscale(to_uint8(A, normalize), size))


def map_bytes(A: np.ndarray, fmt: str, *, normalize: str = "minmax", size: int | None = None) -> bytes:
    """The bytes :func:`write_map` writes for format ``fmt`` ("png", "npy" or "tiff").

    ``normalize`` and ``size`` apply to PNG only; ``.npy`` keeps the float64
    values exactly and TIFF stores them as 32-bit floats (one channel).
    """
    A = np.asarray(A, dtype=np.float64)
    if fmt == "png":
        return render_png(A, normalize=normalize, size=size)
    buffer = io.BytesIO()
    if fmt == "npy":
        np.save(buffer, A, allow_pickle=False)
    elif fmt == "tiff":
        from PIL import Image

        plane = A[:, :, 0] if A.ndim == 3 and A.shape[2] == 1 else A
        if plane.ndim != 2:
            raise OutputError(f"TIFF output holds one channel; this map has shape {A.shape}: use .npy or .png")
        Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32)).save(buffer, format="TIFF")
    else:
        raise OutputError(f"unknown output format {fmt!r}; accepted: png, npy, tiff")
    return buffer.getvalue()


def write_map(path: str | os.PathLike, A: np.ndarray, *, normalize: str = "minmax", size: int | None = None,
              force: bool = False) -> Path:
    """Write map ``A`` (``(H, W)`` or ``(H, W, C)``) to ``path``, the format chosen by extension.

    ``.png`` (8-bit grey, RGB for 3 channels; ``normalize`` and ``size`` apply),
    ``.npy`` (float64, exact) or ``.tif``/``.tiff`` (float32).  The write is
    atomic and an existing file is refused unless ``force``.

    Raises
    ------
    OutputError
        Unknown extension, missing folder, existing file without ``force``.
    """
    fmt = output_format(path)
    check_writable(path, force=force)
    return atomic_write_bytes(path, map_bytes(A, fmt, normalize=normalize, size=size), force=force)
