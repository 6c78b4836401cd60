"""Hostile kernels (issue 13): one KernelError naming the kernel, never a traceback, never a large read."""

import os
import tracemalloc

import numpy as np
import pytest

from convcli.errors import KernelError, ShapeError
from convcli.io.kernels import load_kernel
from convcli.io.pictures import MAX_PIXELS


def error_of(spec, **kwargs) -> str:
    with pytest.raises(KernelError) as err:
        load_kernel(str(spec), **kwargs)
    return str(err.value)


def npy_header_only(path, shape, *, sparse: bool = False) -> None:
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f8", "fortran_order": False, "shape": shape})
        if sparse:  # a sparse file: the right length, no disk used
            handle.truncate(handle.tell() + 8 * int(np.prod(shape)))


def test_json_nested_100000_deep(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert error_of(path) == (f"kernel file '{path}' is nested too deeply; expected a list of rows like "
                              "[[1, 0, -1], [2, 0, -2]]")


def test_json_numbers_of_400_and_5000_digits(tmp_path):
    big, huge = tmp_path / "big.json", tmp_path / "huge.json"
    big.write_text("[[" + "1" * 400 + ", 1]]")
    huge.write_text("[[" + "1" * 5000 + "]]")
    assert error_of(big) == (f"kernel file '{big}', row 1, value 1: a number too large for a float (beyond 1.8e308); "
                             "kernels need finite numbers")
    assert error_of(huge) == (f"kernel file '{huge}' holds a number of more than 4300 digits; kernels need finite "
                              "float numbers")
    assert "is not finite" in error_of("1" * 400 + ",1")  # inline: float() gives inf, refused as not finite


def test_unknown_user_fifo_and_too_long_name(tmp_path):
    assert error_of("~nosuchuser-convcli/k.txt") == (
        "kernel file '~nosuchuser-convcli/k.txt' not found: there is no user 'nosuchuser-convcli'")
    fifo = tmp_path / "k.fifo"
    os.mkfifo(fifo)
    assert error_of(fifo) == (f"kernel '{fifo}' is not a regular file (a FIFO, socket or device?); give a kernel "
                              "file (.txt, .csv, .json, .npy)")
    inline = ";".join(["1,2,3,4,5,6,7,8,9,10"] * 30)  # 329 characters: too long for a file name
    assert load_kernel(inline).shape == (30, 10)
    assert error_of("x" * 300).startswith("unknown filter 'xxx")


def test_npy_header_claiming_100000_squared_is_refused_from_the_header(tmp_path):
    path = tmp_path / "claim.npy"
    npy_header_only(path, (100_000, 100_000))
    assert error_of(path) == (f"kernel file '{path}' holds a 100000x100000 kernel, more than the limit of "
                              f"{MAX_PIXELS:,} values")


def test_large_sparse_npy_kernel_is_checked_before_its_data_is_read(tmp_path):
    path = tmp_path / "sparse.npy"
    npy_header_only(path, (3000, 3000), sparse=True)  # 72 MB of zeros

    def fits(shape):
        raise ShapeError(f"kernel ({shape[0]}x{shape[1]}) is larger than the image")

    tracemalloc.start()
    try:
        with pytest.raises(ShapeError, match=r"kernel \(3000x3000\) is larger"):
            load_kernel(str(path), check_shape=fits)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_malformed_npy_kernel_header(tmp_path):
    path = tmp_path / "bad.npy"
    text = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2(, }"
    text += b" " * (64 - (10 + len(text) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + bytes(32))
    assert error_of(path).startswith(f"kernel file '{path}' is not a valid .npy file: TokenError")
    npy_header_only(path, (-1, -1))
    assert error_of(path) == f"kernel file '{path}' is not a valid .npy file: its header has shape (-1, -1)"


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=60), st.text(alphabet="0123456789.,;-+eE/ []", max_size=60)))
def test_fuzzed_kernel_specs_give_a_kernel_or_a_kernel_error(spec):
    try:
        kernel = load_kernel(spec)
    except KernelError:
        return
    assert kernel.kernel.ndim == 2 and np.isfinite(kernel.kernel).all()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([".json", ".txt", ".npy", ".csv"]))
def test_fuzzed_kernel_files_give_a_kernel_or_a_kernel_error(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("k") / f"k{suffix}"
    path.write_bytes((b"\x93NUMPY" if suffix == ".npy" else b"") + data)
    try:
        kernel = load_kernel(str(path))
    except KernelError:
        return
    assert kernel.kernel.ndim == 2 and np.isfinite(kernel.kernel).all()
