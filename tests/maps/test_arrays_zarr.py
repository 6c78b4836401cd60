"""--format zarr (convcli.maps.zarrstore): a real 2-process LocalCluster, the processes scheduler, resume after kill."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers_images import idx_bytes

from convcli.errors import OutputError, ParameterError
from convcli.io.library import get_filter
from convcli.layers import conv_forward
from convcli.maps import zarrstore
from convcli.maps.arrays import plan_arrays

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

BANK = [get_filter(n) for n in ("edge-h", "box", "sharpen", "edge-v")]
KERNELS = np.stack([f.kernel for f in BANK])


def strokes(count, seed=0):
    """uint8 (count, 28, 28) MNIST-like items (a few bright blobs each), all different."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:28, 0:28]
    c = rng.uniform(4, 24, (count, 1, 1, 2))
    r = rng.uniform(2, 6, (count, 1, 1))
    blob = 255 * np.exp(-((y - c[..., 0]) ** 2 + (x - c[..., 1]) ** 2) / r**2)
    return np.clip(blob + rng.integers(0, 40, (count, 28, 28)), 0, 255).astype(np.uint8)


def write_idx(folder, array, name="items.idx"):
    path = folder / name
    path.write_bytes(idx_bytes(array, "u1"))
    return path


def test_a_two_process_local_cluster_renders_what_conv_forward_gives(tmp_path):
    X = strokes(3000)
    src = write_idx(tmp_path, X)
    plan = plan_arrays([src], BANK, tmp_path / "out", format="zarr", padding="same", budget=2**21)
    assert len(plan.bounds) >= 4  # several chunks, so both workers get some
    notes, counted = [], []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        store = zarrstore.run_zarr(plan, scheduler=cluster.scheduler_address, progress=counted.append,
                                   log=notes.append)
        with distributed.Client(cluster) as client:
            workers = client.scheduler_info()["workers"]
    assert len(workers) == 2 and all(w["nthreads"] == 1 for w in workers.values())
    assert sum(counted) == 3000 and len(counted) == len(plan.bounds)
    assert notes[0].startswith("Dask dashboard: http://")
    z = zarr.open_array(str(store), mode="r")
    assert z.shape == (3000, 4, 28, 28) and z.chunks == (plan.chunk, 4, 28, 28) and z.dtype == np.float32
    expected = conv_forward(X, KERNELS, padding="same")
    np.testing.assert_allclose(z[:], expected, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(da.from_zarr(str(store)).mean(axis=(0, 2, 3)).compute(),
                               expected.mean(axis=(0, 2, 3)), rtol=1e-5)
    assert z.attrs["complete"] is True and z.attrs["filters"][0]["name"] == "edge-h"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {k: v for k, v in manifest.items()} == dict(z.attrs)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "maps.zarr"]  # markers gone


def test_the_processes_scheduler_and_float64(tmp_path):
    X = strokes(200, seed=3)
    plan = plan_arrays([write_idx(tmp_path, X)], BANK, tmp_path / "out", format="zarr", padding="same",
                       dtype="float64", budget=2**19)
    store = zarrstore.run_zarr(plan, scheduler="processes")
    np.testing.assert_allclose(zarr.open_array(str(store))[:], conv_forward(X, KERNELS, padding="same"),
                               rtol=1e-12, atol=1e-9)


def test_resume_skips_marked_chunks_and_redoes_unmarked_ones(tmp_path):
    X = strokes(400, seed=1)
    src = write_idx(tmp_path, X)
    plan = plan_arrays([src], BANK, tmp_path / "out", format="zarr", padding="same", budget=2**19)
    n_chunks = len(plan.bounds)
    assert n_chunks >= 5
    stored = []

    def stop_after_three(n):
        stored.append(n)
        if len(stored) == 3:
            raise KeyboardInterrupt

    import dask

    with dask.config.set(num_workers=1), pytest.raises(KeyboardInterrupt):  # one thread: none still busy after
        zarrstore.run_zarr(plan, scheduler="threads", progress=stop_after_three)
    z = zarr.open_array(str(tmp_path / "out" / "maps.zarr"), mode="r+")
    assert z.attrs["complete"] is False and not (tmp_path / "out" / "manifest.json").exists()
    marked = sorted(int(p.name) for p in (tmp_path / "out" / zarrstore.DONE).iterdir())
    assert 3 <= len(marked) < n_chunks
    # a marked chunk is trusted (sentinel kept); an unmarked one is written again (garbage replaced)
    a, b = plan.bounds[marked[0]]
    z[a:b] = -7.0
    unmarked = next(i for i in range(n_chunks) if i not in marked)
    c, d = plan.bounds[unmarked]
    z[c:d] = 12345.0

    again = plan_arrays([src], BANK, tmp_path / "out", format="zarr", padding="same", budget=2**19, resume=True)
    notes, counted = [], []
    zarrstore.run_zarr(again, progress=counted.append, log=notes.append)
    assert notes == [f"resuming: {len(marked)} of {n_chunks} chunks are already stored"]
    assert sum(counted) == 400
    result = zarr.open_array(str(tmp_path / "out" / "maps.zarr"))[:]
    expected = conv_forward(X, KERNELS, padding="same")
    assert np.all(result[a:b] == -7.0)
    rest = np.ones(400, bool)
    rest[a:b] = False
    np.testing.assert_allclose(result[rest], expected[rest], rtol=1e-6, atol=1e-3)


def test_resume_with_other_settings_is_refused(tmp_path):
    src = write_idx(tmp_path, strokes(50))
    zarrstore.run_zarr(plan_arrays([src], BANK, tmp_path / "out", format="zarr", padding="same"))
    notes = []
    same = plan_arrays([src], BANK, tmp_path / "out", format="zarr", padding="same", resume=True)
    zarrstore.run_zarr(same, log=notes.append)
    assert notes == [f"'{tmp_path / 'out' / 'maps.zarr'}' is complete already; nothing to compute"]
    again = plan_arrays([src], BANK[:2], tmp_path / "out", format="zarr", padding="same", resume=True)
    with pytest.raises(OutputError) as info:
        zarrstore.run_zarr(again)
    assert str(info.value) == (
        f"cannot resume: '{tmp_path / 'out' / 'maps.zarr'}' was made with other filters; give the same "
        "inputs and options, or run without --resume and with --force to start again"
    )


def test_a_scheduler_that_is_neither_local_nor_an_address_is_refused():
    with pytest.raises(ParameterError, match="scheduler must be threads, processes or the address"):
        zarrstore.check_scheduler("thread")
    assert zarrstore.check_scheduler("localhost:8786") == "localhost:8786"


def test_missing_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr -> ImportError
    with pytest.raises(ParameterError) as info:
        zarrstore.require()
    assert str(info.value) == "--format zarr needs zarr (not installed); install them with: pip install 'convcli[dask]'"


SLOW_CLI = """
import sys, time
from convcli.maps import items, zarrstore
compute = items.compute_block
def slow(*args, **kwargs):  # one chunk every 0.1 s, so that the run can be killed half-way
    time.sleep(0.1)
    return compute(*args, **kwargs)
zarrstore.compute_block = slow
from convcli.cli import main
sys.argv = ["convcli"] + sys.argv[1:]
main()
"""


def test_resuming_a_run_killed_midway_gives_the_same_array(tmp_path):
    X = strokes(6000, seed=2)
    src = write_idx(tmp_path, X)
    out = tmp_path / "out"
    args = ["filters", "render", str(src), "--format", "zarr", "--padding", "same", "-o", str(out), "-q",
            *[a for f in BANK for a in ("-f", f.name)]]
    child = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *args], stderr=subprocess.PIPE)
    done = out / zarrstore.DONE
    deadline = time.monotonic() + 120
    while not (done.is_dir() and len(os.listdir(done)) >= 3) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read()
    n_done = len(os.listdir(done))
    z = zarr.open_array(str(out / "maps.zarr"), mode="r")
    assert z.attrs["complete"] is False and 3 <= n_done < -(-6000 // z.chunks[0])

    from click.testing import CliRunner

    from convcli.cli import cli

    resume = [a for a in args if a != "-q"] + ["--resume"]
    result = CliRunner().invoke(cli, resume, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"resuming: {n_done} of" in result.stderr
    z = zarr.open_array(str(out / "maps.zarr"), mode="r")
    assert z.attrs["complete"] is True
    np.testing.assert_allclose(z[:], conv_forward(X, KERNELS, padding="same"), rtol=1e-6, atol=1e-3)
