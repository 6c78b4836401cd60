"""Activation maps (convcli.maps.single) and writing them (convcli.maps.writing, via convcli.io.images)."""

import os

import numpy as np
import pytest
from helpers_images import levels_reference
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage, signal

from convcli.errors import OutputError, ParameterError, ShapeError
from convcli.maps.levels import to_uint8
from convcli.maps.picture import map_picture
from convcli.maps.single import (
    Verification,
    convolve_map,
    map_stats,
    pipeline_map,
    preview_levels,
    scipy_reference,
    verify_map,
)
from convcli.maps.writing import encode_png, output_format, render_png, save_png, write_map, write_picture

RNG = np.random.default_rng(11)
SCIPY_MODES = {"reflect": "mirror", "symmetric": "reflect", "edge": "nearest", "wrap": "wrap"}


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 12), st.integers(3, 12), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["valid", "same", "full", 0, 1, 2]), st.integers(1, 3), st.booleans(),
       st.sampled_from(["zero", "reflect", "symmetric", "edge", "wrap"]), st.integers(0, 2**31))
def test_convolve_map_matches_scipy(h, w, fh, fw, padding, stride, flip, border, seed):
    rng = np.random.default_rng(seed)
    X, k = rng.normal(size=(h, w)), rng.normal(size=(fh, fw))
    if padding == "same":
        stride = 1
    A = convolve_map(X, k, padding=padding, stride=stride, flip=flip, border=border)
    ref = scipy_reference(X, k, padding=padding, stride=stride, flip=flip, border=border)
    np.testing.assert_allclose(A, ref, atol=1e-12)
    assert verify_map(X, k, A, padding=padding, stride=stride, flip=flip, border=border).passed


IMAGE_TYPES = {
    "uint8": lambda rng, shape: rng.integers(0, 256, shape).astype(np.uint8),
    "uint16": lambda rng, shape: rng.integers(0, 65536, shape).astype(np.uint16),
    "int8": lambda rng, shape: rng.integers(-128, 128, shape).astype(np.int8),
    "float32": lambda rng, shape: rng.normal(size=shape).astype(np.float32),
    "float64": lambda rng, shape: rng.normal(size=shape),
    ">i2": lambda rng, shape: rng.integers(-30000, 30000, shape).astype(">i2"),  # IDX stores big-endian
    ">f4": lambda rng, shape: rng.normal(size=shape).astype(">f4"),
}


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 14), st.integers(3, 14), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["valid", "same", "full", 0, 2]), st.integers(1, 3), st.booleans(),
       st.sampled_from(["zero", "reflect", "symmetric", "edge", "wrap"]),
       st.sampled_from(["minmax", "abs", "clip", "signed"]), st.integers(1, 60), st.sampled_from(sorted(IMAGE_TYPES)),
       st.integers(0, 2**31))
def test_map_picture_is_the_whole_maps_picture_made_strip_by_strip(h, w, fh, fw, padding, stride, flip, border,
                                                                   mode, strip_pixels, kind, seed):
    """Strips of any size (odd ones, one row, all rows) give the bytes of to_uint8(whole map)."""
    rng = np.random.default_rng(seed)
    X, k = IMAGE_TYPES[kind](rng, (h, w)), rng.normal(size=(fh, fw))
    if mode == "clip":
        k *= 40  # maps that reach past 0..255
    if padding == "same":
        stride = 1
    options = dict(padding=padding, stride=stride, flip=flip, border=border)
    A = convolve_map(X.astype(np.float64), k, **options)
    np.testing.assert_array_equal(convolve_map(X, k, **options), A)  # the image's own dtype: the same numbers
    levels, stats = map_picture(X, k, normalize=mode, strip_pixels=strip_pixels, **options)
    assert levels.dtype == np.uint8 and levels.tobytes() == to_uint8(A, mode).tobytes()
    whole = map_stats(A)
    assert (stats.shape, stats.min, stats.max) == (whole.shape, whole.min, whole.max)
    assert stats.mean == pytest.approx(whole.mean, rel=1e-12, abs=1e-12 * np.abs(A).max())
    assert stats.std == pytest.approx(whole.std, rel=1e-9, abs=1e-9 * np.abs(A).max())
    quick, summary = map_picture(X, k, normalize=mode, strip_pixels=strip_pixels, moments=False, **options)
    assert quick.tobytes() == levels.tobytes() and (summary.min, summary.max) == (stats.min, stats.max)
    assert np.isnan(summary.mean) and np.isnan(summary.std)


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 14), st.integers(5, 14), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["valid", "full", 1]), st.integers(1, 2), st.booleans(),
       st.sampled_from(["zero", "reflect", "edge"]), st.integers(0, 2**31))
def test_channel_sum_and_pipeline_match_loops_over_scipy(h, w, C, fh, fw, padding, stride, flip, border, seed):
    """A (C, Fh, Fw) kernel is the sum of C per-channel correlations; a pipeline is correlations in turn."""
    rng = np.random.default_rng(seed)
    X, k3, k2 = rng.normal(size=(h, w, C)), rng.normal(size=(C, fh, fw)), rng.normal(size=(fh, fw))
    options = dict(padding=padding, stride=stride, flip=flip, border=border)
    pads = {"valid": ((0, 0), (0, 0)), "full": ((fh - 1,) * 2, (fw - 1,) * 2), 1: ((1, 1), (1, 1))}[padding]
    mode = {"zero": "constant", "reflect": "reflect", "edge": "edge"}[border]

    def reference(plane, kernel):
        kernel = np.rot90(kernel, 2) if flip else kernel
        padded = np.pad(plane, pads, mode=mode) if padding != "valid" else plane
        return signal.correlate2d(padded, kernel, mode="valid")[::stride, ::stride]

    try:
        summed = sum(reference(X[..., c], k3[c]) for c in range(C))
        padded = (summed.shape[0] + sum(pads[0]), summed.shape[1] + sum(pads[1]))
        if fh > padded[0] or fw > padded[1]:  # scipy swaps its inputs here; convcli refuses a kernel this large
            return
        expected = reference(summed, k2)
    except ValueError:  # numpy cannot reflect-pad this much, or a map is empty: convcli refuses too
        return
    if 0 in expected.shape:
        return
    A = pipeline_map(X, [k3, k2], **options)
    scale = np.abs(X).max() * np.abs(k3).sum() * np.abs(k2).sum()
    assert A.shape == expected.shape and np.abs(A - expected).max() <= 1e-12 * scale
    assert verify_map(X, [k3, k2], A, **options)


def test_map_picture_takes_grey_images_and_names_a_kernel_that_does_not_fit():
    with pytest.raises(ShapeError, match=r"map_picture takes a grey image \(H, W\); got shape \(4, 4, 3\)"):
        map_picture(np.ones((4, 4, 3)), np.ones((3, 3)))
    with pytest.raises(ShapeError) as err:
        map_picture(np.ones((2, 2), np.uint8), np.ones((3, 3)), names=("'a.png'", "'box'"))
    assert str(err.value) == ("kernel 'box' (3x3) is larger than the image 'a.png' (2x2); use a smaller kernel or "
                              "--padding same/full")


def test_reference_is_independent_of_convcli_padding():
    """scipy.ndimage.correlate with its own border modes gives the 'same' maps too."""
    X, k = RNG.normal(size=(9, 8)), RNG.normal(size=(3, 3))
    for border, mode in SCIPY_MODES.items():
        ours = convolve_map(X, k, padding="same", border=border)
        np.testing.assert_allclose(ours, ndimage.correlate(X, k, mode=mode), atol=1e-12)
    np.testing.assert_allclose(convolve_map(X, k, padding="same"), signal.correlate2d(X, k, mode="same"), atol=1e-12)
    np.testing.assert_allclose(convolve_map(X, k, padding="full", flip=True), signal.convolve2d(X, k), atol=1e-12)


def test_colour_channels_are_convolved_separately():
    X, k = RNG.normal(size=(7, 6, 3)), RNG.normal(size=(3, 2))
    A = convolve_map(X, k, padding=1, stride=2)
    assert A.shape == (4, 4, 3)
    for c in range(3):
        np.testing.assert_allclose(A[..., c], convolve_map(X[..., c], k, padding=1, stride=2))
    assert verify_map(X, k, A, padding=1, stride=2)


def test_kernel_larger_than_image_names_both():
    with pytest.raises(ShapeError) as err:
        convolve_map(np.ones((2, 2)), np.ones((3, 3)), names=("'a.png'", "'box'"))
    assert str(err.value) == ("kernel 'box' (3x3) is larger than the image 'a.png' (2x2); use a smaller kernel or "
                              "--padding same/full")
    with pytest.raises(ShapeError, match=r"\(2x2, 4x4 after padding 1\)"):
        convolve_map(np.ones((2, 2)), np.ones((5, 5)), padding=1)
    assert convolve_map(np.ones((2, 2)), np.ones((3, 3)), padding="same").shape == (2, 2)


def test_verification_reports_a_wrong_map():
    X, k = RNG.normal(size=(6, 6)), RNG.normal(size=(3, 3))
    A = convolve_map(X, k)
    bad = A.copy()
    bad[2, 3] += 1e-3
    check = verify_map(X, k, bad)
    assert not check and check.max_abs_diff == pytest.approx(1e-3)
    assert str(check).startswith("conv check FAILED: largest |convcli - scipy.signal.correlate2d| = 0.001 (tolerance")
    assert verify_map(X, k, A[:-1]).max_abs_diff == float("inf")
    assert str(Verification(0.0, 1e-9)) == ("conv check passed: largest |convcli - scipy.signal.correlate2d| = 0 "
                                            "(tolerance 1e-09)")


def test_verification_tolerance_counts_the_int8_minimum():
    X = np.array([[-128, 5], [1, 2]], dtype=np.int8)
    check = verify_map(X, np.ones((1, 1)), convolve_map(X, np.ones((1, 1))))
    assert check and check.tolerance == pytest.approx(128e-9)


def test_map_stats():
    stats = map_stats(np.array([[1.0, -2.0], [4.0, 5.0]]))
    assert (stats.shape, stats.min, stats.max, stats.mean) == ((2, 2), -2.0, 5.0, 2.0)
    assert stats.std == pytest.approx(np.sqrt((1 + 16 + 4 + 9) / 4)) and not stats.constant
    assert str(stats) == f"shape 2x2  min -2  max 5  mean 2  std {np.sqrt(7.5):.6g}"
    flat = map_stats(np.full((3, 2), 4.0))
    assert flat.constant and str(flat) == "shape 3x2  min 4  max 4  mean 4  std 0  (constant map: every value is the same)"
    assert flat.to_dict() == {"shape": [3, 2], "min": 4.0, "max": 4.0, "mean": 4.0, "std": 0.0, "constant": True}


def test_preview_levels_shrinks_and_keeps_thin_edges():
    A = np.zeros((100, 60))
    A[40, :] = 9.0  # a one-pixel line
    small = preview_levels(A, max_width=20, max_height=20)
    assert small.shape == (20, 12) and small.dtype == np.uint8
    assert (small[8] == 255).all() and (np.delete(small, 8, axis=0) == 0).all()
    same = preview_levels(A[:10, :10], max_width=20, max_height=20)
    assert same.shape == (10, 10)
    colour = preview_levels(RNG.random((50, 50, 3)), max_width=10, max_height=10)
    assert colour.shape == (10, 10, 3)


# ----------------------------------------------------------------------------- writing


def test_write_png_npy_tiff(tmp_path):
    A = RNG.normal(0, 50, (6, 9))
    write_map(tmp_path / "m.png", A)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")), levels_reference(A))
    assert Image.open(tmp_path / "m.png").mode == "L"
    write_map(tmp_path / "m.npy", A)
    loaded = np.load(tmp_path / "m.npy")
    assert loaded.dtype == np.float64 and np.array_equal(loaded, A)
    for ext in ("tif", "TIFF"):
        write_map(tmp_path / f"m.{ext}", A)
        image = Image.open(tmp_path / f"m.{ext}")
        assert image.mode == "F"
        np.testing.assert_array_equal(np.asarray(image), A.astype(np.float32))
    assert sorted(os.listdir(tmp_path)) == ["m.TIFF", "m.npy", "m.png", "m.tif"]  # no temporary files left


@pytest.mark.parametrize("mode", ["minmax", "abs", "clip", "signed"])
def test_png_normalizations(tmp_path, mode):
    A = np.array([[-300.0, -10.4, 0.0], [0.6, 100.5, 260.0]])
    write_map(tmp_path / "n.png", A, normalize=mode)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "n.png")), levels_reference(A, mode))


def test_png_size_and_colour(tmp_path):
    A = RNG.normal(size=(3, 5, 3))
    write_map(tmp_path / "c.png", A, size=20)
    image = Image.open(tmp_path / "c.png")
    assert image.mode == "RGB" and image.size == (20, 12)
    pixels = np.asarray(image)
    np.testing.assert_array_equal(pixels[::4, ::4], levels_reference(A))  # nearest neighbour, factor 4
    with pytest.raises(OutputError, match=r"TIFF output holds one channel; this map has shape \(3, 5, 3\)"):
        write_map(tmp_path / "c.tif", A)
    write_map(tmp_path / "g.tif", A[..., :1])  # one channel is fine
    with pytest.raises(ParameterError, match="size 100000 would make a picture of 6,000,000,000 pixels"):
        render_png(A, size=100_000)


def test_pictures_are_streamed_into_files_and_streams(tmp_path):
    levels = RNG.integers(0, 256, (5, 8)).astype(np.uint8)
    write_picture(tmp_path / "p.png", levels, size=16)
    stream = __import__("io").BytesIO()
    save_png(levels, stream, size=16)
    assert (tmp_path / "p.png").read_bytes() == stream.getvalue()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "p.png"))[::2, ::2], levels)
    A = RNG.normal(size=(5, 8))
    write_map(tmp_path / "m.png", A, normalize="signed")
    assert (tmp_path / "m.png").read_bytes() == render_png(A, normalize="signed")
    with pytest.raises(OutputError, match="already exists; use --force"):
        write_picture(tmp_path / "p.png", levels)
    with pytest.raises(ParameterError, match="size 100000 would make a picture of 6,250,000,000 pixels"):
        write_picture(tmp_path / "big.png", levels, size=100_000)
    assert sorted(os.listdir(tmp_path)) == ["m.png", "p.png"]


def test_write_refusals_leave_files_alone(tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"precious")
    with pytest.raises(OutputError) as err:
        write_map(target, np.ones((2, 2)))
    assert str(err.value) == f"output '{target}' already exists; use --force to overwrite it"
    assert target.read_bytes() == b"precious"
    write_map(target, np.ones((2, 2)), force=True)
    assert target.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(OutputError, match="output folder '.*missing' does not exist; create it first"):
        write_map(tmp_path / "missing" / "m.png", np.ones((2, 2)))
    with pytest.raises(OutputError) as err:
        write_map(tmp_path / "m.gif", np.ones((2, 2)))
    assert str(err.value) == (f"output '{tmp_path / 'm.gif'}' has extension '.gif'; accepted: .png, .jpg, .jpeg, "
                              ".webp, .bmp, .npy, .tif, .tiff")
    with pytest.raises(OutputError, match="has no extension"):
        output_format("map")
    with pytest.raises(OutputError) as err:
        output_format(tmp_path)
    assert str(err.value) == f"output '{tmp_path}' is a folder; give a file name such as '{tmp_path / 'map.png'}'"
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]


def test_encode_png_checks_its_input():
    assert encode_png(np.zeros((2, 3), np.uint8)).startswith(b"\x89PNG")
    assert Image.open(__import__("io").BytesIO(encode_png(np.zeros((2, 3, 1), np.uint8)))).mode == "L"
    with pytest.raises(ParameterError, match=r"encode_png needs uint8 \(H, W\) or \(H, W, 3\); got float64 \(2, 2\)"):
        encode_png(np.zeros((2, 2)))


def test_verify_uses_the_fft_for_large_kernels():
    """A 31x31 kernel is checked against scipy.signal.fftconvolve (a direct sum would be far slower)."""
    from convcli.maps.single import convolve_map, verify_map

    rng = np.random.default_rng(5)
    X, k = rng.integers(0, 256, (120, 90)).astype(np.uint8), rng.standard_normal((31, 31))
    A = convolve_map(X, k, padding="same")
    check = verify_map(X, k, A, padding="same")
    assert check.passed and check.reference == "scipy.signal.fftconvolve"
    assert check.max_abs_diff < 1e-9
    assert verify_map(X, k[:3, :3], convolve_map(X, k[:3, :3])).reference == "scipy.signal.correlate2d"


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["uint8", ">i2", "int64", "bool"]), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["valid", "same", 1]), st.sampled_from(["minmax", "abs", "clip", "signed"]),
       st.integers(1, 40), st.integers(0, 2**31))
def test_map_picture_keeps_an_integer_map_instead_of_computing_it_twice(kind, fh, fw, padding, mode, strip_pixels,
                                                                         seed):
    """Integer picture, integer kernel: one pass in integers, the same bytes as to_uint8(whole map)."""
    from convcli.maps import picture

    rng = np.random.default_rng(seed)
    X = {"uint8": lambda: rng.integers(0, 256, (11, 13)).astype(np.uint8),
         ">i2": lambda: rng.integers(-30000, 30000, (11, 13)).astype(">i2"),
         "int64": lambda: rng.integers(-2**40, 2**40, (11, 13)),
         "bool": lambda: rng.integers(0, 2, (11, 13)).astype(bool)}[kind]()
    k = rng.integers(-40, 41, (fh, fw)).astype(float)
    calls = []
    real = picture.conv_forward_rows
    picture.conv_forward_rows = lambda *a, **kw: calls.append(1) or real(*a, **kw)
    try:
        levels, _ = map_picture(X, k, normalize=mode, strip_pixels=strip_pixels, padding=padding)
    finally:
        picture.conv_forward_rows = real
    A = convolve_map(X.astype(np.float64), k, padding=padding)
    assert levels.tobytes() == to_uint8(A, mode).tobytes()
    strips = -(-A.shape[0] // max(1, strip_pixels // A.shape[1]))
    kept = picture._exact_integer_type(X, k) is not None  # int64: 2**40 * sum|k| does not fit int32 (unless k is 0)
    assert kept == (kind != "int64" or not k.any())
    assert len(calls) == (0 if kept else 2 * strips)  # kept: computed in integers (IntegerCorrelation)


def test_encode_pictures_small_and_large_read_back_exactly():
    from convcli.maps.writing import encode_pictures

    rng = np.random.default_rng(5)
    for shape in [(3, 9, 7), (2, 5, 6, 3), (2, 130, 140)]:  # the last is past png.SMALL_BYTES: one by one
        stack = rng.integers(0, 256, shape, dtype=np.uint8)
        files = encode_pictures(stack)
        assert [np.asarray(Image.open(__import__("io").BytesIO(f))).tolist() for f in files] == stack.tolist()
    with pytest.raises(ParameterError, match=r"encode_pictures needs uint8 \(n, H, W\) or \(n, H, W, 3\); got "
                                             r"float64 \(2, 2\)"):
        encode_pictures(np.zeros((2, 2)))


@pytest.mark.parametrize("size", [None, 1, 4, 9, 20])
def test_upscale_each_is_upscale_of_each_picture(size):
    from convcli.maps.levels import upscale, upscale_each

    stack = np.random.default_rng(6).integers(0, 256, (3, 9, 6, 3), dtype=np.uint8)
    for pictures in (stack, stack[..., 0]):
        np.testing.assert_array_equal(upscale_each(pictures, size), np.stack([upscale(p, size) for p in pictures]))


@pytest.mark.parametrize("dtype, kernel", [(np.uint8, [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]),
                                           (np.uint16, [[0, -1, 0], [-1, 4, -1], [0, -1, 0]])])
def test_a_whole_number_maps_picture_is_looked_up_by_the_encoders_threads(tmp_path, monkeypatch, dtype, kernel):
    """int16 and int32 maps: the PNG written strip by strip from the Picture has the bytes of the array's PNG."""
    import io

    from convcli.maps import png
    from convcli.maps.picture import Picture, picture_of_map

    rng = np.random.default_rng(7)
    X = rng.integers(0, 256 if dtype == np.uint8 else 6000, (300, 500)).astype(dtype)  # an int16 map, an int32 one
    k = np.array(kernel, float)
    picture, _ = picture_of_map(X, k, normalize="signed")
    assert isinstance(picture, Picture) and picture.shape == (298, 498)
    assert picture._kept.dtype == (np.uint16 if dtype == np.uint8 else np.int32)
    levels = np.asarray(picture)
    assert levels.tobytes() == to_uint8(convolve_map(X, k), "signed").tobytes()
    monkeypatch.setattr(png, "STRIP_BYTES", 7 * 498)  # 43 strips, on png.THREADS threads
    streamed, whole = io.BytesIO(), io.BytesIO()
    png.write_png(picture, streamed)
    png.write_png(levels, whole)
    assert streamed.getvalue() == whole.getvalue()
    write_picture(tmp_path / "m.png", picture)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")), levels)
    write_picture(tmp_path / "m.webp", picture)  # other formats make it whole first
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.webp").convert("L")), levels)


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(["uint8", "int8", ">u2", "bool", "int64"]), st.integers(1, 4), st.integers(1, 4),
       st.sampled_from(["valid", "same", "full", 1, (2, 0)]), st.integers(1, 3), st.integers(1, 2), st.booleans(),
       st.sampled_from(["zero", "reflect", "symmetric", "edge", "wrap"]), st.integers(1, 50), st.integers(0, 2**31))
def test_integer_correlation_gives_the_numbers_of_float64(kind, fh, fw, padding, sh, sw, flip, border,
                                                          strip_pixels, seed):
    """Whole-number maps computed in int16/int32, strip by strip: exactly the map's numbers (scipy's)."""
    from convcli.maps import picture

    rng = np.random.default_rng(seed)
    X = {"uint8": lambda: rng.integers(0, 256, (12, 10)).astype(np.uint8),
         "int8": lambda: rng.integers(-128, 128, (12, 10)).astype(np.int8),
         ">u2": lambda: rng.integers(0, 3000, (12, 10)).astype(">u2"),  # an int32 map
         "bool": lambda: rng.integers(0, 2, (12, 10)).astype(bool),
         "int64": lambda: rng.integers(-500, 500, (12, 10))}[kind]()
    k = rng.integers(-9, 10, (fh, fw)).astype(float) * (rng.random((fh, fw)) < 0.7)
    options = dict(padding=padding, stride=(sh, sw), flip=flip, border=border)
    try:
        A = convolve_map(X, k, **options)
    except (ShapeError, ValueError):  # too small for this kernel or this much reflection: refused either way
        return
    exact = scipy_reference(X, k, **options)  # direct float64 sums of whole numbers: exact
    assert np.abs(A - exact).max() <= 1e-9  # convcli's float64 paths may round (a factored kernel)
    kind = picture._exact_integer_type(X, k)
    assert kind is not None
    integer = picture.IntegerCorrelation.of(X, k, **options)
    out = np.full(A.shape, 12345, kind)
    rows = max(1, strip_pixels // A.shape[1])
    for r0 in range(0, A.shape[0], rows):
        r1 = min(r0 + rows, A.shape[0])
        integer.rows(r0, r1, out[r0:r1])
    np.testing.assert_array_equal(out, exact)
    levels, stats = map_picture(X, k, normalize="signed", **options)
    assert levels.tobytes() == to_uint8(exact, "signed").tobytes()
    assert (stats.min, stats.max) == (exact.min(), exact.max())


def test_integer_correlation_leaves_kernels_of_many_taps_to_the_layers():
    from convcli.maps import picture

    X = np.zeros((20, 20), np.uint8)
    assert picture.IntegerCorrelation.of(X, np.ones((7, 7)), padding="valid", stride=1, flip=False,
                                         border="zero") is not None
    assert picture.IntegerCorrelation.of(X, np.ones((7, 8)), padding="valid", stride=1, flip=False,
                                         border="zero") is None  # 56 taps: conv_forward_rows


def test_a_whole_number_map_of_many_taps_is_kept_rounded_not_truncated(monkeypatch):
    """Past INTEGER_TAPS the float64 map is kept: a value a rounding below a whole number is that number."""
    from convcli.maps import picture

    rng = np.random.default_rng(8)
    X, k = rng.integers(0, 256, (40, 40)).astype(np.uint8), rng.integers(-3, 4, (9, 9)).astype(float)
    real = picture.conv_forward_rows
    monkeypatch.setattr(picture, "conv_forward_rows", lambda *a, **kw: real(*a, **kw) - 1e-9)  # as if rounded down
    exact = signal.correlate2d(X.astype(float), k, mode="valid")
    levels, stats = map_picture(X, k)
    assert np.count_nonzero(k) > picture.INTEGER_TAPS and (stats.min, stats.max) == (exact.min(), exact.max())
    assert levels.tobytes() == to_uint8(exact).tobytes()
