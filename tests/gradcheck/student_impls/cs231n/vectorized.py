"""cs231n assignment 2: a correct solution, vectorized (im2col with sliding windows, einsum)."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def affine_forward(x, w, b):
    return np.dot(x.reshape(len(x), -1), w) + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    return np.dot(dout, w.T).reshape(x.shape), np.dot(x.reshape(len(x), -1).T, dout), np.sum(dout, axis=0)


def _windows(xp, HH, WW, stride):
    return sliding_window_view(xp, (HH, WW), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, H', W', HH, WW)


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = _windows(xp, w.shape[2], w.shape[3], stride)
    out = np.einsum("nchwij,fcij->nfhw", windows, w) + b[None, :, None, None]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    F, C, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = _windows(xp, HH, WW, stride)
    dw = np.einsum("nchwij,nfhw->fcij", windows, dout)
    db = dout.sum(axis=(0, 2, 3))
    dxp = np.zeros_like(xp)
    H_out, W_out = dout.shape[2:]
    contribution = np.einsum("fcij,nfhw->nchwij", w, dout)
    for i in range(HH):
        for j in range(WW):
            dxp[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride] += contribution[..., i, j]
    return dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]], dw, db


def max_pool_forward_naive(x, pool_param):
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    windows = sliding_window_view(x, (ph, pw), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.max(axis=(4, 5)), (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    windows = sliding_window_view(x, (ph, pw), axis=(2, 3))[:, :, ::stride, ::stride]
    N, C, H_out, W_out = dout.shape
    flat = windows.reshape(N, C, H_out, W_out, ph * pw).argmax(axis=-1)
    r, s = np.divmod(flat, pw)
    rows = np.arange(H_out)[None, None, :, None] * stride + r
    cols = np.arange(W_out)[None, None, None, :] * stride + s
    n, c = np.arange(N)[:, None, None, None], np.arange(C)[None, :, None, None]
    dx = np.zeros_like(x)
    np.add.at(dx, (n, c, rows, cols), dout)
    return dx
