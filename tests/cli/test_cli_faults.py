"""``convolve`` and ``filters render`` under faults and hostile input (issue 13), one test per finding.

Nothing the user had is lost, every failure is one ``Error:`` line, and signals stop the run cleanly.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from click.testing import CliRunner
from helpers_images import idx_bytes, png_bytes

from convcli.cli import cli
from convcli.io import files as io_files
from convcli.io.pictures import MAX_PIXELS
from convcli.maps.batch import PARALLEL_MIN_MAPS
from convcli.maps.folder import locked_folder
from convcli.maps.sheet import SHEET_MAX_PIXELS

CONVCLI = [sys.executable, "-c", "from convcli.cli import main; main()"]
#: Items of a one-filter render large enough to be written by writer threads.
WRITER_JOB = PARALLEL_MIN_MAPS + 9000


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [*map(str, args)], input=input, catch_exceptions=False)


def error_line(result, code=2) -> str:
    """The one stderr line of a refused run (exit ``code``), without its ``Error: `` prefix."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    return lines[0][len("Error: "):]


def digits(tmp_path, count=6, name="digits.idx"):
    images = np.random.default_rng(1).integers(0, 256, (count, 28, 28)).astype(np.uint8)
    path = tmp_path / name
    path.write_bytes(idx_bytes(images, "u1"))
    return path


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- data loss


def test_a_second_render_into_a_folder_being_written_fails_at_once(tmp_path):
    out = tmp_path / "out"
    with locked_folder(out):  # what a running render holds
        result = invoke("filters", "render", digits(tmp_path), "-f", "box", "-o", out)
        assert error_line(result) == (f"output folder '{out}' is being written by another convcli render; wait for "
                                      "it to end or choose another folder with -o")
    assert list(out.iterdir()) == []


def test_two_real_renders_into_one_empty_folder_never_mix(tmp_path):
    source, out = digits(tmp_path, count=300), tmp_path / "out"
    runs = [subprocess.Popen(CONVCLI + ["filters", "render", str(source), "-f", name, "-o", str(out), "-q"],
                             stderr=subprocess.PIPE, text=True) for name in ("box", "edge-h")]
    codes = [(run.wait(), run.stderr.read()) for run in runs]
    # overlapping, the second is refused; one after the other (a fast machine), the second replaces the first's render
    assert sorted(code for code, _ in codes) in ([0, 2], [0, 0]), codes
    manifest = json.loads((out / "manifest.json").read_text())
    assert {f"{folder}/{name}" for folder in os.listdir(out) if folder.startswith("digits")
            for name in os.listdir(out / folder)} == {entry["file"] for entry in manifest["files"]}
    filters = {entry["filter"] for entry in manifest["files"]}
    assert len(filters) == 1  # one render's maps, never a mix
    if sorted(code for code, _ in codes) == [0, 2]:
        assert filters == {["box", "edge-h"][[code for code, _ in codes].index(0)]}


def test_a_staging_folder_left_by_a_killed_render_does_not_block_the_next_run(tmp_path):
    """SIGKILL cannot be caught: the image folder being staged stays behind, hidden; the next run removes it."""
    source, out = digits(tmp_path), tmp_path / "out"
    assert invoke("filters", "render", source, "-f", "box", "-o", out, "-q").exit_code == 0
    left = out / ".digits-3.0123abcd.tmp"
    left.mkdir()
    (left / "box.png").write_bytes(b"half a picture")
    (out / ".notes.tmp").write_text("mine")  # not a staging name: the user's
    result = invoke("filters", "render", source, "-f", "box", "-o", out, "-q")
    assert error_line(result).startswith(f"output folder '{out}' holds files that are not an earlier convcli render")
    (out / ".notes.tmp").unlink()
    assert invoke("filters", "render", source, "-f", "box", "-o", out, "-q").exit_code == 0
    assert not left.exists()


def test_interrupted_force_render_leaves_no_stale_manifest(tmp_path, monkeypatch):
    source, out = digits(tmp_path), tmp_path / "out"
    assert invoke("filters", "render", source, "-f", "box", "--normalize", "abs", "-o", out, "-q").exit_code == 0
    assert (out / "manifest.json").exists() and (out / "sheet.png").exists()

    def interrupt(self, folders, maps):
        raise KeyboardInterrupt

    monkeypatch.setattr("convcli.maps.writer.MapWriter.write", interrupt)
    result = invoke("filters", "render", source, "-f", "box", "--normalize", "minmax", "-o", out, "--force", "-q")
    assert error_line(result, 130) == (f"interrupted; '{out}' holds the maps written so far, without manifest.json "
                                       "or sheet.png (run again with --force to redo them)")
    assert not (out / "manifest.json").exists() and not (out / "sheet.png").exists()


def test_force_never_follows_a_symlinked_stem_folder(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (outside / "box.png").write_bytes(b"mine")
    out.mkdir()
    (out / "digits-0").symlink_to(outside)
    result = invoke("filters", "render", digits(tmp_path), "-f", "box", "-o", out, "--force")
    assert error_line(result) == (f"cannot write into '{out / 'digits-0'}': it is a symbolic link; convcli writes "
                                  f"only inside '{out}' (remove the link)")
    assert tree(outside) == {"box.png": b"mine"}


def test_a_link_made_inside_the_folder_during_the_run_is_not_followed(tmp_path):
    from convcli.errors import OutputError
    from convcli.maps.folder import make_subfolder

    (tmp_path / "outside").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(OutputError, match="it is a symbolic link"):
        make_subfolder(tmp_path, "link")


def test_dangling_symlink_as_output_is_not_replaced_without_force(tmp_path):
    link = tmp_path / "map.png"
    link.symlink_to(tmp_path / "nowhere.png")
    result = invoke("convolve", "-k", "box", "-o", link)
    assert error_line(result) == f"output '{link}' is a symbolic link; use --force to replace the link (not its target)"
    assert link.is_symlink()
    assert invoke("convolve", "-k", "box", "-o", link, "--force", "-q").exit_code == 0
    assert not link.is_symlink() and link.read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "nowhere.png").exists()
    folder_link = tmp_path / "out"
    folder_link.symlink_to(tmp_path / "missing")
    result = invoke("filters", "render", digits(tmp_path), "-f", "box", "-o", folder_link)
    assert error_line(result) == (f"output folder '{folder_link}' is a dangling symbolic link; remove it or choose "
                                  "another -o")


@pytest.mark.parametrize("name, folder", [
    ("manifest.json.png", "manifest.json-2"),
    ("sheet.png.png", "sheet.png-2"),
    ("a\nb.png", "a_b"),
    ("s" * 250 + ".png", "s" * 200),
])
def test_awkward_input_names_get_safe_folders_and_the_run_completes(tmp_path, name, folder):
    source = tmp_path / name
    source.write_bytes(png_bytes(np.arange(100, dtype=np.uint8).reshape(10, 10)))
    out = tmp_path / "out"
    result = invoke("filters", "render", source, "-f", "box", "-o", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(out)) == sorted([folder, "manifest.json", "sheet.png"])
    assert [e["file"] for e in json.loads((out / "manifest.json").read_text())["files"]] == [f"{folder}/box.png"]


@pytest.mark.parametrize("name", ["sheet.png", "manifest.json", "digits-0/box.png"])
def test_an_input_this_run_would_replace_is_refused(tmp_path, name):
    out = tmp_path / "out"
    assert invoke("filters", "render", digits(tmp_path), "-f", "box", "-o", out, "-q").exit_code == 0
    source = out / name
    if name == "manifest.json":  # only pictures and arrays are inputs: make it one
        source.write_bytes(png_bytes(np.zeros((8, 8), np.uint8)))
    before = tree(out)
    result = invoke("filters", "render", source, tmp_path / "digits.idx", "-f", "box", "-o", out, "--force")
    assert error_line(result) == (f"input '{source}' is a file this run would replace in '{out}'; copy it elsewhere "
                                  "first or choose another folder with -o")
    assert tree(out) == before


class FullDisk:
    """``open`` for convcli.io.files whose files refuse writes after ``allowed`` files (ENOSPC)."""

    def __init__(self, allowed: int, error=errno.ENOSPC) -> None:
        self.allowed, self.error = allowed, error

    def __call__(self, path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)
        self.allowed -= 1
        if self.allowed >= 0:
            return handle
        error = self.error

        class Refusing:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                handle.close()

            def write(self, data):
                raise OSError(error, os.strerror(error), str(path))

        return Refusing()


class FullDiskWrites:
    """``os`` for convcli.maps.staging (new folders are staged) whose files refuse writes after ``allowed`` files."""

    def __init__(self, allowed: int, error=errno.ENOSPC) -> None:
        self.allowed, self.error = allowed, error

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        self.allowed -= 1
        if self.allowed >= 0:
            return os.write(fd, data)
        raise OSError(self.error, os.strerror(self.error))


def test_full_disk_names_the_file_and_says_what_is_left(tmp_path, monkeypatch):
    from convcli.maps import staging

    out = tmp_path / "out"
    monkeypatch.setattr(io_files, "open", FullDisk(allowed=3), raising=False)
    monkeypatch.setattr(staging, "os", FullDiskWrites(allowed=3))
    result = invoke("filters", "render", digits(tmp_path), "-f", "box", "-o", out, "-q")
    assert error_line(result) == (f"cannot write '{out / 'digits-3' / 'box.png'}': No space left on device; '{out}' "
                                  "holds the maps written so far, without manifest.json or sheet.png")
    assert not list(out.rglob("*.tmp"))


def test_read_only_folder_error_names_the_users_file(tmp_path, monkeypatch):
    monkeypatch.setattr(io_files, "open", FullDisk(allowed=0, error=errno.EACCES), raising=False)
    target = tmp_path / "a.png"
    result = invoke("convolve", "-k", "box", "-o", target)
    assert error_line(result) == f"cannot write '{target}': Permission denied"
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- signals


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def whole_folders(out: Path) -> None:
    """Every visible image folder holds its one map, complete (Pillow decodes it)."""
    for folder in out.iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            assert [p.name for p in folder.iterdir()] == ["box.png"]
            Image.open(folder / "box.png").load()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [None, signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_render_leaves_no_process_after_an_exit_or_a_stop_signal(tmp_path, signum):
    """Writer threads, no helper process: none during the run, none after a normal exit or a signal."""
    source, out = digits(tmp_path, count=WRITER_JOB), tmp_path / "out"
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    run = subprocess.Popen(CONVCLI + ["filters", "render", str(source), "-f", "box", "-o", str(out), "-q"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*/box.png"))) < 50 and run.poll() is None:
        time.sleep(0.05)
    assert children_of(run.pid) == []
    if signum is not None:
        os.killpg(run.pid, signum)  # the whole group, as a terminal or a service manager does
    stdout, stderr = run.communicate(timeout=60)
    with pytest.raises(ProcessLookupError):
        os.killpg(run.pid, 0)  # nothing of the group is left
    assert not list(out.rglob("*.tmp")) and os.listdir(tmp_path / "tmp") == []
    whole_folders(out)
    if signum is None:
        assert (run.returncode, stderr) == (0, "") and (out / "manifest.json").exists()
        return
    assert run.returncode == 128 + signum
    name = "interrupted" if signum == signal.SIGINT else f"terminated by {signal.Signals(signum).name}"
    assert stderr.splitlines() == [f"Error: {name}; '{out}' holds the maps written so far, without "
                                   "manifest.json or sheet.png (run again with --force to redo them)"]
    assert not (out / "manifest.json").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_render_leaves_only_whole_folders(tmp_path):
    source, out = digits(tmp_path, count=WRITER_JOB), tmp_path / "out"
    run = subprocess.Popen(CONVCLI + ["filters", "render", str(source), "-f", "box", "-o", str(out), "-q"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*/box.png"))) < 50:
        time.sleep(0.05)
    run.kill()
    run.wait()
    count = len(list(out.rglob("*.png")))
    time.sleep(0.5)
    assert len(list(out.rglob("*.png"))) == count  # nothing goes on writing
    whole_folders(out)  # at most a hidden staging folder (.digits-N.xxxx.tmp) of the image being written


@pytest.mark.parametrize("command", [["convolve", "-k", "box"], ["gradcheck"]])
def test_ctrl_c_exits_130_with_one_line(monkeypatch, command):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("convcli.io.images.open_source", interrupt)
    monkeypatch.setattr("convcli.cli.gradcheck._run", interrupt)
    result = CliRunner().invoke(cli, command)
    assert error_line(result, 130) == "interrupted"


# ----------------------------------------------------------------------------- sizes, outputs, values


def test_padding_is_limited_like_size(tmp_path):
    result = invoke("convolve", "-k", "box", "--padding", "15000", "-o", tmp_path / "m.png")
    image = "the image '" + str(Path(__file__).parents[2] / "convcli" / "sample_images" /
                                "fashion-mnist-0-ankle-boot.png") + "'"
    assert error_line(result) == (f"padding 15000 would make {image} 30028x30028 = 901,680,784 pixels, more than "
                                  f"the limit of {MAX_PIXELS:,}; use a smaller padding")
    source = digits(tmp_path)
    result = invoke("filters", "render", source, "-f", "box", "--padding", "20000", "-o", tmp_path / "out")
    assert error_line(result) == (f"padding 20000 would make input '{source}' 40028x40028 = 1,602,240,784 pixels, "
                                  f"more than the limit of {MAX_PIXELS:,}; use a smaller padding")
    result = invoke("convolve", "-k", "box", "--padding", "1e21")
    assert error_line(result) == ("Invalid value for '--padding': expected valid, same, full or a whole number >= 0, "
                                  "got '1e21'")
    assert os.listdir(tmp_path) == [source.name]


def run_stdout(args, stdout, **kwargs):
    return subprocess.run(CONVCLI + args, stdout=stdout, stderr=subprocess.PIPE, text=True, **kwargs)


def test_png_to_a_closed_full_or_broken_stdout():
    closed = subprocess.run(" ".join(CONVCLI[:2]) + " 'from convcli.cli import main; main()' convolve -k box -o - >&-",
                            shell=True, stderr=subprocess.PIPE, text=True)
    assert (closed.returncode, closed.stderr) == (
        2, "Error: -o - writes PNG bytes to stdout, which is closed; redirect it (> map.png)\n")
    with open("/dev/full", "wb") as full:
        result = run_stdout(["convolve", "-k", "box", "--size", "512", "-o", "-"], full)
    assert (result.returncode, result.stderr) == (2, "Error: cannot write the PNG to stdout: No space left on device\n")
    reader, writer = os.pipe()
    os.close(reader)
    with os.fdopen(writer, "wb") as pipe:
        result = run_stdout(["convolve", "-k", "box", "--size", "512", "-o", "-"], pipe)
    assert (result.returncode, result.stderr) == (
        2, "Error: cannot write the PNG to stdout: the program reading it has exited (broken pipe)\n")


@pytest.mark.parametrize("output", ["map.tif", "map.png", "map.npy", None])
def test_overflow_is_an_error_naming_input_and_kernel(tmp_path, output):
    source = tmp_path / "big.npy"
    np.save(source, np.full((8, 8), 1e308))
    args = ["convolve", source, "-k", "box"] + (["-o", tmp_path / output] if output else [])
    with _no_warnings():
        result = invoke(*args)
    assert error_line(result) == (f"the map of '{source}' with kernel 'box' overflows float64 (first at row 0, "
                                  "column 0): values times weights pass ±1.8e308; scale the image or the kernel down")
    assert os.listdir(tmp_path) == ["big.npy"]


def test_overflow_in_render_names_the_item_and_filter(tmp_path):
    source = tmp_path / "big.npy"
    stack = np.ones((3, 8, 8))
    stack[2] = 1e308
    np.save(source, stack)
    with _no_warnings():
        result = invoke("filters", "render", source, "-f", "blur", "-f", "box", "-o", tmp_path / "out")
    assert error_line(result).startswith(f"the map of '{source}' [2] with kernel 'box' overflows float64 (first at "
                                         "row 0, column 0)")
    assert not (tmp_path / "out" / "manifest.json").exists()


class _no_warnings:
    """No RuntimeWarning (numpy's overflow warnings show internal paths)."""

    def __enter__(self):
        import warnings

        self._context = warnings.catch_warnings()
        self._context.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._context.__exit__(*exc)


def test_hostile_kernels_through_the_cli(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert error_line(invoke("convolve", "-k", deep)).endswith("is nested too deeply; expected a list of rows like "
                                                               "[[1, 0, -1], [2, 0, -2]]")
    big = tmp_path / "big.npy"
    with open(big, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f8", "fortran_order": False, "shape": (3000, 3000)})
        handle.truncate(handle.tell() + 8 * 3000 * 3000)
    assert error_line(invoke("convolve", "-k", big)).startswith(f"kernel '{big}' (3000x3000) is larger than the image")
    assert error_line(invoke("filters", "render", digits(tmp_path), "-k", big, "-o", tmp_path / "o")).startswith(
        f"kernel '{big}' (3000x3000) is larger than the image '{tmp_path / 'digits.idx'}' (28x28)")


def test_finite_maps_near_the_float_limit_render_without_warnings(tmp_path):
    source = tmp_path / "edges.npy"
    values = np.zeros((8, 8))
    values[0, 0], values[7, 7] = -1e308, 1e308  # max - min overflows
    np.save(source, values)
    with _no_warnings():
        result = invoke("filters", "render", source, "-f", "identity", "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / "sheet.png").exists()


def test_a_failed_write_on_a_writer_thread_is_one_error_line(tmp_path, monkeypatch):
    from convcli.errors import OutputError
    from convcli.maps import writer

    source, out = digits(tmp_path, count=WRITER_JOB), tmp_path / "out"
    real, calls = writer.write_folder, []

    def failing(out_dir, folder, *args, **kwargs):
        calls.append(folder)
        if len(calls) == 100:
            raise OutputError(f"cannot write '{out_dir / folder / 'box.png'}': No space left on device")
        return real(out_dir, folder, *args, **kwargs)

    monkeypatch.setattr(writer, "write_folder", failing)
    result = invoke("filters", "render", source, "-f", "box", "-o", out, "-q")
    assert threading.current_thread().name == "MainThread" and len(calls) > 1
    line = error_line(result, 2)
    assert line.startswith(f"cannot write '{out / 'digits-'}") and line.endswith(
        f"No space left on device; '{out}' holds the maps written so far, without manifest.json or sheet.png")
    assert not list(out.rglob("*.tmp")) and not (out / "manifest.json").exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("convcli-writer")]


@pytest.mark.parametrize("args, label", [("convolve - -k box", "IMAGE"), ("filters render - -f box -o x", "INPUT")])
def test_closed_stdin_as_input(tmp_path, args, label):
    result = subprocess.run(f"{sys.executable} -c 'from convcli.cli import main; main()' {args} <&-", shell=True,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        2, f"Error: {label} '-' reads image bytes from stdin, which is closed; pipe a file in\n")
    assert os.listdir(tmp_path) == []


def test_huge_index_is_out_of_range_not_an_overflow(tmp_path):
    source = digits(tmp_path)
    assert error_line(invoke("convolve", source, "-k", "box", "--index", str(10**30))) == (
        f"index {10**30} is out of range: '{source}' holds 6 images (valid: 0..5)")


def test_nohup_keeps_sighup_ignored():
    from convcli.cli import common

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with common.stop_signals_as_interrupts():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is common._raise_terminated
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_the_sheet_of_many_filters_stays_a_picture_viewers_open(tmp_path):
    from convcli.errors import ParameterError
    from convcli.io.library import Filter
    from convcli.maps.batch import plan_render, run_render

    source = digits(tmp_path, count=64)
    bank = [Filter(f"k{i}", np.array([[i, 1.0], [1.0, 1.0]]), "") for i in range(300)]
    plan = plan_render([source], bank, tmp_path / "out")
    assert 1 <= plan.sheet_rows < 64
    result = run_render(plan, workers=0)
    from PIL import Image

    with Image.open(result.sheet) as sheet:
        assert sheet.width * sheet.height <= SHEET_MAX_PIXELS
    with pytest.raises(ParameterError, match="a contact sheet of 3,000 filters would pass the limit of 50,000,000 "
                                             "pixels in one row; use --no-sheet or fewer filters"):
        plan_render([source], [Filter(f"k{i}", np.ones((2, 2)) * i, "") for i in range(3000)], tmp_path / "out2")
    assert plan_render([source], bank[:25], tmp_path / "out3").sheet_rows == 64
