"""Planted bug: conv_backward steps its windows by 1 whatever the stride.
The other functions are the correct ones of vectorized.py."""
import numpy as np
from vectorized import _pads, conv_forward, pool_backward, pool_forward  # noqa: F401  (correct)


def conv_backward(dZ, A_prev, W, b, padding="same", stride=(1, 1)):
    m, h_prev, w_prev, c_prev = A_prev.shape
    kh, kw, _, c_new = W.shape
    sh, sw = 1, 1  # BUG
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
