"""Planted bug: conv_forward flips the kernel (a true convolution), and conv_backward is its exact gradient.

Checked only against its own forward, this backward would pass; against convcli's
gradient it fails, with a message saying it matches the wrong forward.
"""
import numpy as np
from scipy.signal import convolve2d


def dot_forward(x, w):
    return np.sum(x * w)


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}


def conv_forward(X, w):
    return convolve2d(X, w, mode="valid")  # BUG: correlate2d is what the lab means


def conv_backward(X, w, dA):
    dX = convolve2d(dA, w[::-1, ::-1], mode="full")  # the exact gradient of the flipped forward
    dw = convolve2d(X[::-1, ::-1], dA, mode="valid")
    return {"X": dX, "w": dw}
