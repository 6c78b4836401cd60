"""A correct student solution built on scipy.signal.

The gradient of a valid correlation is a full convolution for X and a valid
correlation of X with dA for w.
"""
import numpy as np
from scipy import signal


def dot_forward(x, w):
    return np.vdot(x, w)


def dot_backward(x, w, da=None):
    da = 1.0 if da is None else da
    return {"x": da * w, "w": da * x}


def conv_forward(X, w):
    return signal.correlate2d(X, w, mode="valid")


def conv_backward(X, w, dA=None):
    if dA is None:
        dA = np.ones((X.shape[0] - w.shape[0] + 1, X.shape[1] - w.shape[1] + 1))
    return {
        "X": signal.convolve2d(dA, w, mode="full"),
        "w": signal.correlate2d(X, dA, mode="valid"),
    }
