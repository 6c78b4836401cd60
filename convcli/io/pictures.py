"""Decoding picture files with Pillow (Pillow is imported inside the functions).

Every Pillow mode is accepted (1, L, LA, P, RGB, RGBA, CMYK, I;16, I, F...).
Grey results keep the stored range: 0..255 for 8-bit, 0..65535 for 16-bit,
floats as they are.  Colour becomes grey with Pillow's own ``L`` conversion
(``L = R*299/1000 + G*587/1000 + B*114/1000``), or stays RGB with ``color``
(alpha dropped).  EXIF orientation is applied, so photos come out the way
viewers show them.  Decompression bombs and truncated files raise
:class:`~convcli.errors.ImageFormatError`.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Callable

import numpy as np

from convcli.errors import ImageFormatError
from convcli.io import idx

#: Largest image (H * W pixels) accepted: decompression-bomb protection.
MAX_PIXELS = 50_000_000

_GREY_MODES = ("1", "L", "I", "F")


def check_pixels(h: int, w: int, name: str) -> None:
    """Refuse an image of more than :data:`MAX_PIXELS` pixels before decoding it."""
    if h * w > MAX_PIXELS:
        raise ImageFormatError(
            f"input '{name}' has {w}x{h} = {h * w:,} pixels, more than the limit of {MAX_PIXELS:,} "
            "(decompression-bomb protection)"
        )


def probe(opener: Callable[[], io.IOBase], name: str, where: str, head: bytes) -> tuple[str, tuple[int, int]]:
    """Open a picture's header only: its format text (``"PNG image (mode L)"``) and shape ``(H, W)``.

    The shape accounts for EXIF rotation.  Nothing is decoded.
    """
    with opener() as handle, _quiet_pillow():
        image = _open(handle, where, name, head)
        fmt = f"{image.format or 'picture'} image (mode {image.mode})"
        width, height = image.size
        orientation = _orientation(image)
    check_pixels(height, width, name)
    return fmt, ((width, height) if orientation in (5, 6, 7, 8) else (height, width))


def decode(opener: Callable[[], io.IOBase], name: str, where: str, head: bytes, *, color: bool) -> np.ndarray:
    """The pixels: ``(H, W)`` grey, or ``(H, W, C)`` with ``color`` (C = 3, or 1 for grey pictures)."""
    with opener() as handle, _quiet_pillow():
        return _pixels(_open(handle, where, name, head), color, where)


@contextlib.contextmanager
def _quiet_pillow():
    """No Pillow warnings on stderr (a corrupt TIFF or EXIF block warns with site-packages paths before
    failing); decompression-bomb warnings still become errors in :func:`_open` and :func:`_pixels`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _open(handle, where: str, name: str, head: bytes):
    """``Image.open`` with decompression bombs and unknown content turned into ImageFormatError."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(handle)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageFormatError(f"{where} looks like a decompression bomb: {exc}") from None
        except UnidentifiedImageError:
            pass
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageFormatError(f"{where} is truncated or corrupt: {exc}") from None
    if "idx" in name.lower() or head[:2] == b"\0\0":
        idx.read_header(io.BytesIO(head), where)  # raises, naming the bad magic number
    raise ImageFormatError(
        f"{where} is not an image convcli can read: expected an image Pillow opens (PNG, JPEG, BMP, TIFF, "
        f"GIF, WebP...), an IDX file (raw or .gz) or a NumPy .npy/.npz file"
    )


def _orientation(image) -> int:
    """The EXIF orientation (1 = upright) known before the pixels are decoded.

    A PNG's ``getexif()`` decodes the whole image to look for an eXIf chunk
    after the pixel data; only one before it counts here (and in
    :func:`_pixels`), so the header probe decodes nothing and a PNG is decoded
    once, not twice.
    """
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block just means "no rotation"
        return 1


def _pixels(image, color: bool, where: str) -> np.ndarray:
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            upright = _orientation(image) == 1  # before load(), as the header probe saw it
            image.load()
            if not upright:
                image = ImageOps.exif_transpose(image)
            mode = image.mode
            if mode == "1":
                grey = np.asarray(image.convert("L"))
            elif mode in _GREY_MODES or mode.startswith("I;16"):
                grey = np.asarray(image)
            elif mode in ("LA", "La"):
                grey = np.asarray(image.getchannel(0))
            elif color:
                return np.asarray(image.convert("RGB"))
            else:
                try:
                    grey = np.asarray(image.convert("L"))
                except ValueError:  # modes without a direct L conversion (LAB, HSV...)
                    grey = np.asarray(image.convert("RGB").convert("L"))
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageFormatError(f"{where} is truncated or corrupt: {exc}") from None
        except Image.DecompressionBombWarning as exc:
            raise ImageFormatError(f"{where} looks like a decompression bomb: {exc}") from None
    return grey[..., None] if color else grey
