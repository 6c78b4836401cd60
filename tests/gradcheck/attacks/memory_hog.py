"""Allocate memory without end in dot_forward, touching every page."""
import numpy as np


def dot_forward(x, w):
    blocks = []
    while True:
        blocks.append(np.ones(2**24))  # 128 MiB each


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}
