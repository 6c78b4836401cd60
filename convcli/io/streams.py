"""Arrays decompressed on demand, and bytes held in memory read as a file (numpy only).

A gzipped IDX file or a compressed ``.npz`` member cannot be read at an
offset: item ``i`` of an ``(N, H, W)`` stack lies after items ``0 .. i-1``.
:class:`StreamedArray` decompresses from the front only as far as the items
asked for, in chunks of :data:`CHUNK` bytes, into one buffer that grows in
place (no list of chunks joined at the end, which would need the data twice),
so reading item 0 of a 1 GiB stack costs one item, not the whole stack, and a
header that lies about the size costs only the bytes really there.  Every
byte is decompressed at most once per source.
"""

from __future__ import annotations

import io
import lzma
import math
import zlib
from typing import BinaryIO, Callable

import numpy as np

from convcli.errors import ImageFormatError

#: Bytes decompressed per step.
CHUNK = 1 << 20

#: What a corrupt compressed stream raises (gzip, deflate, bzip2, lzma).
DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, RuntimeError,
                        NotImplementedError)


class StreamedArray:
    """An ``(N, ...)`` array whose bytes come, front to back, from a stream opened on first use.

    Parameters
    ----------
    opener : callable
        Returns a binary stream positioned at the first data byte.
    shape : tuple of int
        The full shape (already checked against the caps by the caller).
    dtype : numpy dtype
    where : str
        How to name the input in errors (``"input 'x.gz'"``).
    order : "C" or "F"
        A Fortran-order array is decompressed whole on first use.
    describe, kind : str
        What the header says and its kind ("IDX", ".npy"), for the error about a size mismatch.

    Indexing with an int or a sequence of ints along the first axis decompresses
    up to the largest index asked for.  A stream that ends early, has bytes past
    the end of the data or is corrupt raises :class:`ImageFormatError` when the
    part concerned is read.
    """

    def __init__(self, opener: Callable[[], BinaryIO], shape: tuple[int, ...], dtype, where: str, *,
                 order: str = "C", describe: str = "", kind: str = "IDX") -> None:
        self.shape, self.dtype, self.where = tuple(shape), np.dtype(dtype), where
        self.order, self.describe, self.kind = order, describe, kind
        self._opener, self._stream = opener, None
        self._data, self._whole = bytearray(), None  # the bytes so far; the array once all are there
        self._error: ImageFormatError | None = None  # once the stream has failed, every later read fails
        self.nbytes = math.prod(self.shape) * self.dtype.itemsize
        self._item_bytes = self.nbytes // self.shape[0] if len(self.shape) == 3 else self.nbytes

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, indices):
        wanted = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        if self.ndim == 3 and self.order == "C" and self._whole is None:
            count = int(wanted.max()) + 1 if wanted.size else 0
            self._fill(min(self.nbytes, count * self._item_bytes))
            if self._whole is None:  # a view of the items decompressed so far; a copy of those asked for
                items = len(self._data) // self._item_bytes
                view = np.frombuffer(self._data, self.dtype, count=items * (self._item_bytes // self.dtype.itemsize))
                out = view.reshape((items,) + self.shape[1:])[indices]
                del view  # the buffer can grow again only without views of it
                return out
        return np.asarray(self)[indices]

    def __array__(self, dtype=None, copy=None):
        self._fill(self.nbytes)
        return self._whole if dtype is None else self._whole.astype(dtype)

    def _fill(self, target: int) -> None:
        """Decompress until ``target`` bytes are held (and check the end once all are)."""
        if self._error is not None:
            raise self._error
        if len(self._data) >= target:
            return
        try:
            if self._stream is None:
                self._stream = self._opener()
            while len(self._data) < target:
                chunk = self._stream.read(min(CHUNK, target - len(self._data)))
                if not chunk:
                    raise ImageFormatError(
                        f"{self.where} is truncated: its {self.kind} header says {self.describe} = "
                        f"{self.nbytes:,} bytes of data, but only {len(self._data):,} follow"
                    )
                self._data += chunk  # grows in place (realloc), so the data is held once
            if len(self._data) == self.nbytes:
                extra = self._stream.read(1)
                self._close()
                if extra:
                    raise ImageFormatError(
                        f"{self.where} has more data than its {self.kind} header ({self.describe} = "
                        f"{self.nbytes:,} bytes) describes; the file's size disagrees with its header"
                    )
                flat = np.frombuffer(self._data, self.dtype)
                self._whole = flat.reshape(self.shape, order=self.order)
        except ImageFormatError as exc:
            self._fail(exc)
        except DECOMPRESSION_ERRORS as exc:
            self._fail(ImageFormatError(f"{self.where} has corrupt or truncated compressed data ({exc})"))

    def _fail(self, error: ImageFormatError) -> None:
        self._close()
        self._error = error
        raise error from None

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except DECOMPRESSION_ERRORS:
                pass


class MemoryReader(io.RawIOBase):
    """A seekable binary file over a buffer (``bytearray``, ``memoryview``...), without copying it.

    ``io.BytesIO(bytearray)`` copies the buffer; this does not, so stdin data is
    held once.
    """

    def __init__(self, buffer) -> None:
        super().__init__()
        self._view, self._pos = memoryview(buffer).cast("B"), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        piece = self._view[self._pos : self._pos + len(target)]
        target[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def buffer(self) -> memoryview:
        """The whole buffer (read-only use)."""
        return self._view
