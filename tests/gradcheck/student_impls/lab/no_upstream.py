"""dot_backward has no upstream-gradient parameter: it cannot be chained, so it fails."""
import numpy as np


def dot_forward(x, w):
    return np.sum(x * w)


def dot_backward(x, w):
    return {"x": w, "w": x}
