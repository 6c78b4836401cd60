"""The batch renderer (convcli.maps.batch): layout, manifest, values read back against scipy, refusals."""

import json
import os
import threading
import weakref

import numpy as np
import pytest
from helpers_images import idx_bytes, png_bytes
from PIL import Image
from scipy import signal

from convcli.errors import ImageFormatError, KernelError, OutputError, ParameterError, ShapeError
from convcli.io.images import open_source, sample_paths
from convcli.io.library import FILTERS, Filter, get_filter
from convcli.maps import batch
from convcli.maps import folder as mapfolder
from convcli.maps import writer as mapwriter
from convcli.maps.batch import chunk_size, plan_render, run_render
from convcli.maps.sheet import SHEET_MAX_ROWS

RNG = np.random.default_rng(5)
LAB = [get_filter(n) for n in ("edge-h", "box", "sharpen")]


def strokes(count, h=28, w=28, seed=0):
    """``count`` uint8 images with bright blobs on black (MNIST-like), each different."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    out = np.zeros((count, h, w))
    for n in range(count):
        for _ in range(2):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 6)
            out[n] = np.maximum(out[n], 255 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / r**2))
    return np.rint(out).astype(np.uint8)


def write_idx(tmp_path, images, name="digits.idx"):
    path = tmp_path / name
    path.write_bytes(idx_bytes(images, "u1"))
    return path


def render(sources, filters, out, **options):
    workers = options.pop("workers", 0)
    budget = options.pop("budget", batch.CHUNK_BYTES)
    plan = plan_render(sources, filters, out, budget=budget, **options)
    return plan, run_render(plan, workers=workers, budget=budget)


def manifest(out):
    return json.loads((out / "manifest.json").read_text())


def png(path):
    return np.asarray(Image.open(path))


def minmax(A):
    """The minmax formula in float64."""
    return np.rint(255 * (A - A.min()) / (A.max() - A.min()))


# ----------------------------------------------------------------------------- a few hundred IDX items


def test_three_hundred_idx_items_read_back_against_scipy(tmp_path):
    images = strokes(300)
    source = write_idx(tmp_path, images)
    out = tmp_path / "out"
    calls = []
    real = batch.conv_forward

    def spy(X, w, **kw):
        calls.append((X.shape, w.shape))
        return real(X, w, **kw)

    budget = 40 * 8 * (28 * 28 + 3 * 26 * 26)  # 40 images a chunk: 8 chunks
    batch.conv_forward = spy
    try:
        plan, result = render([source], LAB, out, budget=budget, workers=2)
    finally:
        batch.conv_forward = real

    # one call per chunk, each with the whole bank; never more than a chunk of images at once
    assert [c[1] for c in calls] == [(3, 3, 3)] * 8
    assert [c[0][0] for c in calls] == [40] * 7 + [20]
    assert (result.images, result.maps) == (300, 900)

    entries = manifest(out)["files"]
    assert len(entries) == 900
    assert sorted(os.listdir(out)) == sorted([f"digits-{i}" for i in range(300)] + ["manifest.json", "sheet.png"])
    for entry in entries[::7]:  # every 7th map: all filters and chunks are met
        i, f = entry["index"], get_filter(entry["filter"])
        assert entry["input"] == str(source)
        assert entry["file"] == f"digits-{i}/{f.name}.png"
        A = signal.correlate2d(images[i].astype(float), f.kernel, mode="valid")
        assert entry["min"] == pytest.approx(A.min(), abs=1e-9) and entry["max"] == pytest.approx(A.max(), abs=1e-9)
        levels = png(out / entry["file"])
        assert levels.shape == (26, 26) and levels.dtype == np.uint8
        # the PNG is minmax of scipy's map (to_uint8 rounds in float32: one level at most)
        assert np.abs(levels.astype(int) - minmax(A)).max() <= 1
        # and the manifest's min and max turn the PNG back into the map, to half a level
        back = entry["min"] + levels / 255 * (entry["max"] - entry["min"])
        assert np.abs(back - A).max() <= 0.51 * (A.max() - A.min()) / 255


def test_chunk_size_bounds_the_maps_of_a_chunk():
    plan = plan_render([sample_paths()[0]], list(FILTERS.values()), "unused-out")
    job = plan.jobs[0]
    n = chunk_size(job, 32 * 2**20)
    per_image = 8 * (28 * 28 + sum(h * w for h, w in job.map_shape))
    assert n * per_image <= 32 * 2**20 < (n + 1) * per_image
    assert chunk_size(job, 1) == 1


def test_sixty_thousand_items_are_never_all_in_memory(tmp_path, monkeypatch):
    """Rendering a whole MNIST training file: at most two chunks of maps exist at any time."""
    source = write_idx(tmp_path, np.zeros((60000, 28, 28), np.uint8), "train.idx")
    plan = plan_render([source], LAB[:2], tmp_path / "out", sheet=False)
    assert plan.total == 60000
    n = chunk_size(plan.jobs[0], batch.CHUNK_BYTES)
    assert n < 60000 and n * 8 * (28 * 28 + 2 * 26 * 26) <= batch.CHUNK_BYTES
    # Every map stack made is watched through a weak reference; the PNG writer is
    # replaced by a no-op, as this test is about what run_render holds, not about disk speed.
    made, peak = [], [0]
    real = batch.to_uint8_each

    def watched(A, mode):
        out = real(A, mode)
        made.append(weakref.ref(out))
        peak[0] = max(peak[0], sum(ref() is not None for ref in made))
        return out

    monkeypatch.setattr(mapwriter, "write_images", lambda *args, **kwargs: None)
    monkeypatch.setattr(batch, "to_uint8_each", watched)
    result = run_render(plan, workers=0)
    assert result.images == 60000 and len(made) == 2 * -(-60000 // n)
    assert peak[0] <= 2 * 2 + 1  # the previous chunk's two maps, this chunk's two, one being made


# ----------------------------------------------------------------------------- layout, manifest, sheet


def test_plain_images_mixed_kernel_sizes_and_padding(tmp_path):
    a = RNG.integers(0, 256, (20, 17)).astype(np.uint8)
    (tmp_path / "a.png").write_bytes(png_bytes(a))
    k2 = Filter("roberts-x", np.array([[1.0, 0], [0, -1]]), "")
    k5 = get_filter("gaussian-5")
    out = tmp_path / "out"
    render([tmp_path / "a.png"], [LAB[0], k5, k2], out, padding="same", border="reflect")
    entries = manifest(out)["files"]
    assert [(e["input"], e["index"], e["filter"], e["file"]) for e in entries] == [
        (str(tmp_path / "a.png"), None, "edge-h", "a/edge-h.png"),
        (str(tmp_path / "a.png"), None, "gaussian-5", "a/gaussian-5.png"),
        (str(tmp_path / "a.png"), None, "roberts-x", "a/roberts-x.png"),
    ]
    for entry, f in zip(entries, [LAB[0], k5, k2]):
        fh, fw = f.kernel.shape
        pads = (((fh - 1) // 2, fh - 1 - (fh - 1) // 2), ((fw - 1) // 2, fw - 1 - (fw - 1) // 2))
        A = signal.correlate2d(np.pad(a.astype(float), pads, mode="reflect"), f.kernel, mode="valid")
        assert A.shape == a.shape
        assert np.abs(png(out / entry["file"]).astype(int) - minmax(A)).max() <= 1
        assert (entry["min"], entry["max"]) == pytest.approx((A.min(), A.max()))
    head = manifest(out)
    assert (head["padding"], head["border"], head["normalize"], head["size"]) == ("same", "reflect", "minmax", None)


def test_a_picture_too_large_for_the_budget_gets_its_bank_split(tmp_path, monkeypatch):
    """Large photos: each conv_forward call's float64 maps stay within the budget; the files are the same."""
    picture = RNG.integers(0, 256, (60, 50)).astype(np.uint8)
    (tmp_path / "big.png").write_bytes(png_bytes(picture))
    filters = LAB + [get_filter("gaussian-5")]
    render([tmp_path / "big.png"], filters, tmp_path / "whole")
    calls = []
    real = batch.conv_forward

    def spy(X, w, **kw):
        calls.append(w.shape)
        return real(X, w, **kw)

    monkeypatch.setattr(batch, "conv_forward", spy)
    render([tmp_path / "big.png"], filters, tmp_path / "split", budget=2 * 8 * 58 * 48)  # two 58x48 maps a call
    assert calls == [(2, 3, 3), (1, 3, 3), (1, 5, 5)]
    for entry in manifest(tmp_path / "whole")["files"]:
        assert (tmp_path / "whole" / entry["file"]).read_bytes() == (tmp_path / "split" / entry["file"]).read_bytes()
    assert manifest(tmp_path / "whole")["files"] == manifest(tmp_path / "split")["files"]


def test_sheet_rows_of_large_pictures_are_kept_small():
    image = RNG.integers(0, 256, (900, 1200)).astype(np.uint8)
    maps = [image[:898, :1198], image[:896, :1196]]
    label, small, small_maps = batch._sheet_row("photo", image, maps)
    assert small.shape == (288, 384) and [m.shape for m in small_maps] == [(287, 383), (287, 383)]
    assert abs(int(small.mean()) - int(image.mean())) <= 1  # an average, not a sample
    label, same, same_maps = batch._sheet_row("digit", image[:28, :28], [image[:26, :26]])
    assert np.array_equal(same, image[:28, :28]) and not np.shares_memory(same, image)


def test_index_ranges_lists_and_size(tmp_path):
    images = strokes(30, 12, 10)
    source = write_idx(tmp_path, images, "small.idx")
    out = tmp_path / "out"
    render([source], LAB[:1], out, index="3:6,10,29", size=48, normalize="abs")
    entries = manifest(out)["files"]
    assert [e["index"] for e in entries] == [3, 4, 5, 10, 29]
    assert sorted(os.listdir(out)) == [
        "manifest.json",
        "sheet.png",
        "small-10",
        "small-29",
        "small-3",
        "small-4",
        "small-5",
    ]
    A = signal.correlate2d(images[29].astype(float), LAB[0].kernel, mode="valid")  # 10x8
    levels = png(out / "small-29" / "edge-h.png")
    assert levels.shape == (48, 38)  # longer side 48, aspect kept
    expected = np.rint(255 * np.abs(A) / np.abs(A).max())
    rows, cols = (np.arange(48) * 10) // 48, (np.arange(38) * 8) // 38
    assert np.abs(levels.astype(int) - expected[rows[:, None], cols[None, :]]).max() <= 1


def test_sheet_size_and_the_64_row_limit(tmp_path):
    source = write_idx(tmp_path, strokes(70))
    out = tmp_path / "out"
    plan, result = render([source], LAB, out)
    sheet = png(out / "sheet.png")
    side, gap, margin, line = 112, 6, 10, 22
    assert sheet.shape[1] == 2 * margin + 4 * side + 3 * gap
    rows = SHEET_MAX_ROWS
    # title, column labels, 64 rows of picture + one caption line, the note
    assert sheet.shape[0] == 2 * margin + line + line + rows * (side + 4 + 16) + (rows - 1) * gap + line
    small = tmp_path / "few"
    render([source], LAB, small, index="0:3")
    assert png(small / "sheet.png").shape[0] == 2 * margin + 2 * line + 3 * (side + 20) + 2 * gap  # no note
    assert result.sheet == out / "sheet.png"


def test_no_sheet(tmp_path):
    out = tmp_path / "out"
    _, result = render([write_idx(tmp_path, strokes(2))], LAB, out, sheet=False)
    assert result.sheet is None and not (out / "sheet.png").exists()


def test_same_stems_and_same_filter_names_get_distinct_names(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "pic.png").write_bytes(png_bytes(strokes(1, 8, 8)[0]))
    one = Filter("inline", np.eye(3), "inline matrix")
    two = Filter("inline", np.ones((3, 3)), "inline matrix")
    out = tmp_path / "out"
    render([tmp_path / "x" / "pic.png", tmp_path / "y" / "pic.png"], [one, two, one, LAB[1], LAB[1]], out)
    files = [e["file"] for e in manifest(out)["files"]]
    assert files == [
        "pic/inline.png",
        "pic/inline-2.png",
        "pic/box.png",
        "pic-2/inline.png",
        "pic-2/inline-2.png",
        "pic-2/box.png",
    ]


def test_progress_counts_every_image_once(tmp_path):
    seen = []
    plan = plan_render([write_idx(tmp_path, strokes(25))], LAB, tmp_path / "out", budget=10 * 8 * 3000)
    run_render(plan, progress=seen.append, workers=2, budget=10 * 8 * 3000)
    assert sum(seen) == 25 and all(n > 0 for n in seen)


def test_worker_processes_and_inline_writing_give_the_same_bytes(tmp_path):
    source = write_idx(tmp_path, strokes(12))
    render([source], LAB, tmp_path / "a", workers=0)
    render([source], LAB, tmp_path / "b", workers=3, budget=4 * 8 * 3000)
    for entry in manifest(tmp_path / "a")["files"]:
        assert (tmp_path / "a" / entry["file"]).read_bytes() == (tmp_path / "b" / entry["file"]).read_bytes()


def test_sample_inputs_show_every_bundled_picture_once():
    """The default inputs hold every bundled sample; a sample PNG left out is an item of the IDX subset."""
    defaults = batch.sample_inputs()
    assert set(defaults) <= set(sample_paths())
    items = [image for path in defaults for image in open_source(path).read()]
    assert len(items) == 17
    assert not any(np.array_equal(a, b) for i, a in enumerate(items) for b in items[i + 1 :] if a.shape == b.shape)
    for path in set(sample_paths()) - set(defaults):
        picture = open_source(path).read()[0]
        assert any(picture.shape == item.shape and np.array_equal(picture, item) for item in items), path


def test_interrupted_writer_threads_stop_after_their_current_image(tmp_path):
    """An exception in the ``with`` block (Ctrl-C, a failed chunk) stops the threads; no temporary files stay."""
    count = 20000  # far more 1x1 PNGs than a thread can write before the caller stops it
    levels = np.zeros((count, 1, 1), np.uint8)
    folders = [f"i{n}" for n in range(count)]
    with pytest.raises(KeyboardInterrupt):
        with mapwriter.MapWriter(tmp_path, ["m.png"], workers=1) as writer:
            writer.write(folders, [levels])
            raise KeyboardInterrupt
    assert not [t for t in threading.enumerate() if t.name.startswith("convcli-writer")]  # waited for
    written = list(tmp_path.rglob("*.png"))
    assert len(written) < count
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_stopped_writer_writes_nothing_more(tmp_path):
    stop = threading.Event()
    stop.set()
    mapwriter.write_images(tmp_path, ["m.png"], None, False, ["a", "b"], [np.zeros((2, 3, 3), np.uint8)], stop=stop)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- refusals and --force


def test_non_empty_folder_is_refused_and_force_replaces_only_our_files(tmp_path):
    source = write_idx(tmp_path, strokes(3))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"output folder '.*out' holds files that are not an earlier convcli render \(not all listed in its "
                       r"manifest.json\); use --force to replace the files"):
        plan_render([source], LAB, out)
    assert os.listdir(out) == ["notes.txt"]

    (out / "digits-0").mkdir()
    (out / "digits-0" / "edge-h.png").write_bytes(b"old")
    (out / "digits-0" / "laplacian.png").write_bytes(b"stale, from another run")
    render([source], LAB, out, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "digits-0" / "laplacian.png").read_bytes() == b"stale, from another run"
    assert png(out / "digits-0" / "edge-h.png").shape == (26, 26)
    assert len(manifest(out)["files"]) == 9
    assert not [p for p in out.rglob("*.tmp")]


def test_with_force_a_file_in_the_way_of_a_folder_is_refused_first(tmp_path):
    source = write_idx(tmp_path, strokes(3))
    out = tmp_path / "out"
    out.mkdir()
    (out / "digits-2").write_text("a file where a folder goes")
    with pytest.raises(OutputError, match=r"cannot write into '.*digits-2': it is a file, not a folder"):
        plan_render([source], LAB, out, force=True)
    (out / "digits-2").unlink()
    (out / "manifest.json").mkdir()
    with pytest.raises(OutputError, match=r"output '.*manifest.json' is a folder"):
        plan_render([source], LAB, out, force=True)
    assert os.listdir(out) == ["manifest.json"]


def test_names_are_safe_path_components():
    assert [mapfolder.safe_name(n) for n in ("a/b", "..", "", " x ", "c\\d")] == [
        "a_b",
        "unnamed",
        "unnamed",
        "x",
        "c_d",
    ]
    used = set()
    assert [mapfolder.unused_name("k", used) for _ in range(3)] == ["k", "k-2", "k-3"]


def test_bad_inputs_and_filters_are_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    good = write_idx(tmp_path, strokes(5))
    with pytest.raises(ImageFormatError, match="input file '.*missing.png' not found"):
        plan_render([good, tmp_path / "missing.png"], LAB, out)
    with pytest.raises(ImageFormatError, match="index 7 is out of range for 5 image"):
        plan_render([good], LAB, out, index="7")
    pic = tmp_path / "p.png"
    pic.write_bytes(png_bytes(strokes(1, 4, 4)[0]))
    with pytest.raises(ParameterError, match=r"--index '0' needs an indexed input .* got only plain images"):
        plan_render([pic], LAB, out, index="0")
    with pytest.raises(ShapeError, match=r"filter 'gaussian-5' \(5×5\) is larger than input '.*p.png' \(4×4\)"):
        plan_render([good, pic], [get_filter("gaussian-5")], out)
    with pytest.raises(KernelError, match="filter 'bad' has NaN or infinite values"):
        plan_render([good], [Filter("bad", np.array([[1.0, np.nan]]), "")], out)
    with pytest.raises(ParameterError, match="filters: need at least one filter"):
        plan_render([good], [], out)
    with pytest.raises(ParameterError, match="normalize must be one of"):
        plan_render([good], LAB, out, normalize="log")
    with pytest.raises(ParameterError, match="size 100000 would make a picture of 10,000,000,000 pixels"):
        plan_render([good], LAB, out, size=100000)
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="output folder '.*file' is a file"):
        plan_render([good], LAB, tmp_path / "file")
    with pytest.raises(OutputError, match=f"cannot create output folder '.*sub': '{tmp_path / 'file'}' is a file"):
        plan_render([good], LAB, tmp_path / "file" / "deeper" / "sub")
    # a float IDX file with a NaN in its last item: found while planning, not half-way through writing
    values = strokes(50).astype(np.float32)
    values[49, 3, 4] = np.nan
    nan_file = tmp_path / "nan.idx"
    nan_file.write_bytes(idx_bytes(values, "f4"))
    with pytest.raises(ImageFormatError, match="NaN or infinite pixels"):
        plan_render([good, nan_file], LAB, out, budget=8 * 8 * 3000)
    # a picture whose header is fine but whose data is cut off
    cut = tmp_path / "cut.png"
    cut.write_bytes(png_bytes(RNG.integers(0, 256, (64, 64)).astype(np.uint8))[:200])
    with pytest.raises(ImageFormatError, match="truncated or corrupt"):
        plan_render([good, cut], LAB, out)
    assert not out.exists()


def test_an_earlier_render_is_replaced_without_force(tmp_path):
    source = write_idx(tmp_path, strokes(3))
    out = tmp_path / "out"
    everything = [FILTERS[name] for name in ("edge-h", "box", "laplacian")]
    render([source], everything, out)
    assert sorted(os.listdir(out / "digits-0")) == ["box.png", "edge-h.png", "laplacian.png"]
    # a second run with fewer filters replaces the first: the filters it dropped go too, and the manifest agrees
    render([source], everything[:1], out, index="0:2")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["digits-0/edge-h.png", "digits-1/edge-h.png", "manifest.json", "sheet.png"]
    assert sorted(entry["file"] for entry in manifest(out)["files"]) == files[:2]
    # anything else in the folder (or a manifest that does not list it) still needs --force
    (out / "digits-0" / "mine.png").write_bytes(b"mine")
    with pytest.raises(OutputError, match="holds files that are not an earlier convcli render"):
        plan_render([source], everything, out)
    (out / "digits-0" / "mine.png").unlink()
    (out / "manifest.json").write_text("not json")
    with pytest.raises(OutputError, match="holds files that are not an earlier convcli render"):
        plan_render([source], everything, out)


def test_estimated_bytes_counts_whole_blocks(tmp_path):
    source = write_idx(tmp_path, strokes(3))
    plan = plan_render([source], LAB, tmp_path / "out")
    # 3 items x 3 filters of 26x26 maps: each PNG is under one 4 KiB block
    assert plan.total_maps == 9 and plan.estimated_bytes == 9 * 4096
    big = plan_render([source], LAB, tmp_path / "out", size=512)
    assert big.estimated_bytes == 9 * (-(-int(100 + 0.7 * 512 * 512) // 4096) * 4096)
