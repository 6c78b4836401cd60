"""Writing activation maps: 8-bit pictures (PNG, JPEG, WebP, BMP), exact ``.npy`` arrays and float32 TIFFs.

Writes are atomic and never replace an existing file without ``force``
(:mod:`convcli.io.files`).  PNGs are encoded by :mod:`convcli.maps.png`;
Pillow (imported where it is used) writes TIFFs.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from convcli.errors import OutputError, ParameterError
from convcli.io import pictures
from convcli.io.files import atomic_open, atomic_write_bytes, check_writable
from convcli.maps import png
from convcli.maps.levels import to_uint8, upscale

#: Output extension -> format written by :func:`write_map`.
OUTPUT_TYPES = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".bmp": "bmp",
    ".npy": "npy", ".tif": "tiff", ".tiff": "tiff",
}
#: The formats that hold an 8-bit picture (``--normalize``, ``--size`` and ``--cmap`` apply).
PICTURE_FORMATS = ("png", "jpeg", "webp", "bmp")
#: Pillow's save options per picture format: JPEG at quality 95 without chroma subsampling (edges stay
#: sharp), WebP lossless (the exact levels, like PNG).
_SAVE_OPTIONS = {
    "jpeg": {"quality": 95, "subsampling": 0},
    "webp": {"lossless": True},
    "bmp": {},
}


def output_format(path: str | os.PathLike) -> str:
    """``"png"``, ``"jpeg"``, ``"webp"``, ``"bmp"``, ``"npy"`` or ``"tiff"`` from ``path``'s extension.

    Raises
    ------
    OutputError
        For a folder, or an extension not in :data:`OUTPUT_TYPES`.
    """
    if Path(path).is_dir():
        raise OutputError(f"output '{path}' is a folder; give a file name such as '{Path(path) / 'map.png'}'")
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_TYPES:
        raise OutputError(
            f"output '{path}' has {'extension ' + repr(suffix) if suffix else 'no extension'}; "
            f"accepted: {', '.join(OUTPUT_TYPES)}"
        )
    return OUTPUT_TYPES[suffix]


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image ``(H, W)`` (grey), ``(H, W, 1)`` (grey) or ``(H, W, 3)`` (RGB)."""
    buffer = io.BytesIO()
    _save_png(img, buffer)
    return buffer.getvalue()


def encode_pictures(stack: np.ndarray) -> "list[bytes]":
    """The PNG bytes of each uint8 picture of a stack ``(n, H, W)`` or ``(n, H, W, 3)``.

    Small pictures are encoded together (:func:`convcli.maps.png.encode_stack`),
    large ones one by one (:func:`encode_png`); either way Pillow reads back
    each picture exactly.
    """
    stack = np.asarray(stack)
    if stack.dtype != np.uint8 or stack.ndim not in (3, 4) or (stack.ndim == 4 and stack.shape[3] != 3):
        raise ParameterError(f"encode_pictures needs uint8 (n, H, W) or (n, H, W, 3); got {stack.dtype} {stack.shape}")
    if 0 in stack.shape[1:]:
        raise ParameterError(f"encode_pictures needs pictures of at least 1x1 pixels; got shape {stack.shape}")
    if stack[0].size <= png.SMALL_BYTES:
        return png.encode_stack(stack)
    return [encode_png(picture) for picture in stack]


def save_png(levels: np.ndarray, stream: BinaryIO, *, size: int | None = None) -> None:
    """Write a uint8 picture (as for :func:`encode_png`), upscaled to ``size``, as PNG to a binary stream.

    Streaming saves holding the encoded bytes twice (for large maps, a few
    dozen MB).  ParameterError when ``size`` would make a picture of more than
    :data:`convcli.io.pictures.MAX_PIXELS` pixels.
    """

    check_size(np.shape(levels), size)
    _save_png(levels if size is None else upscale(np.asarray(levels), size), stream)


def _save_png(img: np.ndarray, stream: BinaryIO, fmt: str = "png") -> None:
    """Encode a uint8 picture as ``fmt`` (PNG through convcli's own encoder, the others through Pillow).

    ``img`` is an array or a :class:`~convcli.maps.picture.Picture`, which the
    PNG encoder makes strip by strip (the other formats make it whole first).
    """
    if fmt != "png" or not hasattr(img, "rows"):
        img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype != np.uint8 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ParameterError(f"encode_png needs uint8 (H, W) or (H, W, 3); got {img.dtype} {img.shape}")
    if 0 in img.shape:
        raise ParameterError(f"encode_png needs a picture of at least 1x1 pixels; got shape {img.shape}")
    if fmt == "png":
        # per-strip filters, run-length deflate, strips on two threads: 3-4x faster than Pillow, same size on photos
        png.write_png(img, stream)
        return
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(img)).save(stream, format=fmt.upper(), **_SAVE_OPTIONS[fmt])


def check_size(shape: tuple[int, ...], size: int | None) -> None:
    """Refuse a ``--size`` that would upscale a picture of ``shape`` past :data:`convcli.io.pictures.MAX_PIXELS`."""
    if size is not None and int(size) >= 1:
        h, w = shape[:2]
        pixels = round(h * size / max(h, w)) * round(w * size / max(h, w))
        if pictures.MAX_PIXELS is not None and pixels > pictures.MAX_PIXELS:
            raise ParameterError(
                f"size {size} would make a picture of {pixels:,} pixels, more than the limit of "
                f"{pictures.MAX_PIXELS:,}; {pictures.RAISE_HINT}"
            )


def render_png(A: np.ndarray, *, normalize: str = "minmax", size: int | None = None) -> bytes:
    """PNG bytes of a map ``(H, W)`` or ``(H, W, C)``: :func:`~convcli.maps.levels.to_uint8`, upscale, encode."""

    A = np.asarray(A)
    check_size(A.shape, size)
    buffer = io.BytesIO()
    save_png(to_uint8(A, normalize), buffer, size=size)
    return buffer.getvalue()


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

    ``.png``, ``.jpg``/``.jpeg``, ``.webp``, ``.bmp`` (8-bit grey, RGB for 3
    channels; ``normalize`` and ``size`` apply),
    ``.npy`` (float64, exact) or ``.tif``/``.tiff`` (float32).  The write is
    atomic and an existing file is refused unless ``force``.

    Raises
    ------
    OutputError
        Unknown extension, missing folder, existing file without ``force``.
    """

    fmt = output_format(path)
    check_writable(path, force=force)
    if fmt in PICTURE_FORMATS:
        check_size(np.shape(A), size)
        return write_picture(path, to_uint8(np.asarray(A, dtype=np.float64), normalize), size=size, force=force)
    return atomic_write_bytes(path, map_bytes(A, fmt, normalize=normalize, size=size), force=force)


def write_picture(path: str | os.PathLike, levels: np.ndarray, *, size: int | None = None,
                  force: bool = False) -> Path:
    """Write an 8-bit picture ``(H, W)`` or ``(H, W, 3)`` (upscaled to ``size``) in the format of its extension.

    ``levels`` is an array, or a :class:`~convcli.maps.picture.Picture` (made
    strip by strip while a PNG is encoded).

    PNG, JPEG (quality 95), lossless WebP or BMP (:data:`PICTURE_FORMATS`).
    The picture is streamed into the file, which appears atomically; an
    existing file is refused unless ``force`` (OutputError).
    """
    fmt = output_format(path)
    if fmt not in PICTURE_FORMATS:
        raise OutputError(f"output '{path}' is not a picture format; accepted: .png .jpg .jpeg .webp .bmp")
    check_writable(path, force=force)
    check_size(np.shape(levels), size)
    with atomic_open(path, force=force) as handle:
        _save_png(levels if size is None else upscale(np.asarray(levels), size), handle, fmt)
    return Path(path)
