"""Planted bug: 'same' padding is 1 on each side, whatever the kernel."""
import numpy as np


def _pads(padding, h, w, kh, kw, sh, sw):
    if padding == "same":
        return 1, 1  # BUG  # BUG
    if padding == "valid":
        return 0, 0
    return padding


def conv_forward(A_prev, W, b, activation, padding="same", stride=(1, 1)):
    m, h_prev, w_prev, c_prev = A_prev.shape
    kh, kw, _, c_new = W.shape
    sh, sw = stride
    ph, pw = _pads(padding, h_prev, w_prev, kh, kw, sh, sw)
    padded = np.pad(A_prev, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    h_new = (h_prev + 2 * ph - kh) // sh + 1
    w_new = (w_prev + 2 * pw - kw) // sw + 1
    Z = np.zeros((m, h_new, w_new, c_new))
    for i in range(h_new):
        for j in range(w_new):
            window = padded[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            Z[:, i, j, :] = np.tensordot(window, W, axes=([1, 2, 3], [0, 1, 2]))
    return activation(Z + b)


def conv_backward(dZ, A_prev, W, b, padding="same", stride=(1, 1)):
    m, h_prev, w_prev, c_prev = A_prev.shape
    kh, kw, _, c_new = W.shape
    sh, sw = stride
    _, h_new, w_new, _ = dZ.shape
    ph, pw = _pads(padding, h_prev, w_prev, kh, kw, sh, sw)
    padded = np.pad(A_prev, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    dA = np.zeros_like(padded)
    dW = np.zeros_like(W)
    db = np.sum(dZ, axis=(0, 1, 2), keepdims=True)
    for i in range(h_new):
        for j in range(w_new):
            window = padded[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            dW += np.tensordot(window, dZ[:, i, j, :], axes=([0], [0]))
            dA[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :] += np.tensordot(dZ[:, i, j, :], W, axes=([1], [3]))
    return dA[:, ph:ph + h_prev, pw:pw + w_prev, :], dW, db


def pool_forward(A_prev, kernel_shape, stride=(1, 1), mode="max"):
    m, h_prev, w_prev, c_prev = A_prev.shape
    kh, kw = kernel_shape
    sh, sw = stride
    h_new, w_new = (h_prev - kh) // sh + 1, (w_prev - kw) // sw + 1
    A = np.zeros((m, h_new, w_new, c_prev))
    reduce = np.max if mode == "max" else np.mean
    for i in range(h_new):
        for j in range(w_new):
            A[:, i, j, :] = reduce(A_prev[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :], axis=(1, 2))
    return A


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
                        dA_prev[n, rows, cols, k] += dA[n, i, j, k] / (kh * kw)
    return dA_prev
