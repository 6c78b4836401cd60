"""Planted bug: dot_forward adds a constant.  Only the dot_forward check fails
(the constant has no gradient, so dot_backward still matches this forward).
The other functions are the correct ones of vectorized.py."""
import numpy as np
from vectorized import conv_backward, conv_forward, dot_backward  # noqa: F401  (correct)


def dot_forward(x, w):
    return np.sum(x * w) + 1.0  # BUG: stray bias
