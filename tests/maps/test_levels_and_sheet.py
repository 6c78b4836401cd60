"""Pictures of activation maps (convcli.maps.levels): the normalize formulas, upscaling and the contact sheet."""

import numpy as np
import pytest
from helpers_images import levels_reference
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcli.errors import ParameterError
from convcli.maps.levels import to_uint8, to_uint8_each, upscale
from convcli.maps.sheet import SHEET_MIN_CELL, cell_scale, contact_sheet, display_input

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)
shapes2 = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9)


@st.composite
def maps(draw):
    """Activation-map-like values: whole numbers times a scale from 1e-6 to 1e6."""
    ints = draw(hnp.arrays(np.int64, shapes2, elements=st.integers(-1000, 1000)))
    return ints * draw(st.floats(1e-6, 1e6))


stacks = hnp.arrays(np.float64, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=6), elements=finite)


# ----------------------------------------------------------------------------- to_uint8: the formulas


@pytest.mark.parametrize("mode", ["minmax", "abs", "clip", "signed"])
@settings(max_examples=60, deadline=None)
@given(A=maps())
def test_to_uint8_follows_the_documented_formula(mode, A):
    got = to_uint8(A, mode)
    assert got.dtype == np.uint8 and got.shape == A.shape
    assert np.abs(got.astype(int) - levels_reference(A, mode)).max() <= 1  # see levels_reference


def test_to_uint8_keeps_nearly_flat_and_tiny_maps_apart():
    np.testing.assert_array_equal(to_uint8(np.array([1.0, 1.0 + 1e-12]), "minmax"), [0, 255])
    np.testing.assert_array_equal(to_uint8(np.array([1e-40, -1e-40]), "signed"), [255, 0])
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 3e-39]), "abs"), [0, 255])


def test_to_uint8_exact_values():
    A = np.array([[-2.0, 0.0], [2.0, 6.0]])
    np.testing.assert_array_equal(to_uint8(A, "minmax"), [[0, 64], [128, 255]])
    np.testing.assert_array_equal(to_uint8(A, "abs"), [[85, 0], [85, 255]])
    np.testing.assert_array_equal(to_uint8(A, "signed"), [[85, 128], [170, 255]])
    np.testing.assert_array_equal(to_uint8(np.array([[-3.0, 300.4]]), "clip"), [[0, 255]])
    np.testing.assert_array_equal(to_uint8(np.full((2, 2), 7.0), "minmax"), np.full((2, 2), 128))  # mid-grey
    np.testing.assert_array_equal(to_uint8(np.zeros((2, 2)), "signed"), np.full((2, 2), 128))
    with pytest.raises(ParameterError, match="normalize must be one of minmax, abs, clip, signed; got 'log'"):
        to_uint8(A, "log")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # subnormal peaks overflow float32 in both
@pytest.mark.parametrize("mode", ["minmax", "abs", "clip", "signed"])
@settings(max_examples=60, deadline=None)
@given(A=stacks, flat=st.integers(0, 5))
def test_to_uint8_each_equals_to_uint8_per_map_bit_for_bit(mode, A, flat):
    A = A.copy()
    A[flat % A.shape[0]] = 3.0  # a constant map among the others
    expected = np.stack([to_uint8(a, mode) for a in A])
    np.testing.assert_array_equal(to_uint8_each(A, mode), expected)


@pytest.mark.parametrize("mode", ["minmax", "abs", "clip", "signed"])
@settings(max_examples=60, deadline=None)
@given(A=maps(), rows=st.integers(1, 4), channels=st.sampled_from([0, 3]), flat=st.booleans())
def test_strips_scaled_with_the_whole_maps_limits_are_the_whole_maps_bytes(mode, A, rows, channels, flat):
    """to_uint8(strip, limits=(min, max) of the whole map) gives the strip's rows of to_uint8(whole map)."""
    if flat:
        A = A * 0 + 3.0  # a flat map: a constant picture either way
    if channels:
        A = np.stack([A, -A, 2 * A], axis=-1)  # a --color map: one scale for all channels
    whole = to_uint8(A, mode)
    limits = (A.min(), A.max())
    strips = [to_uint8(A[r : r + rows], mode, limits=limits) for r in range(0, A.shape[0], rows)]
    assert np.concatenate(strips).tobytes() == whole.tobytes()


def test_limits_set_the_scale():
    A = np.array([[-1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(to_uint8(A, "minmax", limits=(-3.0, 1.0)), [[128, 191, 255]])
    np.testing.assert_array_equal(to_uint8(A, "abs", limits=(-4.0, 2.0)), [[64, 0, 64]])
    np.testing.assert_array_equal(to_uint8(A, "signed", limits=(-0.5, 5.0)), [[102, 128, 153]])
    np.testing.assert_array_equal(to_uint8(A, "clip", limits=(-9.0, 9.0)), [[0, 0, 1]])
    np.testing.assert_array_equal(to_uint8(A, "minmax", limits=(2.0, 2.0)), [[128, 128, 128]])


def test_the_peak_of_int8_counts_minus_128():
    """max|A| is taken in float64: |int8(-128)| is 128, not -128."""
    np.testing.assert_array_equal(to_uint8(np.array([-128, 64], np.int8), "abs"), [255, 128])
    np.testing.assert_array_equal(to_uint8(np.array([-128, 64], np.int8), "signed"), [0, 191])


def test_to_uint8_each_refuses_a_single_map():
    with pytest.raises(ParameterError, match=r"maps must have shape \(n, H, W\); got shape \(3, 3\)"):
        to_uint8_each(np.zeros((3, 3)))


# ----------------------------------------------------------------------------- upscale


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), factor=st.integers(1, 6))
def test_upscale_by_a_whole_factor_repeats_pixels(h, w, factor):
    img = np.arange(h * w, dtype=np.uint8).reshape(h, w)
    got = upscale(img, max(h, w) * factor)
    np.testing.assert_array_equal(got, np.kron(img, np.ones((factor, factor), dtype=np.uint8)))


def test_upscale_keeps_the_aspect_and_none_is_identity():
    img = np.zeros((28, 14), np.uint8)
    assert upscale(img, 96).shape == (96, 48)
    assert upscale(img, None) is img
    with pytest.raises(ParameterError, match="size must be a whole number >= 1; got 0"):
        upscale(img, 0)


# ----------------------------------------------------------------------------- the contact sheet


def test_display_input_shows_8_bit_images_as_they_are_and_stretches_others():
    img = np.array([[0.0, 17.0], [200.0, 255.0]])
    np.testing.assert_array_equal(display_input(img), [[0, 17], [200, 255]])
    unit = np.array([[0.0, 0.5], [1.0, 0.25]])  # a float image in 0..1 would be black as it is
    np.testing.assert_array_equal(display_input(unit), [[0, 128], [255, 64]])
    np.testing.assert_array_equal(display_input(np.array([[-1.0, 1.0]])), [[0, 255]])


def test_cell_scale_uses_one_whole_factor_per_row():
    assert cell_scale([(28, 28), (26, 26), (24, 24)]) == (112, 4.0)  # MNIST, valid 3x3 and 5x5 maps
    assert cell_scale([(30, 30), (28, 28)]) == (120, 4.0)  # full padding: the maps are the largest
    assert cell_scale([(96, 50)]) == (96, 1.0)
    assert cell_scale([(150, 100)]) == (150, 1.0)  # kept up to twice the smallest cell
    assert cell_scale([(256, 256), (254, 254)]) == (192, 0.75)  # larger pictures shrink to that


def ink_columns(sheet, top, bottom, left, right):
    """True when the band holds dark (text) pixels."""
    return bool((sheet[top:bottom, left:right] < 128).any())


def test_contact_sheet_geometry_labels_and_pixel_scale():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (28, 28)).astype(np.uint8)
    small = np.full((24, 24), 255, np.uint8)  # a 5x5 filter's map: smaller than the 3x3 one
    rows = [(f"item-{i}", image, [image[1:-1, 1:-1], small]) for i in range(3)]
    sheet = contact_sheet(rows, ["edge-h", "gaussian-5"])
    side, gap, margin = 112, 6, 10
    assert sheet.dtype == np.uint8
    assert sheet.shape[1] == 2 * margin + 3 * side + 2 * gap
    header = 14 + 8
    caption = 4 + 16
    assert sheet.shape[0] == 2 * margin + header + 3 * (side + caption) + 2 * gap

    top = margin + header
    # the input, scaled 4x and centred in its cell
    np.testing.assert_array_equal(sheet[top : top + side, margin : margin + side], np.kron(image, np.ones((4, 4))))
    # the 26x26 map at the same scale (104 px) is centred with a 4 px border; the 24x24 one with 8 px
    left = margin + side + gap
    np.testing.assert_array_equal(
        sheet[top + 4 : top + 108, left + 4 : left + 108], np.kron(image[1:-1, 1:-1], np.ones((4, 4)))
    )
    assert (sheet[top : top + 4, left : left + side] == 255).all()
    left2 = margin + 2 * (side + gap)
    assert (sheet[top + 8 : top + 104, left2 + 8 : left2 + 104] == 255).all()
    # every column has a label above it, every row a caption under its input
    for col in range(3):
        x = margin + col * (side + gap)
        assert ink_columns(sheet, margin, margin + header, x, x + side)
    assert ink_columns(sheet, top + side, top + side + caption, margin, margin + side)
    assert not ink_columns(sheet, top + side, top + side + caption, margin + side, sheet.shape[1])


def test_contact_sheet_title_and_note_add_a_line_each():
    img = np.zeros((10, 10), np.uint8)
    plain = contact_sheet([("a", img, [img])], ["box"])
    both = contact_sheet([("a", img, [img])], ["box"], title="padding valid", note="showing the first 1 of 9")
    assert both.shape == (plain.shape[0] + 2 * 22, plain.shape[1])
    assert ink_columns(both, both.shape[0] - 10 - 22, both.shape[0], 0, both.shape[1])


def test_contact_sheet_wraps_long_names_and_labels_stay_in_their_column():
    img = np.full((28, 28), 255, np.uint8)
    label = "fashion-mnist-16-images-idx3-ubyte-15"
    one = contact_sheet([("short", img, [img])], ["a-rather-long-filter-name-indeed"])
    two = contact_sheet([(label, img, [img])], ["a-rather-long-filter-name-indeed"])
    assert two.shape[0] == one.shape[0] + 16  # a second caption line
    side, gap, margin = 112, 6, 10
    gutter = slice(margin + side, margin + side + gap)
    assert (two[:, gutter] == 255).all()  # no text runs into the gap between columns


def test_contact_sheet_refuses_rows_that_do_not_match_the_columns():
    img = np.zeros((5, 5), np.uint8)
    with pytest.raises(ParameterError, match="row 'x' has 1 maps but the sheet has 2 filter columns"):
        contact_sheet([("x", img, [img])], ["a", "b"])
    with pytest.raises(ParameterError, match="a contact sheet needs at least one row"):
        contact_sheet([], ["a"])


def test_photos_next_to_digits_shrink_to_the_digits_cells():
    digit, photo = np.zeros((28, 28), np.uint8), np.full((256, 256), 200, np.uint8)
    sheet = contact_sheet([("d", digit, [digit]), ("p", photo, [photo])], ["identity"])
    assert sheet.shape[1] == 2 * 10 + 2 * 112 + 6
    only_photos = contact_sheet([("p", photo, [photo])], ["identity"])
    assert only_photos.shape[1] == 2 * 10 + 2 * 192 + 6
    top = 10 + 22
    assert (only_photos[top : top + 192, 10 : 10 + 192] == 200).all()


def test_min_cell_is_at_least_96():
    assert SHEET_MIN_CELL >= 96
    img = np.zeros((50, 50), np.uint8)
    sheet = contact_sheet([("a", img, [img])], ["box"])
    assert sheet.shape[1] == 2 * 10 + 2 * 100 + 6  # 50 px doubled to 100 >= 96


def test_apply_cmap_takes_matplotlibs_colours():
    import matplotlib

    from convcli.maps.levels import apply_cmap, colormap_names

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = apply_cmap(levels, "RdBu_r")
    expected = np.rint(matplotlib.colormaps["RdBu_r"](np.arange(256))[:, :3] * 255).reshape(16, 16, 3)
    assert rgb.dtype == np.uint8 and rgb.shape == (16, 16, 3) and np.abs(rgb - expected).max() <= 1
    assert apply_cmap(np.zeros((2, 3, 4), np.uint8), "gray").shape == (2, 3, 4, 3)
    assert "viridis" in colormap_names() and "RdBu_r" in colormap_names()
    with pytest.raises(ParameterError, match="apply_cmap takes uint8 grey levels; got float64"):
        apply_cmap(np.zeros((2, 2)), "gray")


def test_contact_sheet_in_colour_when_a_map_is():
    from convcli.maps.sheet import contact_sheet

    grey = np.zeros((8, 8), np.uint8)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    sheet = contact_sheet([("a", grey, [red])], ["r"])
    assert sheet.ndim == 3 and sheet.shape[2] == 3
    assert ((sheet[..., 0] == 255) & (sheet[..., 1] == 0)).any()  # the red map is there
    assert contact_sheet([("a", grey, [grey])], ["g"]).ndim == 2
