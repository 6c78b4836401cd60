"""Planted bug: conv_backward returns its kernel gradient under the key 'W'.
Only conv_backward:w fails (no gradient for 'w')."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def dot_forward(x, w):
    return np.sum(x * w)


def dot_backward(x, w, da=1.0):
    return {"x": da * w, "w": da * x}


def conv_forward(X, w):
    return np.einsum("ijkl,kl->ij", sliding_window_view(X, w.shape), w)


def conv_backward(X, w, dA):
    dw = np.einsum("ijkl,ij->kl", sliding_window_view(X, w.shape), dA)
    dX = np.zeros_like(X)
    for k, l in np.ndindex(w.shape):
        dX[k:k + dA.shape[0], l:l + dA.shape[1]] += w[k, l] * dA
    return {"X": dX, "W": dw}  # BUG: the key should be 'w'
