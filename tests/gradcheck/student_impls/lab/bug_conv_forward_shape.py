"""Planted bug: conv_forward's output is one row and column short (off by one).

conv_forward fails on its shape; conv_backward still passes, because the
gradient check runs against the file's own (consistently short) forward pass.
The dot functions are the correct ones of vectorized.py."""
import numpy as np
from vectorized import dot_backward, dot_forward  # noqa: F401  (correct)


def conv_forward(X, w):
    N = X.shape[0]
    F = w.shape[0]
    n = N - F  # BUG: should be N - F + 1
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
            dX[i:i + F, j:j + F] += dA[i, j] * w
            dw += dA[i, j] * X[i:i + F, j:j + F]
    return {"X": dX, "w": dw}
