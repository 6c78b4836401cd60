"""``convcli filters list|show|render`` end to end, through click's CliRunner."""

import json
import os
import re

import numpy as np
import pytest
from click.testing import CliRunner
from helpers_images import idx_bytes, png_bytes
from PIL import Image
from scipy import signal

from convcli.cli import cli
from convcli.io.images import default_sample
from convcli.io.library import FILTERS, is_separable, is_zero_sum

BOOT = np.asarray(Image.open(default_sample()), dtype=np.float64)


def run(*args, input=None):
    return CliRunner().invoke(cli, ["filters", *map(str, args)], input=input, catch_exceptions=False)


def assert_refused(result, message):
    """Exit 2 and exactly one line on stderr, 'Error: <message>'; nothing on stdout."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]
    assert result.stdout == ""


def items(tmp_path, count=12, name="digits.idx"):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (count, 28, 28)).astype(np.uint8)
    path = tmp_path / name
    path.write_bytes(idx_bytes(images, "u1"))
    return path, images


# ----------------------------------------------------------------------------- list


def test_list_json_is_the_whole_library_and_only_json():
    result = run("list", "--format", "json")
    assert result.exit_code == 0 and result.stderr == ""
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list(FILTERS)
    for row in rows:
        assert set(row) == {"name", "kernel", "description"}
        np.testing.assert_array_equal(row["kernel"], FILTERS[row["name"]].kernel)
        assert row["description"] == FILTERS[row["name"]].description
    assert rows[1]["kernel"] == [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]  # whole numbers as ints


def test_list_table_has_a_row_per_filter_with_size_kernel_and_sum(monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")  # rich wraps long cells at the terminal width
    result = run("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["name", "size", "kernel", "sum"]
    starts = {line.split()[0]: line for line in lines[1:] if line and not line.startswith(" ")}
    assert list(starts) == list(FILTERS)
    assert re.match(r"edge-h\s+3×3\s+1 1 1 / 0 0 0 / -1 -1 -1\s+0\s+Horizontal", starts["edge-h"])
    assert re.match(r"sharpen\s+3×3\s+1/9 × -1 -1 -1 / -1 17 -1 / -1 -1 -1\s+1\s+", starts["sharpen"])
    assert re.match(r"box\s+3×3\s+1 1 1 / 1 1 1 / 1 1 1\s+9\s+", starts["box"])
    assert re.match(
        r"gaussian-5\s+5×5\s+1/256 × 1 4 6 4 1 / 4 16 24 16 4 / 6 24 36 24 6 / 4 16 24 16 4 / "
        r"1 4 6 4 1\s+1\s+5x5 Gaussian blur",
        starts["gaussian-5"],
    )


# ----------------------------------------------------------------------------- show


@pytest.mark.parametrize("name", ["edge-h", "sharpen", "gaussian-5"])
def test_show_matrix_properties_and_preview(name):
    f = FILTERS[name]
    result = run("show", name)
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"{name} ({f.kernel.shape[0]}×{f.kernel.shape[1]})"
    assert lines[1] == f.description
    yes = {True: "yes", False: "no"}
    total = f.kernel.sum()
    total_text = str(int(round(total))) if abs(total - round(total)) < 1e-9 else f"{total:.6g}"
    properties = f"sum {total_text} · zero-sum {yes[is_zero_sum(f.kernel)]} · separable {yes[is_separable(f.kernel)]}"
    assert properties in lines
    A = signal.correlate2d(BOOT, f.kernel, mode="valid")
    stats = [line for line in lines if line.startswith("activation map on ")]
    assert stats == [
        f"activation map on {default_sample().name} (padding valid): shape {A.shape[0]}x{A.shape[1]}"
        f"  min {A.min():g}  max {A.max():g}  mean {A.mean():g}  std {A.std():g}"
    ]
    preview = lines[lines.index(stats[0]) + 1 :]
    assert len(preview) == A.shape[0] and all(len(row) == 2 * A.shape[1] for row in preview)
    y, x = np.unravel_index(A.argmax(), A.shape)
    assert preview[y][2 * x] == "@"  # the brightest character where the map is largest


def test_show_edge_h_matrix_rows():
    lines = run("show", "edge-h").stdout.splitlines()
    assert lines[3:6] == ["   1  1  1", "   0  0  0", "  -1 -1 -1"]
    assert "sum 0 · zero-sum yes · separable yes" in lines


def test_show_fraction_is_pulled_out():
    lines = run("show", "sharpen").stdout.splitlines()
    assert lines[3:6] == ["        -1 -1 -1", "  1/9 × -1 17 -1", "        -1 -1 -1"]


def test_show_unknown_name_suggests_close_ones():
    assert_refused(run("show", "sobelx"), "unknown filter 'sobelx'; did you mean: sobel-x, sobel-y?")


def test_show_takes_a_kernel_file_or_an_inline_matrix(tmp_path):
    kernel_file = tmp_path / "ridge.txt"
    kernel_file.write_text("# ridge\n-1 2 -1\n-1 2 -1\n-1 2 -1\n")
    lines = run("show", kernel_file).stdout.splitlines()
    assert lines[:6] == ["ridge (3×3)", f"Kernel file '{kernel_file}'.", "", "  -1  2 -1", "  -1  2 -1", "  -1  2 -1"]
    assert "sum 0 · zero-sum yes · separable yes" in lines
    result = run("show", "1/4,1/4;1/4,1/4")
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[3:5] == ["        1 1", "  1/4 × 1 1"] and "sum 1 · zero-sum no · separable yes" in lines
    A = signal.correlate2d(BOOT, np.full((2, 2), 0.25), mode="valid")
    assert f"activation map on {default_sample().name} (padding valid): shape 27x27  min {A.min():g}" in result.stdout


def test_show_refuses_a_kernel_larger_than_the_sample_before_printing_anything():
    assert_refused(
        run("show", ";".join(["1"] * 29)),
        f"kernel 'inline' (29x1) is larger than the image '{default_sample().name}' (28x28); "
        "use a smaller kernel or --padding same/full",
    )
    assert run("show", ";".join(["1"] * 29), "--padding", "same").exit_code == 0


# ----------------------------------------------------------------------------- render


SUMMARY = re.compile(
    r"rendered ([\d,]+) images? × (\d+) filters? = ([\d,]+) maps? in \d+\.\d s into (\S+?)(?:; contact sheet: (\S+))?"
)


def test_render_with_no_arguments_renders_the_samples_with_every_filter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("render")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # the summary is a log line: stderr
    match = SUMMARY.fullmatch(result.stderr.strip())
    assert match, result.stderr
    counts = [int(match.group(i).replace(",", "")) for i in (1, 2, 3)]
    assert counts == [17, len(FILTERS), 17 * len(FILTERS)]  # the 16-item IDX subset and the scene
    assert match.group(4) == "convcli-filters" and match.group(5) == os.path.join("convcli-filters", "sheet.png")
    out = tmp_path / "convcli-filters"
    assert len(json.loads((out / "manifest.json").read_text())["files"]) == counts[2]
    assert sorted(os.listdir(out)) == sorted(
        [f"fashion-mnist-16-images-idx3-ubyte-{i}" for i in range(16)] + ["scene-256", "manifest.json", "sheet.png"]
    )
    boot = out / "fashion-mnist-16-images-idx3-ubyte-0"  # item 0 is the ankle boot of the default sample
    assert sorted(os.listdir(boot)) == sorted(f"{name}.png" for name in FILTERS)
    A = signal.correlate2d(BOOT, FILTERS["edge-h"].kernel, mode="valid")
    levels = np.asarray(Image.open(boot / "edge-h.png")).astype(int)
    assert np.abs(levels - np.rint(255 * (A - A.min()) / (A.max() - A.min()))).max() <= 1
    assert np.asarray(Image.open(out / "scene-256" / "box.png")).shape == (254, 254)

    # the second time, the folder holds only the first render: it is replaced, with the same files
    first = sorted(p.relative_to(out) for p in out.rglob("*"))
    again = run("render")
    assert again.exit_code == 0, again.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == first
    # a file convcli did not write makes it someone's folder: refused, nothing changed
    (out / "notes.txt").write_text("mine")
    before = (out / "manifest.json").stat().st_mtime_ns
    assert_refused(
        run("render"),
        "output folder 'convcli-filters' holds files that are not an earlier convcli render (not all listed in its "
        "manifest.json); use --force to replace the files convcli writes there (nothing else is deleted), or "
        "choose another folder with -o",
    )
    assert (out / "manifest.json").stat().st_mtime_ns == before
    assert run("render", "--force", "-q").exit_code == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_render_f_and_k_mixed_with_an_index_range(tmp_path):
    source, images = items(tmp_path)
    kernel_file = tmp_path / "mine.txt"
    kernel_file.write_text("0 1 0\n1 -4 1\n0 1 0\n")
    out = tmp_path / "out"
    result = run(
        "render",
        source,
        "--index",
        "2:5,9",
        "-f",
        "sharpen",
        "-k",
        kernel_file,
        "-f",
        "edge-h",
        "-k",
        "1,2;3,4",
        "-o",
        out,
        "--no-sheet",
        "--normalize",
        "signed",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().startswith("rendered 4 images × 4 filters = 16 maps in ")
    assert "contact sheet" not in result.stderr and not (out / "sheet.png").exists()
    data = json.loads((out / "manifest.json").read_text())
    assert data["normalize"] == "signed"
    assert [(e["index"], e["filter"]) for e in data["files"][:4]] == [
        (2, "sharpen"),
        (2, "edge-h"),
        (2, "mine"),
        (2, "inline"),
    ]
    assert sorted(os.listdir(out)) == ["digits-2", "digits-3", "digits-4", "digits-9", "manifest.json"]
    A = signal.correlate2d(images[9].astype(float), [[1, 2], [3, 4]], mode="valid")
    levels = np.asarray(Image.open(out / "digits-9" / "inline.png")).astype(int)
    assert np.abs(levels - np.rint(127.5 + 127.5 * A / np.abs(A).max())).max() <= 1


def test_render_padding_size_and_quiet(tmp_path):
    pic = tmp_path / "pic.png"
    pic.write_bytes(png_bytes(np.arange(100, dtype=np.uint8).reshape(10, 10)))
    out = tmp_path / "out"
    result = run("render", pic, "-f", "box", "--padding", "full", "--border", "edge", "--size", "60", "-o", out, "-q")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    assert np.asarray(Image.open(out / "pic" / "box.png")).shape == (60, 60)  # 12x12 map, upscaled 5x
    entry = json.loads((out / "manifest.json").read_text())["files"][0]
    A = signal.correlate2d(np.pad(np.arange(100.0).reshape(10, 10), 2, mode="edge"), np.ones((3, 3)), mode="valid")
    assert (entry["index"], entry["min"], entry["max"]) == (None, A.min(), A.max())


def test_render_reads_stdin(tmp_path):
    out = tmp_path / "out"
    data = png_bytes(np.eye(8, dtype=np.uint8) * 200)
    result = run("render", "-", "-f", "edge-v", "-o", out, input=data)
    assert result.exit_code == 0, result.stderr
    assert (out / "stdin" / "edge-v.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["-f", "sobelx"], "unknown filter 'sobelx'; did you mean: sobel-x, sobel-y?"),
        (["--index", "12"], "index 12 is out of range for 12 image(s) (valid: 0..11)"),
        (["--index", "0:20"], "index range '0:20' is out of range for 12 image(s) (valid: 0..11)"),
        (["--index", "x"], "index 'x' is not an index list; expected e.g. 3, 0:100, 0:10:2 or 0,5,7"),
        (
            ["--size", "100000"],
            "size 100000 would make a picture of 10,000,000,000 pixels, more than the limit of 50,000,000; "
            "raise it with --max-pixels N or CONVCLI_MAX_PIXELS=N (0: no limit)",
        ),
        (
            ["-f", "gaussian-5", "-k", "1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;20;21;22;23;24;25;26;27;28;29"],
            "filter 'inline' (29×1) is larger than input '{src}' (28×28) with padding 'valid'; use --padding same "
            "or full, or a smaller filter",
        ),
    ],
)
def test_render_refusals_write_nothing(tmp_path, args, message):
    source, _ = items(tmp_path)
    out = tmp_path / "out"
    assert_refused(run("render", source, "-o", out, *args), message.format(src=source))
    assert not out.exists()


def test_render_refuses_to_read_stdin_from_a_terminal(tmp_path, monkeypatch):
    import io
    import types

    import convcli.cli.render

    class Terminal(io.BytesIO):
        def isatty(self):
            return True

    monkeypatch.setattr(convcli.cli.render, "sys", types.SimpleNamespace(stdin=Terminal()))
    assert_refused(
        run("render", "-", "-o", tmp_path / "out"),
        "INPUT '-' reads image bytes from stdin, which is a terminal; pipe a file in",
    )
    assert not (tmp_path / "out").exists()


def test_render_missing_input_and_index_without_indexed_input(tmp_path):
    out = tmp_path / "out"
    assert_refused(run("render", tmp_path / "nope.png", "-o", out), f"input file '{tmp_path / 'nope.png'}' not found")
    pic = tmp_path / "pic.png"
    pic.write_bytes(png_bytes(np.zeros((8, 8), np.uint8)))
    assert_refused(
        run("render", pic, "--index", "0", "-o", out),
        f"--index '0' needs an indexed input (IDX, .npz or 3-D .npy); got only plain images: {pic}",
    )
    assert not out.exists()


def test_render_force_keeps_other_files(tmp_path):
    source, _ = items(tmp_path, 3)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert run("render", source, "-o", out, "-f", "box").exit_code == 2
    result = run("render", source, "-o", out, "-f", "box", "--force")
    assert result.exit_code == 0
    assert (out / "keep.txt").read_text() == "mine"
    assert sorted(os.listdir(out)) == ["digits-0", "digits-1", "digits-2", "keep.txt", "manifest.json", "sheet.png"]


def test_render_help_has_examples():
    result = run("render", "--help")
    assert result.exit_code == 0
    assert "convcli filters render t10k-images-idx3-ubyte.gz --index 0:100" in result.stdout


def test_render_progress_bar_goes_to_stderr_and_counts_every_image(tmp_path, monkeypatch):
    import convcli.cli.render
    import convcli.maps.batch

    source, _ = items(tmp_path, 7)
    advanced = []
    real = convcli.maps.batch.run_render

    def spy(plan, *, progress=None, **kw):
        assert progress is not None

        def counting(n):
            advanced.append(n)
            progress(n)

        return real(plan, progress=counting, **kw)

    monkeypatch.setattr(convcli.cli.render, "progress_enabled", lambda quiet: not quiet)
    monkeypatch.setattr(convcli.maps.batch, "run_render", spy)
    result = run("render", source, "-f", "box", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert sum(advanced) == 7
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith("rendered 7 images × 1 filter = 7 maps in ")
    one = run("render", source, "-f", "box", "--index", "3", "-o", tmp_path / "one")
    assert one.stderr.strip().splitlines()[-1].startswith("rendered 1 image × 1 filter = 1 map in ")


def test_render_npz_by_key_with_an_index_list(tmp_path):
    rng = np.random.default_rng(4)
    x_train, x_test = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 256, (4, 28, 28))
    archive = tmp_path / "mnist.npz"
    np.savez(archive, x_train=x_train.astype(np.uint8), y_train=np.arange(6), x_test=x_test.astype(np.uint8))
    out = tmp_path / "out"
    result = run("render", archive, "--key", "x_test", "--index", "0,3", "-f", "edge-h", "-o", out, "-q")
    assert result.exit_code == 0, result.stderr
    entries = json.loads((out / "manifest.json").read_text())["files"]
    assert [(e["index"], e["file"]) for e in entries] == [(0, "mnist-0/edge-h.png"), (3, "mnist-3/edge-h.png")]
    A = signal.correlate2d(x_test[3].astype(float), FILTERS["edge-h"].kernel, mode="valid")
    assert (entries[1]["min"], entries[1]["max"]) == (A.min(), A.max())


def test_ctrl_c_during_render_says_what_is_left_and_exits_130(tmp_path, monkeypatch):
    import convcli.maps.batch

    def interrupted(plan, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(convcli.maps.batch, "run_render", interrupted)
    source, _ = items(tmp_path, 2)
    out = tmp_path / "out"
    result = run("render", source, "-o", out)
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines() == [
        f"Error: interrupted; '{out}' holds the maps written so far, without manifest.json or sheet.png "
        "(run again with --force to redo them)"
    ]
