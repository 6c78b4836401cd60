"""Planted bug: conv_forward_naive pads by 1 whatever conv_param['pad'] says.
The other functions are the correct ones of loops.py."""
import numpy as np
from loops import affine_backward, affine_forward, conv_backward_naive, max_pool_backward_naive, max_pool_forward_naive  # noqa: F401  (correct)


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    assert (H + 2 * pad - HH) % stride == 0 and (W + 2 * pad - WW) % stride == 0
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # BUG
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, (x, w, b, conv_param)
