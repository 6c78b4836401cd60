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
from typing import Callable, Iterator

import numpy as np

from convcli.errors import ImageFormatError
from convcli.io import idx

#: Largest image (H * W pixels) accepted by default: decompression-bomb protection.
DEFAULT_MAX_PIXELS = 50_000_000
#: The limit in force (see :func:`pixel_limit`); ``None`` means no limit.
MAX_PIXELS: "int | None" = DEFAULT_MAX_PIXELS
#: How a user raises the limit (named in the refusal).
RAISE_HINT = "raise it with --max-pixels N or CONVCLI_MAX_PIXELS=N (0: no limit)"

_GREY_MODES = ("1", "L", "I", "F")


def check_pixels(h: int, w: int, name: str) -> None:
    """Refuse an image of more than :data:`MAX_PIXELS` pixels before decoding it."""
    if MAX_PIXELS is not None and h * w > MAX_PIXELS:
        raise ImageFormatError(
            f"input '{name}' has {w}x{h} = {h * w:,} pixels, more than the limit of {MAX_PIXELS:,} "
            f"(decompression-bomb protection); {RAISE_HINT}"
        )


@contextlib.contextmanager
def pixel_limit(limit: "int | None") -> Iterator[None]:
    """Use ``limit`` pixels instead of :data:`DEFAULT_MAX_PIXELS` inside the ``with`` block.

    ``0`` means no limit; ``None`` keeps the default.  Pillow's own bomb check
    (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 megapixels) is raised along, so a
    photo the limit allows is decoded.  Both are restored on exit.
    """
    global MAX_PIXELS
    if limit is not None and (isinstance(limit, bool) or int(limit) < 0):
        raise ImageFormatError(f"max_pixels must be a whole number >= 0 (0: no limit); got {limit!r}")
    from PIL import Image

    saved = MAX_PIXELS, Image.MAX_IMAGE_PIXELS
    if limit is not None:
        MAX_PIXELS = int(limit) or None
        if MAX_PIXELS is None:
            Image.MAX_IMAGE_PIXELS = None
        elif saved[1] is not None:
            Image.MAX_IMAGE_PIXELS = max(saved[1], MAX_PIXELS)
    try:
        yield
    finally:
        MAX_PIXELS, Image.MAX_IMAGE_PIXELS = saved


def probe(opener: Callable[[], io.IOBase], name: str, where: str, head: bytes) -> tuple[str, tuple[int, int], int]:
    """Open a picture's header only: its format text (``"PNG image (mode L)"``), shape ``(H, W)``
    and number of frames (pages of a multi-page TIFF, frames of an animated GIF or WebP; 1 for most).

    The shape is the first frame's and accounts for EXIF rotation.  Nothing is decoded.
    """
    with opener() as handle, _quiet_pillow():
        image = _open(handle, where, name, head)
        frames = int(getattr(image, "n_frames", 1) or 1)
        fmt = f"{image.format or 'picture'} image (mode {image.mode})" + (f", {frames} frames" if frames > 1 else "")
        width, height = image.size
        orientation = _orientation(image)
    check_pixels(height, width, name)
    return fmt, ((width, height) if orientation in (5, 6, 7, 8) else (height, width)), frames


def decode(opener: Callable[[], io.IOBase], name: str, where: str, head: bytes, *, color: bool,
           frame: int = 0) -> np.ndarray:
    """The pixels of ``frame``: ``(H, W)`` grey, or ``(H, W, C)`` with ``color`` (C = 3, or 1 for grey pictures)."""
    with opener() as handle, _quiet_pillow():
        image = _open(handle, where, name, head)
        if frame:
            try:
                image.seek(frame)
            except (EOFError, OSError, ValueError) as exc:
                raise ImageFormatError(f"{where}: cannot read frame {frame}: {exc}") from None
            check_pixels(image.size[1], image.size[0], name)
        return _pixels(image, color, where)


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
            image = _open_png(handle) if head.startswith(PNG_SIGNATURE) else None
            return image if image is not None else Image.open(handle)
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


#: The first bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _open_png(handle):
    """A PNG file opened by Pillow's PNG plugin alone, or None to leave it to ``Image.open``.

    ``Image.open`` first imports the BMP, GIF, JPEG and PPM plugins and asks
    each in turn: 8-12 ms of a 0.5 s ``convolve``.  Pillow's decompression-bomb
    limit is applied here as ``Image.open`` applies it (its warning is an
    error in :func:`_open` anyway).  A file the plugin refuses is handed back to ``Image.open``
    (from its first byte), which words the error as for any other file.
    """
    from PIL import Image, PngImagePlugin

    try:
        image = PngImagePlugin.PngImageFile(handle)
    except Exception:  # noqa: BLE001 - whatever it is, Image.open says it the usual way
        handle.seek(0)
        return None
    pixels, limit = image.size[0] * image.size[1], Image.MAX_IMAGE_PIXELS
    if limit is not None and pixels > limit:
        raise Image.DecompressionBombError(f"Image size ({pixels} pixels) exceeds limit of {limit} pixels, could be "
                                           "decompression bomb DOS attack.")  # Pillow's words
    return image


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


def _decode_into_array(image) -> "np.ndarray | None":
    """Decode an 8-bit grey picture straight into a numpy array ``(H, W)``; None when that cannot be done.

    ``np.asarray(image)`` copies the decoded pixels (twice, through
    ``tobytes``): 16 MB and 17 ms for a 4096x4096 PNG.  Here the picture's
    memory is the array's from the start: an image mapped on the array
    (``Image.frombuffer``, which shares memory for mode L) is given to the
    file before it loads, and Pillow's decoder writes into it.  If this Pillow
    replaces that image while loading, the array is left unused and None tells
    the caller to copy as usual.
    """
    from PIL import Image

    if getattr(image, "_im", True) is not None:  # already loaded (or a Pillow without that attribute)
        return None
    array = np.empty((image.size[1], image.size[0]), np.uint8)
    target = Image.frombuffer("L", image.size, array, "raw", "L", 0, 1).im
    image.im = target
    image.load()
    return array if image.im is target else None


def _pixels(image, color: bool, where: str) -> np.ndarray:
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            upright = _orientation(image) == 1  # before load(), as the header probe saw it
            if upright and not color and image.mode == "L":
                grey = _decode_into_array(image)
                if grey is not None:
                    return grey
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
