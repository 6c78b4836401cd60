"""Planted bug: dw starts as NaN (to catch missed elements) and the loop misses
the last row of taps.  Only conv_backward:w fails, on a non-finite value.
The other functions are the correct ones of vectorized.py."""
import numpy as np
from vectorized import conv_forward, dot_backward, dot_forward  # noqa: F401  (correct)


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
