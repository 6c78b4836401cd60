"""convcli's deep-learning layers against ``torch.nn.functional`` on the CPU, side by side in one run.

    python benchmarks/bench_layers.py                 # the five targets, 2 threads each side
    python benchmarks/bench_layers.py --repeat 21     # more rounds (less noise)
    python benchmarks/bench_layers.py --passes 1      # all of a target's rounds at once
    python benchmarks/bench_layers.py --threads 1     # one thread each side

torch is a benchmark-only dependency (``pip install torch``); without it the
run says so and exits 0.  Both sides use float64 and the same number of
threads: ``torch.set_num_threads(n)`` and, for numpy, OpenBLAS/MKL/OpenMP
thread variables set to ``n`` before numpy is imported, and convcli's own
threads set to ``n`` (large layers run on them with one-thread BLAS, as torch
runs its batch on its threads).  Each target runs convcli and torch alternately,
several rounds (in each, a warm-up call and three timed calls of one side,
then of the other), and compares the best time of each (the least disturbed
by other work on the machine).  The rounds are spread over ``--passes`` passes
through all targets, so that a slow spell of a shared machine, which can last
seconds, does not take all of one target's rounds.  It also checks that both
give the same numbers.  The table is Markdown; the exit status is 1 when a
target is missed.

Targets (issue #10), ratio = convcli time / torch time:

1. forward, ``(8, 64, 56, 56) x (64, 64, 3, 3)``, padding 1, bias: <= 0.7
2. forward + backward (dX, dw, db), same shapes: <= 0.7
3. forward, ``(64, 3, 32, 32) x (16, 3, 5, 5)``: <= 0.7
4. forward + backward, same shapes: <= 0.7
5. max-pool 2x2 forward + backward on ``(8, 64, 56, 56)``: <= 1.0
"""

from __future__ import annotations

import argparse
import os
import sys


def _threads_from_argv(argv) -> int:
    """``--threads`` must be known before numpy is imported (BLAS reads its variables at load time)."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 2


THREADS = _threads_from_argv(sys.argv[1:])
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(THREADS)

import numpy as np  # noqa: E402  (after the thread variables)
from timing import best_of  # noqa: E402

#: Timed calls of each side in each round, after one untimed call (see :func:`timing.best_of`).
TIMED = 3


def rel_diff(ours, ref) -> float:
    """``max |ours - ref| / max |ref|``."""
    ref = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    return float(np.abs(np.asarray(ours) - ref).max() / np.abs(ref).max())


def conv_cases(torch, X_shape, w_shape, padding, bias, labels):
    """Forward, then forward + backward, of one conv layer shape: ``(label, ours, torch's, goal, max rel. diff)``."""
    import torch.nn.functional as F

    from convcli.layers import conv_backward, conv_forward

    rng = np.random.default_rng(0)
    X, w = rng.standard_normal(X_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if bias else None
    tX, tw = torch.tensor(X, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    A = conv_forward(X, w, b, padding=padding)
    G = rng.standard_normal(A.shape)
    tG = torch.tensor(G)

    def ours_fb():
        conv_forward(X, w, b, padding=padding)
        return conv_backward(X, w, G, b, padding=padding)

    def torch_fb():
        out = F.conv2d(tX, tw, tb, 1, padding)
        return torch.autograd.grad(out, [t for t in (tX, tw, tb) if t is not None], tG)

    def torch_fwd():
        with torch.no_grad():
            return F.conv2d(tX, tw, tb, 1, padding)

    grads, tgrads = ours_fb(), torch_fb()
    fwd_diff = rel_diff(A, torch_fwd())
    bwd_diff = max(rel_diff(grads[k], t) for k, t in zip(("X", "w", "b"), tgrads))
    return [(labels[0], lambda: conv_forward(X, w, b, padding=padding), torch_fwd, 0.7, fwd_diff),
            (labels[1], ours_fb, torch_fb, 0.7, max(fwd_diff, bwd_diff))]


def pool_case(torch):
    """Max-pool 2x2, forward + backward."""
    import torch.nn.functional as F

    from convcli.layers import pool_backward, pool_forward

    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 64, 56, 56))
    G = rng.standard_normal((8, 64, 28, 28))
    tX, tG = torch.tensor(X, requires_grad=True), torch.tensor(G)

    def ours():
        pool_forward(X, 2)
        return pool_backward(X, G, 2)["X"]

    def theirs():
        return torch.autograd.grad(F.max_pool2d(tX, 2), tX, tG)[0]

    diff = max(rel_diff(pool_forward(X, 2), F.max_pool2d(tX, 2)), rel_diff(ours(), theirs()))
    return [("5. max-pool 2x2 fwd + bwd, (8, 64, 56, 56)", ours, theirs, 1.0, diff)]


def measure(cases, rounds: int, passes: int) -> list:
    """``(label, convcli s, torch s, goal, diff)`` per case: the best of ``rounds`` rounds over ``passes`` passes."""
    best = [[float("inf"), float("inf")] for _ in cases]
    for p in range(passes):
        share = rounds // passes + (p < rounds % passes)  # the rounds split exactly: `rounds` in all
        for times, (_, ours, theirs, _, _) in zip(best, cases):
            mine, ref = best_of(share, ours, theirs, candidate_runs=TIMED, reference_runs=TIMED, freeze=True)
            times[0], times[1] = min(times[0], mine), min(times[1], ref)
    return [(label, mine, ref, goal, diff) for (mine, ref), (label, _, _, goal, diff) in zip(best, cases)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=11, help="alternating rounds per target (default 11)")
    parser.add_argument("--threads", type=int, default=2, help="threads for each side (default 2)")
    parser.add_argument("--passes", type=int, default=3,
                        help="passes through all targets sharing the rounds (default 3)")
    args = parser.parse_args(argv)
    passes = max(1, min(args.passes, args.repeat))  # a pass has at least one round
    try:
        import torch
    except ImportError:
        print("torch is not installed (pip install torch): nothing to compare with; skipped")
        return 0
    torch.set_num_threads(args.threads)
    from convcli.layers import _channels, _threads

    _channels.THREADS = _threads.THREADS = args.threads
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"numpy {np.__version__}, torch {torch.__version__}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, {args.threads} threads each side, float64, load average {load:.2f}, "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
        f"best of {args.repeat} alternating rounds in {passes} passes\n",
        flush=True,
    )
    cases = conv_cases(torch, (8, 64, 56, 56), (64, 64, 3, 3), 1, True,
                       ("1. conv fwd (8,64,56,56)x(64,64,3,3), pad 1, bias", "2. conv fwd + bwd (dX, dw, db), same"))
    cases += conv_cases(torch, (64, 3, 32, 32), (16, 3, 5, 5), 0, False,
                        ("3. conv fwd (64,3,32,32)x(16,3,5,5)", "4. conv fwd + bwd (dX, dw), same"))
    cases += pool_case(torch)
    rows = measure(cases, args.repeat, passes)
    print("| target | convcli | torch | ratio | goal | met | max rel. diff |")
    print("|---|---|---|---|---|---|---|")
    missed = False
    for label, mine, ref, goal, diff in rows:
        met = mine / ref <= goal and diff <= 1e-12
        missed |= not met
        print(f"| {label} | {mine * 1e3:.1f} ms | {ref * 1e3:.1f} ms | {mine / ref:.2f} | ≤ {goal} | "
              f"{'yes' if met else '**NO**'} | {diff:.1e} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
