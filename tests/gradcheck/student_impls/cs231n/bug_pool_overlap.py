"""Planted bug: max_pool_backward_naive assigns instead of adding: overlapping windows lose gradient.
The other functions are the correct ones of loops.py."""
import numpy as np
from loops import affine_backward, affine_forward, conv_backward_naive, conv_forward_naive, max_pool_forward_naive  # noqa: F401  (correct)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    dx = np.zeros_like(x)
    _, _, H_out, W_out = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw]
                    r, s = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + r, j * stride + s] = dout[n, c, i, j]  # BUG
    return dx
