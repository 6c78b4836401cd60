"""convcli against the tools people would use instead, side by side in one run.

    python benchmarks/bench.py                        # every target
    python benchmarks/bench.py --only opencv,large    # some of them
    python benchmarks/bench.py --repeat 9             # more rounds (less noise)

Each target runs convcli and its reference alternately, several rounds (each
side's turn a warm-up call, then the timed ones), and compares the best time
of each (the least disturbed by other work on the machine).  The table is
printed as Markdown; the exit status is 1 when a target is missed, 0
otherwise.  A target whose reference is missing (no OpenCV -- ``pip install
opencv-python-headless``, a benchmark-only dependency -- no ImageMagick, no
Fashion-MNIST) is reported as skipped, with the reason, and does not fail the
run.

Targets of issue #6 (first round):

1. ``conv_forward(X, w, padding="same")``, 2048x2048 float64, 3x3: at most 0.8x
   ``scipy.ndimage.correlate(X, w, mode="constant")``, and the same numbers to
   rounding (within ``1e-14 * max|X| * sum|w|``: since issue #15 each tap is a
   fused multiply-add, rounded once where ndimage rounds twice).
2. ``conv_backward`` (dX and dw) on the same input: at most 2.0x that ndimage time.
3. 10,000 28x28 images x 16 3x3 kernels: at least 30x faster than a loop of
   ``scipy.signal.correlate2d`` over every image and kernel.
4. ``convcli --version`` and ``convcli --help``: at most 1.5x ``python -c "import numpy"``.
5. ``convcli convolve big.png -k edge-h -o out.png`` on a 4096x4096 8-bit PNG:
   at most 0.6x the wall time of ImageMagick's
   ``convert big.png -morphology Convolve '3x3:1,1,1,0,0,0,-1,-1,-1' out.png``,
   and no more peak memory (maximum resident set size).

Targets of issue #15 (against OpenCV, ``cv2.filter2D`` with a zero border):

6. ``conv_forward`` 2048² and 4096², random 3x3, float64: at most 1.5x.
7. ``conv_forward`` 2048², separable 5x5 and 7x7 (Gaussian, box): at most 2.0x.
8. ``conv_forward`` 2048², random 15x15 and 31x31: at most 1.0x
   ``scipy.signal.oaconvolve``; and a 300x300 kernel on 2000² against
   ``scipy.signal.fftconvolve``, reported (issue #13).
9. float32 ``X`` and ``w``, 4096², random 3x3: float32 result, at most 2.0x
   ``cv2.filter2D`` in float32.
10. target 5's command against a plain OpenCV script (imread, filter2D,
    min-max, imwrite): wall time at most 1.0x, peak memory at most 1.0x, and
    the file at most 1.1x the size of Pillow's default PNG of the same picture.
11. ``convcli filters render`` of 1,000 Fashion-MNIST items x every named
    filter (``--no-sheet``): at most 0.6x a plain single-threaded OpenCV loop
    writing the same files; the same into tmpfs is reported too (convcli's
    own work, without the disk's file creation).
"""

from __future__ import annotations

import argparse
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
from timing import best_of


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


def load() -> str:
    """The machine's load averages, as ``uptime`` prints them."""
    if not hasattr(os, "getloadavg"):
        return "load average unknown"
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


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
    # the tap path's fused multiply-adds round once where ndimage rounds twice: the same numbers to rounding
    scale = float(np.abs(X).max() * np.abs(w).sum())
    close = bool(np.abs(A - ref).max() <= 1e-14 * scale)
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
            fwd / nd <= 0.8 and close,
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
    fast, ref = best_of(rounds, lambda: conv_forward(X, w), loop, candidate_runs=5, warm=False)
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


def compile_convcli() -> None:
    """Byte-compile the convcli package once, as ``pip install`` does, before its start-up is timed.

    An editable install run with ``PYTHONDONTWRITEBYTECODE=1`` (the project's
    machines set it) compiles every convcli module from source at each start,
    about 20 ms, while numpy, Pillow and OpenCV come compiled: timing that
    would measure the development set-up, not convcli.  The ``.pyc`` files go
    to the package's ``__pycache__`` folders (git-ignored).
    """
    import compileall

    import convcli

    compileall.compile_dir(str(Path(convcli.__file__).parent), quiet=1)


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


# ----------------------------------------------------------------------------- 6 to 9: OpenCV and FFT


def opencv():
    """The cv2 module, or None when opencv-python-headless is not installed."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


NO_OPENCV = "skipped: OpenCV is not installed (pip install opencv-python-headless; benchmark only)"


def gaussian(size: int, sigma: float) -> np.ndarray:
    g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    return np.outer(g, g) / g.sum() ** 2


def diff_note(A: np.ndarray, ref: np.ndarray) -> str:
    if np.array_equal(A, ref):
        return "bitwise equal"
    scale = float(np.abs(ref).max()) or 1.0
    return f"max rel. diff {float(np.abs(A.astype(np.float64) - ref).max()) / scale:.1e}"


def bench_opencv(repeat: int) -> list[Row]:
    from convcli.layers import conv_forward

    cv2 = opencv()
    cases = [
        ("6. forward 2048², 3x3", (2048, 2048), "random3", np.float64, "≤ 1.5"),
        ("6. forward 4096², 3x3", (4096, 4096), "random3", np.float64, "≤ 1.5"),
        ("7. forward 2048², Gaussian 5x5", (2048, 2048), "gauss5", np.float64, "≤ 2.0"),
        ("7. forward 2048², box 5x5", (2048, 2048), "box5", np.float64, "≤ 2.0"),
        ("7. forward 2048², Gaussian 7x7", (2048, 2048), "gauss7", np.float64, "≤ 2.0"),
        ("7. forward 2048², box 7x7", (2048, 2048), "box7", np.float64, "≤ 2.0"),
        ("9. forward 4096², 3x3, float32", (4096, 4096), "random3", np.float32, "≤ 2.0"),
    ]
    if cv2 is None:
        return [Row(name, "-", "-", None, goal, None, NO_OPENCV) for name, *_, goal in cases]
    rng = np.random.default_rng(3)
    kernels = {
        "random3": rng.standard_normal((3, 3)),
        "gauss5": gaussian(5, 1.0),
        "box5": np.ones((5, 5)) / 25,
        "gauss7": gaussian(7, 1.5),
        "box7": np.ones((7, 7)) / 49,
    }
    rows = []
    for name, shape, kernel, dtype, goal in cases:
        X = rng.standard_normal(shape).astype(dtype)
        w = kernels[kernel].astype(dtype)
        A = conv_forward(X, w, padding="same")
        ref = cv2.filter2D(X, -1, w, borderType=cv2.BORDER_CONSTANT)
        note = f"{A.dtype}; vs OpenCV: {diff_note(A, ref)}"
        ours, theirs = best_of(
            2 * repeat + 1,
            lambda: conv_forward(X, w, padding="same"),
            lambda: cv2.filter2D(X, -1, w, borderType=cv2.BORDER_CONSTANT),
        )
        limit = float(goal.split()[-1])
        ok = ours / theirs <= limit and A.dtype == dtype
        rows.append(Row(name, ms(ours), f"cv2.filter2D {ms(theirs)}", ours / theirs, goal, ok, note))
        del X, A, ref
    return rows


def bench_large_kernels(repeat: int) -> list[Row]:
    from scipy import signal

    from convcli.layers import conv_forward

    rng = np.random.default_rng(4)
    rows = []
    X = rng.standard_normal((2048, 2048))
    for size in (15, 31):
        w = rng.standard_normal((size, size))
        A = conv_forward(X, w, padding="same")
        ref = signal.oaconvolve(X, w[::-1, ::-1], mode="same")
        ours, theirs = best_of(
            max(3, repeat), lambda: conv_forward(X, w, padding="same"),
            lambda: signal.oaconvolve(X, w[::-1, ::-1], mode="same"),
        )
        rows.append(Row(f"8. forward 2048², random {size}x{size}", ms(ours), f"signal.oaconvolve {ms(theirs)}",
                        ours / theirs, "≤ 1.0", ours / theirs <= 1.0, f"vs oaconvolve: {diff_note(A, ref)}"))
    X = rng.uniform(0, 255, (2000, 2000))
    w = rng.standard_normal((300, 300))
    (top, bottom), (left, right) = ((149, 150), (149, 150))
    A = conv_forward(X, w, padding="same")
    ref = signal.fftconvolve(np.pad(X, ((top, bottom), (left, right))), w[::-1, ::-1], mode="valid")
    ours, theirs = best_of(
        max(2, repeat // 3), lambda: conv_forward(X, w, padding="same"),
        lambda: signal.fftconvolve(np.pad(X, ((top, bottom), (left, right))), w[::-1, ::-1], mode="valid"),
    )
    rows.append(Row("8. forward 2000², random 300x300 (#13)", ms(ours), f"signal.fftconvolve {ms(theirs)}",
                    ours / theirs, "report", ours / theirs <= 1.0, f"vs fftconvolve: {diff_note(A, ref)}"))
    return rows


# ----------------------------------------------------------------------------- 10


OPENCV_SCRIPT = """
import sys
import cv2
import numpy as np
img = cv2.imread(sys.argv[1], cv2.IMREAD_GRAYSCALE)
k = np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], np.float64)
A = cv2.filter2D(img, cv2.CV_64F, k, borderType=cv2.BORDER_CONSTANT)[1:-1, 1:-1]  # the valid part, as convcli's
cv2.imwrite(sys.argv[2], cv2.normalize(A, None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U))
"""


def bench_end_to_end_opencv(repeat: int) -> list[Row]:
    names = ("10. convolve 4096² PNG vs OpenCV, time", "10. … peak memory", "10. … file size vs Pillow's default")
    goals = ("≤ 1.0", "≤ 1.0", "≤ 1.1")
    if opencv() is None:
        return [Row(name, "-", "-", None, goal, None, NO_OPENCV) for name, goal in zip(names, goals)]
    cli = convcli_command()
    if not os.path.exists(GNU_TIME):
        return [Row(names[0], "-", "-", None, goals[0], None, f"skipped: {GNU_TIME} (GNU time) is not installed")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = tmp / "big.png"
        make_big_png(big)
        (tmp / "cvscript.py").write_text(OPENCV_SCRIPT)
        ours = cli + ["convolve", str(big), "-k", "edge-h", "-o", str(tmp / "out.png"), "--quiet"]
        theirs = [sys.executable, str(tmp / "cvscript.py"), str(big), str(tmp / "cv.png")]
        t_ours, t_theirs, m_ours, m_theirs = [], [], [], []
        for _ in range(max(3, repeat // 2)):
            for argv, times, mems, out in ((theirs, t_theirs, m_theirs, "cv.png"), (ours, t_ours, m_ours, "out.png")):
                (tmp / out).unlink(missing_ok=True)
                elapsed, status, peak = run_timed(argv, memory=True)
                if status != 0:
                    return [Row(names[0], "-", "-", None, goals[0], False, f"{argv[0]} failed ({status})")]
                times.append(elapsed)
                mems.append(peak)
        size = (tmp / "out.png").stat().st_size
        pillow = pillow_png_size(tmp / "out.png")
        same = pixels_equal(tmp / "out.png", tmp / "cv.png")
    t, r = min(t_ours), min(t_theirs)
    m, mr = max(m_ours), max(m_theirs)
    return [
        Row(names[0], ms(t), f"OpenCV script {ms(r)}", t / r, goals[0], t / r <= 1.0, same),
        Row(names[1], f"{m / 1024:.0f} MB", f"OpenCV script {mr / 1024:.0f} MB", m / mr, goals[1], m <= mr,
            "maximum resident set size, worst run of each"),
        Row(names[2], f"{size / 1e6:.2f} MB", f"Pillow default {pillow / 1e6:.2f} MB", size / pillow, goals[2],
            size <= 1.1 * pillow, "the same picture re-encoded by Pillow at its default settings"),
    ]


def pillow_png_size(path: Path) -> int:
    """Bytes of Pillow's default PNG encoding of the picture in ``path``."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(path).save(buffer, format="PNG")
    return len(buffer.getvalue())


def pixels_equal(ours: Path, theirs: Path) -> str:
    from PIL import Image

    a, b = np.asarray(Image.open(ours)).astype(int), np.asarray(Image.open(theirs)).astype(int)
    if a.shape != b.shape:
        return f"pictures differ in shape: {a.shape} vs {b.shape}"
    return f"pictures differ by at most {np.abs(a - b).max()} level(s) (rounding of the min-max scaling)"


# ----------------------------------------------------------------------------- 11


OPENCV_LOOP = """
import gzip, os, sys
import cv2
import numpy as np
from convcli.io.library import FILTERS
cv2.setNumThreads(1)
source, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = gzip.open(source).read()
items = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:count]
stem = os.path.basename(source).split(".")[0]
kernels = {name: f.kernel for name, f in FILTERS.items()}
for i, item in enumerate(items):
    folder = os.path.join(out, f"{stem}-{i}")
    os.makedirs(folder)
    for name, k in kernels.items():
        A = cv2.filter2D(item, cv2.CV_64F, k, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
        A = A[: 29 - k.shape[0], : 29 - k.shape[1]]  # the valid part, as convcli's
        cv2.imwrite(os.path.join(folder, name + ".png"), cv2.normalize(A, None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U))
"""


def bench_render(repeat: int) -> list[Row]:
    name, goal = "11. filters render 1,000 × 25 vs OpenCV loop", "≤ 0.6"
    if opencv() is None:
        return [Row(name, "-", "-", None, goal, None, NO_OPENCV)]
    source = fashion_mnist_test()
    if source is None:
        return [Row(name, "-", "-", None, goal, None, "skipped: Fashion-MNIST not found ($CONVCLI_FASHION_MNIST)")]
    rows = [render_row(name, goal, source, None, max(2, repeat // 4))]
    if os.path.isdir("/dev/shm") and rows[0].passed is not None:
        # The same in memory (tmpfs), reported: what convcli's own work costs, without the kernel's time to
        # create 25,000 files on disk, which changes by 10x with what the file system went through lately.
        rows.append(render_row("11. … the same into tmpfs (/dev/shm)", "report", source, "/dev/shm", 2))
    return rows


def render_row(name: str, goal: str, source: Path, where: str | None, rounds: int) -> Row:
    """Row 11: the render and the OpenCV loop, ``rounds`` each, into a new folder under ``where``."""
    cli = convcli_command()
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        tmp = Path(tmp)
        (tmp / "loop.py").write_text(OPENCV_LOOP)
        t_ours, t_theirs = [], []
        for run in range(rounds):
            theirs = [sys.executable, str(tmp / "loop.py"), str(source), str(tmp / f"cv{run}"), "1000"]
            ours = cli + ["filters", "render", str(source), "--index", "0:1000", "--no-sheet", "-o",
                          str(tmp / f"ours{run}"), "--quiet"]
            pair = [(theirs, t_theirs), (ours, t_ours)]
            # Each goes first in every other round: creating 25,000 files costs the kernel more or less with
            # what the file system went through just before (on ext4 without a journal, recently deleted
            # inodes are skipped one by one), so a fixed order would favour one side.
            for argv, times in pair if run % 2 == 0 else pair[::-1]:
                elapsed, status, _ = run_timed(argv)
                if status != 0:
                    return Row(name, "-", "-", None, goal, False, f"{argv[0]} failed ({status})")
                times.append(elapsed)
        count = sum(1 for _ in (tmp / "ours0").rglob("*.png"))
        count_cv = sum(1 for _ in (tmp / "cv0").rglob("*.png"))
    t, r = min(t_ours), min(t_theirs)
    limit = float(goal.split()[-1]) if goal.startswith("≤") else 1.0  # a reported row: "(faster)" or not
    return Row(name, ms(t), f"OpenCV loop {ms(r)}", t / r, goal, t / r <= limit,
               f"{count:,} PNGs (OpenCV {count_cv:,}); best of {len(t_ours)} runs each")


def fashion_mnist_test() -> Path | None:
    for folder in (os.environ.get("CONVCLI_FASHION_MNIST", ""), "/usr/share/datasets/fashion-mnist",
                   "/tmp/fmnist/usr/share/datasets/fashion-mnist"):
        path = Path(folder) / "t10k-images-idx3-ubyte.gz" if folder else None
        if path is not None and path.is_file():
            return path
    return None


# ----------------------------------------------------------------------------- main

BENCHES = {
    "forward": bench_forward_backward,
    "batch": bench_batch_bank,
    "startup": bench_startup,
    "e2e": bench_end_to_end,
    "opencv": bench_opencv,
    "large": bench_large_kernels,
    "e2e-opencv": bench_end_to_end_opencv,
    "render": bench_render,
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

    cv2 = opencv()
    print(
        f"numpy {np.__version__}, scipy {scipy.__version__}, OpenCV {cv2.__version__ if cv2 else '(not installed)'}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; {load()} at the start\n"
        f"best of {2 * args.repeat + 1} alternating rounds for 1-2, 6-7 and 9, "
        f"{max(2, args.repeat // 3)} for 3 (5 convcli calls each), "
        f"{max(20, args.repeat * 5)} for 4, {max(3, args.repeat // 2)} for 5 and 10, {max(3, args.repeat)} for 8 "
        f"({max(2, args.repeat // 3)} for 300x300), {max(2, args.repeat // 4)} for 11\n",
        flush=True,
    )
    compile_convcli()
    rows: list[Row] = []
    for name in names:
        rows += BENCHES[name](args.repeat)
    print(f"{load()} at the end\n")
    print("| target | convcli | reference | ratio | goal | met | notes |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        met = {True: "yes", False: "**NO**", None: "skipped"}[row.passed]
        if row.goal == "report":
            met = "(faster)" if row.passed else "(slower)"
        print(f"| {row.target} | {row.convcli} | {row.reference} | {ratio} | {row.goal} | {met} | {row.note} |")
    return 1 if any(row.passed is False and row.goal != "report" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
