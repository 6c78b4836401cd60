"""How render writes its files: new image folders staged and renamed whole, old ones file by file; the manifest."""

import json
import os

import numpy as np
import pytest
from helpers_images import idx_bytes

from convcli.io.library import FILTERS
from convcli.maps import batch
from convcli.maps import staging
from convcli.maps import writer as mapwriter
from convcli.maps.batch import plan_render, run_render

RNG = np.random.default_rng(0)
LAB = [FILTERS[name] for name in ("edge-h", "box", "sharpen", "roberts-x", "gaussian-5")]


def items(tmp_path, n=12):
    path = tmp_path / "items-idx3-ubyte"
    path.write_bytes(idx_bytes(RNG.integers(0, 256, (n, 9, 8)).astype(np.uint8)))
    return path


def tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("workers", [0, 2])
def test_new_folders_are_staged_and_nothing_is_left_behind(tmp_path, workers, monkeypatch):
    staged = []
    real = mapwriter.staged_folder
    monkeypatch.setattr(mapwriter, "staged_folder", lambda out, name: staged.append(name) or real(out, name))
    run_render(plan_render([items(tmp_path)], LAB, tmp_path / "out"), workers=workers)
    out = tmp_path / "out"
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == [f"items-idx3-ubyte-{i}" for i in sorted(range(12), key=str)]
    assert all(sorted(os.listdir(out / f)) == sorted(f"{x.name}.png" for x in LAB) for f in folders)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert sorted(staged) == folders  # (writer threads run in this process: the spy sees them too)


def test_force_over_an_earlier_render_writes_the_same_files_file_by_file(tmp_path):
    source = items(tmp_path)
    run_render(plan_render([source], LAB, tmp_path / "a"), workers=0)
    (tmp_path / "b").mkdir()
    run_render(plan_render([source], LAB[:2], tmp_path / "b"), workers=0)  # other maps in the same folders
    (tmp_path / "b" / "items-idx3-ubyte-3" / "mine.txt").write_text("kept")
    run_render(plan_render([source], LAB, tmp_path / "b", force=True), workers=0)
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert b.pop("items-idx3-ubyte-3/mine.txt") == b"kept"
    assert a == b


def test_an_interrupted_staged_folder_leaves_neither_it_nor_its_staging(tmp_path, monkeypatch):
    calls = []
    real = staging._write_at

    def write_at(*args):
        calls.append(1)
        if len(calls) == 3 * len(LAB) + 2:  # in the middle of the fourth image
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(staging, "_write_at", write_at)
    with pytest.raises(KeyboardInterrupt):
        run_render(plan_render([items(tmp_path)], LAB, tmp_path / "out", sheet=False), workers=0)
    left = sorted(os.listdir(tmp_path / "out"))
    assert len(left) == 3 and not any(name.endswith(".tmp") for name in left)  # three whole folders
    assert all(len(os.listdir(tmp_path / "out" / name)) == len(LAB) for name in left)


@pytest.mark.parametrize("count", [0, 1, 4095, 4096, 4097, 10000])
def test_manifest_is_json_with_one_entry_a_line_across_write_batches(tmp_path, count):
    from convcli.maps.folder import write_manifest

    path = write_manifest(tmp_path, {"options": {"a": 1}}, ({"file": f"f{i}.png"} if i % 2 else json.dumps({"i": i})
                                                             for i in range(count)))
    text = path.read_text()
    assert json.loads(text) == {"options": {"a": 1},
                                "files": [{"file": f"f{i}.png"} if i % 2 else {"i": i} for i in range(count)]}
    lines = text.splitlines()
    assert len(lines) == count + 5 and all(line.startswith("  {") for line in lines[3 : 3 + count])


def test_manifest_entries_are_the_text_of_json_dumps(tmp_path):
    names = ['we"ird', "ünï", "back\\slash"]
    sources = []
    for name in names:
        path = tmp_path / f"{name}.npy"
        np.save(path, RNG.integers(0, 256, (3, 9, 8)).astype(np.uint8))
        sources.append(path)
    plan = plan_render(sources, LAB, tmp_path / "out")
    run_render(plan, workers=0)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["files"]) == 9 * len(LAB)
    records = [(job, list(range(3)), job.folders, RNG.standard_normal((3, len(LAB))), RNG.standard_normal((3, len(LAB))))
               for job in plan.jobs]
    expected = [
        json.dumps({"input": job.source.name, "index": index, "filter": f.name, "file": f"{folder}/{name}",
                    "min": float(lows[i, k]), "max": float(highs[i, k])})
        for job, indices, folders, lows, highs in records
        for i, (index, folder) in enumerate(zip(indices, folders))
        for k, (f, name) in enumerate(zip(plan.filters, plan.file_names))
    ]
    assert list(batch._manifest_entries(plan, records)) == expected
