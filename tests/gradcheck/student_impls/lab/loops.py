"""A correct student solution written with explicit loops (any kernel shape, any image shape)."""
import numpy as np


def dot_forward(x, w):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            total += x[i, j] * w[i, j]
    return total


def dot_backward(x, w, da=1.0):
    return {"x": da * w, "w": da * x}


def conv_forward(X, w):
    H, W = X.shape
    F1, F2 = w.shape
    A = np.zeros((H - F1 + 1, W - F2 + 1))
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            A[i, j] = dot_forward(X[i:i + F1, j:j + F2], w)
    return A


def conv_backward(X, w, dA=None):
    F1, F2 = w.shape
    if dA is None:
        dA = np.ones((X.shape[0] - F1 + 1, X.shape[1] - F2 + 1))
    dX, dw = np.zeros_like(X), np.zeros_like(w)
    for i in range(dA.shape[0]):
        for j in range(dA.shape[1]):
            grads = dot_backward(X[i:i + F1, j:j + F2], w, dA[i, j])
            dX[i:i + F1, j:j + F2] += grads["x"]
            dw += grads["w"]
    return {"X": dX, "w": dw}
