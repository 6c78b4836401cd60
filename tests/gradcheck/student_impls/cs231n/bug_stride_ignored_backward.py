"""Planted bug: conv_backward_naive steps its windows by 1 whatever the stride.
The other functions are the correct ones of loops.py."""
import numpy as np
from loops import affine_backward, affine_forward, conv_forward_naive, max_pool_backward_naive, max_pool_forward_naive  # noqa: F401  (correct)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = 1, conv_param["pad"]  # BUG
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    _, _, H_out, W_out = dout.shape
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    dw[f] += window * dout[n, f, i, j]
                    dxp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW] += w[f] * dout[n, f, i, j]
    dx = dxp[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db
