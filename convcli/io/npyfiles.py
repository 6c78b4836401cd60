"""Reading NumPy ``.npy`` files and ``.npz`` archives safely (numpy only).

Headers are read first and checked: no pickles (object arrays are refused, and
``allow_pickle`` is never turned on), numbers only, and the data length must
match what the header claims before any data is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from convcli.errors import ImageFormatError
from convcli.io.streams import DECOMPRESSION_ERRORS, StreamedArray

#: The most data (bytes) convcli decompresses from one ``.npz`` member: 1 GiB.  A header claiming
#: more is refused before anything is decompressed; less is decompressed only as far as the items read.
MAX_MEMBER_BYTES = 1 << 30


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` header says, and where the data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def data_size(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def order(self) -> str:
        return "F" if self.fortran_order else "C"

    def describe(self) -> str:
        """``"uint8 60000x28x28"``."""
        return f"{self.dtype} {'x'.join(map(str, self.shape)) or 'scalar'}"


def read_header(stream: BinaryIO, where: str) -> NpyHeader:
    """Read a ``.npy`` header from ``stream`` (left at the first data byte).

    Raises
    ------
    ImageFormatError
        A bad magic string or header, an object (pickled) array, or values that
        are not numbers (strings, complex, structured...).
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except Exception as exc:  # noqa: BLE001 - numpy parses the header with ast/tokenize: any failure is bad input
        if isinstance(exc, ImageFormatError):
            raise
        raise ImageFormatError(f"{where} is not a valid .npy file: {type(exc).__name__}: {exc}") from None
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ImageFormatError(f"{where} is not a valid .npy file: its header has shape {shape!r}")
    if dtype.hasobject:
        raise ImageFormatError(f"{where} holds Python objects (dtype object); convcli never loads pickles")
    if dtype.kind not in "biuf" or dtype.subdtype is not None:
        raise ImageFormatError(f"{where} holds {dtype} values; expected numbers (bool, int or float)")
    return NpyHeader(tuple(int(d) for d in shape), dtype, bool(fortran), stream.tell())


def check_data_size(header: NpyHeader, available: int, where: str) -> None:
    """Refuse data whose length (``available`` bytes after the header) disagrees with the header."""
    if available != header.data_size:
        problem = "is truncated" if available < header.data_size else "has extra bytes after its data"
        raise ImageFormatError(
            f"{where} {problem}: its .npy header says {header.describe()} = {header.data_size:,} bytes, "
            f"{available:,} follow"
        )


def from_buffer(header: NpyHeader, buffer) -> np.ndarray:
    """The array in ``buffer`` (the whole file's bytes), without copying."""
    flat = np.frombuffer(buffer, dtype=header.dtype, count=math.prod(header.shape), offset=header.offset)
    return flat.reshape(header.shape, order=header.order)


class NpzArchive:
    """The arrays of a ``.npz`` archive, with headers checked and data read on demand.

    ``headers`` maps each array name (``x_train``...) to its :class:`NpyHeader`, in archive order.
    """

    def __init__(self, file, where: str) -> None:
        import zipfile  # here: 3 ms to import, and only .npz inputs need it

        self.where = where
        try:
            self._zip = zipfile.ZipFile(file)
            self._members = {i.filename[:-4]: i for i in self._zip.infolist() if i.filename.endswith(".npy")}
            self.headers: dict[str, NpyHeader] = {}
            for name, info in self._members.items():
                with self._zip.open(info) as handle:
                    header = read_header(handle, f"{where}, array '{name}'")
                check_data_size(header, info.file_size - header.offset, f"{where}, array '{name}'")
                self.headers[name] = header
        except ImageFormatError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, *DECOMPRESSION_ERRORS) as exc:
            raise ImageFormatError(f"{where} is not a valid .npz archive: {exc}") from None

    def listing(self) -> str:
        """``"x_train (60000, 28, 28), y_train (60000,)"``."""
        return ", ".join(f"{name} {h.shape}" for name, h in self.headers.items()) or "no arrays"

    def image_key(self, key: str | None) -> str:
        """``key`` checked, or the default: the first 3-D array, else the first 2-D one."""
        if key is not None:
            if key not in self.headers:
                raise ImageFormatError(f"key '{key}' is not in {self.where}; it holds: {self.listing()}")
            return key
        for rank in (3, 2):
            for name, header in self.headers.items():
                if len(header.shape) == rank:
                    return name
        raise ImageFormatError(f"{self.where} holds no 2-D or 3-D array (it holds: {self.listing()})")

    def load(self, key: str, *, limit: int = MAX_MEMBER_BYTES) -> StreamedArray:
        """Array ``key``, decompressed on demand (:class:`~convcli.io.streams.StreamedArray`), at most ``limit`` bytes."""
        header = self.headers[key]
        where = f"{self.where}, array '{key}'"
        if header.data_size > limit:
            raise ImageFormatError(f"{where} holds {header.data_size:,} bytes, more than convcli's limit of {limit:,}")

        def open_data():
            handle = self._zip.open(self._members[key])
            handle.read(header.offset)
            return handle

        return StreamedArray(open_data, header.shape, header.dtype, where, order=header.order,
                             describe=header.describe(), kind=".npy")
