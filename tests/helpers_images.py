"""Test helpers for images: independent IDX/PNG builders, real-data lookup, and the sample generator.

The IDX writer here is written from the format description (struct + numpy
byte order), not with convcli's reader, so reader tests compare two
independent things.

Run as a script to rebuild the bundled samples from the real Fashion-MNIST
test set (``python tests/helpers_images.py /path/to/fashion-mnist``).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

#: IDX type code for each numpy dtype the format knows.
IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}

#: Fashion-MNIST class names, by label.
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot"]

#: Indices of the test set bundled as PNGs.
SAMPLE_PNG_INDICES = (0, 1, 2, 9)


def idx_bytes(array, dtype: str | None = None, *, code: int | None = None, dims=None) -> bytes:
    """An IDX file: ``00 00 code ndim``, big-endian uint32 dims, big-endian data.

    ``dims`` overrides the header's dimensions (to build lying headers).
    """
    array = np.asarray(array)
    kind = dtype or array.dtype.str[1:]
    code = IDX_CODES[kind] if code is None else code
    dims = array.shape if dims is None else dims
    header = struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    return header + array.astype(">" + kind).tobytes()


def png_bytes(array, mode: str | None = None) -> bytes:
    """PNG bytes of an array via Pillow (optionally converted to ``mode``)."""
    from PIL import Image

    image = Image.fromarray(np.asarray(array))
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming width x height (8-bit grey), then a tiny IDAT and IEND."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def levels_reference(A, mode: str = "minmax") -> np.ndarray:
    """The documented ``--normalize`` formulas, term by term in float64, as uint8.

    An independent reference for convcli.maps.levels.to_uint8 (which evaluates them
    as ``A * scale + offset``): a value exactly on a half level may round the
    other way there, so callers with such values allow one level.
    """
    A = np.asarray(A, dtype=np.float64)
    if mode == "minmax":
        lo, hi = A.min(), A.max()
        levels = np.full(A.shape, 128.0) if hi == lo else np.rint(255 * (A - lo) / (hi - lo))
    elif mode == "clip":
        levels = np.rint(A)
    else:
        peak = np.abs(A).max()
        if mode == "abs":
            levels = np.zeros(A.shape) if peak == 0 else np.rint(255 * np.abs(A) / peak)
        else:  # signed
            levels = np.full(A.shape, 128.0) if peak == 0 else np.rint(127.5 + 127.5 * A / peak)
    return np.clip(levels, 0, 255).astype(np.uint8)


def fashion_mnist_dir() -> Path | None:
    """Where the real Fashion-MNIST files are, or None.

    Looks at ``$CONVCLI_FASHION_MNIST``, then Debian's package installed
    (``/usr/share/datasets/fashion-mnist``) or unpacked under ``/tmp/fmnist``.
    """
    candidates = [os.environ.get("CONVCLI_FASHION_MNIST", ""), "/usr/share/datasets/fashion-mnist",
                  "/tmp/fmnist/usr/share/datasets/fashion-mnist"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "t10k-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
    return None


def read_idx_gz(path: Path) -> np.ndarray:
    """A reference IDX reader (gzip + struct), independent of convcli."""
    data = gzip.decompress(Path(path).read_bytes())
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    kind = {v: k for k, v in IDX_CODES.items()}[code]
    return np.frombuffer(data[4 + 4 * ndim :], dtype=">" + kind).reshape(dims)


# ----------------------------------------------------------------------------- the generated "photo"


def make_scene(size: int = 256, seed: int = 7) -> np.ndarray:
    """A photo-like RGB test picture, ``(size, size, 3)`` uint8, drawn from scratch.

    Sky gradient and sun, two mountain ridges, a house with a roof, windows
    and a door, a tree, and textured grass; slightly blurred, with sensor-like
    noise, so filters meet soft and hard edges of every orientation.
    """
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    s = size / 256.0
    y, x = np.mgrid[0:size, 0:size] / size
    sky = np.stack([120 + 90 * y, 170 + 60 * y, 235 + 10 * y], axis=-1)
    sun = np.exp(-(((x - 0.78) ** 2 + (y - 0.18) ** 2) / 0.004))[..., None] * np.array([135, 85, 20])
    img = np.clip(sky + sun, 0, 255)

    def ridge(base, amplitude, waves, color):
        xs = np.arange(size) / size
        height = base + sum(amplitude / k * np.sin(2 * np.pi * k * xs + rng.uniform(0, 6.3))
                            for k in range(1, waves + 1))
        mask = y > height[None, :]
        shade = (1.0 - 0.35 * (y - height[None, :]).clip(0, 1))[..., None]
        img[mask] = (np.array(color) * shade)[mask]

    ridge(0.42, 0.10, 6, (95, 105, 135))
    ridge(0.58, 0.06, 4, (70, 110, 70))
    grass = np.array([80, 140, 60]) * (0.85 + 0.3 * rng.random((size, size, 1)))
    img = np.where((y > 0.72)[..., None], grass, img)

    picture = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    box = lambda *v: [round(c * s) for c in v]  # noqa: E731 - coordinates drawn for a 256 canvas
    draw.rectangle(box(40, 140, 130, 205), fill=(205, 185, 150))                    # walls
    draw.polygon(box(32, 142, 85, 100, 138, 142), fill=(150, 50, 40))              # roof
    draw.rectangle(box(52, 155, 72, 175), fill=(60, 80, 120), outline=(240, 240, 240), width=2)
    draw.rectangle(box(98, 155, 118, 175), fill=(60, 80, 120), outline=(240, 240, 240), width=2)
    draw.rectangle(box(77, 170, 93, 205), fill=(90, 55, 30))                        # door
    draw.rectangle(box(186, 150, 196, 212), fill=(85, 60, 35))                      # trunk
    draw.ellipse(box(160, 95, 222, 160), fill=(45, 105, 45))                        # canopy
    picture = picture.filter(ImageFilter.GaussianBlur(radius=0.8 * s))
    out = np.asarray(picture).astype(np.float64) + rng.normal(0, 3.0, (size, size, 3))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def build_samples(fashion_dir: Path, out_dir: Path) -> list[Path]:
    """Write the bundled samples from the real Fashion-MNIST test set into ``out_dir``."""
    from PIL import Image

    images = read_idx_gz(fashion_dir / "t10k-images-idx3-ubyte.gz")[:16]
    labels = read_idx_gz(fashion_dir / "t10k-labels-idx1-ubyte.gz")[:16]
    written = []
    for name, data in (("fashion-mnist-16-images-idx3-ubyte.gz", idx_bytes(images, "u1")),
                       ("fashion-mnist-16-labels-idx1-ubyte.gz", idx_bytes(labels, "u1"))):
        (out_dir / name).write_bytes(gzip.compress(data, mtime=0))
        written.append(out_dir / name)
    for i in SAMPLE_PNG_INDICES:
        path = out_dir / f"fashion-mnist-{i}-{FASHION_CLASSES[labels[i]]}.png"
        Image.fromarray(np.ascontiguousarray(images[i], dtype=np.uint8)).save(path, optimize=True)
        written.append(path)
    scene = out_dir / "scene-256.png"
    Image.fromarray(make_scene()).save(scene, optimize=True)
    written.append(scene)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintenance script
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else fashion_mnist_dir()
    if source is None:
        sys.exit("give the folder holding t10k-images-idx3-ubyte.gz")
    target = Path(__file__).resolve().parent.parent / "convcli" / "sample_images"
    for path in build_samples(source, target):
        print(path)
