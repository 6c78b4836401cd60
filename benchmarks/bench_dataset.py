"""Throughput of ``convcli filters render`` per output format: 10,000 Fashion-MNIST items × 25 filters.

Run from the repository root (needs the extra: ``pip install -e ".[dask]"``)::

    python benchmarks/bench_dataset.py                  # all four formats, 10,000 items, 2 repeats
    python benchmarks/bench_dataset.py --png-items 2000 # PNG on fewer items (items/s is what is compared)
    python benchmarks/bench_dataset.py --repeat 3 --dir /dev/shm

Each run is the real command line in a fresh process (``python -m convcli
filters render ... --padding same -q``: start-up, planning, which reads and
checks every item, computing, writing, the manifest), on:

- ``--format npy``;
- ``--format zarr --scheduler threads``;
- ``--format zarr --scheduler tcp://...``: a ``dask.distributed.LocalCluster``
  of 2 worker processes (1 thread each) started once by this script, as a
  cluster would be running before a job is sent to it;
- ``--format png`` (250,000 PNG files for 10,000 items, plus the contact sheet).

The input is the Fashion-MNIST test set when it is on this machine
(``$CONVCLI_FASHION_MNIST``, ``/usr/share/datasets/fashion-mnist`` or
``/tmp/fmnist/usr/share/datasets/fashion-mnist``), else generated items of the
same shape.  The runs of each repeat are interleaved, so a busy spell on the
machine hits every format; the best of the repeats is reported, with the
ratio to PNG's items per second.  npy must be at least 10× faster than PNG.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_filters import fashion_mnist, synthetic_idx  # noqa: E402


def render(source: Path, out: Path, items: int, *extra: str) -> float:
    """Seconds for one ``convcli filters render`` of the first ``items`` items into ``out``."""
    command = [sys.executable, "-m", "convcli", "filters", "render", str(source), "--index", f"0:{items}",
               "--padding", "same", "-q", "-o", str(out), *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--png-items", type=int, default=None, help="items for --format png (default: --items)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where to write (default: the temp folder)")
    parser.add_argument("--synthetic", action="store_true", help="use generated items even if Fashion-MNIST is here")
    args = parser.parse_args()
    png_items = args.png_items or args.items

    from distributed import LocalCluster

    from convcli.io.library import FILTERS

    scratch = Path(tempfile.mkdtemp(prefix="convcli-bench-dataset-", dir=args.dir))
    try:
        source = None if args.synthetic else fashion_mnist()
        if source is None or args.items > 10_000:
            source = synthetic_idx(scratch / "items-idx3-ubyte.gz", args.items)
        load = os.getloadavg()
        print(f"input: {source}, {len(FILTERS)} filters, padding same; {os.cpu_count()} CPUs; "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            runs = {
                "npy": (args.items, ["--format", "npy"]),
                "zarr, threads": (args.items, ["--format", "zarr", "--scheduler", "threads"]),
                "zarr, LocalCluster 2 workers": (args.items, ["--format", "zarr", "--scheduler",
                                                              cluster.scheduler_address]),
                "png": (png_items, ["--format", "png"]),
            }
            times: dict[str, list[float]] = {name: [] for name in runs}
            for repeat in range(args.repeat):
                for n, (name, (items, extra)) in enumerate(runs.items()):
                    out = scratch / f"out-{n}-{repeat}"
                    times[name].append(render(source, out, items, *extra))
                    shutil.rmtree(out, ignore_errors=True)
        rates = {name: runs[name][0] / min(t) for name, t in times.items()}
        print(f"\n| format | items | best of {args.repeat} | items/s | × png |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, t in times.items():
            print(f"| {name} | {runs[name][0]:,} | {min(t):.2f} s | {rates[name]:,.0f} | {rates[name] / rates['png']:.1f} |")
        load = os.getloadavg()
        print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
        ratio = rates["npy"] / rates["png"]
        print(f"npy is {ratio:.1f}× faster than png: {'OK' if ratio >= 10 else 'FAILS the 10× goal'}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
