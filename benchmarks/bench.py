"""convcli against the tools people would use instead, side by side in one run.

    python benchmarks/bench.py                      # all five targets
    python benchmarks/bench.py --only forward,e2e   # some of them
    python benchmarks/bench.py --repeat 9           # more rounds (less noise)

Each target runs convcli and its reference alternately, several rounds, and
compares the best time of each (the least disturbed by other work on the
machine).  The table is printed as Markdown; the exit status is 1 when a target
is missed, 0 otherwise (a skipped target -- no ImageMagick, no ``convcli
convolve`` -- is reported and does not fail the run).

Targets (issue #6):

1. ``conv_forward(X, w, padding="same")``, 2048x2048 float64, 3x3: at most 0.8x
   ``scipy.ndimage.correlate(X, w, mode="constant")``, and the same numbers.
2. ``conv_backward`` (dX and dw) on the same input: at most 2.0x that ndimage time.
3. 10,000 28x28 images x 16 3x3 kernels: at least 30x faster than a loop of
   ``scipy.signal.correlate2d`` over every image and kernel.
4. ``convcli --version`` and ``convcli --help``: at most 1.5x ``python -c "import numpy"``.
5. ``convcli convolve big.png -k edge-h -o out.png`` on a 4096x4096 8-bit PNG:
   at most 0.6x the wall time of ImageMagick's
   ``convert big.png -morphology Convolve '3x3:1,1,1,0,0,0,-1,-1,-1' out.png``,
   and no more peak memory (maximum resident set size).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Row:
    """One line of the table."""

    target: str
    convcli: str
    reference: str
    ratio: float | None  # convcli / reference (time or memory)
    goal: str
    passed: bool | None  # None: skipped
    note: str = ""


def best_of(pairs: int, candidate, reference, *, candidate_runs: int = 1) -> tuple[float, float]:
    """Best wall time in seconds of each callable over ``pairs`` alternating rounds.

    Each round runs the reference once and the candidate ``candidate_runs``
    times (as ``timeit`` gives a quick statement more runs than a slow one).
    """
    best_c = best_r = float("inf")
    for _ in range(pairs):
        for func, runs in ((reference, 1), (candidate, candidate_runs)):
            for _ in range(runs):
                gc.collect()
                start = time.perf_counter()
                func()
                elapsed = time.perf_counter() - start
                if func is candidate:
                    best_c = min(best_c, elapsed)
                else:
                    best_r = min(best_r, elapsed)
    return best_c, best_r


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# ----------------------------------------------------------------------------- 1 and 2


def bench_forward_backward(repeat: int) -> list[Row]:
    from scipy import ndimage

    from convcli.layers import conv_backward, conv_forward

    rng = np.random.default_rng(0)
    X, w = rng.standard_normal((2048, 2048)), rng.standard_normal((3, 3))
    dA = rng.standard_normal((2048, 2048))

    A, ref = conv_forward(X, w, padding="same"), ndimage.correlate(X, w, mode="constant")
    same = "bitwise equal" if np.array_equal(A, ref) else f"max abs diff {np.abs(A - ref).max():.3g}"
    rounds = 2 * repeat + 1  # a round takes a tenth of a second: more rounds, less noise
    fwd, nd = best_of(
        rounds, lambda: conv_forward(X, w, padding="same"), lambda: ndimage.correlate(X, w, mode="constant")
    )
    rows = [
        Row(
            "1. conv_forward 2048², 3x3, same",
            ms(fwd),
            f"ndimage.correlate {ms(nd)}",
            fwd / nd,
            "≤ 0.8",
            fwd / nd <= 0.8 and same == "bitwise equal",
            same,
        )
    ]

    grads = conv_backward(X, w, dA, padding="same")
    dx_ref = ndimage.correlate(dA, w[::-1, ::-1], mode="constant")  # full correlation with the rotated kernel
    dw_ref = np.array([[np.vdot(dA, np.pad(X, 1)[i : i + 2048, j : j + 2048]) for j in range(3)] for i in range(3)])
    err = max(np.abs(grads["X"] - dx_ref).max(), np.abs(grads["w"] - dw_ref).max() / np.abs(dw_ref).max())
    bwd, nd = best_of(
        rounds, lambda: conv_backward(X, w, dA, padding="same"), lambda: ndimage.correlate(X, w, mode="constant")
    )
    rows.append(
        Row(
            "2. conv_backward (dX and dw)",
            ms(bwd),
            f"ndimage.correlate {ms(nd)}",
            bwd / nd,
            "≤ 2.0",
            bwd / nd <= 2.0 and err < 1e-9,
            f"dX, dw vs reference: {err:.1e}",
        )
    )
    return rows


# ----------------------------------------------------------------------------- 3


def bench_batch_bank(repeat: int) -> list[Row]:
    from scipy import signal

    from convcli.layers import conv_forward

    rng = np.random.default_rng(1)
    X, w = rng.standard_normal((10_000, 28, 28)), rng.standard_normal((16, 3, 3))

    def loop(images=X):
        out = np.empty((len(images), len(w), 26, 26))
        for n in range(len(images)):
            for k in range(len(w)):
                out[n, k] = signal.correlate2d(images[n], w[k], mode="valid")
        return out

    err = np.abs(conv_forward(X[:50], w) - loop(X[:50])).max()
    rounds = max(2, repeat // 3)  # the loop takes seconds, conv_forward a fraction of one
    fast, ref = best_of(rounds, lambda: conv_forward(X, w), loop, candidate_runs=5)
    speedup = ref / fast
    return [
        Row(
            "3. batch × bank: 10,000 × 28², 16 3x3",
            ms(fast),
            f"correlate2d loop {ms(ref)}",
            fast / ref,
            "≤ 0.033 (30× faster)",
            speedup >= 30 and err < 1e-12,
            f"{speedup:.0f}× faster; best of {rounds} loops and {5 * rounds} calls; max abs diff {err:.1e}",
        )
    ]


# ----------------------------------------------------------------------------- 4


def convcli_command() -> list[str]:
    """The installed console script (not a version manager's shim), else ``python -m convcli``."""
    script = Path(sysconfig.get_path("scripts")) / "convcli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "convcli"]


GNU_TIME = "/usr/bin/time"


def run_timed(argv: list[str], *, memory: bool = False) -> tuple[float, int, int | None]:
    """Wall seconds, exit status and (with ``memory``) peak resident memory in KiB of one command.

    Peak memory comes from GNU ``/usr/bin/time`` (``%M``, the figure ``time -v``
    prints as "Maximum resident set size"): the rusage of a child forked from
    this process would count this process's own memory, copied at the fork.
    """
    if memory and os.path.exists(GNU_TIME):
        argv = [GNU_TIME, "-f", "maxrss_kib=%M"] + argv
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    peak = None
    if memory:
        lines = [line for line in proc.stderr.splitlines() if line.startswith("maxrss_kib=")]
        peak = int(lines[-1].split("=")[1]) if lines else None
    return elapsed, proc.returncode, peak


def bench_startup(repeat: int) -> list[Row]:
    numpy_cmd = [sys.executable, "-c", "import numpy"]
    rows = []
    times = {"numpy": [], "--version": [], "--help": []}
    commands = {
        "numpy": numpy_cmd,
        "--version": convcli_command() + ["--version"],
        "--help": convcli_command() + ["--help"],
    }
    for name, argv in commands.items():
        if run_timed(argv)[1] != 0:
            return [Row("4. start-up", "-", "-", None, "≤ 1.5", None, f"skipped: {' '.join(argv)} failed")]
    for _ in range(max(20, repeat * 5)):
        for name, argv in commands.items():
            times[name].append(run_timed(argv)[0])
    base = min(times["numpy"])
    for name in ("--version", "--help"):
        t = min(times[name])
        rows.append(
            Row(
                f"4. convcli {name}",
                ms(t),
                f"import numpy {ms(base)}",
                t / base,
                "≤ 1.5",
                t / base <= 1.5,
                f"median {ms(float(np.median(times[name])))} vs {ms(float(np.median(times['numpy'])))}",
            )
        )
    return rows


# ----------------------------------------------------------------------------- 5


def imagemagick() -> str | None:
    """The path of a real ImageMagick ``convert`` (not a stand-in), or None."""
    for candidate in ("/usr/bin/convert", shutil.which("convert")):
        if candidate and os.path.exists(candidate):
            out = subprocess.run([candidate, "-version"], capture_output=True, text=True).stdout
            if out.startswith("Version: ImageMagick"):
                return candidate
    return None


def make_big_png(path: Path, size: int = 4096) -> None:
    """A deterministic 8-bit grey picture with smooth structure and noise (compresses like a photo).

    Made in a child process so that this one stays small.
    """
    code = f"""
import numpy as np
from PIL import Image
y, x = np.mgrid[0:{size}, 0:{size}].astype(np.float32)
noise = np.random.default_rng(2).normal(0, 12, ({size}, {size})).astype(np.float32)
img = 127.5 + 60 * np.sin(x / 37) * np.cos(y / 53) + 40 * np.sin((x + y) / 211) + noise
Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L").save({str(path)!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def bench_end_to_end(repeat: int) -> list[Row]:
    def skipped(why: str) -> list[Row]:
        return [Row("5. convolve 4096² PNG", "-", "-", None, "≤ 0.6", None, f"skipped: {why}")]

    convert = imagemagick()
    if convert is None:
        return skipped("ImageMagick is not installed (apt-get install imagemagick)")
    cli = convcli_command()
    if subprocess.run(cli + ["convolve", "--help"], capture_output=True).returncode != 0:
        return skipped("convcli convolve is not available")
    if not os.path.exists(GNU_TIME):
        return skipped(f"{GNU_TIME} (GNU time, for peak memory) is not installed (apt-get install time)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = tmp / "big.png"
        make_big_png(big)
        ours = cli + ["convolve", str(big), "-k", "edge-h", "-o", str(tmp / "out.png"), "--quiet"]
        theirs = [convert, str(big), "-morphology", "Convolve", "3x3:1,1,1,0,0,0,-1,-1,-1", str(tmp / "im.png")]
        t_ours, t_theirs, m_ours, m_theirs = [], [], [], []
        for _ in range(max(3, repeat // 2)):
            for argv, times, mems, out in ((theirs, t_theirs, m_theirs, "im.png"), (ours, t_ours, m_ours, "out.png")):
                (tmp / out).unlink(missing_ok=True)
                elapsed, status, peak = run_timed(argv, memory=True)
                if status != 0:
                    return [
                        Row("5. convolve 4096² PNG", "-", "-", None, "≤ 0.6", False, f"{argv[0]} failed ({status})")
                    ]
                times.append(elapsed)
                mems.append(peak)
    t, r = min(t_ours), min(t_theirs)
    m, mr = max(m_ours), max(m_theirs)
    return [
        Row("5. convcli convolve 4096² PNG, time", ms(t), f"ImageMagick {ms(r)}", t / r, "≤ 0.6", t / r <= 0.6),
        Row(
            "5. convcli convolve 4096² PNG, peak memory",
            f"{m / 1024:.0f} MB",
            f"ImageMagick {mr / 1024:.0f} MB",
            m / mr,
            "≤ 1.0",
            m <= mr,
            "maximum resident set size, worst run of each",
        ),
    ]


# ----------------------------------------------------------------------------- main

BENCHES = {
    "forward": bench_forward_backward,
    "batch": bench_batch_bank,
    "startup": bench_startup,
    "e2e": bench_end_to_end,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {', '.join(BENCHES)}")
    parser.add_argument("--repeat", type=int, default=11, help="alternating rounds per comparison (default 11)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")

    import scipy

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"numpy {np.__version__}, scipy {scipy.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {load:.2f}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
        f"best of {2 * args.repeat + 1} alternating rounds for targets 1-2, "
        f"{max(2, args.repeat // 3)} for 3 (5 convcli calls each), "
        f"{max(20, args.repeat * 5)} for 4, {max(3, args.repeat // 2)} for 5\n",
        flush=True,
    )
    rows: list[Row] = []
    for name in names:
        rows += BENCHES[name](args.repeat)
    print("| target | convcli | reference | ratio | goal | met | notes |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        met = {True: "yes", False: "**NO**", None: "skipped"}[row.passed]
        print(f"| {row.target} | {row.convcli} | {row.reference} | {ratio} | {row.goal} | {met} | {row.note} |")
    return 1 if any(row.passed is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
