"""A fast PNG encoder for 8-bit pictures: numpy filters, zlib run-length strategy, strips on threads.

Pillow's encoder tries all five PNG filters on every row and deflates at
level 6: on a 4096x4096 activation map that is about 1.2 s, most of a
``convcli convolve`` run.  This encoder writes the same kind of standard PNG
(8-bit grey or RGB, non-interlaced) in a fraction of that:

- **filters per strip**: the picture is cut into strips of
  :data:`STRIP_BYTES`; each strip gets the one filter (None, Sub, Up or
  Average) whose residuals have the least sum of absolute values on a sample
  of its rows -- the heuristic of the PNG specification, decided per strip
  instead of per row, and computed with numpy over whole strips;
- **deflate** with ``zlib.Z_RLE`` (run-length matches only), which is 2-3x
  faster than the default strategy on photographs and maps and, after a good
  filter, about as small (the residuals are mostly small and repeated);
- **small pictures** (MNIST maps, thumbnails: up to :data:`SMALL_BYTES`)
  take the fewest calls: the Up filter and one deflate at level 1 with
  run-length matches and a window the picture's size (:data:`SMALL_ZLIB`),
  or none at all (stored, zlib level 0) when the file still fits one
  file-system block (:data:`STORED_BYTES`);
  :func:`encode_stack` filters a whole stack of equal-sized pictures in one
  numpy pass and frames each file with a header made once (``filters
  render``: 25,000 maps, where deflating is most of the CPU time);
- **strips on threads**: each strip is filtered and deflated on its own (raw deflate ending
  in a sync flush, as ``pigz`` does), so strips compress in parallel -- zlib
  releases the GIL -- and are joined into one valid zlib stream; the Adler-32
  checksum is accumulated in order.  At most a few strips are in flight, so
  extra memory stays a few strips.

Files are within a few percent of Pillow's default size on photographs and
noisy maps (the benchmark's 4096x4096 picture and its edge map: 0.97x and
1.00x); on very smooth synthetic pictures (a sine pattern) they can be up to
~1.6x larger, still small (Pillow's per-row filters and level-6 search find
longer matches there, at 4x the time).  Any PNG reader
decodes them (Pillow, libpng, browsers); the tests decode them with Pillow.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import numpy as np

#: Uncompressed bytes per strip (each is filtered and deflated on its own).
STRIP_BYTES = 1 << 20
#: Threads deflating strips (zlib releases the GIL); 1 compresses in the calling thread.
THREADS = 2
#: Rows of each strip the filter choice looks at (evenly spaced).
SAMPLE_ROWS = 16
#: zlib level and strategy.
LEVEL, STRATEGY = 1, zlib.Z_RLE
#: Pictures of at most this many bytes are one strip with the Up filter, deflated with :data:`SMALL_ZLIB`.
SMALL_BYTES = 1 << 14
#: zlib level, memLevel and strategy for small pictures (:func:`encode_stack`), whose window is the
#: picture's size rounded up to a power of two: memLevel 5 is 2,048-symbol blocks (one Huffman table for
#: a 28x28 map) and an 8 KiB hash table.  On Fashion-MNIST maps with the Up filter, level 1 and
#: run-length matches take 26 us a map for 468 bytes, level 6 33 us for 456 bytes (the Sub filter at
#: level 6, as before: 34 us, 482 bytes).  Most of it is building the block's Huffman tables, whatever
#: the level or strategy; only stored blocks (level 0, 2 us, 705 bytes) are cheaper.
SMALL_ZLIB = (1, 5, zlib.Z_RLE)
#: A picture of :func:`encode_stack` whose PNG, stored without compression (zlib level 0), is at most this
#: many bytes is stored: a file takes whole blocks of its file system (4 KiB on ext4, XFS, tmpfs, APFS and
#: NTFS), so the smaller deflated file would take no less room on disk, and deflate costs 10-25 us per
#: 28x28 map against 2 us stored -- about half of the CPU time of ``filters render``.  0: always deflate.
STORED_BYTES = 4096
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_png(img, stream: BinaryIO) -> None:
    """Write a uint8 picture ``(H, W)`` (grey) or ``(H, W, 3)`` (RGB) to a binary stream as PNG.

    ``img`` is an array, or a picture made strip by strip: an object with a
    ``shape`` and a method ``rows(r0, r1)`` giving rows ``r0..r1`` as a uint8
    array (:class:`convcli.maps.picture.Picture`).  Strips are then made in the
    encoding threads, each just before it is filtered and deflated, so making
    them runs in parallel too and the whole picture is never held.
    """
    rows_of = getattr(img, "rows", None)
    if rows_of is None:
        img = np.ascontiguousarray(img)
        flat = img.reshape(img.shape[0], -1)
        rows_of = lambda r0, r1: flat[r0:r1]  # noqa: E731 - views, no copy
    height, width = img.shape[:2]
    channels = 1 if len(img.shape) == 2 else img.shape[2]
    if height * width * channels <= SMALL_BYTES:  # a thumbnail or an MNIST map: the fewest calls
        stream.write(encode_stack(rows_of(0, height).reshape((1,) + tuple(img.shape)))[0])
        return
    stream.write(SIGNATURE)
    stream.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)))
    strip = max(1, STRIP_BYTES // max(1, width * channels))
    starts = list(range(0, height, strip))
    adler = 1
    pending = []

    def drain(limit: int) -> None:
        nonlocal adler
        while len(pending) > limit:
            data, packed = pending.pop(0).result()
            adler = zlib.adler32(data, adler)  # in order: the checksum of the whole stream
            _write_chunk(stream, b"IDAT", packed)

    header = b"\x78\x01"  # deflate, 32 KiB window, no dictionary, "fastest" level hint
    stream.write(_chunk(b"IDAT", header))
    threaded = THREADS > 1 and len(starts) > 1  # a small picture is one strip: no threads to start
    with ThreadPoolExecutor(THREADS, thread_name_prefix="convcli-png") if threaded else _Inline() as pool:
        for index, r0 in enumerate(starts):
            job = (rows_of, r0, min(r0 + strip, height), channels, index == len(starts) - 1)
            pending.append(pool.submit(_strip, *job))
            drain(THREADS)
        drain(0)
    stream.write(_chunk(b"IDAT", struct.pack(">I", adler)))
    stream.write(_chunk(b"IEND", b""))


def encode_stack(stack: np.ndarray) -> "list[bytes]":
    """The PNG file of each picture of a stack: ``(n, H, W)`` grey or ``(n, H, W, 3)`` RGB uint8.

    Meant for many small pictures (``filters render``'s maps): the Up filter
    is applied to the whole stack in one numpy pass, and each picture is then
    one zlib call (settings :data:`SMALL_ZLIB`, a window the picture's size;
    or stored, zlib level 0, when the file still fits :data:`STORED_BYTES`)
    and a few bytes of chunk framing -- the header chunk is made once for the
    stack.  Any size works; :func:`write_png` is faster for large pictures (a
    filter per strip, deflate on threads).
    """
    stack = np.ascontiguousarray(stack)
    n, height, width = stack.shape[:3]
    channels = 1 if stack.ndim == 3 else stack.shape[3]
    rows = stack.reshape(n, height, width * channels)
    scanlines = np.empty((n, height, width * channels + 1), np.uint8)
    scanlines[:, :, 0] = 2  # Up: each byte minus the one above it (zeros above the first row)
    scanlines[:, 0, 1:] = rows[:, 0]
    np.subtract(rows[:, 1:], rows[:, :-1], out=scanlines[:, 1:, 1:])
    head = SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0))
    data = memoryview(scanlines).cast("B")
    size = scanlines[0].size
    level, mem_level, strategy = SMALL_ZLIB
    wbits = min(15, max(9, (size - 1).bit_length()))  # a window as large as the picture, within zlib's 2**9..2**15
    # zlib's stored stream: a 2-byte header, 5 bytes per block of up to 65,535, the 4-byte Adler-32
    stored = len(head) + 12 + 2 + 5 * (size // 65535 + 1) + size + 4 + len(_IEND) <= STORED_BYTES
    out = []
    for i in range(n):
        if stored:
            packed = zlib.compress(data[i * size : (i + 1) * size], 0)
        else:
            compressor = zlib.compressobj(level, zlib.DEFLATED, wbits, mem_level, strategy)
            packed = compressor.compress(data[i * size : (i + 1) * size]) + compressor.flush()
        crc = zlib.crc32(packed, _IDAT_CRC)
        out.append(b"".join((head, len(packed).to_bytes(4, "big"), b"IDAT", packed, crc.to_bytes(4, "big"), _IEND)))
    return out


def _strip(rows_of, r0: int, r1: int, bpp: int, last: bool) -> "tuple[np.ndarray, bytes]":
    """Rows ``r0..r1``' scanlines and their raw deflate, ending byte-aligned (sync flush) or with the final block."""
    block = rows_of(r0 - 1 if r0 else 0, r1)  # with the row above, which the filters look at
    rows, previous = (block[1:], block[0]) if r0 else (block, None)
    data = filtered(rows.reshape(r1 - r0, -1), previous, bpp)
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 9, STRATEGY)
    return data, compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _write_chunk(stream: BinaryIO, kind: bytes, data: bytes) -> None:
    """:func:`_chunk` written in three pieces (a strip's megabyte is not copied into one more bytes object)."""
    stream.write(struct.pack(">I", len(data)) + kind)
    stream.write(data)
    stream.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


_IDAT_CRC = zlib.crc32(b"IDAT")
_IEND = _chunk(b"IEND", b"")


class _Inline:
    """A stand-in for the thread pool that runs each job at once."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, func, *args) -> Future:
        future = Future()
        future.set_result(func(*args))
        return future


# ----------------------------------------------------------------------------- filters


def filtered(rows: np.ndarray, previous, bpp: int) -> np.ndarray:
    """The PNG scanlines of ``rows`` ``(h, stride)`` uint8, ``(h, stride + 1)``: a filter-type byte, then the
    residuals, per row.

    ``previous`` is the picture's row above the strip (None at the top, where
    PNG treats it as zeros); ``bpp`` is the bytes per pixel (1 grey, 3 RGB).
    The filter is the one of :data:`FILTERS` with the least :func:`_score` on
    :data:`SAMPLE_ROWS` rows of the strip.
    """
    h, stride = rows.shape
    sample = np.array(sorted({(h - 1) * i // max(1, SAMPLE_ROWS - 1) for i in range(SAMPLE_ROWS)}))  # (np.unique imports numpy.ma: 30 ms)
    above = np.zeros(stride, np.uint8) if previous is None else previous
    sample_above = np.where((sample > 0)[:, None], rows[np.maximum(sample - 1, 0)], above[None, :])
    scratch = np.empty((len(sample), stride), np.uint8)
    scores = [_score(_residuals(kind, rows[sample], sample_above, bpp, scratch)) for kind in FILTERS]
    kind = FILTERS[int(np.argmin(scores))]
    out = np.empty((h, stride + 1), np.uint8)
    out[:, 0] = kind
    _residuals(kind, rows, above, bpp, out[:, 1:], whole=True)
    return out


#: The PNG filters tried: 0 None, 1 Sub, 2 Up, 3 Average (Paeth, 4, rarely wins by much and costs several passes).
FILTERS = (0, 1, 2, 3)


def _residuals(kind: int, x: np.ndarray, above: np.ndarray, bpp: int, out: np.ndarray, *, whole: bool = False):
    """Filter ``kind`` of rows ``x`` into ``out`` (uint8, wrapping), and return ``out``.

    With ``whole``, ``x`` is a run of consecutive rows and ``above`` is the row
    above the first (each later row's is the row before it); otherwise
    ``above`` holds the row above each row of ``x``.
    """
    if whole:
        b_first, b_rest = above, x[:-1]
    else:
        b_first, b_rest = above[0], above[1:]
    if kind == 0:
        out[...] = x
    elif kind == 1:
        out[:, :bpp] = x[:, :bpp]
        np.subtract(x[:, bpp:], x[:, :-bpp], out=out[:, bpp:])
    elif kind == 2:
        np.subtract(x[:1], b_first, out=out[:1])
        np.subtract(x[1:], b_rest, out=out[1:])
    else:  # average of left and above, rounded down: (a + b) >> 1 without overflow as (a & b) + ((a ^ b) >> 1)
        b = np.empty_like(x)
        b[0], b[1:] = b_first, b_rest
        mean = b >> 1
        mean[:, bpp:] = (x[:, :-bpp] & b[:, bpp:]) + ((x[:, :-bpp] ^ b[:, bpp:]) >> 1)
        np.subtract(x, mean, out=out)
    return out


def _score(residuals: np.ndarray) -> int:
    """Sum of the residuals read as signed bytes, in absolute value (small means compressible)."""
    return int(np.abs(residuals.view(np.int8).astype(np.int16)).sum())
