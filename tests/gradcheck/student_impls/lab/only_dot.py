"""A student who has done only the Dot layer so far: the conv checks are skipped."""
import numpy as np


def dot_forward(x, w):
    return np.sum(x * w)


def dot_backward(x, w, da=None):
    da = 1.0 if da is None else da
    return {"x": da * w, "w": da * x}
