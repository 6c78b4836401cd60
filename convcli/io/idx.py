"""Reading IDX files, the format of MNIST and Fashion-MNIST (numpy only).

An IDX file is a 4-byte magic number ``00 00 TT ND`` (TT the type code, ND
the number of dimensions), ND big-endian uint32 sizes, then the values in
C order, big-endian.  Files are often gzipped (``train-images-idx3-ubyte.gz``).

Every size is checked against the header *before* anything is allocated: a
raw file's length is compared with what the header claims, and gzip data is
decompressed on demand, only as far as the items read (:mod:`convcli.io.streams`),
at most :data:`MAX_DATA_BYTES`.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from typing import BinaryIO, Callable

import numpy as np

from convcli.errors import ImageFormatError
from convcli.io.streams import DECOMPRESSION_ERRORS, StreamedArray

#: IDX type code -> (name, big-endian numpy dtype)
IDX_TYPES: dict[int, tuple[str, str]] = {
    0x08: ("ubyte", ">u1"),
    0x09: ("byte", ">i1"),
    0x0B: ("short", ">i2"),
    0x0C: ("int", ">i4"),
    0x0D: ("float", ">f4"),
    0x0E: ("double", ">f8"),
}

#: The most data (bytes) convcli decompresses from a gzip IDX file or accepts on stdin: 1 GiB.  A
#: header claiming more is refused before anything is decompressed.
MAX_DATA_BYTES = 1 << 30


@dataclass(frozen=True)
class IdxHeader:
    """What an IDX header says: element type, shape and where the data starts."""

    type_code: int
    shape: tuple[int, ...]
    header_size: int

    @property
    def type_name(self) -> str:
        return IDX_TYPES[self.type_code][0]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(IDX_TYPES[self.type_code][1])

    @property
    def data_size(self) -> int:
        """Bytes of data the header claims: ``prod(shape) * itemsize``."""
        return math.prod(self.shape) * self.dtype.itemsize

    def describe(self) -> str:
        """``"60000x28x28 ubyte"``."""
        return f"{'x'.join(map(str, self.shape))} {self.type_name}"


def looks_like_idx(head: bytes) -> bool:
    """True when ``head`` (the first 4+ bytes) starts like an IDX file."""
    return len(head) >= 4 and head[:2] == b"\0\0" and head[2] in IDX_TYPES and head[3] >= 1


def read_header(stream: BinaryIO, where: str) -> IdxHeader:
    """Read and check an IDX header from ``stream``, leaving it at the first data byte.

    Raises
    ------
    ImageFormatError
        Bad magic number, unknown type code, no dimensions, a zero size, or a
        header cut short.
    """
    magic = stream.read(4)
    if len(magic) < 4:
        raise ImageFormatError(f"{where} is too short for an IDX file ({len(magic)} bytes; the header alone is 8+)")
    if magic[:2] != b"\0\0":
        raise ImageFormatError(
            f"{where} has a bad IDX magic number 0x{magic.hex().upper()}; "
            "an IDX file starts with 0x0000, a type code (08 ubyte ... 0E double) and the number of dimensions"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        accepted = ", ".join(f"0x{c:02X} {name}" for c, (name, _) in IDX_TYPES.items())
        raise ImageFormatError(f"{where} has an unknown IDX type code 0x{code:02X}; accepted: {accepted}")
    if ndim == 0:
        raise ImageFormatError(f"{where} is an IDX file with 0 dimensions; expected 2 (one image) or 3 (N images)")
    raw = stream.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise ImageFormatError(f"{where} is truncated inside its IDX header ({ndim} dimensions announced)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4"))
    if 0 in shape:
        raise ImageFormatError(f"{where} is an IDX file of shape {shape}: a size of 0 holds no image")
    return IdxHeader(code, shape, 4 + 4 * ndim)


def check_data_size(header: IdxHeader, available: int, where: str) -> None:
    """Refuse a file whose data length disagrees with its header.

    ``available`` is the number of data bytes after the header (the file's
    length minus the header, or what decompression produced, which may be
    ``data_size + 1`` to signal "more than claimed").
    """
    claimed = header.data_size
    if available < claimed:
        raise ImageFormatError(
            f"{where} is truncated: its IDX header says {header.describe()} = {claimed:,} bytes of data, "
            f"but only {available:,} follow"
        )
    if available > claimed:
        extra = "" if available == claimed + 1 else f" ({available - claimed:,} bytes)"
        raise ImageFormatError(
            f"{where} has more data than its IDX header ({header.describe()} = {claimed:,} bytes) describes{extra}; "
            "the file's size disagrees with its header"
        )


def open_gzip(open_raw: Callable[[], BinaryIO], where: str, *, limit: int = MAX_DATA_BYTES
              ) -> tuple[IdxHeader, StreamedArray]:
    """A gzipped IDX file: its header, and its data as a :class:`~convcli.io.streams.StreamedArray`.

    Only the header is decompressed here.  The data is decompressed when items
    are read, front to back and only as far as the items asked for, in 1 MiB
    chunks written straight into the array; at most ``limit`` bytes
    (:data:`MAX_DATA_BYTES`, 1 GiB) in all.

    Parameters
    ----------
    open_raw : callable
        Returns a new binary stream of the compressed bytes, from the start.

    Raises
    ------
    ImageFormatError
        For a corrupt or truncated gzip header, a non-IDX payload or a header
        claiming more than ``limit`` bytes (here); for corrupt or truncated data,
        or data past what the header claims, when that part is read.
    """
    try:
        with open_raw() as raw, gzip.GzipFile(fileobj=raw, mode="rb") as inner:
            head = inner.read(4)
            if not looks_like_idx(head):
                if head[:2] == b"\0\0" or len(head) < 4:
                    read_header(_Prefixed(head, inner), where)  # raises, naming the bad field
                raise ImageFormatError(
                    f"{where} is gzip data that does not hold an IDX file: it starts with 0x{head.hex().upper()}, "
                    "an IDX file with 0x0000, a type code (08 ubyte ... 0E double) and the number of dimensions"
                )
            header = read_header(_Prefixed(head, inner), where)
    except ImageFormatError:
        raise
    except DECOMPRESSION_ERRORS as exc:
        raise ImageFormatError(f"{where} has corrupt or truncated gzip data ({exc})") from None
    if header.data_size > limit:
        raise ImageFormatError(
            f"{where}: its IDX header claims {header.describe()} = {header.data_size:,} bytes, "
            f"more than convcli's limit of {limit:,} bytes"
        )

    def open_data() -> BinaryIO:
        raw = open_raw()
        inner = gzip.GzipFile(fileobj=raw, mode="rb")
        inner.read(header.header_size)
        inner.myfileobj = raw  # closed with the GzipFile
        return inner

    return header, StreamedArray(open_data, header.shape, header.dtype, where, describe=header.describe())


def as_array(header: IdxHeader, buffer) -> np.ndarray:
    """The IDX values in ``buffer`` (bytes after the header) as a read-only array of ``header.shape``."""
    return np.frombuffer(buffer, dtype=header.dtype, count=math.prod(header.shape)).reshape(header.shape)


class _Prefixed:
    """A stream that first returns ``prefix``, then reads from ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix, self._stream = prefix, stream

    def read(self, n: int) -> bytes:
        head, self._prefix = self._prefix[:n], self._prefix[n:]
        return head + (self._stream.read(n - len(head)) if n > len(head) else b"")
