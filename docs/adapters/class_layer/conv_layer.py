"""A student's conv layer written as a class (the style of many courses and of Keras/PyTorch modules).

``Conv2D(W, b, stride, pad)`` holds its weights; ``forward(x)`` keeps what the
backward needs; ``backward(dout)`` returns dx and stores ``dW`` and ``db``.
"""
import numpy as np


class Conv2D:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x):
        self.x = x
        s, p = self.stride, self.pad
        F, C, HH, WW = self.W.shape
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        H_out = (xp.shape[2] - HH) // s + 1
        W_out = (xp.shape[3] - WW) // s + 1
        out = np.zeros((x.shape[0], F, H_out, W_out))
        for i in range(H_out):
            for j in range(W_out):
                window = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
                out[:, :, i, j] = np.tensordot(window, self.W, axes=([1, 2, 3], [1, 2, 3])) + self.b
        return out

    def backward(self, dout):
        s, p = self.stride, self.pad
        F, C, HH, WW = self.W.shape
        xp = np.pad(self.x, ((0, 0), (0, 0), (p, p), (p, p)))
        dxp = np.zeros_like(xp)
        self.dW = np.zeros_like(self.W)
        self.db = dout.sum(axis=(0, 2, 3))
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                window = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
                self.dW += np.tensordot(dout[:, :, i, j], window, axes=([0], [0]))
                dxp[:, :, i * s:i * s + HH, j * s:j * s + WW] += np.tensordot(dout[:, :, i, j], self.W, axes=([1], [0]))
        return dxp[:, :, p:p + self.x.shape[2], p:p + self.x.shape[3]]
