"""Planted bug: conv_forward_naive flips the kernel (a convolution), and conv_backward_naive is its exact gradient.
The other functions are the correct ones of loops.py."""
import numpy as np
from loops import affine_backward, affine_forward, max_pool_backward_naive, max_pool_forward_naive  # noqa: F401  (correct)


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
                    out[n, f, i, j] = np.sum(window * w[f, :, ::-1, ::-1]) + b[f]  # BUG: flips the kernel
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
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
                    dw[f] += (window * dout[n, f, i, j])[:, ::-1, ::-1]  # matches the flipped forward
                    dxp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW] += w[f, :, ::-1, ::-1] * dout[n, f, i, j]  # matches the flipped forward
    dx = dxp[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db
