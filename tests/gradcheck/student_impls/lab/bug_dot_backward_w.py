"""Planted bug: dot_backward's gradient for w uses w instead of x.  Only dot_backward:w fails.
The other functions are the correct ones of vectorized.py."""
from vectorized import conv_backward, conv_forward, dot_forward  # noqa: F401  (correct)


def dot_backward(x, w, da=1.0):
    return {"x": da * w, "w": da * w}  # BUG: should be da * x
