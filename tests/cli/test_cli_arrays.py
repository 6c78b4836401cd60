"""``convcli filters render --format npy|zarr`` through CliRunner: results, the options that apply, refusals."""

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers_images import idx_bytes, png_bytes
from scipy import signal

from convcli.cli import cli
from convcli.io.library import FILTERS


def run(*args):
    return CliRunner().invoke(cli, ["filters", "render", *map(str, args)], catch_exceptions=False)


def assert_refused(result, message):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]
    assert result.stdout == ""


@pytest.fixture
def digits(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, (20, 28, 28)).astype(np.uint8)
    path = tmp_path / "digits.idx"
    path.write_bytes(idx_bytes(images, "u1"))
    return path, images


def correlate(images, names):
    """(N, K, H, W) 'same' maps by scipy.signal.correlate2d (3×3 kernels: centred, as convcli's same)."""
    return np.array([[signal.correlate2d(x.astype(float), FILTERS[n].kernel, mode="same") for n in names]
                     for x in images])


@pytest.mark.parametrize("fmt", ["npy", "zarr"])
def test_every_map_of_every_item_in_one_array(tmp_path, digits, fmt):
    path, images = digits
    names = ["edge-h", "sharpen", "laplacian"]
    out = tmp_path / "out"
    result = run(path, "--format", fmt, "--padding", "same", "--dtype", "float64", "--index", "3:15",
                 *[a for n in names for a in ("-f", n)], "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    target = out / f"maps.{fmt}"
    assert result.stderr.startswith(f"rendered 12 items × 3 filters into {target}: float64 array of shape (12, 3, 28, 28)")
    if fmt == "npy":
        A = np.load(target, mmap_mode="r")
    else:
        import zarr

        A = zarr.open_array(str(target), mode="r")
    np.testing.assert_allclose(A[:], correlate(images[3:15], names), rtol=1e-12, atol=1e-9)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"] == [{"file": str(path), "format": "IDX ubyte 20x28x28", "items": [0, 12],
                                   "indices": [[3, 15]]}]
    assert [f["name"] for f in manifest["filters"]] == names and manifest["dtype"] == "float64"


def test_without_input_the_bundled_fashion_mnist_subset(tmp_path):
    result = run("--format", "npy", "--padding", "same", "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0 and result.output == ""
    assert np.load(tmp_path / "out" / "maps.npy").shape == (16, len(FILTERS), 28, 28)


def test_the_default_bank_needs_padding_that_gives_one_map_size(tmp_path, digits):
    result = run(digits[0], "--format", "npy", "-o", tmp_path / "out")
    assert_refused(
        result,
        "filter 'gaussian-5' (5×5) gives 24×24 maps but 'identity' (3×3) gives 26×26 with --padding valid; "
        "--format npy needs maps of one size: use --padding same, or filters of one size",
    )
    assert not (tmp_path / "out").exists()


def test_pictures_of_different_sizes_are_refused(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(png_bytes(np.zeros((10, 12), np.uint8)))
    b.write_bytes(png_bytes(np.zeros((10, 13), np.uint8)))
    assert_refused(
        run(a, b, "--format", "zarr", "-f", "box", "-o", tmp_path / "out"),
        f"input '{b}' is 10×13 but '{a}' is 10×12; --format zarr puts every item in one array, so they must be "
        "one size (use --size PX to scale and centre-crop every item to PX×PX, or --format png)",
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dtype", "float64"], "--dtype applies to --format npy or zarr, not png"),
        (["--resume"], "--resume applies to --format zarr, not png"),
        (["--scheduler", "processes"], "--scheduler applies to --format zarr, not png"),
        (["--format", "zarr", "--normalize", "abs"],
         "--normalize applies to --format png (PNG pictures); npy and zarr store the raw maps"),
        (["--format", "npy", "--no-sheet"],
         "--sheet/--no-sheet applies to --format png (PNG pictures); npy and zarr store the raw maps"),
        (["--format", "npy", "--scheduler", "threads"], "--scheduler applies to --format zarr, which computes with Dask"),
        (["--format", "npy", "--resume"],
         "--resume works with --format zarr (its chunks are marked complete one by one)"),
        (["--format", "zarr", "--resume", "--force"],
         "--resume keeps what a previous run stored and --force replaces it; give one of them"),
        (["--format", "zarr", "--scheduler", "thread"],
         ("scheduler must be threads, processes or the address of a Dask scheduler such as tcp://127.0.0.1:8786;"
          " got 'thread'")),
        (["--format", "tiff"], "Invalid value for '--format': 'tiff' is not one of 'png', 'npy', 'zarr'."),
    ],
)
def test_options_that_do_not_fit_are_refused_before_any_work(tmp_path, digits, args, message):
    assert_refused(run(digits[0], "-f", "box", "--padding", "same", "-o", tmp_path / "out", *args), message)
    assert not (tmp_path / "out").exists()


def test_an_existing_array_is_kept_without_force(tmp_path, digits):
    out = tmp_path / "out"
    assert run(digits[0], "--format", "npy", "-f", "box", "-o", out).exit_code == 0
    before = (out / "maps.npy").read_bytes()
    assert_refused(
        run(digits[0], "--format", "npy", "-f", "sharpen", "-o", out),
        f"output folder '{out}' holds files that are not an earlier convcli render (not all listed in its manifest.json); use --force to replace the files convcli writes there "
        "(nothing else is deleted), or choose another folder with -o",
    )
    assert (out / "maps.npy").read_bytes() == before
    assert run(digits[0], "--format", "npy", "-f", "sharpen", "-o", out, "--force").exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["filters"][0]["name"] == "sharpen"


def test_zarr_without_the_extra_says_what_to_install(tmp_path, digits, monkeypatch):
    for module in ("dask", "zarr"):
        monkeypatch.setitem(sys.modules, module, None)
    assert_refused(
        run(digits[0], "--format", "zarr", "-f", "box", "-o", tmp_path / "out"),
        "--format zarr needs dask, zarr (not installed); install them with: pip install 'convcli[dask]'",
    )


def test_an_unreachable_scheduler_is_one_error_line_and_leaves_nothing(tmp_path, digits, monkeypatch):
    import socket

    from convcli.maps import zarrstore

    monkeypatch.setattr(zarrstore, "CONNECT_TIMEOUT", "1s")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(digits[0], "--format", "zarr", "-f", "box", "--scheduler", f"tcp://127.0.0.1:{port}", "-o",
                 tmp_path / "out")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"Error: cannot connect to the Dask scheduler at 'tcp://127.0.0.1:{port}': ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "maps.zarr").exists()


def test_resume_without_a_store_starts_afresh_but_only_in_an_empty_folder(tmp_path, digits):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")  # a PNG render's, say
    assert_refused(
        run(digits[0], "--format", "zarr", "-f", "box", "-o", out, "--resume"),
        f"output folder '{out}' holds files that are not an earlier convcli render (not all listed in its manifest.json); use --force to replace the files convcli writes there "
        "(nothing else is deleted), or choose another folder with -o",
    )
    assert (out / "manifest.json").read_text() == "{}"
    result = run(digits[0], "--format", "zarr", "-f", "box", "-o", tmp_path / "new", "--resume")
    assert result.exit_code == 0 and "resuming" not in result.stderr


def test_stdin_cannot_go_to_worker_processes(tmp_path, digits):
    result = CliRunner().invoke(
        cli, ["filters", "render", "-", "--format", "zarr", "-f", "box", "--scheduler", "processes", "-o",
              str(tmp_path / "out")], input=digits[0].read_bytes(), catch_exceptions=False)
    assert_refused(result, "INPUT '-' (stdin) cannot be read by Dask worker processes; use --scheduler threads, "
                           "or save the data to a file first")
    assert not (tmp_path / "out").exists()


def test_force_replaces_a_zarr_store_and_keeps_other_files(tmp_path, digits):
    import zarr

    out = tmp_path / "out"
    assert run(digits[0], "--format", "zarr", "-f", "box", "-f", "sharpen", "-o", out).exit_code == 0
    (out / "notes.txt").write_text("mine")
    result = run(digits[0], "--format", "zarr", "-f", "edge-h", "--index", "0:5", "-o", out, "--force")
    assert result.exit_code == 0, result.output
    z = zarr.open_array(str(out / "maps.zarr"), mode="r")
    assert z.shape == (5, 1, 26, 26) and [f["name"] for f in z.attrs["filters"]] == ["edge-h"]
    np.testing.assert_allclose(z[:], correlate(digits[1][:5], ["edge-h"])[:, :, 1:-1, 1:-1], rtol=1e-6, atol=1e-3)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "maps.zarr", "notes.txt"]


def test_size_makes_pictures_of_different_sizes_one_array(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(png_bytes(np.full((10, 12), 50, np.uint8)))
    b.write_bytes(png_bytes(np.full((30, 20), 200, np.uint8)))
    result = run(a, b, "--format", "npy", "-f", "box", "--size", "8", "--padding", "same", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    A = np.load(tmp_path / "out" / "maps.npy")
    assert A.shape == (2, 1, 8, 8)
    np.testing.assert_allclose(A[:, 0, 3, 3], [450, 1800], rtol=1e-6)  # flat pictures: 9 × the grey level
