"""How long ``convcli filters render`` takes for 1,000 MNIST-sized items × every named filter.

Run from the repository root::

    python benchmarks/bench_filters.py                 # 1,000 items, convcli's default, 3 repeats
    python benchmarks/bench_filters.py --workers 0 1 2 --repeat 3
    python benchmarks/bench_filters.py --items 60000   # a whole MNIST training file

The items are the first N of the real Fashion-MNIST test set when it is on
this machine (``$CONVCLI_FASHION_MNIST``, ``/usr/share/datasets/fashion-mnist``
or ``/tmp/fmnist/usr/share/datasets/fashion-mnist``, e.g. after
``apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb /tmp/fmnist``);
otherwise an IDX file of synthetic 28x28 strokes built here.  Every run
writes into a fresh folder; they are all deleted at the end (not between
runs, as deleting 25,000 files keeps the disk busy for a while).  The figure printed is
the wall time of planning (which reads and checks every item) plus rendering
(convolution, PNG encoding and atomic writes of every map, the manifest and
the contact sheet).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FASHION = ("CONVCLI_FASHION_MNIST", "/usr/share/datasets/fashion-mnist", "/tmp/fmnist/usr/share/datasets/fashion-mnist")


def fashion_mnist() -> Path | None:
    for folder in (os.environ.get(FASHION[0], ""),) + FASHION[1:]:
        path = Path(folder) / "t10k-images-idx3-ubyte.gz" if folder else None
        if path is not None and path.is_file():
            return path
    return None


def synthetic_idx(path: Path, count: int, seed: int = 0) -> Path:
    """``count`` 28x28 uint8 images of random bright strokes, as a gzipped IDX file."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.uint8)
    y, x = np.mgrid[0:28, 0:28]
    for n in range(count):
        for _ in range(3):
            cy, cx, r = rng.uniform(6, 22), rng.uniform(6, 22), rng.uniform(2, 7)
            images[n] = np.maximum(images[n], (255 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / r**2)).astype(np.uint8))
    header = struct.pack(">BBBB3I", 0, 0, 0x08, 3, count, 28, 28)
    path.write_bytes(gzip.compress(header + images.tobytes(), compresslevel=1))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[None],
        help="PNG-writing processes to try (0 = in the main process; default: convcli's choice)",
    )
    parser.add_argument(
        "--dir", default=None, help="where to write (default: the temp folder; /dev/shm leaves the disk out)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic", action="store_true", help="use generated items even if Fashion-MNIST is here")
    args = parser.parse_args()

    from convcli.io.library import FILTERS
    from convcli.maps.batch import default_workers, plan_render, run_render

    scratch = Path(tempfile.mkdtemp(prefix="convcli-bench-", dir=args.dir))
    try:
        source = None if args.synthetic else fashion_mnist()
        if source is None or args.items > 10000:
            source = synthetic_idx(scratch / "items-idx3-ubyte.gz", args.items)
        print(
            f"input: {source} (first {args.items} items), {len(FILTERS)} filters, "
            f"{args.items * len(FILTERS):,} maps; {os.cpu_count()} CPUs; python {sys.version.split()[0]}"
        )
        times_by = {w: [] for w in args.workers}
        for run in range(args.repeat):  # interleaved, so a busy spell on the machine hits every setting
            for workers in args.workers:
                out = scratch / f"out-{workers}-{run}"
                started = time.perf_counter()
                plan = plan_render([source], list(FILTERS.values()), out, index=f"0:{args.items}")
                result = run_render(plan, workers=workers)
                times_by[workers].append(time.perf_counter() - started)
                assert result.maps == args.items * len(FILTERS)
        for workers, times in times_by.items():
            label = f"default ({default_workers(plan)})" if workers is None else str(workers)
            print(
                f"workers={label}: best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s "
                f"over {len(times)} runs ({args.items / min(times):,.0f} items/s)"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
