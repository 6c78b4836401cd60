"""Array outputs (convcli.maps.arrays, convcli.maps.zarrstore): values against scipy, layout, refusals, resume."""

import json

import numpy as np
import pytest
from helpers_images import idx_bytes, png_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from convcli.errors import OutputError, ParameterError, ShapeError
from convcli.io.library import FILTERS, Filter, get_filter
from convcli.maps import arrays, items
from convcli.maps.arrays import plan_arrays, run_npy

BANK = [get_filter(n) for n in ("edge-h", "box", "sharpen")] + [Filter("even", np.array([[1.0, -2.0], [3.0, 0.5]]), "2×2 test kernel")]


def images(count, h=12, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, h, w)).astype(np.uint8)


def write_idx(folder, array, name="items.idx"):
    path = folder / name
    path.write_bytes(idx_bytes(array, "u1"))
    return path


def reference(X, filters, padding="same"):
    """(N, K, H', W') by scipy.ndimage.correlate, image by image and filter by filter (independent of conv_forward)."""
    out = []
    for x in np.asarray(X, np.float64):
        maps = []
        for f in filters:
            k = np.asarray(f.kernel, np.float64)
            fh, fw = k.shape
            top, left = (fh - 1) // 2, (fw - 1) // 2
            if padding == "same":  # scipy centres the kernel at its middle; ours sits (F-1)//2 from the top-left
                origin = (top - fh // 2, left - fw // 2)
                maps.append(ndimage.correlate(x, k, mode="constant", cval=0.0, origin=origin))
            else:  # valid: the full-overlap part
                full = ndimage.correlate(x, k, mode="constant", origin=(-(fh // 2), -(fw // 2)))
                maps.append(full[: x.shape[0] - fh + 1, : x.shape[1] - fw + 1])
        out.append(maps)
    return np.asarray(out)


def test_reference_agrees_with_a_loop():
    x = images(1, 5, 6)[0].astype(float)
    k = BANK[3].kernel
    loop = np.zeros((5, 6))
    padded = np.pad(x, ((0, 1), (0, 1)))
    for i in range(5):
        for j in range(6):
            loop[i, j] = (padded[i : i + 2, j : j + 2] * k).sum()
    np.testing.assert_allclose(reference(x[None], [BANK[3]])[0, 0], loop, rtol=1e-12)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.integers(1, 30),
    h=st.integers(3, 15),
    w=st.integers(3, 15),
    budget=st.sampled_from([1, 20_000, 10**8]),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_npy_equals_scipy_for_any_chunking(tmp_path_factory, count, h, w, budget, dtype):
    folder = tmp_path_factory.mktemp("npy")
    X = images(count, h, w, seed=count)
    plan = plan_arrays([write_idx(folder, X)], BANK, folder / "out", padding="same", dtype=dtype, budget=budget)
    path = run_npy(plan)
    A = np.load(path, mmap_mode="r")
    assert A.shape == (count, len(BANK), h, w) and A.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(A, reference(X, BANK), rtol=tol, atol=tol * 255 * 9)
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["manifest.json", "maps.npy"]


def test_items_of_several_inputs_follow_each_other_and_the_manifest_says_which(tmp_path):
    X = images(7, 9, 9, seed=1)
    Y = images(3, 9, 9, seed=2).astype(np.float32) / 7
    picture = images(1, 9, 9, seed=3)[0]
    np.save(tmp_path / "y.npy", Y)
    (tmp_path / "p.png").write_bytes(png_bytes(picture))
    sources = [write_idx(tmp_path, X), tmp_path / "y.npy", tmp_path / "p.png"]
    plan = plan_arrays(sources, BANK[:2], tmp_path / "out", format="npy", padding="valid", index="0,2",
                       dtype="float64", budget=3000)
    A = np.load(run_npy(plan))
    items = np.concatenate([X[[0, 2]], Y[[0, 2]], picture[None]]).astype(np.float64)  # --index: every indexed input
    np.testing.assert_allclose(A, reference(items, BANK[:2], padding="valid"), rtol=1e-12, atol=1e-9)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["shape"] == [5, 2, 7, 7] and manifest["dtype"] == "float64" and manifest["complete"] is True
    assert [(i["file"], i["items"], i["indices"]) for i in manifest["inputs"]] == [
        (str(sources[0]), [0, 2], [[0, 1], [2, 3]]),
        (str(sources[1]), [2, 4], [[0, 1], [2, 3]]),
        (str(sources[2]), [4, 5], None),
    ]
    assert [f["name"] for f in manifest["filters"]] == ["edge-h", "box"]
    np.testing.assert_array_equal(manifest["filters"][1]["kernel"], FILTERS["box"].kernel)
    assert manifest["padding"] == "valid" and manifest["axes"] == ["item", "filter", "row", "column"]


def test_items_of_different_sizes_are_refused_naming_the_first_mismatch(tmp_path):
    a = write_idx(tmp_path, images(2, 8, 8), "a.idx")
    b = write_idx(tmp_path, images(2, 8, 8), "b.idx")
    c = write_idx(tmp_path, images(2, 9, 8), "c.idx")
    with pytest.raises(ShapeError) as info:
        plan_arrays([a, b, c], BANK, tmp_path / "out", padding="same")
    assert str(info.value) == (
        f"input '{c}' is 9×8 but '{a}' is 8×8; --format npy puts every item in one array, so they must be one "
        "size (use --size PX to scale and centre-crop every item to PX×PX, or --format png)"
    )
    assert not (tmp_path / "out").exists()


def test_maps_of_different_sizes_are_refused_unless_padding_makes_them_one(tmp_path):
    src = write_idx(tmp_path, images(2))
    with pytest.raises(ShapeError, match=r"filter 'even' \(2×2\) gives 11×9 maps but 'edge-h' \(3×3\) gives 10×8"):
        plan_arrays([src], BANK, tmp_path / "out", padding="valid")
    assert plan_arrays([src], BANK, tmp_path / "out", padding="same").shape == (2, 4, 12, 10)


def test_existing_output_is_refused_without_force_and_replaced_with_it(tmp_path):
    src = write_idx(tmp_path, images(3))
    out = tmp_path / "out"
    run_npy(plan_arrays([src], BANK, out, padding="same"))
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="holds files that are not an earlier convcli render .*; use --force"):
        plan_arrays([src], BANK, out, padding="same")
    run_npy(plan_arrays([src], BANK[:1], out, padding="same", force=True))
    assert np.load(out / "maps.npy").shape == (3, 1, 12, 10)
    assert (out / "notes.txt").read_text() == "mine"


def test_an_interrupted_npy_run_leaves_no_array_and_no_temporary_file(tmp_path):
    src = write_idx(tmp_path, images(40))
    plan = plan_arrays([src], BANK, tmp_path / "out", padding="same", budget=20_000)
    assert len(plan.bounds) > 2
    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_npy(plan, progress=progress)
    assert list((tmp_path / "out").iterdir()) == []


def test_options_that_do_not_apply_are_refused():
    with pytest.raises(ParameterError, match="--resume works with --format zarr"):
        plan_arrays(["x"], BANK, "out", format="npy", resume=True)
    with pytest.raises(ParameterError, match="dtype must be float32 or float64; got 'int8'"):
        plan_arrays(["x"], BANK, "out", dtype="int8")
    with pytest.raises(ParameterError, match="format must be one of npy, zarr; got 'png'"):
        plan_arrays(["x"], BANK, "out", format="png")


def test_readers_pickle_as_file_names_and_reopen_the_files(tmp_path):
    import pickle

    X = images(9, seed=4)
    plan = plan_arrays([write_idx(tmp_path, X)], BANK, tmp_path / "out", padding="same", index="2:9")
    reader = pickle.loads(pickle.dumps(plan.reader().portable()))
    assert reader._sources == [None]
    np.testing.assert_array_equal(reader(1, 4), X[3:6])


MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB on Linux: the render's peak
"""


def test_sixty_thousand_items_render_to_npy_in_bounded_memory(tmp_path):
    import subprocess
    import sys

    X = np.random.default_rng(0).integers(0, 256, (60_000, 28, 28)).astype(np.uint8)
    src = write_idx(tmp_path, X, "train.idx")
    out = tmp_path / "out"
    render = [sys.executable, "-m", "convcli", "filters", "render", str(src), "--format", "npy", "--padding", "same",
              "-f", "edge-h", "-f", "box", "-o", str(out), "-q"]
    # a fresh interpreter runs the render as its only child, so RUSAGE_CHILDREN is that render's peak alone
    done = subprocess.run([sys.executable, "-c", MEASURE, *render], capture_output=True, text=True, check=True)
    peak = int(done.stdout.split()[-1]) * 1024
    A = np.load(out / "maps.npy", mmap_mode="r")
    assert A.shape == (60_000, 2, 28, 28) and A.dtype == np.float32
    whole = A.nbytes  # 376 MB; the float64 maps conv_forward would hold for all of it at once: 753 MB
    assert peak < 200 * 2**20 < whole, f"peak {peak / 2**20:.0f} MiB for a {whole / 2**20:.0f} MiB array"
    rows = [0, 1, 29_999, 45_678, 59_999]
    np.testing.assert_allclose(A[rows], reference(X[rows], [get_filter("edge-h"), get_filter("box")]),
                               rtol=1e-6, atol=1e-3)


def test_a_part_of_a_reader_reads_the_same_items_and_carries_only_its_files(tmp_path):
    X, Y = images(5, seed=5), images(4, seed=6)
    pictures = []
    for n, x in enumerate(images(3, seed=7)):
        pictures.append(tmp_path / f"p{n}.png")
        pictures[-1].write_bytes(png_bytes(x))
    sources = [write_idx(tmp_path, X, "x.idx"), *pictures, write_idx(tmp_path, Y, "y.idx")]
    plan = plan_arrays(sources, BANK, tmp_path / "out", padding="same", index="1:4")
    reader = plan.reader()
    whole = reader(0, plan.total)  # X[1:4], three pictures, Y[1:4]
    np.testing.assert_array_equal(whole[3:6], images(3, seed=7))
    for a in range(plan.total):
        for b in range(a + 1, plan.total + 1):
            part = reader.part(a, b)
            np.testing.assert_array_equal(part(0, b - a), whole[a:b])
    assert reader.part(4, 6).files == [str(pictures[1]), str(pictures[2])]


def test_folders_and_glob_patterns_of_pictures_are_read_in_name_order(tmp_path):
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    pics = images(5, 16, 12, seed=8)
    names = ["b.png", "a.PNG", "c.bmp"]
    from PIL import Image

    for name, x in zip(names, pics):
        Image.fromarray(x).save(photos / name, format="BMP" if name.endswith("bmp") else "PNG")
    (photos / "notes.txt").write_text("not a picture")
    (photos / "more" / "d.png").write_bytes(png_bytes(pics[3]))
    (photos / "more" / "e.png").write_bytes(png_bytes(pics[4]))
    sources = [photos, str(tmp_path / "photos" / "**" / "*.png")]
    plan = plan_arrays(sources, BANK[:2], tmp_path / "out", padding="same")
    order = [job.source.name for job in plan.render.jobs]
    assert order == [str(photos / n) for n in ("a.PNG", "b.png", "c.bmp")] + [
        str(photos / "b.png"), str(photos / "more" / "d.png"), str(photos / "more" / "e.png")]
    A = np.load(run_npy(plan))
    expected = pics[[1, 0, 2, 0, 3, 4]]
    np.testing.assert_allclose(A, reference(expected, BANK[:2]), rtol=1e-6, atol=1e-3)
    with pytest.raises(arrays.ImageFormatError, match=r"input pattern '.*\*\.jpg' matches no file"):
        plan_arrays([str(photos / "*.jpg")], BANK, tmp_path / "o2", padding="same")
    for name in ("d.png", "e.png"):
        (photos / "more" / name).unlink()
    with pytest.raises(arrays.ImageFormatError, match="input folder '.*more' holds no pictures"):
        plan_arrays([photos / "more"], BANK, tmp_path / "o2", padding="same")


def test_size_scales_and_centre_crops_items_of_any_size_into_one_array(tmp_path):
    small = images(1, 8, 8, seed=9)[0]                        # already 8×8: kept as it is
    double = images(1, 8, 8, seed=10)[0]
    wide = images(1, 8, 12, seed=11)[0]
    sources = []
    for name, picture in [("a.png", small), ("b.png", np.kron(double, np.ones((2, 2), np.uint8))),
                          ("c.png", np.kron(wide, np.ones((3, 3), np.uint8)))]:  # 16×16 and 24×36
        sources.append(tmp_path / name)
        sources[-1].write_bytes(png_bytes(picture))
    with pytest.raises(ShapeError, match=r"filter 'even' \(2×2\) gives 7×7 maps but 'edge-h' \(3×3\) gives 6×6"):
        plan_arrays(sources, BANK, tmp_path / "out", padding="valid", size=8)
    plan = plan_arrays(sources, BANK, tmp_path / "out", padding="same", size=8, budget=1)
    A = np.load(run_npy(plan))
    # box-averaging a 2×2 (3×3) block copy gives the picture back; the 8×12 one loses 2 columns each side
    items = np.stack([small, double, wide[:, 2:10]])
    np.testing.assert_allclose(A, reference(items, BANK), rtol=1e-5, atol=1e-3)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["size"] == 8
    with pytest.raises(ShapeError, match=r"filter 'edge-h' \(3×3\) is larger than the 2×2 items of --size"):
        plan_arrays(sources, BANK, tmp_path / "o2", padding="valid", size=2)


def test_fit_square_enlarges_too():
    X = np.arange(12.0).reshape(1, 3, 4)
    out = items.fit_square(X, 6)  # 3×4 -> 6×8 (bilinear), columns 1..6 kept
    assert out.shape == (1, 6, 6) and out.dtype == np.float64
    assert out.min() >= 0 and out.max() <= 11
    np.testing.assert_allclose(out[0].mean(axis=1), np.sort(out[0].mean(axis=1)))  # rows still increase
