"""A correct solution that imports a package missing where it is checked, used in dot_backward only."""
import numpy as np
import h5py  # not installed where the check runs
from numpy.lib.stride_tricks import sliding_window_view


def dot_forward(x, w):
    return float(np.tensordot(x, w, axes=2))


def dot_backward(x, w, da=1.0):
    h5py.File  # the only function that needs it
    return {"x": w * da, "w": x * da}


def conv_forward(X, w):
    windows = sliding_window_view(X, w.shape)          # (H', W', F1, F2)
    return np.einsum("ijkl,kl->ij", windows, w)


def conv_backward(X, w, dA=None):
    windows = sliding_window_view(X, w.shape)
    if dA is None:
        dA = np.ones(windows.shape[:2])
    dw = np.einsum("ijkl,ij->kl", windows, dA)
    dX = np.zeros_like(X)
    F1, F2 = w.shape
    for k in range(F1):                                # loop over kernel taps only
        for l in range(F2):
            dX[k:k + dA.shape[0], l:l + dA.shape[1]] += w[k, l] * dA
    return {"X": dX, "w": dw}
