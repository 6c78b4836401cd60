"""Planted bug: conv_forward and conv_backward take the image as N x N from X.shape[0] (square images only)."""
import numpy as np


def dot_forward(x, w):
    return np.sum(x * w)


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}


def conv_forward(X, w):
    N = X.shape[0]  # BUG: the width is X.shape[1]
    F = w.shape[0]
    n = N - F + 1
    A = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            A[i, j] = dot_forward(X[i:i + F, j:j + F], w)
    return A


def conv_backward(X, w, dA):
    F = w.shape[0]
    dX, dw = np.zeros_like(X), np.zeros_like(w)
    for i in range(dA.shape[0]):
        for j in range(dA.shape[1]):
            grads = dot_backward(X[i:i + F, j:j + F], w, dA[i, j])
            dX[i:i + F, j:j + F] += grads["x"]
            dw += grads["w"]
    return {"X": dX, "w": dw}
