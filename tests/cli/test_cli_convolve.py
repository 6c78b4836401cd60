"""``convcli convolve`` end to end, through click's CliRunner, checked against scipy."""

import gzip
import io
import json
import os
import re
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers_images import fashion_mnist_dir, idx_bytes, levels_reference, png_bytes, png_header, read_idx_gz
from PIL import Image
from scipy import ndimage, signal

import convcli.maps.picture
import convcli.maps.single
from convcli.cli import cli
from convcli.io.images import SAMPLE_DIR, default_sample

BOOT = np.asarray(Image.open(SAMPLE_DIR / "fashion-mnist-0-ankle-boot.png"), dtype=np.float64)
SCENE_RGB = np.asarray(Image.open(SAMPLE_DIR / "scene-256.png"), dtype=np.float64)
SCENE = np.asarray(Image.open(SAMPLE_DIR / "scene-256.png").convert("L"), dtype=np.float64)
W1 = np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], dtype=np.float64)  # the lab's w1 (edge-h)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


def run(*args, input=None):
    return CliRunner().invoke(cli, ["convolve", *map(str, args)], input=input, catch_exceptions=False)


def assert_refused(result, message, *untouched):
    """Exit 2, exactly one line on stderr, 'Error: <message>', nothing on stdout, nothing written."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"Error: {message}"
    assert sum(line.startswith("Error:") for line in lines) == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""
    for path in untouched:
        assert not os.path.exists(path)


# ----------------------------------------------------------------------------- what a user sees


def test_no_output_prints_summary_and_preview():
    result = run("-k", "edge-h")
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    A = signal.correlate2d(BOOT, W1, mode="valid")
    assert lines[0] == f"edge-h (3x3) on {default_sample()}, padding valid, stride 1"
    assert lines[1] == (f"activation map: shape 26x26  min {A.min():g}  max {A.max():g}  mean {A.mean():g}"
                        f"  std {A.std():g}")
    preview = lines[2:28]
    assert len(preview) == 26 and all(len(row) == 52 and set(row) <= set(" .:-=+*#%@") for row in preview)
    # the brightest cell of the preview is where the map is largest (in the shade ramp, '@' is top)
    y, x = np.unravel_index(A.argmax(), A.shape)
    assert preview[y][2 * x] == "@"
    assert lines[28].startswith("(preview: --normalize minmax;")


def test_half_block_preview_on_a_colour_terminal():
    from rich.console import Console

    from convcli.cli.common import preview

    A = np.arange(12.0).reshape(3, 4)  # odd height: the last line has no lower half
    text = preview(Console(color_system="truecolor", width=80, file=io.StringIO()), A, "minmax")
    lines = text.split("\n")
    assert [line.plain for line in lines] == ["▀▀▀▀", "▀▀▀▀"]
    levels = levels_reference(A)
    first = str(lines[0].spans[1].style)
    top, bottom = levels[0, 1], levels[1, 1]
    assert first == f"rgb({top},{top},{top}) on rgb({bottom},{bottom},{bottom})"
    assert str(lines[1].spans[0].style) == "rgb({0},{0},{0})".format(levels[2, 0])


def test_mnist_item_edge_h_png(tmp_path):
    out = tmp_path / "edges.png"
    result = run("-k", "edge-h", "--size", 128, "-o", out)
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.startswith(f"wrote {out} (edge-h (3x3) on {default_sample()}; map shape 26x26")
    picture = np.asarray(Image.open(out))
    assert picture.shape == (128, 128)
    rows = (np.arange(128) * 26) // 128
    np.testing.assert_array_equal(picture, levels_reference(signal.correlate2d(BOOT, W1, "valid"))[rows][:, rows])


def test_photo_sobel_x_same_reflect(tmp_path):
    out = tmp_path / "gx.npy"
    result = run(SAMPLE_DIR / "scene-256.png", "-k", "sobel-x", "--padding", "same", "--border", "reflect", "-o", out)
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(np.load(out), ndimage.correlate(SCENE, SOBEL_X, mode="mirror"), atol=1e-9)


def test_kernel_file_and_inline_matrix(tmp_path):
    kernel = tmp_path / "ridge.txt"
    kernel.write_text("# ridge\n-1 2 -1\n-1 2 -1\n")
    run(SAMPLE_DIR / "fashion-mnist-2-trouser.png", "-k", kernel, "-o", tmp_path / "a.npy")
    trouser = np.asarray(Image.open(SAMPLE_DIR / "fashion-mnist-2-trouser.png"), dtype=np.float64)
    expected = signal.correlate2d(trouser, [[-1, 2, -1], [-1, 2, -1]], "valid")
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), expected)
    (tmp_path / "k.json").write_text(json.dumps([[-1, 2, -1], [-1, 2, -1]]))
    run(SAMPLE_DIR / "fashion-mnist-2-trouser.png", "-k", tmp_path / "k.json", "-o", tmp_path / "b.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), expected)
    result = run("-k", "1,2,1;0,0,0;-1,-2,-1", "-o", tmp_path / "c.npy")
    assert result.exit_code == 0 and "inline (3x3)" in result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), signal.correlate2d(BOOT, SOBEL_X.T[::-1], "valid"))


def test_piping_png_in_and_out():
    result = CliRunner().invoke(cli, ["convolve", "-", "-k", "laplacian", "-o", "-"],
                                input=(SAMPLE_DIR / "fashion-mnist-9-sneaker.png").read_bytes())
    assert result.exit_code == 0 and result.stderr == ""
    picture = np.asarray(Image.open(io.BytesIO(result.stdout_bytes)))
    sneaker = np.asarray(Image.open(SAMPLE_DIR / "fashion-mnist-9-sneaker.png"), dtype=np.float64)
    lap = signal.correlate2d(sneaker, [[0, 1, 0], [1, -4, 1], [0, 1, 0]], "valid")
    np.testing.assert_array_equal(picture, levels_reference(lap))


def test_piping_idx_on_stdin_with_index(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (4, 9, 9)).astype(np.uint8)
    result = CliRunner().invoke(cli, ["convolve", "-", "--index", "2", "-k", "box", "-o", str(tmp_path / "m.npy")],
                                input=gzip.compress(idx_bytes(data)))
    assert result.exit_code == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), signal.correlate2d(data[2], np.ones((3, 3)), "valid"))


def test_bundled_idx_index_and_verify(tmp_path):
    idx_file = SAMPLE_DIR / "fashion-mnist-16-images-idx3-ubyte.gz"
    result = run(idx_file, "--index", 13, "-k", "gaussian", "--verify", "-o", tmp_path / "g.npy")
    assert result.exit_code == 0
    assert re.fullmatch(r"conv check passed: largest \|convcli - scipy\.signal\.correlate2d\| = \S+ "
                        r"\(tolerance \S+\)\n", result.stdout)
    assert f"on {idx_file} [13]" in result.stderr
    expected = signal.correlate2d(read_idx_gz(idx_file)[13].astype(float), np.outer([1, 2, 1], [1, 2, 1]) / 16,
                                  "valid")
    np.testing.assert_allclose(np.load(tmp_path / "g.npy"), expected, atol=1e-12)
    piped = run(idx_file, "-k", "edge-v", "--verify", "-o", "-")
    assert piped.stdout_bytes.startswith(b"\x89PNG") and piped.stderr.startswith("conv check passed")


def test_numpy_inputs(tmp_path):
    stack = np.random.default_rng(1).normal(size=(3, 7, 8))
    np.save(tmp_path / "s.npy", stack)
    np.savez(tmp_path / "mnist.npz", x_train=stack[:2], y_train=np.arange(2), x_test=stack[1:])
    run(tmp_path / "s.npy", "--index", 2, "-k", "emboss", "-o", tmp_path / "a.npy")
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), signal.correlate2d(stack[2], emboss, "valid"))
    run(tmp_path / "mnist.npz", "--key", "x_test", "--index", 1, "-k", "emboss", "-o", tmp_path / "b.npy")
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), signal.correlate2d(stack[2], emboss, "valid"))


def test_color_flip_stride_padding_border(tmp_path):
    k = np.array([[1.0, 2.0], [0.0, -1.0]])
    args = ["-k", "1,2;0,-1", "--color", "--flip", "--stride", 3, "--padding", 2, "--border", "wrap"]
    result = run(SAMPLE_DIR / "scene-256.png", *args, "-o", tmp_path / "c.npy", "--verify")
    assert result.exit_code == 0, result.stderr
    out = np.load(tmp_path / "c.npy")
    for c in range(3):
        padded = np.pad(SCENE_RGB[..., c], 2, mode="wrap")
        np.testing.assert_allclose(out[..., c], signal.convolve2d(padded, k, "valid")[::3, ::3], atol=1e-9)
    run(SAMPLE_DIR / "scene-256.png", *args, "-o", tmp_path / "c.png")
    assert Image.open(tmp_path / "c.png").mode == "RGB"
    run("--color", "-k", "box", "-o", tmp_path / "grey.tif")  # a grey picture keeps one channel: TIFF is fine
    assert Image.open(tmp_path / "grey.tif").mode == "F"


@pytest.mark.parametrize("mode", ["minmax", "abs", "clip", "signed"])
def test_normalizations(tmp_path, mode):
    run("-k", "sobel-y", "--normalize", mode, "-o", tmp_path / "n.png")
    A = signal.correlate2d(BOOT, SOBEL_X.T, "valid")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "n.png")), levels_reference(A, mode))


@pytest.mark.parametrize("mode", ["minmax", "abs", "clip", "signed"])
def test_png_made_in_strips_is_the_picture_of_the_whole_map(tmp_path, monkeypatch, mode):
    """-o x.png goes strip by strip (here 3 rows at a time): the bytes of the .npy map's picture, the same summary."""
    from convcli.maps.levels import to_uint8

    monkeypatch.setattr(convcli.maps.picture, "STRIP_PIXELS", 3 * 256)
    args = [SAMPLE_DIR / "scene-256.png", "-k", "log", "--padding", "same", "--border", "symmetric",
            "--normalize", mode]
    npy, png = run(*args, "-o", tmp_path / "m.npy"), run(*args, "-o", tmp_path / "m.png")
    assert npy.exit_code == png.exit_code == 0
    A = np.load(tmp_path / "m.npy")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")), to_uint8(A, mode))
    summary = re.compile(r"; map (shape .*)\)$", re.MULTILINE)
    assert summary.search(png.stderr)[1] == summary.search(npy.stderr)[1] == "shape 256x256  min -491  max 471  mean 0  std 60.3103"
    piped = run(*args, "-o", "-")
    assert piped.stdout_bytes == (tmp_path / "m.png").read_bytes()


def test_png_output_keeps_the_picture_uint8_and_never_holds_the_whole_map(tmp_path, monkeypatch):
    """The issue #6 memory target: no float64 copy of a uint8 picture, no float64 map, for plain PNG output."""
    seen = []
    real = convcli.maps.picture.picture_of_map
    monkeypatch.setattr(convcli.maps.picture, "picture_of_map",
                        lambda X, *a, **k: seen.append(X.dtype) or real(X, *a, **k))

    def whole_map(*args, **kwargs):
        raise AssertionError("convolve_map called for PNG output")

    monkeypatch.setattr(convcli.maps.single, "convolve_map", whole_map)
    result = run(SAMPLE_DIR / "scene-256.png", "-k", "edge-h", "-o", tmp_path / "m.png")
    assert result.exit_code == 0, result.stderr
    assert seen == [np.uint8]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")),
                                  levels_reference(signal.correlate2d(SCENE, W1, "valid")))


def test_tiff_output_and_png_only_note(tmp_path):
    result = run("-k", "blur", "--size", 64, "-o", tmp_path / "b.tif")
    assert result.exit_code == 0
    assert result.stderr.startswith(f"note: --size applies to picture output only (.png .jpg .webp .bmp); "
                                    f"'{tmp_path / 'b.tif'}' keeps the raw")
    np.testing.assert_allclose(np.asarray(Image.open(tmp_path / "b.tif")),
                               signal.correlate2d(BOOT, np.full((3, 3), 1 / 9), "valid").astype(np.float32))


def test_force_overwrites_and_quiet(tmp_path):
    out = tmp_path / "m.png"
    out.write_bytes(b"old")
    assert_refused(run("-k", "box", "-o", out), f"output '{out}' already exists; use --force to overwrite it")
    assert out.read_bytes() == b"old"
    result = run("-k", "box", "-o", out, "--force", "--quiet")
    assert result.exit_code == 0 and result.stdout == result.stderr == ""
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(fashion_mnist_dir() is None, reason="real Fashion-MNIST files not found: set "
                    "CONVCLI_FASHION_MNIST or `apt-get download dataset-fashion-mnist && dpkg -x` it under /tmp/fmnist")
def test_real_fashion_mnist(tmp_path):
    images = fashion_mnist_dir() / "t10k-images-idx3-ubyte.gz"
    result = run(images, "--index", 9999, "-k", "sobel-x", "-o", tmp_path / "m.npy", "--verify")
    assert result.exit_code == 0, result.stderr
    expected = signal.correlate2d(read_idx_gz(images)[9999].astype(float), SOBEL_X, "valid")
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), expected)
    labels = fashion_mnist_dir() / "t10k-labels-idx1-ubyte.gz"
    assert_refused(run(labels, "-k", "box", "-o", tmp_path / "x.png"),
                   f"input '{labels}' is 1-D, shape (10000,) (a labels file?); expected (H, W) or (N, H, W) images",
                   tmp_path / "x.png")
    assert_refused(run(images, "--index", 10000, "-k", "box"),
                   f"index 10000 is out of range: '{images}' holds 10000 images (valid: 0..9999)")


def test_help_has_examples():
    result = CliRunner().invoke(cli, ["convolve", "--help"])
    assert result.exit_code == 0
    assert "convcli convolve -k edge-h --size 128 -o edges.png" in result.stdout
    assert "--border [zero|reflect|symmetric|edge|wrap]" in result.stdout


# ----------------------------------------------------------------------------- refusals


def bad_inputs(tmp_path):
    """(file, expected message) for every kind of bad input the issue lists."""
    files = {
        "empty.png": b"",
        "cut.png": png_bytes(np.random.default_rng(2).integers(0, 255, (40, 40)).astype(np.uint8))[:300],
        "notes.txt": b"hello\n",
        "bad-magic-idx3-ubyte": b"\x12\x34\x56\x78" + bytes(12),
        "short-idx3-ubyte": idx_bytes(np.zeros((4, 5, 5), np.uint8))[:-3],
        "small.png": png_bytes(np.zeros((2, 2), np.uint8)),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    np.save(tmp_path / "obj.npy", np.array([[None]], dtype=object), allow_pickle=True)
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [0.0, 0.0]]))
    p = lambda name: tmp_path / name  # noqa: E731
    return [
        (p("missing.png"), f"input file '{p('missing.png')}' not found"),
        (p("empty.png"), f"input '{p('empty.png')}' is empty (0 bytes)"),
        (p("cut.png"), None),
        (p("notes.txt"), f"input '{p('notes.txt')}' is not an image convcli can read: expected an image Pillow "
                         "opens (PNG, JPEG, BMP, TIFF, GIF, WebP...), an IDX file (raw or .gz) or a NumPy "
                         ".npy/.npz file"),
        (p("bad-magic-idx3-ubyte"), f"input '{p('bad-magic-idx3-ubyte')}' has a bad IDX magic number 0x12345678; an "
                                    "IDX file starts with 0x0000, a type code (08 ubyte ... 0E double) and the number "
                                    "of dimensions"),
        (p("short-idx3-ubyte"), f"input '{p('short-idx3-ubyte')}' is truncated: its IDX header says 4x5x5 ubyte = "
                                "100 bytes of data, but only 97 follow"),
        (p("obj.npy"), f"input '{p('obj.npy')}' holds Python objects (dtype object); convcli never loads pickles"),
        (p("nan.npy"), f"input '{p('nan.npy')}' has NaN or infinite pixels (first at image 0, row 0, column 1); "
                       "convcli needs finite values"),
        (p("small.png"), f"kernel 'box' (3x3) is larger than the image '{p('small.png')}' (2x2); use a smaller "
                         "kernel or --padding same/full"),
    ]


def test_every_bad_input_is_one_error_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out" / "map.png"
    out.parent.mkdir()
    for source, message in bad_inputs(tmp_path):
        result = run(source, "-k", "box", "-o", out)
        if message is None:  # truncated: Pillow's own words follow our prefix
            assert result.stderr.startswith(f"Error: input '{source}' is truncated or corrupt:"), result.stderr
            message = result.stderr.strip()[len("Error: "):]
        assert_refused(result, message, out)
    assert os.listdir(out.parent) == []


def test_decompression_bomb_is_refused(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_header(40000, 40000))
    result = run(tmp_path / "bomb.png", "-k", "box")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: input '{tmp_path / 'bomb.png'}' looks like a decompression bomb:")


@pytest.mark.parametrize("args, message", [
    (["-k", "sobelx"], "unknown filter 'sobelx'; did you mean: sobel-x, sobel-y?"),
    (["-k", "1,2;3"], "inline kernel '1,2;3', row 2: expected 2 numbers (as in row 1), got 1"),
    (["-k", "nope.txt"], "kernel file 'nope.txt' not found"),
    (["-k", "box", "--index", "3"], f"index 3 is out of range: '{default_sample()}' holds 1 image (valid index: 0)"),
    (["-k", "box", "--key", "x_train"],
     f"key 'x_train' applies only to .npz archives; '{default_sample()}' is a PNG image (mode L)"),
    (["-k", "box", "--padding", "same", "--stride", "2"], "padding 'same' needs stride 1; got stride 2"),
    (["-k", "box", "-o", "map.gif"],
     "output 'map.gif' has extension '.gif'; accepted: .png, .jpg, .jpeg, .webp, .bmp, .npy, .tif, .tiff"),
    (["-k", "box", "-o", "no/such/folder/map.png"], "output folder 'no/such/folder' does not exist; create it first"),
    ([str(SAMPLE_DIR / "scene-256.png"), "--color", "-k", "box", "-o", "map.tif"],
     "TIFF output holds one channel; this map has shape (254, 254, 3): use .npy or .png"),
])
def test_option_refusals(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert_refused(run(*args), message)
    assert os.listdir(tmp_path) == []


def test_kernel_file_errors_name_file_and_row(tmp_path):
    (tmp_path / "k.csv").write_text("1,2,3\n4,5\n")
    assert_refused(run("-k", tmp_path / "k.csv"),
                   f"kernel file '{tmp_path / 'k.csv'}', row 2 (line 2): expected 3 numbers (as in row 1), got 2")


def test_usage_errors_exit_2():
    for args, text in ((["--padding", "sideways", "-k", "box"], "Invalid value for '--padding'"),
                       ([], "Missing option '-k' / '--kernel'"),
                       (["-k", "box", "--border", "mirror"], "Invalid value for '--border'")):
        result = run(*args)
        assert result.exit_code == 2 and text in result.stderr and "Traceback" not in result.stderr


def test_failed_verification_exits_1_and_writes_nothing(tmp_path, monkeypatch):
    real = convcli.maps.single.conv_forward
    monkeypatch.setattr(convcli.maps.single, "conv_forward", lambda *a, **k: real(*a, **k) + 1e-3)  # a planted bug
    result = run("-k", "edge-h", "--verify", "-o", tmp_path / "m.png")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: conv check FAILED: largest |convcli - scipy.signal.correlate2d| = 0.001")
    assert not (tmp_path / "m.png").exists()


def test_terminals_are_not_used_for_binary_data(monkeypatch, tmp_path):
    import types

    import convcli.cli.convolve as cli_convolve

    class Terminal(io.BytesIO):
        def isatty(self):
            return True

    with monkeypatch.context() as patch:
        patch.setattr(cli_convolve, "sys", types.SimpleNamespace(stdout=Terminal(), stdin=io.BytesIO()))
        assert_refused(run("-k", "box", "-o", "-"),
                       "-o - writes PNG bytes to stdout, which is a terminal; redirect it (> map.png)")
    monkeypatch.setattr(cli_convolve, "sys", types.SimpleNamespace(stdin=Terminal()))
    assert_refused(run("-", "-k", "box", "-o", tmp_path / "m.png"),
                   "IMAGE '-' reads image bytes from stdin, which is a terminal; pipe a file in", tmp_path / "m.png")


def test_missing_file_named_like_a_sample_points_to_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_refused(run("scene-256.png", "-k", "box"),
                   "input file 'scene-256.png' not found; the bundled sample of that name is "
                   f"{SAMPLE_DIR / 'scene-256.png'}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
@pytest.mark.parametrize("preset", [None, "2"])
@pytest.mark.parametrize("command", [["convolve", "-k", "box", "-o", "m.png"], ["filters", "render", "-f", "box"]])
def test_commands_load_numpy_with_one_blas_thread_unless_told_otherwise(tmp_path, preset, command):
    """OpenBLAS's own threads would only spin (convcli.layers runs its own); a user's setting wins."""
    import subprocess

    code = ("import os, sys; from click.testing import CliRunner; from convcli.cli import cli; "
            f"r = CliRunner().invoke(cli, {command + ['-q']!r}); "
            "import threading; print(r.exit_code, os.environ['OPENBLAS_NUM_THREADS'], "
            "len(os.listdir('/proc/self/task')) - threading.active_count())")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=tmp_path).stdout
    status, value, foreign = out.split()
    assert (status, value) == ("0", preset or "1")
    if preset is None:
        assert foreign == "0"  # no thread that Python did not start: no OpenBLAS server thread
