"""Measure the constants of convcli's path cost model (convcli/layers/_dispatch.py) on this machine.

    python benchmarks/calibrate.py            # prints measured and current constants
    python benchmarks/calibrate.py --check    # also says which path is really fastest near each crossover

Each path is timed alone (best of a few runs) on 2048x2048 float64 images, and
its constant is the time divided by the work the model counts.  The model only
needs the ratios between the constants to be right; run this on a quiet
machine (the load average is printed with the figures).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def best(func, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="time every path near the crossovers")
    args = parser.parse_args()

    from convcli.layers import _direct, _dispatch, _fastconv, _fftconv, _matmul, _separable

    rng = np.random.default_rng(0)
    size = 2048
    X = rng.standard_normal((1, size, size))
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    def taps(f):
        w = rng.standard_normal((1, f, f))
        pads = (((f - 1) // 2, f // 2),) * 2
        return best(lambda: _fastconv.correlate_taps(X, w, pads)), f * f

    def direct(f):
        w = rng.standard_normal((1, f, f))
        pads = (((f - 1) // 2, f // 2),) * 2
        return best(lambda: _direct.correlate_direct(X, w, pads))

    (t3, n3), (t7, n7) = taps(3), taps(7)
    pixels = size * size
    tap = (t7 - t3) / (n7 - n3) / pixels * 1e9
    pixel = t3 / pixels * 1e9 - n3 * tap
    d3, d7 = direct(3), direct(7)
    direct_pixel = d3 / pixels * 1e9 - n3 * (d7 - d3) / (n7 - n3) / pixels * 1e9

    g = np.exp(-0.5 * (np.arange(7) - 3) ** 2 / 2.0)
    w = np.outer(g, g)[None]
    factors = [_separable.factor(w[0])]
    t_sep = best(lambda: _separable.correlate_separable(X, w, factors, ((3, 3), (3, 3))))
    separable = (t_sep / pixels * 1e9 - 14 * tap) / pixel

    fft = []
    for f in (15, 31):
        w = rng.standard_normal((1, f, f))
        pads = (((f - 1) // 2, f // 2),) * 2
        tile, units = _fftconv.tile_shape((f, f), (size + f - 1, size + f - 1))
        fft.append(best(lambda: _fftconv.correlate_fft(X, w, pads, tile=tile), 3) / units * 1e9)

    def matmul(k, f):
        w = rng.standard_normal((k, f, f))
        pads = (((f - 1) // 2, f // 2),) * 2
        return best(lambda: _matmul.correlate_matmul(X, w, pads, (1, 1)), 3) / (pixels * f * f) * 1e9

    m4, m16 = matmul(4, 3), matmul(16, 3)
    mac = (m16 - m4) / 12
    copy = m4 - 4 * mac

    print("constant    measured   current")
    for name, value in (("TAP", tap), ("PIXEL", pixel), ("DIRECT", direct_pixel), ("SEPARABLE", separable),
                        ("FFT", float(np.mean(fft))),
                        ("COPY", copy), ("MAC", mac)):
        print(f"{name:10s} {value:9.3f} {getattr(_dispatch, name):9.3f}")

    if args.check:
        for f in (7, 9, 11, 13, 15):
            w = rng.standard_normal((1, f, f))
            pads = (((f - 1) // 2, f // 2),) * 2
            t_taps = best(lambda: _fastconv.correlate_taps(X, w, pads), 3)
            t_fft = best(lambda: _fftconv.correlate_fft(X, w, pads), 3)
            chosen = _dispatch.plan(X, w, pads, (1, 1))[0][0]
            print(f"{f}x{f} random: taps {t_taps * 1e3:.0f} ms, fft {t_fft * 1e3:.0f} ms -> model picks {chosen}")


if __name__ == "__main__":
    main()
