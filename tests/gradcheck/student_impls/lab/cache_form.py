"""A correct solution in the "cache" form of many tutorials: forwards return (out, cache)."""
import numpy as np


def dot_forward(x, w):
    return np.sum(x * w), (x, w)


def dot_backward(da, cache):
    x, w = cache
    return w * da, x * da


def conv_forward(X, w):
    F1, F2 = w.shape
    H, W = X.shape[0] - F1 + 1, X.shape[1] - F2 + 1
    A = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            A[i, j] = np.sum(X[i:i + F1, j:j + F2] * w)
    return A, (X, w)


def conv_backward(dA, cache):
    X, w = cache
    F1, F2 = w.shape
    dX, dw = np.zeros_like(X), np.zeros_like(w)
    for i in range(dA.shape[0]):
        for j in range(dA.shape[1]):
            dX[i:i + F1, j:j + F2] += w * dA[i, j]
            dw += X[i:i + F1, j:j + F2] * dA[i, j]
    return dX, dw
