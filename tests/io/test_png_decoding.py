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
