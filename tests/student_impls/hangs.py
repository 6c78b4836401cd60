"""dot_backward never returns; everything else is correct and must still be checked."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def dot_forward(x, w):
    return np.sum(x * w)


def dot_backward(x, w, da=1.0):
    while True:  # BUG: an infinite loop
        pass


def conv_forward(X, w):
    return np.einsum("ijkl,kl->ij", sliding_window_view(X, w.shape), w)


def conv_backward(X, w, dA):
    dw = np.einsum("ijkl,ij->kl", sliding_window_view(X, w.shape), dA)
    dX = np.zeros_like(X)
    for k, l in np.ndindex(w.shape):
        dX[k:k + dA.shape[0], l:l + dA.shape[1]] += w[k, l] * dA
    return {"X": dX, "w": dw}
