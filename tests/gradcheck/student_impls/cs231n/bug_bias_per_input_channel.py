"""Planted bug: conv_forward_naive adds the bias once per input channel.
The other functions are the correct ones of loops.py."""
import numpy as np
from loops import affine_backward, affine_forward, conv_backward_naive, max_pool_backward_naive, max_pool_forward_naive  # noqa: F401  (correct)


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    assert (H + 2 * pad - HH) % stride == 0 and (W + 2 * pad - WW) % stride == 0
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = sum(np.sum(window[c] * w[f, c]) + b[f] for c in range(C))  # BUG
    return out, (x, w, b, conv_param)
