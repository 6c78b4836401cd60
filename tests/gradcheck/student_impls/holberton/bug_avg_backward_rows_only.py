"""Planted bug: pool_backward (avg) divides by the window's height only.
The other functions are the correct ones of vectorized.py."""
import numpy as np
from vectorized import _pads, conv_backward, conv_forward, pool_forward  # noqa: F401  (correct)


def pool_backward(dA, A_prev, kernel_shape, stride=(1, 1), mode="max"):
    m, h_new, w_new, c = dA.shape
    kh, kw = kernel_shape
    sh, sw = stride
    dA_prev = np.zeros_like(A_prev)
    for n in range(m):
        for i in range(h_new):
            for j in range(w_new):
                for k in range(c):
                    rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                    if mode == "max":
                        window = A_prev[n, rows, cols, k]
                        mask = window == np.max(window)
                        dA_prev[n, rows, cols, k] += mask * dA[n, i, j, k]
                    else:
                        dA_prev[n, rows, cols, k] += dA[n, i, j, k] / kh  # BUG
    return dA_prev
