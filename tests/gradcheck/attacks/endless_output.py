"""Print without a newline from dot_forward: for ever, or ENDLESS_MIB mebibytes then the right answer."""
import sys

import numpy as np

MIB = None  # the test writes a number here for the finite variant
CHUNK = "x" * 2**20


def dot_forward(x, w):
    count = -1 if MIB is None else MIB
    while count != 0:
        sys.stdout.write(CHUNK)
        count -= 1
    sys.stdout.flush()
    return float(np.sum(x * w))


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}
