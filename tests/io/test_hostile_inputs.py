"""Hostile and faulty inputs (issue 13): bounded memory, one clear error, never another exception.

Memory is measured as the peak RSS of a child process (``os.wait4``), never time.
"""

import gzip
import io
import os
import struct
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from convcli.errors import ImageFormatError, ParameterError
from convcli.io import images, streams
from convcli.io.images import open_source

ITEM = 28 * 28


def idx_gz_of_zeros(path, count: int) -> None:
    """A gzipped IDX ``(count, 28, 28)`` of zeros, about 1 KB per MiB: gzip members of 1 MiB of zeros, concatenated."""
    member = gzip.compress(bytes(1 << 20), compresslevel=9)
    full, rest = divmod(count * ITEM, 1 << 20)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(b"\0\0\x08\x03" + struct.pack(">III", count, 28, 28)))
        handle.write(member * full)
        handle.write(gzip.compress(bytes(rest)))


def npz_of_zeros(path, count: int) -> None:
    """A deflated ``.npz`` with one array ``x`` of ``(count, 28, 28)`` uint8 zeros, written in 16 MiB steps."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (count, 28, 28)})
    block, left = bytes(1 << 24), count * ITEM
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            while left:
                member.write(block[: min(left, len(block))])
                left -= min(left, len(block))


def peak_rss_mb(code: str, *args, stdin=None) -> float:
    """Peak resident memory (MB) of a fresh Python running ``code``; it must succeed."""
    child = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=stdin,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, child.stderr.read().decode()
    return usage.ru_maxrss / 1024


READ_ITEM_0 = (
    "import sys; from convcli.io.images import open_source; "
    "x = open_source(sys.argv[1]).read([0], dtype=None); assert x.shape == (1, 28, 28) and not x.any()"
)


@pytest.mark.parametrize("kind", ["gz", "npz", "gz-stdin"])
def test_reading_item_0_decompresses_only_item_0(tmp_path, kind):
    """Issue 13: a 1 MB .gz / .npz / stdin holding ~300 MB took that twice over to read item 0."""
    count = 400_000  # 314 MB of data
    path = tmp_path / ("x.npz" if kind == "npz" else "x-idx3-ubyte.gz")
    (npz_of_zeros if kind == "npz" else idx_gz_of_zeros)(path, count)
    assert path.stat().st_size < 2_000_000
    baseline = peak_rss_mb("import numpy, PIL.Image, convcli.io.images")
    if kind == "gz-stdin":
        with open(path, "rb") as handle:
            peak = peak_rss_mb(READ_ITEM_0, "-", stdin=handle)
    else:
        peak = peak_rss_mb(READ_ITEM_0, path)
    assert peak < baseline + 40, (peak, baseline)  # the whole stack would be 314 MB (628 MB joined)


@pytest.mark.parametrize("packing", ["gz", "npz"])
def test_streamed_items_match_the_array_in_any_order(tmp_path, packing):
    stack = np.random.default_rng(1).integers(0, 256, (50, 9, 7), dtype=np.uint8)
    if packing == "gz":
        path = tmp_path / "s-idx3-ubyte.gz"
        path.write_bytes(gzip.compress(b"\0\0\x08\x03" + struct.pack(">III", 50, 9, 7) + stack.tobytes()))
    else:
        path = tmp_path / "s.npz"
        np.savez_compressed(path, x=stack)
    source = open_source(path)
    for wanted in ([3], [40, 2, 7], [49], [0], list(range(50))):
        np.testing.assert_array_equal(source.read(wanted, dtype=None), stack[wanted])


def test_truncated_gzip_is_found_when_the_missing_items_are_read(tmp_path):
    path = tmp_path / "t-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\0\0\x08\x03" + struct.pack(">III", 10, 2, 2) + bytes(4 * 6)))
    source = open_source(path)
    assert source.read([0, 5], dtype=None).shape == (2, 2, 2)  # present items read fine
    with pytest.raises(ImageFormatError) as err:
        source.read([9])
    assert str(err.value) == (
        f"input '{path}' is truncated: its IDX header says 10x2x2 ubyte = 40 bytes of data, but only 24 follow"
    )
    with pytest.raises(ImageFormatError, match="is truncated"):  # again: never data read from a reopened stream
        source.read([5])


def test_stdin_is_held_once(monkeypatch):
    """stdin bytes go into one growing buffer and are read in place (no joined copy, no BytesIO copy)."""
    data = b"\0\0\x08\x03" + struct.pack(">III", 3, 2, 2) + bytes(range(12))
    monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": io.BytesIO(data)})())
    source = open_source("-")
    np.testing.assert_array_equal(source.read(dtype=None), np.arange(12, dtype=np.uint8).reshape(3, 2, 2))


def npy_with_header(text: str, payload: bytes = bytes(32)) -> bytes:
    raw = text.encode()
    raw += b" " * (64 - (10 + len(raw) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + payload


@pytest.mark.parametrize("header, message", [
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)'''}", "TokenError"),  # tokenize.TokenError
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2(, }", "TokenError"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, -1), }", "its header has shape (-1, -1)"),
])
def test_malformed_npy_headers(tmp_path, header, message):
    path = tmp_path / "h.npy"
    path.write_bytes(npy_with_header(header))
    with pytest.raises(ImageFormatError) as err:
        open_source(path).read()
    assert str(err.value).startswith(f"input '{path}' is not a valid .npy file: ")
    assert message in str(err.value)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2])
def test_corrupt_compressed_npz_members(tmp_path, method):
    path = tmp_path / "c.npz"
    array = np.random.default_rng(2).normal(size=(20, 30, 30))
    buffer = io.BytesIO()
    np.save(buffer, array)
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        archive.writestr("x.npy", buffer.getvalue())
    data = bytearray(path.read_bytes())
    start = data.index(b"x.npy") + 5 + 60  # inside the compressed data, past the header's first block
    data[start : start + 40] = bytes(range(40))
    path.write_bytes(bytes(data))
    with pytest.raises(ImageFormatError) as err:
        open_source(path).read()
    assert f"'{path}'" in str(err.value)


def test_corrupt_tiff_prints_no_pillow_warnings(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)).save(buffer, format="TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    data[ifd + 2 + 4 : ifd + 2 + 8] = struct.pack("<I", 0xFFFF)  # first tag's count: data larger than the file
    path = tmp_path / "c.tif"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            open_source(path).read()
        except ImageFormatError as exc:
            assert f"input '{path}'" in str(exc)
    assert [str(w.message) for w in caught] == []


# ----------------------------------------------------------------------------- fuzzing the readers


def _valid_inputs() -> dict[str, bytes]:
    stack = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    npy, npz, png = io.BytesIO(), io.BytesIO(), io.BytesIO()
    np.save(npy, stack.astype(np.float32))
    np.savez_compressed(npz, x=stack)
    Image.fromarray(stack[0]).save(png, format="PNG")
    idx = b"\0\0\x08\x03" + struct.pack(">III", 2, 3, 4) + stack.tobytes()
    return {"idx": idx, "idx.gz": gzip.compress(idx), "npy": npy.getvalue(), "npz": npz.getvalue(),
            "png": png.getvalue()}


VALID = _valid_inputs()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(VALID)), edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)),
                                                          max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 400)), extra=st.binary(max_size=8))
def test_fuzzed_inputs_give_an_image_or_an_image_format_error(tmp_path, kind, edits, cut, extra):
    data = bytearray(VALID[kind])
    for where, value in edits:
        data[where % len(data)] = value
    data = bytes(data[:cut]) + extra if cut is not None else bytes(data) + extra
    path = tmp_path / f"fuzz.{kind}"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would be printed to a user: count it as a failure
        try:
            source = open_source(path)
            values = source.read()
        except (ImageFormatError, ParameterError):
            return
    assert values.ndim == 3 and values.shape[1:] == source.shape and np.isfinite(values).all()


def test_memory_reader_is_a_seekable_file_over_the_buffer():
    reader = io.BufferedReader(streams.MemoryReader(bytearray(b"abcdef")))
    assert reader.read(2) == b"ab"
    reader.seek(-1, io.SEEK_END)
    assert reader.read() == b"f"
    assert images._sniff(b"\x1f\x8b") == "gzip"
