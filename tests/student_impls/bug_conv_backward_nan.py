"""Planted bug: dw starts as NaN (to catch missed elements) and the loop misses
the last row of taps.  Only conv_backward:w fails, on a non-finite value."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def dot_forward(x, w):
    return np.sum(x * w)


def dot_backward(x, w, da=1.0):
    return {"x": da * w, "w": da * x}


def conv_forward(X, w):
    return np.einsum("ijkl,kl->ij", sliding_window_view(X, w.shape), w)


def conv_backward(X, w, dA):
    F1, F2 = w.shape
    dX = np.zeros_like(X)
    dw = np.full_like(w, np.nan)
    for k in range(F1 - 1):  # BUG: should be range(F1)
        for l in range(F2):
            dX[k:k + dA.shape[0], l:l + dA.shape[1]] += w[k, l] * dA
            dw[k, l] = np.sum(dA * X[k:k + dA.shape[0], l:l + dA.shape[1]])
    for l in range(F2):
        dX[F1 - 1:F1 - 1 + dA.shape[0], l:l + dA.shape[1]] += w[F1 - 1, l] * dA
    return {"X": dX, "w": dw}
