"""Planted bug: affine_backward returns dx as (N, D), not in x's own shape.
The other functions are the correct ones of loops.py."""
from loops import affine_forward, conv_backward_naive, conv_forward_naive, max_pool_backward_naive, max_pool_forward_naive  # noqa: F401  (correct)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout @ w.T  # BUG
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db
