"""A PNG is decoded once; its EXIF orientation (an eXIf chunk before the pixels) is still applied."""

import numpy as np
import pytest
from PIL import Image

from convcli.io.images import open_source


def save_png(path, pixels, orientation=None):
    image = Image.fromarray(pixels)
    if orientation is None:
        image.save(path)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(path, exif=exif)


@pytest.mark.parametrize("orientation, turn", [(None, lambda a: a), (1, lambda a: a), (6, lambda a: np.rot90(a, -1)),
                                               (3, lambda a: np.rot90(a, 2)), (8, lambda a: np.rot90(a, 1))])
def test_orientation_is_applied_and_the_probe_agrees(tmp_path, orientation, turn):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 8), dtype=np.uint8)
    save_png(tmp_path / "p.png", pixels, orientation)
    source = open_source(tmp_path / "p.png")
    X = source.read([0], dtype=None)[0]
    np.testing.assert_array_equal(X, turn(pixels))
    assert source.shape == X.shape


def test_the_header_probe_decodes_nothing(tmp_path, monkeypatch):
    save_png(tmp_path / "p.png", np.zeros((300, 200), np.uint8))
    from PIL import ImageFile

    decodes = []
    real = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decodes.append(bool(self.tile)) or real(self))
    source = open_source(tmp_path / "p.png")
    assert sum(decodes) == 0  # opening: the header only (a load with tiles left is a decode)
    source.read([0], dtype=None)
    assert sum(decodes) == 1  # reading: one decode


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "JPEG", "GIF"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 8), (301, 257)])
def test_grey_pictures_decode_straight_into_the_array(tmp_path, monkeypatch, fmt, shape):
    """An 8-bit grey picture is decoded into the array that read() returns: the pixels Pillow gives, no copy."""
    from convcli.io import pictures

    path = tmp_path / f"p.{fmt.lower()}"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)).save(path, format=fmt)
    made = []
    real = pictures._decode_into_array
    monkeypatch.setattr(pictures, "_decode_into_array", lambda image: made.append(real(image)) or made[-1])
    X = open_source(path).read([0], dtype=None)[0]
    expected = np.asarray(Image.open(path).convert("L"))
    np.testing.assert_array_equal(X, expected)
    if Image.open(path).mode == "L":
        assert len(made) == 1 and made[0] is not None and np.shares_memory(X, made[0])


def test_a_pillow_that_replaces_the_image_while_loading_still_gives_the_pixels(tmp_path, monkeypatch):
    from PIL import ImageFile

    pixels = np.random.default_rng(2).integers(0, 256, (40, 30), dtype=np.uint8)
    save_png(tmp_path / "p.png", pixels)
    real, calls = ImageFile.ImageFile.load, []

    def load(self):
        if not calls:
            self._im = None  # as if this Pillow made its own image memory the first time
        calls.append(1)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    np.testing.assert_array_equal(open_source(tmp_path / "p.png").read([0], dtype=None)[0], pixels)


def test_a_png_is_opened_by_the_png_plugin_alone(tmp_path):
    """Image.open would import the BMP, GIF, JPEG and PPM plugins first; a PNG input needs none of them."""
    import subprocess
    import sys

    pixels = np.random.default_rng(3).integers(0, 256, (6, 7), dtype=np.uint8)
    save_png(tmp_path / "p.png", pixels)
    code = ("import sys; from convcli.io.images import open_source; "
            f"X = open_source({str(tmp_path / 'p.png')!r}).read([0], dtype=None)[0]; "
            "print(X.sum(), sorted(m for m in sys.modules if m.startswith('PIL.') and m.endswith('Plugin')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert int(out[0]) == int(pixels.sum()) and out[1].strip() == "['PIL.PngImagePlugin']"


def test_a_png_whose_header_pillow_refuses_is_worded_as_before(tmp_path):
    save_png(tmp_path / "p.png", np.zeros((4, 4), np.uint8))
    data = bytearray((tmp_path / "p.png").read_bytes())
    data[12:16] = b"IHDX"  # the first chunk must be IHDR
    (tmp_path / "bad.png").write_bytes(bytes(data))
    from convcli.errors import ImageFormatError

    with pytest.raises(ImageFormatError) as err:
        open_source(tmp_path / "bad.png")
    assert str(err.value).startswith(f"input '{tmp_path / 'bad.png'}' is not an image convcli can read: expected")
