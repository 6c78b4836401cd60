"""Reading images, MNIST IDX files and NumPy arrays (numpy; Pillow imported lazily).

One input is an :class:`ImageSource`, made by :func:`open_source`.  The format
comes from the content (magic bytes), never only from the extension, and every
header is checked before anything large is allocated:

===============  =====================================  ===================
content          formats                                images in it
===============  =====================================  ===================
Pillow images    PNG, JPEG, BMP, TIFF, GIF, WebP, ...   1, or N frames (multi-page TIFF, GIF)
IDX              raw or gzipped, type codes 08..0E      1 (2-D) or N (3-D)
NumPy            ``.npy`` 2-D or 3-D; ``.npz`` by key   1 or N
===============  =====================================  ===================

Images come back as float64 with their value range kept (0..255 for 8-bit,
0..65535 for 16-bit, floats as stored); ``dtype=None`` keeps the stored type
instead (uint8 for an 8-bit PNG), which ``convolve`` uses to skip a float64
copy of a large picture.  Colour becomes one grey channel with
Pillow's ``L`` luminance (``L = R*299/1000 + G*587/1000 + B*114/1000``) unless
``color=True``, which keeps R, G, B (alpha is dropped).

Activation maps are written by :func:`convcli.maps.writing.write_map` (PNG,
exact ``.npy``, float32 TIFF).  The format readers live in
:mod:`convcli.io.idx`, :mod:`convcli.io.npyfiles` and :mod:`convcli.io.pictures`.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from convcli.errors import ImageFormatError, ParameterError
from convcli.io import idx, npyfiles, pictures, streams

#: The bundled sample ``convolve`` uses when no IMAGE is given.
DEFAULT_SAMPLE = "fashion-mnist-0-ankle-boot.png"
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_images"
SAMPLE_SUFFIXES = (".png", ".gz")

# (H, W) or (N, H, W) arrays go through this: (indices, color) -> (n, H, W[, C]) values, any dtype
Loader = Callable[[np.ndarray, bool], np.ndarray]


def sample_paths() -> list[Path]:
    """The bundled sample images (PNGs and the gzipped IDX subset), sorted by name.

    The labels file that sits beside the IDX subset is not an image and is left out.
    """
    return sorted(
        p for p in SAMPLE_DIR.iterdir() if p.suffix in SAMPLE_SUFFIXES and p.is_file() and "labels" not in p.name
    )


def default_sample() -> Path:
    """The sample ``convolve`` reads when no IMAGE is given: a Fashion-MNIST ankle boot, 28x28."""
    return SAMPLE_DIR / DEFAULT_SAMPLE


class ImageSource:
    """One input: a file (or stdin) holding one image or an indexed stack of them.

    Attributes
    ----------
    name : str
        The path as given, or ``"stdin"``.
    stem : str
        File name without ``.gz`` and extension (``"stdin"`` for ``-``).
    format : str
        What was detected, e.g. ``"PNG image (mode L)"`` or ``"IDX ubyte 16x28x28"``.
    indexed : bool
        True for 3-D IDX / ``.npy`` and for ``.npz`` arrays of shape ``(N, H, W)``.
    count : int
        Number of images (1 when not indexed).
    shape : (H, W)
    """

    def __init__(self, *, name: str, stem: str, format: str, shape: tuple[int, int], count: int,
                 indexed: bool, loader: Loader) -> None:
        self.name, self.stem, self.format = name, stem, format
        self.shape, self.count, self.indexed = (int(shape[0]), int(shape[1])), int(count), indexed
        self._loader = loader

    def __repr__(self) -> str:
        return f"ImageSource({self.name!r}, {self.format}, count={self.count}, shape={self.shape})"

    def read(self, indices: Sequence[int] | None = None, *, color: bool = False,
             dtype: np.typing.DTypeLike | None = np.float64) -> np.ndarray:
        """Decode images ``indices`` (all when None).

        Parameters
        ----------
        indices : sequence of int, optional
        color : bool
            Keep the colour channels (a trailing axis) instead of grey.
        dtype : numpy dtype or None
            The type of the result: float64 by default, always a fresh, writable
            array.  ``None`` keeps the type the file stores (uint8 for 8-bit
            pictures and MNIST, uint16 or int32 for 16- and 32-bit pictures,
            float32 for Pillow's ``F``, the array's own type for ``.npy``), with
            no copy beyond decoding; the result may then be read-only.

        Returns
        -------
        ndarray, shape ``(n, H, W)``, or ``(n, H, W, C)`` with ``color``
        (C = 3 for colour pictures, 1 for grey ones and arrays).

        Raises
        ------
        ImageFormatError
            An index out of range (naming the valid range), a truncated or corrupt
            file, or NaN/inf pixels (only floats can hold them, so only floats
            are scanned).
        """
        if indices is None:
            wanted = np.arange(self.count)
        else:
            wanted = [int(i) for i in indices]
            for i in wanted:  # before int64: --index 10**30 is out of range, not an OverflowError
                if not 0 <= i < self.count:
                    raise ImageFormatError(f"index {i} is out of range: {self._holds()}")
            wanted = np.asarray(wanted, dtype=np.int64)
        values = np.asarray(self._loader(wanted, color))
        out = values if dtype is None else values.astype(dtype)  # astype: always a fresh, writable array
        if color and out.ndim == 3:
            out = out[..., None]
        bad = np.argwhere(~np.isfinite(out)) if out.dtype.kind in "fc" else ()
        if len(bad):
            n, row, col = (int(v) for v in bad[0][:3])
            raise ImageFormatError(
                f"input '{self.name}' has NaN or infinite pixels (first at image {int(wanted[n])}, row {row}, "
                f"column {col}); convcli needs finite values"
            )
        return out

    def _holds(self) -> str:
        if self.count == 1:
            return f"'{self.name}' holds 1 image (valid index: 0)"
        return f"'{self.name}' holds {self.count} images (valid: 0..{self.count - 1})"


def read_image(source: str | os.PathLike, *, index: int | None = None, key: str | None = None,
               color: bool = False, dtype: np.typing.DTypeLike | None = np.float64) -> np.ndarray:
    """One image as float64 ``(H, W)`` (or ``(H, W, C)`` with ``color``): the convenience for ``convolve``.

    ``index`` picks an image of an indexed file (default 0); ``dtype=None``
    keeps the stored type (see :meth:`ImageSource.read`).
    """
    return open_source(source, key=key).read([0 if index is None else int(index)], color=color, dtype=dtype)[0]


def parse_indices(spec: str, count: int) -> list[int]:
    """Indices from ``"3"``, ``"0:100"``, ``"0:10:2"``, ``"0,5,7"`` or ``"-1"`` (Python semantics).

    Unlike Python slicing, a range reaching past the end is an error, not clipped.

    Raises
    ------
    ParameterError
        For text that is not an index list, or one that selects nothing.
    ImageFormatError
        For an index or range outside ``0..count-1``.
    """
    valid = f"valid: 0..{count - 1}" if count > 1 else "valid index: 0"
    out: list[int] = []
    for item in str(spec).split(","):
        item = item.strip()
        try:
            parts = [int(p) if p.strip() else None for p in item.split(":")] if item else []
        except ValueError:
            parts = []
        if not 1 <= len(parts) <= 3 or (len(parts) == 1 and parts[0] is None):
            raise ParameterError(f"index '{spec}' is not an index list; expected e.g. 3, 0:100, 0:10:2 or 0,5,7")
        if len(parts) == 1:
            i = parts[0]
            if not -count <= i < count:
                raise ImageFormatError(f"index {i} is out of range for {count} image(s) ({valid})")
            out.append(i % count)
            continue
        start, stop = parts[0], parts[1]
        step = parts[2] if len(parts) == 3 else None
        if step == 0:
            raise ParameterError(f"index range '{item}' has step 0")
        for end in (start, stop):
            if end is not None and not -count <= end <= count:
                raise ImageFormatError(f"index range '{item}' is out of range for {count} image(s) ({valid})")
        out.extend(range(count)[slice(start, stop, step)])
    if not out:
        raise ParameterError(f"index '{spec}' selects no images ({valid})")
    return out


# ----------------------------------------------------------------------------- opening


def open_source(source: str | os.PathLike, *, key: str | None = None) -> ImageSource:
    """Open ``source`` (a path, or ``"-"`` for stdin bytes), checking its header.

    Parameters
    ----------
    source : path or "-"
    key : str, optional
        The array to use in a ``.npz`` archive (default: its first 3-D array,
        else its first 2-D one).  Refused for other formats.

    Raises
    ------
    ImageFormatError
        Missing, empty, truncated or unknown files; bad IDX headers; labels
        (1-D) files; object arrays; images over :data:`convcli.io.pictures.MAX_PIXELS` pixels.
    ParameterError
        ``key`` given for a format without keys.
    """
    if str(source) == "-":
        if sys.stdin is None or getattr(sys.stdin, "closed", False):
            raise ImageFormatError("stdin is closed; pipe a file in")
        return _from_bytes(_read_capped(sys.stdin.buffer, "stdin"), name="stdin", stem="stdin", key=key)
    path, name = Path(source), str(source)
    where = f"input '{name}'"
    if not path.exists():
        bundled = SAMPLE_DIR / path.name
        hint = f"; the bundled sample of that name is {bundled}" if bundled.is_file() and path != bundled else ""
        raise ImageFormatError(f"input file '{name}' not found{hint}")
    if path.is_dir():
        raise ImageFormatError(f"{where} is a folder; give an image, IDX or NumPy file")
    size = path.stat().st_size
    if size == 0:
        raise ImageFormatError(f"{where} is empty (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(16)
        handle.seek(0)
        kind = _sniff(head)
        if kind == "gzip":
            header, array = idx.open_gzip(lambda: path.open("rb"), where)
            return _array_source(name, _stem(path), _idx_format(header, "gzip"), array, key)
        if kind == "idx":
            header = idx.read_header(handle, where)
            idx.check_data_size(header, size - header.header_size, where)
            array = np.memmap(path, dtype=header.dtype, mode="r", offset=header.header_size, shape=header.shape)
            return _array_source(name, _stem(path), _idx_format(header), array, key)
        if kind == "npy":
            header = npyfiles.read_header(handle, where)
            npyfiles.check_data_size(header, size - header.offset, where)
            array = np.memmap(path, dtype=header.dtype, mode="r", offset=header.offset, shape=header.shape,
                              order=header.order)
            return _array_source(name, _stem(path), f"NumPy array {header.describe()}", array, key)
    if kind == "npz":
        return _npz_source(npyfiles.NpzArchive(path, where), name, _stem(path), key)
    return _pillow_source(lambda: path.open("rb"), name, _stem(path), head, key)


def _from_bytes(data, *, name: str, stem: str, key: str | None) -> ImageSource:
    """A source over bytes read from stdin (the same formats as files); ``data`` is not copied."""
    where = name
    data = memoryview(data).cast("B")
    if not len(data):
        raise ImageFormatError(f"{where} is empty (0 bytes)")
    head = bytes(data[:16])
    kind = _sniff(head)
    reader = lambda: io.BufferedReader(streams.MemoryReader(data))  # noqa: E731 - a new file over the same bytes
    if kind == "gzip":
        header, array = idx.open_gzip(reader, where)
        return _array_source(name, stem, _idx_format(header, "gzip"), array, key)
    if kind == "idx":
        header = idx.read_header(reader(), where)
        idx.check_data_size(header, len(data) - header.header_size, where)
        return _array_source(name, stem, _idx_format(header), idx.as_array(header, data[header.header_size:]), key)
    if kind == "npy":
        header = npyfiles.read_header(reader(), where)
        npyfiles.check_data_size(header, len(data) - header.offset, where)
        return _array_source(name, stem, f"NumPy array {header.describe()}", npyfiles.from_buffer(header, data), key)
    if kind == "npz":
        return _npz_source(npyfiles.NpzArchive(reader(), where), name, stem, key)
    return _pillow_source(reader, name, stem, head, key)


def _sniff(head: bytes) -> str:
    """The format from the first bytes: gzip, npy, npz, idx, or "image" (left to Pillow)."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "npz"
    if idx.looks_like_idx(head):
        return "idx"
    return "image"


def _stem(path: Path) -> str:
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    return Path(name).stem or name


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


def _idx_format(header: idx.IdxHeader, packing: str = "") -> str:
    return f"IDX {header.type_name} {_dims(header.shape)}" + (f" ({packing})" if packing else "")


def _read_capped(stream, where: str, limit: int = idx.MAX_DATA_BYTES) -> bytearray:
    """All of ``stream``, read in 1 MiB chunks into one growing buffer, refusing more than ``limit`` bytes.

    The data is held once (no list of chunks joined at the end, which needs twice the memory).
    """
    data = bytearray()
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            return data
        data += chunk
        if len(data) > limit:
            raise ImageFormatError(f"{where} holds more than convcli's limit of {limit:,} bytes")


def _refuse_key(key: str | None, name: str, what: str) -> None:
    if key is not None:
        raise ParameterError(f"key '{key}' applies only to .npz archives; '{name}' is {what}")


# ----------------------------------------------------------------------------- arrays (IDX, npy, npz)


def _array_source(name: str, stem: str, fmt: str, array, key: str | None, *,
                  shape: tuple[int, ...] | None = None) -> ImageSource:
    """A source over an ``(H, W)`` or ``(N, H, W)`` array or :class:`~convcli.io.streams.StreamedArray`."""
    if shape is None:
        _refuse_key(key, name, f"an {fmt}" if fmt[0] in "AEIOU" else f"a {fmt}")
        shape = tuple(int(d) for d in array.shape)
    if len(shape) == 1:
        raise ImageFormatError(
            f"input '{name}' is 1-D, shape {shape} (a labels file?); expected (H, W) or (N, H, W) images"
        )
    if len(shape) not in (2, 3):
        raise ImageFormatError(f"input '{name}' has shape {shape}; expected (H, W) or (N, H, W) images")
    if 0 in shape:
        raise ImageFormatError(f"input '{name}' has shape {shape}, which holds no pixels")
    pictures.check_pixels(shape[-2], shape[-1], name)

    def load(indices: np.ndarray, color: bool) -> np.ndarray:
        if len(shape) == 3:
            return array[indices]  # a StreamedArray decompresses only up to max(indices)
        return np.asarray(array)[None][indices]

    return ImageSource(name=name, stem=stem, format=fmt, shape=shape[-2:],
                       count=shape[0] if len(shape) == 3 else 1, indexed=len(shape) == 3, loader=load)


def _npz_source(archive: npyfiles.NpzArchive, name: str, stem: str, key: str | None) -> ImageSource:
    """One array of a ``.npz`` archive (Keras' ``mnist.npz``: x_train, y_train, x_test, y_test)."""
    key = archive.image_key(key)
    header = archive.headers[key]
    array = archive.load(key)  # decompressed on demand, each byte once
    return _array_source(name, stem, f"NumPy archive array '{key}' {header.describe()}", array, key, shape=header.shape)


def _pillow_source(opener, name: str, stem: str, head: bytes, key: str | None) -> ImageSource:
    """A picture file (PNG, JPEG...), decoded by Pillow when read.

    A multi-frame picture (TIFF pages, GIF or WebP frames) is indexed: item
    ``i`` is frame ``i``, and every frame must have the first one's size.
    """
    where = name if name == "stdin" else f"input '{name}'"
    fmt, shape, frames = pictures.probe(opener, name, where, head)
    _refuse_key(key, name, f"a {fmt}")

    def load(indices: np.ndarray, color: bool) -> np.ndarray:
        if frames == 1:
            picture = pictures.decode(opener, name, where, head, color=color)
            return np.broadcast_to(picture, (len(indices),) + picture.shape)
        out = []
        for i in indices.tolist():
            picture = pictures.decode(opener, name, where, head, color=color, frame=i)
            if picture.shape[:2] != shape:
                raise ImageFormatError(
                    f"{where}: frame {i} is {picture.shape[1]}x{picture.shape[0]}, frame 0 is "
                    f"{shape[1]}x{shape[0]}; convcli reads frames of one size"
                )
            out.append(picture)
        channels = {p.shape[2:] for p in out}
        if len(channels) > 1:  # grey and colour frames mixed: colour for all
            out = [p if p.shape[2] == 3 else np.repeat(p, 3, axis=2) for p in out]
        return np.stack(out)

    return ImageSource(name=name, stem=stem, format=fmt, shape=shape, count=frames, indexed=frames > 1, loader=load)
