"""Planted bug: conv_backward's dX uses the kernel rotated by 180 degrees.
Only conv_backward:X fails.  The other functions are the correct ones of vectorized.py."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from vectorized import conv_forward, dot_backward, dot_forward  # noqa: F401  (correct)


def conv_backward(X, w, dA):
    dw = np.einsum("ijkl,ij->kl", sliding_window_view(X, w.shape), dA)
    dX = np.zeros_like(X)
    for k, l in np.ndindex(w.shape):
        dX[k:k + dA.shape[0], l:l + dA.shape[1]] += w[-1 - k, -1 - l] * dA  # BUG: should be w[k, l]
    return {"X": dX, "w": dw}
