"""Planted bug: dot_backward uses a matrix product with the scalar da, which
raises ValueError.  dot_backward:x and dot_backward:w fail, naming the line.
The other functions are the correct ones of vectorized.py."""
from vectorized import conv_backward, conv_forward, dot_forward  # noqa: F401  (correct)


def dot_backward(x, w, da=1.0):
    dx = w @ da  # BUG: matmul with a scalar raises ValueError
    return {"x": dx, "w": da * x}
