"""convcli.maps.png writes standard PNGs: Pillow (libpng's rules, CRCs checked) reads back every pixel."""

import io
import struct
import threading
import zlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convcli.maps import png


def decode(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.load()
    return np.asarray(image)


def encode(img) -> bytes:
    buffer = io.BytesIO()
    png.write_png(img, buffer)
    return buffer.getvalue()


@st.composite
def pictures(draw):
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    shape = (h, w) if draw(st.booleans()) else (h, w, 3)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["noise", "ramp", "flat", "stripes"]))
    if kind == "noise":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == "flat":
        return np.full(shape, draw(st.integers(0, 255)), np.uint8)
    y, x = np.indices(shape[:2])
    base = (x * draw(st.integers(1, 9)) + y * draw(st.integers(0, 9))) if kind == "ramp" else (x // 3 % 2) * 255
    return np.broadcast_to((base % 256).astype(np.uint8)[..., None], shape[:2] + (shape[2:] or (1,))).reshape(shape)


@settings(max_examples=200, deadline=None)
@given(pictures(), st.sampled_from([1, 5, 64, 1 << 20]), st.sampled_from([1, 2, 3]), st.sampled_from([1, 4, 16]),
       st.sampled_from([0, 1 << 14]))
def test_pillow_reads_back_every_pixel(img, strip_bytes, threads, sample_rows, small_bytes):
    """Small pictures in one call, larger ones in strips (the limits shrunk so that small pictures take both ways)."""
    saved = png.STRIP_BYTES, png.THREADS, png.SAMPLE_ROWS, png.SMALL_BYTES
    png.STRIP_BYTES, png.THREADS, png.SAMPLE_ROWS, png.SMALL_BYTES = strip_bytes, threads, sample_rows, small_bytes
    try:
        data = encode(img)
    finally:
        png.STRIP_BYTES, png.THREADS, png.SAMPLE_ROWS, png.SMALL_BYTES = saved
    back = decode(data)
    assert back.shape == img.shape and back.dtype == np.uint8
    np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize("kind", png.FILTERS)
def test_each_filter_inverts_by_the_png_rules(kind):
    """Undo each filter with loops written from the PNG specification (independent of the encoder's numpy)."""
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 256, (6, 12), dtype=np.uint8)
    above = rng.integers(0, 256, 12, dtype=np.uint8)
    bpp = 3
    res = png._residuals(kind, rows, above, bpp, np.empty_like(rows), whole=True).astype(int)
    out = np.zeros_like(rows, dtype=int)
    for y in range(6):
        prior = above.astype(int) if y == 0 else out[y - 1]
        for x in range(12):
            a = out[y, x - bpp] if x >= bpp else 0
            b = prior[x]
            predictor = {0: 0, 1: a, 2: b, 3: (a + b) // 2}[kind]
            out[y, x] = (res[y, x] + predictor) % 256
    np.testing.assert_array_equal(out, rows)


def test_the_stream_is_one_zlib_stream_with_valid_chunks():
    img = np.random.default_rng(2).integers(0, 256, (300, 500), dtype=np.uint8)
    saved = png.STRIP_BYTES
    png.STRIP_BYTES = 10_000  # many strips, joined by sync flushes
    try:
        data = encode(img)
    finally:
        png.STRIP_BYTES = saved
    assert data[:8] == png.SIGNATURE
    pos, idat, kinds = 8, b"", []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        kinds.append(kind)
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds[1:-1]) == {b"IDAT"}
    raw = zlib.decompress(idat)  # checks the Adler-32 of the whole stream
    assert len(raw) == 300 * 501


def test_size_is_pillows_on_a_noisy_photo_like_picture():
    """Not a timing: the file sizes, which the benchmark's size target is about."""
    y, x = np.mgrid[0:512, 0:512]
    noise = np.random.default_rng(3).normal(0, 12, (512, 512))
    img = np.clip(127.5 + 60 * np.sin(x / 37) * np.cos(y / 53) + noise, 0, 255).astype(np.uint8)
    pillow = io.BytesIO()
    Image.fromarray(img).save(pillow, format="PNG")
    assert len(encode(img)) <= 1.1 * len(pillow.getvalue())


def test_no_thread_is_left_running():
    before = threading.active_count()
    encode(np.zeros((2000, 2000), np.uint8))
    assert threading.active_count() == before


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 40), st.integers(1, 40), st.booleans(), st.integers(0, 2**32 - 1),
       st.sampled_from([0, png.STORED_BYTES]))
def test_encode_stack_gives_each_picture_its_own_png(n, h, w, rgb, seed, stored_bytes):
    """One numpy pass for the stack, one file per picture: Pillow reads each back exactly, CRCs checked."""
    rng = np.random.default_rng(seed)
    stack = rng.integers(0, 256, (n, h, w, 3) if rgb else (n, h, w), dtype=np.uint8)
    stack[: n // 2] //= 16  # some smooth, compressible pictures too
    with mock.patch.object(png, "STORED_BYTES", stored_bytes):  # 0: deflated; else stored when the file fits
        files = png.encode_stack(stack)
    assert len(files) == n
    for picture, data in zip(stack, files):
        back = decode(data)
        assert back.shape == picture.shape and back.dtype == np.uint8
        np.testing.assert_array_equal(back, picture)


def test_encode_stack_files_are_one_zlib_stream_each_with_up_filtered_rows():
    stack = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 7
    for picture, data in zip(stack, png.encode_stack(stack)):
        assert data.startswith(png.SIGNATURE) and data.endswith(png._chunk(b"IEND", b""))
        length = struct.unpack(">I", data[33:37])[0]
        assert data[37:41] == b"IDAT"
        raw = np.frombuffer(zlib.decompress(data[41 : 41 + length]), np.uint8).reshape(3, 5)
        assert (raw[:, 0] == 2).all()  # Up
        np.testing.assert_array_equal(np.cumsum(raw[:, 1:], axis=0, dtype=np.uint8), picture)


def test_pictures_whose_stored_file_fits_one_block_are_stored_larger_ones_deflated():
    """A 28x28 map's file is its filtered rows as they are (zlib level 0); a 64x64 one's is deflated."""
    for side, stored in ((28, True), (64, False)):
        img = np.tile(np.arange(side, dtype=np.uint8), (side, 1))  # smooth: deflate would shrink it a lot
        data = png.encode_stack(img[None])[0]
        rows = side * (side + 1)
        assert (len(data) == 33 + 12 + 2 + 5 + rows + 4 + 12) is stored
        length = struct.unpack(">I", data[33:37])[0]
        assert (data[43] & 0x06 == 0) is stored  # after zlib's 2-byte header, the block type: 00 stored, 01/10 coded
        np.testing.assert_array_equal(decode(data), img)
        assert zlib.decompress(data[41 : 41 + length])[1:side + 1] == img[0].tobytes()


def test_small_pictures_of_write_png_are_encode_stack_files():
    img = np.random.default_rng(4).integers(0, 256, (28, 28), dtype=np.uint8)
    assert encode(img) == png.encode_stack(img[None])[0]
