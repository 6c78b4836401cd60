"""What a new user trips over (issue 14) and the (C, Fh, Fw) colour kernel (issue 10), end to end.

Every map is checked against scipy.signal.correlate2d, written out in the test.
"""

import io
import json
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers_images import levels_reference, png_bytes, png_header
from PIL import Image
from scipy import signal

from convcli.cli import cli
from convcli.io.images import SAMPLE_DIR, default_sample
from convcli.io.library import FILTERS

BOOT = np.asarray(Image.open(default_sample()), dtype=np.float64)
SCENE_RGB = np.asarray(Image.open(SAMPLE_DIR / "scene-256.png").convert("RGB"), dtype=np.float64)
GAUSSIAN, LAPLACIAN = FILTERS["gaussian"].kernel, FILTERS["laplacian"].kernel


def run(*args, input=None, env=None):
    return CliRunner().invoke(cli, [*map(str, args)], input=input, env=env, catch_exceptions=False)


def refused(result, message):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines()[-1] == f"Error: {message}"
    assert "Traceback" not in result.stderr


def correlate(X, w, pad=0, mode="constant"):
    """Zero/reflect padding by numpy, then scipy's valid correlation: the reference."""
    return signal.correlate2d(np.pad(X, pad, mode=mode) if pad else X, w, mode="valid")


# ----------------------------------------------------------------------------- 1. pipelines


@pytest.mark.parametrize("padding, border, pad, mode", [("valid", "zero", 0, None), ("same", "reflect", 1, "reflect")])
def test_repeated_k_is_a_float64_pipeline(tmp_path, padding, border, pad, mode):
    out = tmp_path / "two.npy"
    result = run("convolve", "-k", "gaussian", "-k", "laplacian", "--padding", padding, "--border", border,
                 "--verify", "-o", out)
    assert result.exit_code == 0, result.stderr
    expected = correlate(correlate(BOOT, GAUSSIAN, pad, mode), LAPLACIAN, pad, mode)
    A = np.load(out)
    assert A.shape == expected.shape and np.abs(A - expected).max() < 1e-12
    assert "gaussian (3x3) then laplacian (3x3) on" in result.stderr
    assert "conv check passed" in result.stdout


def test_pipeline_differs_from_the_last_kernel_alone_and_from_the_8_bit_pipe(tmp_path):
    run("convolve", "-k", "edge-h", "-k", "box", "-o", tmp_path / "both.npy")
    run("convolve", "-k", "box", "-o", tmp_path / "box.npy")
    both, box = np.load(tmp_path / "both.npy"), np.load(tmp_path / "box.npy")
    assert both.shape == (24, 24) and box.shape == (26, 26)
    np.testing.assert_allclose(both, correlate(correlate(BOOT, FILTERS["edge-h"].kernel), np.ones((3, 3))), atol=1e-9)
    # the pipe quantizes the intermediate map to 8 bits: close, not equal
    first = run("convolve", "-k", "edge-h", "-o", "-").stdout_bytes
    piped = run("convolve", "-", "-k", "box", "-o", tmp_path / "piped.npy", input=first)
    assert piped.exit_code == 0 and not np.allclose(np.load(tmp_path / "piped.npy"), both)


# ----------------------------------------------------------------------------- 2. --max-pixels


def test_max_pixels_option_and_environment(tmp_path):
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes(np.full((5, 6), 7, np.uint8)))
    limit = "more than the limit of 20 (decompression-bomb protection); raise it with --max-pixels N or " \
            "CONVCLI_MAX_PIXELS=N (0: no limit)"
    refused(run("convolve", small, "-k", "box", "--max-pixels", 20), f"input '{small}' has 6x5 = 30 pixels, {limit}")
    refused(run("convolve", small, "-k", "box", env={"CONVCLI_MAX_PIXELS": "20"}),
            f"input '{small}' has 6x5 = 30 pixels, {limit}")
    assert run("convolve", small, "-k", "box", "--max-pixels", 30).exit_code == 0
    refused(run("filters", "render", small, "-o", tmp_path / "o", env={"CONVCLI_MAX_PIXELS": "20"}),
            f"input '{small}' has 6x5 = 30 pixels, {limit}")
    # a 61-megapixel header: refused by default, let through by 0 (then Pillow finds the data missing)
    big = tmp_path / "big.png"
    big.write_bytes(png_header(9504, 6336))
    assert "--max-pixels" in run("convolve", big, "-k", "box").stderr
    lifted = run("convolve", big, "-k", "box", "--max-pixels", 0)
    assert lifted.exit_code == 2 and "truncated or corrupt" in lifted.stderr and "limit" not in lifted.stderr


# ----------------------------------------------------------------------------- 3. formats and frames


def test_jpeg_webp_bmp_outputs(tmp_path):
    run("convolve", "-k", "sobel-x", "-o", tmp_path / "m.png")
    png = np.asarray(Image.open(tmp_path / "m.png"))
    for name, fmt in (("m.webp", "WEBP"), ("m.bmp", "BMP"), ("M.JPEG", "JPEG"), ("m.jpg", "JPEG")):
        result = run("convolve", "-k", "sobel-x", "-o", tmp_path / name)
        assert result.exit_code == 0, result.stderr
        with Image.open(tmp_path / name) as picture:
            assert picture.format == fmt
            levels = np.asarray(picture.convert("L")).astype(int)
        if fmt == "JPEG":
            assert np.abs(levels - png).mean() < 2  # lossy, quality 95
        else:
            np.testing.assert_array_equal(levels, png)  # lossless


def test_index_picks_a_frame_of_a_multi_frame_tiff_and_gif(tmp_path):
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (12, 10)).astype(np.uint8) for _ in range(3)]
    for name in ("stack.tif", "anim.gif"):
        path = tmp_path / name
        pictures = [Image.fromarray(f) for f in frames]
        pictures[0].save(path, save_all=True, append_images=pictures[1:])
        stored = []
        with Image.open(path) as image:
            for i in range(3):
                image.seek(i)
                stored.append(np.asarray(image.convert("L"), dtype=np.float64))
        result = run("convolve", path, "--index", 2, "-k", "edge-v", "-o", tmp_path / f"{name}.npy")
        assert result.exit_code == 0, result.stderr
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), correlate(stored[2], FILTERS["edge-v"].kernel))
        refused(run("convolve", path, "--index", 3, "-k", "box"),
                f"index 3 is out of range: '{path}' holds 3 images (valid: 0..2)")
    rendered = run("filters", "render", tmp_path / "stack.tif", "-f", "box", "-o", tmp_path / "r", "-q")
    assert rendered.exit_code == 0 and sorted(os.listdir(tmp_path / "r"))[:3] == ["manifest.json", "sheet.png",
                                                                                   "stack-0"]


# ----------------------------------------------------------------------------- 4. inline JSON


def test_inline_json_kernel_is_the_semicolon_form(tmp_path):
    a = run("convolve", "-k", "[[1,2,1],[0,0,0],[-1,-2,-1]]", "-o", tmp_path / "a.npy")
    b = run("convolve", "-k", "1,2,1;0,0,0;-1,-2,-1", "-o", tmp_path / "b.npy")
    assert a.exit_code == b.exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    refused(run("convolve", "-k", "[[1,2],[1]]"), "inline kernel '[[1,2],[1]]', row 2: expected 2 numbers (as in row 1), got 1")


# ----------------------------------------------------------------------------- 5. constant maps


def test_a_constant_map_is_mid_grey_and_said_to_be_constant(tmp_path):
    flat = tmp_path / "flat.png"
    flat.write_bytes(png_bytes(np.full((9, 9), 100, np.uint8)))
    result = run("convolve", flat, "-k", "box", "-o", tmp_path / "m.png")
    assert result.exit_code == 0
    assert "min 900  max 900  mean 900  std 0  (constant map: every value is the same)" in result.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")), np.full((7, 7), 128))
    summary = run("convolve", flat, "-k", "box").stdout
    assert "(constant map: every value is the same)" in summary


# ----------------------------------------------------------------------------- 6. --json


def test_json_statistics(tmp_path):
    result = run("convolve", "-k", "edge-h", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    A = correlate(BOOT, FILTERS["edge-h"].kernel)
    assert data["shape"] == [26, 26] and data["min"] == A.min() and data["max"] == A.max()
    assert data["mean"] == pytest.approx(A.mean(), abs=1e-12) and data["std"] == pytest.approx(A.std(), rel=1e-12)
    assert data["kernel"] == "edge-h" and data["kernels"][0]["values"] == FILTERS["edge-h"].kernel.tolist()
    assert data["input"] == str(default_sample()) and data["item"] is None and data["constant"] is False
    idx = SAMPLE_DIR / "fashion-mnist-16-images-idx3-ubyte.gz"
    written = run("convolve", idx, "--index", 5, "-k", "gaussian", "-k", "laplacian", "--json", "-o", tmp_path / "m.png")
    data = json.loads(written.stdout)
    assert data["item"] == 5 and data["kernel"] == "gaussian | laplacian" and data["output"] == str(tmp_path / "m.png")
    assert data["shape"] == [24, 24] and written.stderr.startswith("wrote ")
    refused(run("convolve", "-k", "box", "--json", "-o", "-"),
            "--json prints to stdout, where -o - writes the PNG; write the picture to a file (-o map.png)")


# ----------------------------------------------------------------------------- 7. --cmap


def test_cmap_colours_the_levels_with_matplotlibs_map(tmp_path):
    import matplotlib

    result = run("convolve", "-k", "sobel-x", "--normalize", "signed", "--cmap", "RdBu_r", "-o", tmp_path / "c.png")
    assert result.exit_code == 0, result.stderr
    rgb = np.asarray(Image.open(tmp_path / "c.png"))
    levels = levels_reference(correlate(BOOT, FILTERS["sobel-x"].kernel), "signed")
    expected = np.rint(matplotlib.colormaps["RdBu_r"](levels)[..., :3] * 255).astype(np.uint8)
    assert rgb.shape == (26, 26, 3) and np.abs(rgb.astype(int) - expected).max() <= 1
    # zero activation (level 128) is the diverging map's middle, a near-white
    assert (expected[levels == 128] > 240).all()
    refused(run("convolve", "-k", "box", "--cmap", "RdBu_rr", "-o", tmp_path / "x.png"),
            "cmap 'RdBu_rr' is not one of matplotlib's colour maps; did you mean: RdBu_r, RdYlBu_r, RdPu_r?")
    refused(run("convolve", SAMPLE_DIR / "scene-256.png", "--color", "-k", "box", "--cmap", "gray",
                "-o", tmp_path / "x.png"),
            "--cmap colours a one-channel map; with --color and a 2-D kernel the map keeps 3 colour channels "
            "(drop --color, or use a (3, Fh, Fw) .npy kernel to sum them)")
    assert not (tmp_path / "x.png").exists()


def test_cmap_colours_the_terminal_preview():
    import matplotlib
    from rich.console import Console

    from convcli.cli.common import preview

    A = np.arange(12.0).reshape(3, 4)
    text = preview(Console(color_system="truecolor", width=80, file=io.StringIO()), A, "minmax", "viridis")
    top, bottom = (np.rint(np.array(matplotlib.colormaps["viridis"](v)[:3]) * 255).astype(int)
                   for v in levels_reference(A)[:2, 1])
    assert str(text.split("\n")[0].spans[1].style) == "rgb({},{},{}) on rgb({},{},{})".format(*top, *bottom)
    shown = run("convolve", "-k", "edge-h", "--cmap", "RdBu_r", "--normalize", "signed")
    assert shown.exit_code == 0 and "(preview: --normalize signed, --cmap RdBu_r;" in shown.stdout


def test_cmap_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    refused(run("convolve", "-k", "box", "--cmap", "viridis", "-o", tmp_path / "x.png"),
            "cmap needs matplotlib, which is not installed: pip install 'convcli[cmap]'  (or: pip install matplotlib)")
    refused(run("filters", "render", "--cmap", "viridis", "-o", tmp_path / "out"),
            "cmap needs matplotlib, which is not installed: pip install 'convcli[cmap]'  (or: pip install matplotlib)")
    assert not (tmp_path / "out").exists()


def test_render_with_cmap_writes_rgb_maps_and_sheet(tmp_path):
    import matplotlib

    out = tmp_path / "out"
    result = run("filters", "render", SAMPLE_DIR / "fashion-mnist-0-ankle-boot.png", "-f", "edge-h",
                 "--normalize", "signed", "--cmap", "coolwarm", "-o", out, "-q")
    assert result.exit_code == 0, result.stderr
    rgb = np.asarray(Image.open(out / "fashion-mnist-0-ankle-boot" / "edge-h.png"))
    levels = levels_reference(correlate(BOOT, FILTERS["edge-h"].kernel), "signed")
    expected = np.rint(matplotlib.colormaps["coolwarm"](levels)[..., :3] * 255).astype(np.uint8)
    assert np.abs(rgb.astype(int) - expected).max() <= 1
    assert Image.open(out / "sheet.png").mode == "RGB"
    assert json.loads((out / "manifest.json").read_text())["cmap"] == "coolwarm"


# ----------------------------------------------------------------------------- 8, 9. help and wording


def test_normalize_help_gives_each_formula():
    for command in (["convolve"], ["filters", "render"], ["filters", "show"]):
        text = " ".join(run(*command, "--help").stdout.split())
        for formula in ("255*(a - min)/(max - min)", "255*|a|/max|a|", "clipped to 0..255", "0 -> 128"):
            assert formula in text, (command, formula)


def test_wording(tmp_path):
    note = run("convolve", "-k", "box", "--normalize", "abs", "-o", tmp_path / "m.npy")
    assert note.stderr.startswith("note: --normalize applies to picture output only")
    refused(run("convolve", "-k", "box", "-o", tmp_path),
            f"output '{tmp_path}' is a folder; give a file name such as '{tmp_path / 'map.png'}'")
    ridge = tmp_path / "ridge.txt"
    ridge.write_text("1 -2 1\n")
    refused(run("filters", "render", "-f", ridge, "-o", tmp_path / "o"),
            f"-f takes a filter name (convcli filters list); for the kernel '{ridge}' use -k {ridge}")
    refused(run("convole"), "No such command 'convole'. Did you mean 'convolve'?")
    a, b = SAMPLE_DIR / "fashion-mnist-0-ankle-boot.png", SAMPLE_DIR / "fashion-mnist-1-pullover.png"
    refused(run("convolve", a, b, "-k", "box"),
            f"convolve takes one IMAGE; got 2 ({a}, {b}); for many images use 'convcli filters render {a} {b} -k KERNEL'")


# ----------------------------------------------------------------------------- 10. completion


def completions(args, incomplete):
    from click.shell_completion import ShellComplete

    return [(item.value, item.type) for item in ShellComplete(cli, {}, "convcli", "_CONVCLI_COMPLETE")
            .get_completions(args, incomplete)]


def test_completion_of_filter_names():
    assert completions(["convolve", "-k"], "sob") == [("sob", "file"), ("sobel-x", "plain"), ("sobel-y", "plain")]
    assert completions(["filters", "render", "-f"], "lap") == [("laplacian", "plain"), ("laplacian-8", "plain")]
    assert completions(["filters", "show"], "kirsch-") == [("kirsch-", "file")] + [(f"kirsch-{d}", "plain")
                                                                                 for d in "nesw"]
    assert completions(["filters", "render", "-k"], "ridge") == [("ridge", "file")]  # files only


def test_completion_script_for_each_shell():
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete --no-files")):
        result = CliRunner().invoke(cli, [], prog_name="convcli", env={"_CONVCLI_COMPLETE": f"{shell}_source"})
        assert marker in result.output, shell


# ----------------------------------------------------------------------------- 12. large runs


def test_large_run_says_what_it_will_write(tmp_path, monkeypatch):
    monkeypatch.setattr("convcli.cli.render.LARGE_RUN_MAPS", 100)
    idx = SAMPLE_DIR / "fashion-mnist-16-images-idx3-ubyte.gz"
    result = run("filters", "render", idx, "-f", "box", "-f", "edge-h", "-o", tmp_path / "few", "--no-sheet")
    assert result.exit_code == 0 and "note:" not in result.stderr  # 32 maps
    result = run("filters", "render", idx, "-o", tmp_path / "out", "--no-sheet")
    n = 16 * len(FILTERS)
    assert result.stderr.splitlines()[0] == (
        f"note: 16 images × {len(FILTERS)} filters = {n} maps (about {n * 4096 / 1e6:.1f} MB) into "
        f"{tmp_path / 'out'}; choose items with --index and filters with -f to write fewer"
    )
    assert "note:" not in run("filters", "render", idx, "-o", tmp_path / "q", "-q").stderr


# ----------------------------------------------------------------------------- issue 10: (C, Fh, Fw) kernels


def test_colour_kernel_sums_over_rgb(tmp_path):
    rng = np.random.default_rng(5)
    w = rng.normal(size=(3, 3, 5))
    path = tmp_path / "rgb.npy"
    np.save(path, w)
    scene = SAMPLE_DIR / "scene-256.png"
    result = run("convolve", scene, "--color", "-k", path, "--padding", "same", "--border", "reflect",
                 "--verify", "-o", tmp_path / "m.npy")
    assert result.exit_code == 0, result.stderr
    expected = sum(signal.correlate2d(np.pad(SCENE_RGB[..., c], ((1, 1), (2, 2)), mode="reflect"), w[c], mode="valid")
                   for c in range(3))
    A = np.load(tmp_path / "m.npy")
    assert A.shape == (256, 256) and np.abs(A - expected).max() < 1e-9
    assert "rgb (3x3x5) on" in result.stderr and "conv check passed" in result.stdout
    # one map, so --cmap works; --flip rotates each channel's window
    assert run("convolve", scene, "--color", "-k", path, "--cmap", "viridis", "-o", tmp_path / "c.png").exit_code == 0
    assert np.asarray(Image.open(tmp_path / "c.png")).shape == (254, 252, 3)
    flipped = run("convolve", scene, "--color", "-k", path, "--flip", "-o", tmp_path / "f.npy")
    assert flipped.exit_code == 0
    expected = sum(signal.convolve2d(SCENE_RGB[..., c], w[c], mode="valid") for c in range(3))
    assert np.abs(np.load(tmp_path / "f.npy") - expected).max() < 1e-9


def test_colour_kernel_refusals_and_show(tmp_path):
    path = tmp_path / "rgb.npy"
    np.save(path, np.stack([FILTERS["sobel-x"].kernel, np.zeros((3, 3)), -FILTERS["sobel-x"].kernel]))
    refused(run("convolve", "-k", path),
            "kernel 'rgb' has shape (3, 3, 3): one output channel over 3 input channels; add --color to read the "
            "image's colour channels")
    refused(run("convolve", "-k", "box", "-k", path, "--color"),
            "kernel 'rgb' has shape (3, 3, 3) (C, Fh, Fw); only the first -k of a pipeline may sum over channels")
    two = tmp_path / "two.npy"
    np.save(two, np.ones((2, 3, 3)))
    refused(run("convolve", SAMPLE_DIR / "scene-256.png", "--color", "-k", two),
            "kernel 'two' has 2 channels (shape (2, 3, 3)) but the image 'scene-256.png' has 3; a (C, Fh, Fw) kernel "
            "needs a C-channel image".replace("'scene-256.png'", f"'{SAMPLE_DIR / 'scene-256.png'}'"))
    refused(run("filters", "render", "-k", path, "-o", tmp_path / "o"),
            "filter 'rgb' has shape (3, 3, 3); filters render takes 2-D kernels (a (C, Fh, Fw) kernel works with "
            "'convcli convolve --color')")
    shown = run("filters", "show", path)
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "rgb (3×3×3)" and "channel 0 (R)" in lines and "channel 2 (B)" in lines
    R, B = SCENE_RGB[..., 0], SCENE_RGB[..., 2]
    A = correlate(R, FILTERS["sobel-x"].kernel) - correlate(B, FILTERS["sobel-x"].kernel)
    stats = next(line for line in lines if line.startswith("activation map on"))
    assert stats.startswith(f"activation map on scene-256.png (padding valid, summed over its channels): "
                            f"shape 254x254  min {A.min():g}  max {A.max():g}")
