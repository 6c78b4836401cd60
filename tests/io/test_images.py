"""Reading inputs (convcli.io.images, convcli.io.idx, convcli.io.npyfiles, convcli.io.pictures)."""

import gzip
import io
import struct
import sys
import tracemalloc
import types

import numpy as np
import pytest
from helpers_images import IDX_CODES, fashion_mnist_dir, idx_bytes, png_bytes, png_header, read_idx_gz
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convcli.errors import ImageFormatError, ParameterError
from convcli.io import images, pictures
from convcli.io.images import default_sample, open_source, parse_indices, read_image, sample_paths

RNG = np.random.default_rng(3)


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def error_of(source, **kwargs) -> str:
    with pytest.raises(ImageFormatError) as err:
        open_source(source, **kwargs).read()
    return str(err.value)


# ----------------------------------------------------------------------------- bundled samples


def test_samples_are_there_and_agree_with_each_other():
    names = [p.name for p in sample_paths()]
    assert "fashion-mnist-16-images-idx3-ubyte.gz" in names and "scene-256.png" in names
    assert not any("labels" in n for n in names)
    assert sum(n.endswith(".png") for n in names) >= 4
    stack = open_source(sample_paths()[[p.name for p in sample_paths()].index(
        "fashion-mnist-16-images-idx3-ubyte.gz")])
    assert (stack.count, stack.shape, stack.indexed, stack.stem) == (16, (28, 28), True,
                                                                      "fashion-mnist-16-images-idx3-ubyte")
    # the PNG items are the IDX subset's items (read by an independent IDX reader)
    reference = read_idx_gz(images.SAMPLE_DIR / "fashion-mnist-16-images-idx3-ubyte.gz")
    assert reference.shape == (16, 28, 28)
    for path in sample_paths():
        if path.name.startswith("fashion-mnist-") and path.suffix == ".png":
            index = int(path.name.split("-")[2])
            np.testing.assert_array_equal(read_image(path), reference[index])
    np.testing.assert_array_equal(stack.read(), reference)
    labels = read_idx_gz(images.SAMPLE_DIR / "fashion-mnist-16-labels-idx1-ubyte.gz")
    assert labels.tolist()[:4] == [9, 2, 1, 1]  # ankle boot, pullover, trouser, trouser


def test_default_sample_and_licence_note():
    X = read_image(default_sample())
    assert X.shape == (28, 28) and X.dtype == np.float64 and X.max() == 255
    note = (images.SAMPLE_DIR / "README.md").read_text()
    assert "MIT" in note and "Zalando" in note and "Permission is hereby granted" in note
    scene = open_source(images.SAMPLE_DIR / "scene-256.png")
    assert scene.shape == (256, 256) and scene.read(color=True).shape == (1, 256, 256, 3)


@pytest.mark.skipif(fashion_mnist_dir() is None, reason="real Fashion-MNIST files not found: set "
                    "CONVCLI_FASHION_MNIST or `apt-get download dataset-fashion-mnist && dpkg -x` it under /tmp/fmnist")
def test_real_fashion_mnist_files():
    folder = fashion_mnist_dir()
    source = open_source(folder / "t10k-images-idx3-ubyte.gz")
    assert (source.count, source.shape, source.format) == (10000, (28, 28), "IDX ubyte 10000x28x28 (gzip)")
    reference = read_idx_gz(folder / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(source.read([0, 9999, 17]), reference[[0, 9999, 17]])
    subset = open_source(images.SAMPLE_DIR / "fashion-mnist-16-images-idx3-ubyte.gz").read()
    np.testing.assert_array_equal(subset, reference[:16])
    message = error_of(folder / "t10k-labels-idx1-ubyte.gz")
    assert message.endswith("is 1-D, shape (10000,) (a labels file?); expected (H, W) or (N, H, W) images")


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("kind", list(IDX_CODES))
@pytest.mark.parametrize("packing", ["raw", "gz", "stdin"])
def test_idx_every_type_code(tmp_path, kind, packing, monkeypatch):
    if kind in ("f4", "f8"):
        data = RNG.normal(0, 1e3, (3, 4, 5))
    else:
        info = np.iinfo(kind)
        data = RNG.integers(info.min, info.max, (3, 4, 5), endpoint=True)
    data = data.astype(kind)
    raw = idx_bytes(data, kind)
    if packing == "raw":
        source = open_source(write(tmp_path, "x-idx3", raw))
    elif packing == "gz":
        source = open_source(write(tmp_path, "x-idx3-ubyte.gz", gzip.compress(raw)))
        assert source.stem == "x-idx3-ubyte"
    else:
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(raw)))
        source = open_source("-")
        assert (source.name, source.stem) == ("stdin", "stdin")
    assert (source.count, source.shape, source.indexed) == (3, (4, 5), True)
    out = source.read([2, 0])
    assert out.dtype == np.float64 and out.flags.writeable
    np.testing.assert_array_equal(out, data[[2, 0]].astype(np.float64))
    np.testing.assert_array_equal(source.read(color=True)[..., 0], data.astype(np.float64))


def test_idx_two_dimensional_is_one_image(tmp_path):
    data = np.arange(12, dtype=np.uint8).reshape(3, 4)
    source = open_source(write(tmp_path, "one", idx_bytes(data)))
    assert (source.count, source.indexed, source.shape) == (1, False, (3, 4))
    np.testing.assert_array_equal(read_image(source.name), data)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 2, 2) + bytes(7),
         "is truncated: its IDX header says 2x2x2 ubyte = 8 bytes of data, but only 7 follow"),
        (b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 2, 2) + bytes(9),
         "has more data than its IDX header (2x2x2 ubyte = 8 bytes) describes; the file's size disagrees with its "
         "header"),
        (b"\x00\x00\x08\x02" + struct.pack(">2I", 2, 0),
         "is an IDX file of shape (2, 0): a size of 0 holds no image"),
        (b"\x00\x00\x08\x03" + struct.pack(">2I", 2, 2),
         "is truncated inside its IDX header (3 dimensions announced)"),
        (b"\x00\x00\x07\x03" + struct.pack(">3I", 1, 1, 1) + bytes(1),
         "has an unknown IDX type code 0x07; accepted: 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, "
         "0x0E double"),
        (b"\x00\x00\x08\x00" + bytes(4), "is an IDX file with 0 dimensions; expected 2 (one image) or 3 (N images)"),
        (b"\x01\x02\x08\x03" + struct.pack(">3I", 1, 1, 1) + bytes(1),
         "has a bad IDX magic number 0x01020803; an IDX file starts with 0x0000, a type code (08 ubyte ... 0E "
         "double) and the number of dimensions"),
        (idx_bytes(np.zeros(5, np.uint8)), "is 1-D, shape (5,) (a labels file?); expected (H, W) or (N, H, W) images"),
        (idx_bytes(np.zeros((1, 2, 2, 3), np.uint8)), "has shape (1, 2, 2, 3); expected (H, W) or (N, H, W) images"),
    ],
)
@pytest.mark.parametrize("packing", ["raw", "gz"])
def test_idx_refusals(tmp_path, data, message, packing):
    name = "bad-images-idx3-ubyte" + (".gz" if packing == "gz" else "")
    path = write(tmp_path, name, gzip.compress(data) if packing == "gz" else data)
    if packing == "gz" and data[:2] != b"\0\0":
        message = ("is gzip data that does not hold an IDX file: it starts with 0x01020803, an IDX file with 0x0000, "
                   "a type code (08 ubyte ... 0E double) and the number of dimensions")
    assert error_of(path) == f"input '{path}' {message}"


def test_idx_header_claiming_huge_data_is_refused_before_allocating(tmp_path):
    lying = b"\x00\x00\x0e\x03" + struct.pack(">3I", 60000, 4096, 4096) + bytes(64)  # claims 8 TB of doubles
    raw = write(tmp_path, "huge-idx3", lying)
    packed = write(tmp_path, "huge-idx3.gz", gzip.compress(lying))
    medium = write(tmp_path, "medium-idx3.gz",  # claims 800 MB (under the limit), holds 64 bytes
                   gzip.compress(b"\x00\x00\x0e\x03" + struct.pack(">3I", 100, 1000, 1000) + bytes(64)))
    tracemalloc.start()
    try:
        assert "is truncated: its IDX header says 60000x4096x4096 double" in error_of(raw)
        assert "claims 60000x4096x4096 double = 8,053,063,680,000 bytes, more than convcli's limit" in error_of(packed)
        assert "is truncated: its IDX header says 100x1000x1000 double = 800,000,000 bytes" in error_of(medium)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


def test_corrupt_and_foreign_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((2, 3, 3), np.uint8)))
    path = write(tmp_path, "cut-idx3.gz", good[: len(good) // 2])
    assert "has corrupt or truncated gzip data" in error_of(path)
    path = write(tmp_path, "text.gz", gzip.compress(b"hello world"))
    assert error_of(path).startswith(f"input '{path}' is gzip data that does not hold an IDX file: it starts with "
                                     "0x68656C6C, an IDX file with 0x0000")


def test_raw_idx_pick_images_in_any_order(tmp_path):
    data = RNG.integers(0, 255, (50, 8, 8)).astype(np.uint8)
    source = open_source(write(tmp_path, "stack", idx_bytes(data)))
    np.testing.assert_array_equal(source.read([49, 0, 49]), data[[49, 0, 49]])


# ----------------------------------------------------------------------------- NumPy


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int64", "float16", "float32", "float64", "bool"])
def test_npy_2d_and_3d(tmp_path, dtype):
    data = (RNG.normal(0, 100, (4, 6, 5))).astype(dtype)
    np.save(tmp_path / "stack.npy", data)
    np.save(tmp_path / "one.npy", np.asfortranarray(data[1]))
    stack, one = open_source(tmp_path / "stack.npy"), open_source(tmp_path / "one.npy")
    assert (stack.count, stack.indexed, stack.shape) == (4, True, (6, 5))
    assert (one.count, one.indexed, one.shape) == (1, False, (6, 5))
    np.testing.assert_array_equal(stack.read([3, 1]), data[[3, 1]].astype(np.float64))
    np.testing.assert_array_equal(read_image(tmp_path / "one.npy"), data[1].astype(np.float64))


def test_npy_refusals(tmp_path):
    cases = {
        "obj": (np.array([[1, None]], dtype=object),
                "holds Python objects (dtype object); convcli never loads pickles"),
        "cplx": (np.ones((2, 2), complex), "holds complex128 values; expected numbers (bool, int or float)"),
        "str": (np.array([["a"]]), "holds <U1 values; expected numbers (bool, int or float)"),
        "1d": (np.ones(4), "is 1-D, shape (4,) (a labels file?); expected (H, W) or (N, H, W) images"),
        "empty": (np.ones((0, 4)), "has shape (0, 4), which holds no pixels"),
    }
    for name, (array, message) in cases.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, array, allow_pickle=True)
        assert error_of(path) == f"input '{path}' {message}", name
    full = io.BytesIO()
    np.save(full, np.ones((4, 4)))
    path = write(tmp_path, "cut.npy", full.getvalue()[:-8])
    assert error_of(path) == (f"input '{path}' is truncated: its .npy header says float64 4x4 = 128 bytes, "
                              "120 follow")
    path = write(tmp_path, "junk.npy", b"\x93NUMPY\x01\x00garbage")
    assert error_of(path).startswith(f"input '{path}' is not a valid .npy file:")


def test_nan_pixels_are_refused_with_their_place(tmp_path):
    data = np.zeros((3, 4, 4))
    data[2, 1, 3] = np.nan
    np.save(tmp_path / "nan.npy", data)
    source = open_source(tmp_path / "nan.npy")
    np.testing.assert_array_equal(source.read([0, 1]), np.zeros((2, 4, 4)))  # only read images are checked
    with pytest.raises(ImageFormatError) as err:
        source.read([1, 2])
    assert str(err.value) == (f"input '{tmp_path / 'nan.npy'}' has NaN or infinite pixels (first at image 2, row 1, "
                              "column 3); convcli needs finite values")
    np.save(tmp_path / "inf.npy", np.array([[1.0, np.inf]]))
    assert "has NaN or infinite pixels (first at image 0, row 0, column 1)" in error_of(tmp_path / "inf.npy")


def keras_mnist(path, compressed=False):
    x_train = RNG.integers(0, 255, (5, 28, 28)).astype(np.uint8)
    x_test = RNG.integers(0, 255, (3, 28, 28)).astype(np.uint8)
    save = np.savez_compressed if compressed else np.savez
    save(path, x_train=x_train, y_train=np.arange(5, dtype=np.uint8), x_test=x_test, y_test=np.arange(3))
    return x_train, x_test


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_keras_mnist(tmp_path, compressed):
    x_train, x_test = keras_mnist(tmp_path / "mnist.npz", compressed)
    source = open_source(tmp_path / "mnist.npz")
    assert (source.count, source.shape, source.indexed) == (5, (28, 28), True)
    assert source.format == "NumPy archive array 'x_train' uint8 5x28x28"
    np.testing.assert_array_equal(source.read([4]), x_train[4:5])
    np.testing.assert_array_equal(read_image(tmp_path / "mnist.npz", key="x_test", index=2), x_test[2])
    assert error_of(tmp_path / "mnist.npz", key="x_val") == (
        f"key 'x_val' is not in input '{tmp_path / 'mnist.npz'}'; it holds: x_train (5, 28, 28), y_train (5,), "
        "x_test (3, 28, 28), y_test (3,)")
    assert error_of(tmp_path / "mnist.npz", key="y_test").endswith("is 1-D, shape (3,) (a labels file?); expected "
                                                                 "(H, W) or (N, H, W) images")


def test_npz_defaults_and_refusals(tmp_path):
    np.savez(tmp_path / "flat.npz", a=np.ones(3), b=np.full((2, 3), 7.0), c=np.zeros((2, 2)))
    np.testing.assert_array_equal(read_image(tmp_path / "flat.npz"), np.full((2, 3), 7.0))
    np.savez(tmp_path / "labels.npz", y=np.ones(3))
    assert error_of(tmp_path / "labels.npz") == (f"input '{tmp_path / 'labels.npz'}' holds no 2-D or 3-D array "
                                                 "(it holds: y (3,))")
    np.savez(tmp_path / "obj.npz", x=np.array([[None]], dtype=object))
    assert "holds Python objects (dtype object); convcli never loads pickles" in error_of(tmp_path / "obj.npz")
    path = write(tmp_path, "broken.npz", b"PK\x03\x04" + bytes(40))
    assert error_of(path).startswith(f"input '{path}' is not a valid .npz archive:")


def test_key_is_refused_for_formats_without_keys(tmp_path):
    path = write(tmp_path, "a.png", png_bytes(np.zeros((3, 3), np.uint8)))
    with pytest.raises(ParameterError) as err:
        open_source(path, key="x_train")
    assert str(err.value) == f"key 'x_train' applies only to .npz archives; '{path}' is a PNG image (mode L)"
    with pytest.raises(ParameterError, match="applies only to .npz archives; .* is an IDX ubyte 2x2"):
        open_source(write(tmp_path, "i", idx_bytes(np.zeros((2, 2), np.uint8))), key="k")


# ----------------------------------------------------------------------------- pictures


def rgb_to_l(rgb):
    """Pillow's L: ITU-R 601-2 luma, L = R*299/1000 + G*587/1000 + B*114/1000 (rounded)."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def test_every_pillow_mode(tmp_path):
    rgb = RNG.integers(0, 256, (5, 7, 3)).astype(np.uint8)
    grey = rgb[..., 0]
    L = read_image(write(tmp_path, "L.png", png_bytes(grey)))
    np.testing.assert_array_equal(L, grey)
    for mode in ("RGB", "RGBA", "P"):
        path = tmp_path / f"{mode}.png"
        Image.fromarray(rgb).convert(mode).save(path)
        out = read_image(path)
        expected = rgb_to_l(np.asarray(Image.open(path).convert("RGB")).astype(float))
        assert np.abs(out - expected).max() <= 1.0, mode  # Pillow's integer rounding
        colour = read_image(path, color=True)
        assert colour.shape == (5, 7, 3)
        np.testing.assert_array_equal(colour, np.asarray(Image.open(path).convert("RGB")))
    rgba = np.dstack([rgb, np.full((5, 7), 9, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    np.testing.assert_array_equal(read_image(tmp_path / "alpha.png", color=True), rgb)  # alpha dropped
    Image.fromarray(np.dstack([grey, grey]), "LA").save(tmp_path / "LA.png")
    np.testing.assert_array_equal(read_image(tmp_path / "LA.png"), grey)
    assert read_image(tmp_path / "LA.png", color=True).shape == (5, 7, 1)
    Image.fromarray(grey > 128).save(tmp_path / "one.png")
    np.testing.assert_array_equal(read_image(tmp_path / "one.png"), np.where(grey > 128, 255.0, 0.0))


def test_high_depth_modes_keep_their_range(tmp_path):
    deep = np.array([[0, 1, 300], [40000, 65535, 7]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png"), deep)
    ints = np.array([[-5, 0], [100000, 2**31 - 1]], dtype=np.int32)
    Image.fromarray(ints, "I").save(tmp_path / "ints.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "ints.tif"), ints)
    floats = np.array([[-1.5, 0.25], [1e6, 3.0]], dtype=np.float32)
    Image.fromarray(floats, "F").save(tmp_path / "floats.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "floats.tif"), floats)
    nan = floats.copy()
    nan[1, 0] = np.nan
    Image.fromarray(nan, "F").save(tmp_path / "nan.tif")
    assert "has NaN or infinite pixels (first at image 0, row 1, column 0)" in error_of(tmp_path / "nan.tif")


def test_dtype_none_keeps_the_stored_type(tmp_path):
    """read(dtype=None): the same values as the float64 default, in the type the file stores."""
    grey = RNG.integers(0, 256, (5, 7)).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "L.png")
    Image.fromarray(np.array([[0, 1, 300], [40000, 65535, 7]], dtype=np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(np.array([[-5, 0], [100000, 2**31 - 1]], dtype=np.int32), "I").save(tmp_path / "ints.tif")
    Image.fromarray(np.array([[-1.5, 0.25], [1e6, 3.0]], dtype=np.float32), "F").save(tmp_path / "floats.tif")
    np.save(tmp_path / "half.npy", np.array([[[1.5, -2.0]], [[3.0, 4.0]]], dtype=np.float16))
    write(tmp_path, "digits", idx_bytes(RNG.integers(0, 256, (3, 4, 4)).astype(np.uint8)))
    for name, kind in [("L.png", "u1"), ("deep.png", "u2"), ("ints.tif", "i4"), ("floats.tif", "f4"),
                       ("half.npy", "f2"), ("digits", "u1")]:
        source = open_source(tmp_path / name)
        native, default = source.read([source.count - 1], dtype=None), source.read([source.count - 1])
        assert native.dtype.kind + str(native.dtype.itemsize) == kind, name
        assert default.dtype == np.float64 and default.flags.writeable, name
        np.testing.assert_array_equal(native, default)
        assert read_image(tmp_path / name, dtype=None, index=source.count - 1).dtype == native.dtype
    assert read_image(tmp_path / "L.png", dtype=None, color=True).shape == (5, 7, 1)
    assert read_image(tmp_path / "L.png", dtype=np.float32).dtype == np.float32


def test_dtype_none_still_refuses_nan_in_float_pictures(tmp_path):
    nan = np.array([[1.0, 2.0], [np.nan, 3.0]], dtype=np.float32)
    Image.fromarray(nan, "F").save(tmp_path / "nan.tif")
    with pytest.raises(ImageFormatError, match=r"has NaN or infinite pixels \(first at image 0, row 1, column 0\)"):
        read_image(tmp_path / "nan.tif", dtype=None)


@pytest.mark.parametrize("fmt, ext", [("JPEG", "jpg"), ("BMP", "bmp"), ("GIF", "gif"), ("TIFF", "tif"),
                                      ("WEBP", "webp")])
def test_other_formats_detected_by_content(tmp_path, fmt, ext):
    grey = np.tile(np.arange(0, 240, 10, dtype=np.uint8), (8, 1))
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    path = write(tmp_path, "picture.dat", buffer.getvalue())  # a misleading extension
    source = open_source(path)
    assert source.format.startswith(fmt) and source.shape == (8, 24)
    out = source.read()[0]
    assert np.abs(out - grey).max() <= (8 if fmt == "JPEG" else 0)


def test_exif_orientation_is_applied(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(grey).save(tmp_path / "rotated.png", exif=exif)
    source = open_source(tmp_path / "rotated.png")
    assert source.shape == (4, 3)
    np.testing.assert_array_equal(source.read()[0], np.rot90(grey, k=-1))


def test_decompression_bombs(tmp_path, monkeypatch):
    path = write(tmp_path, "bomb.png", png_header(40000, 40000))  # 1.6 Gpx: Pillow's own error
    with pytest.raises(ImageFormatError) as err:
        open_source(path)
    assert str(err.value).startswith(f"input '{path}' looks like a decompression bomb:")
    path = write(tmp_path, "big.png", png_header(10000, 6000))  # 60 Mpx: over convcli's limit
    with pytest.raises(ImageFormatError) as err:
        open_source(path)
    assert str(err.value) == (f"input '{path}' has 10000x6000 = 60,000,000 pixels, more than the limit of "
                              "50,000,000 (decompression-bomb protection); raise it with --max-pixels N or "
                              "CONVCLI_MAX_PIXELS=N (0: no limit)")
    monkeypatch.setattr(pictures, "MAX_PIXELS", 20)
    with pytest.raises(ImageFormatError, match=r"has 5x5 = 25 pixels, more than the limit of 20"):
        open_source(write(tmp_path, "small.png", png_bytes(np.zeros((5, 5), np.uint8))))
    np.save(tmp_path / "arr.npy", np.zeros((3, 5, 5)))
    with pytest.raises(ImageFormatError, match=r"has 5x5 = 25 pixels, more than the limit of 20"):
        open_source(tmp_path / "arr.npy")


def test_truncated_and_garbage_pictures(tmp_path):
    good = png_bytes(RNG.integers(0, 255, (64, 64)).astype(np.uint8))
    path = write(tmp_path, "cut.png", good[: len(good) // 2])
    assert error_of(path).startswith(f"input '{path}' is truncated or corrupt:")
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(buffer, format="JPEG")
    path = write(tmp_path, "cut.jpg", buffer.getvalue()[:600])
    assert error_of(path).startswith(f"input '{path}' is truncated or corrupt:")
    path = write(tmp_path, "notes.txt", b"just some text\n")
    assert error_of(path) == (f"input '{path}' is not an image convcli can read: expected an image Pillow opens "
                              "(PNG, JPEG, BMP, TIFF, GIF, WebP...), an IDX file (raw or .gz) or a NumPy "
                              ".npy/.npz file")


def test_missing_empty_and_folder(tmp_path):
    assert error_of(tmp_path / "nope.png") == f"input file '{tmp_path / 'nope.png'}' not found"
    assert error_of(write(tmp_path, "empty.png", b"")) == f"input '{tmp_path / 'empty.png'}' is empty (0 bytes)"
    assert error_of(tmp_path) == f"input '{tmp_path}' is a folder; give an image, IDX or NumPy file"


@pytest.mark.parametrize("kind", ["png", "npy", "idx-gz", "empty"])
def test_stdin_detects_format_from_content(monkeypatch, kind):
    grey = RNG.integers(0, 255, (4, 6)).astype(np.uint8)
    if kind == "png":
        data = png_bytes(grey)
    elif kind == "npy":
        buffer = io.BytesIO()
        np.save(buffer, grey)
        data = buffer.getvalue()
    elif kind == "idx-gz":
        data = gzip.compress(idx_bytes(grey[None]))
    else:
        data = b""
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))
    if kind == "empty":
        with pytest.raises(ImageFormatError, match=r"^stdin is empty \(0 bytes\)$"):
            open_source("-")
        return
    np.testing.assert_array_equal(read_image("-"), grey)


# ----------------------------------------------------------------------------- indices


def test_read_index_out_of_range(tmp_path):
    stack = open_source(write(tmp_path, "s", idx_bytes(np.zeros((16, 2, 2), np.uint8))))
    for bad in (16, -1):
        with pytest.raises(ImageFormatError) as err:
            stack.read([bad])
        assert str(err.value) == f"index {bad} is out of range: '{stack.name}' holds 16 images (valid: 0..15)"
    single = open_source(write(tmp_path, "p.png", png_bytes(np.zeros((2, 2), np.uint8))))
    with pytest.raises(ImageFormatError) as err:
        single.read([1])
    assert str(err.value) == f"index 1 is out of range: '{single.name}' holds 1 image (valid index: 0)"


def test_parse_indices():
    assert parse_indices("3", 10) == [3]
    assert parse_indices("0:4", 10) == [0, 1, 2, 3]
    assert parse_indices("0,5,7", 10) == [0, 5, 7]
    assert parse_indices("8:", 10) == [8, 9]
    assert parse_indices("::4", 10) == [0, 4, 8]
    assert parse_indices("-1", 10) == [9]
    assert parse_indices(" 1 , 2:4 ", 10) == [1, 2, 3]
    assert parse_indices("0:10", 10) == list(range(10))


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ("10", ImageFormatError, "index 10 is out of range for 10 image(s) (valid: 0..9)"),
        ("-11", ImageFormatError, "index -11 is out of range for 10 image(s) (valid: 0..9)"),
        ("0:100", ImageFormatError, "index range '0:100' is out of range for 10 image(s) (valid: 0..9)"),
        ("5:3", ParameterError, "index '5:3' selects no images (valid: 0..9)"),
        ("a", ParameterError, "index 'a' is not an index list; expected e.g. 3, 0:100, 0:10:2 or 0,5,7"),
        ("1,,2", ParameterError, "index '1,,2' is not an index list; expected e.g. 3, 0:100, 0:10:2 or 0,5,7"),
        ("1:2:3:4", ParameterError, "index '1:2:3:4' is not an index list; expected e.g. 3, 0:100, 0:10:2 or 0,5,7"),
        ("0:5:0", ParameterError, "index range '0:5:0' has step 0"),
    ],
)
def test_parse_indices_refusals(spec, error, message):
    with pytest.raises(error) as err:
        parse_indices(spec, 10)
    assert str(err.value) == message


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(-30, 30), st.integers(-30, 30), st.sampled_from([None, 1, 2, -1, 3]))
def test_parse_indices_matches_python_slicing_in_range(count, start, stop, step):
    spec = f"{start}:{stop}" + (f":{step}" if step is not None else "")
    expected = list(range(count))[start:stop:step]
    in_range = all(-count <= end <= count for end in (start, stop))
    if not in_range:
        with pytest.raises(ImageFormatError):
            parse_indices(spec, count)
    elif not expected:
        with pytest.raises(ParameterError):
            parse_indices(spec, count)
    else:
        assert parse_indices(spec, count) == expected


def test_pixel_limit_is_set_and_restored(tmp_path):
    from PIL import Image as PILImage

    path = tmp_path / "big.png"
    path.write_bytes(png_header(10000, 6000))
    pil_default = PILImage.MAX_IMAGE_PIXELS
    with pictures.pixel_limit(70_000_000):
        assert open_source(path).shape == (6000, 10000)  # the header passes; nothing is decoded
    with pictures.pixel_limit(0):
        assert pictures.MAX_PIXELS is None and PILImage.MAX_IMAGE_PIXELS is None
        assert open_source(path).shape == (6000, 10000)
    assert pictures.MAX_PIXELS == 50_000_000 and PILImage.MAX_IMAGE_PIXELS == pil_default
    with pytest.raises(ImageFormatError, match="more than the limit of 50,000,000"):
        open_source(path)
    with pictures.pixel_limit(None):
        assert pictures.MAX_PIXELS == 50_000_000


def test_multi_frame_pictures_are_indexed(tmp_path):
    frames = [np.full((4, 5), v, np.uint8) for v in (10, 20, 30)]
    path = tmp_path / "pages.tif"
    Image.fromarray(frames[0]).save(path, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]])
    source = open_source(path)
    assert source.indexed and source.count == 3 and source.shape == (4, 5) and "3 frames" in source.format
    np.testing.assert_array_equal(source.read([2, 0]), np.stack([frames[2], frames[0]]).astype(np.float64))
    assert source.read([1], color=True).shape == (1, 4, 5, 1)
    odd = tmp_path / "odd.tif"
    Image.fromarray(frames[0]).save(odd, save_all=True, append_images=[Image.fromarray(np.zeros((3, 3), np.uint8))])
    with pytest.raises(ImageFormatError, match=r"frame 1 is 3x3, frame 0 is 5x4; convcli reads frames of one size"):
        open_source(odd).read([1])
