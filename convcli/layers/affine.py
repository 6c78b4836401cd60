"""The Dense (fully connected) layer: ``x @ w + b``, forward and backward (numpy only).

The cs231n form: ``x`` of shape ``(N, d1, ..., dk)`` is read as ``N`` rows of
``D = d1*...*dk`` numbers.  The Dot layer (:mod:`.dot`) is this layer's
one-output case.
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ShapeError
from convcli.layers._geometry import _as_float


def affine_forward(x, w, b=None) -> np.ndarray:
    """The Dense layer: ``x.reshape(N, D) @ w + b``.

    Parameters
    ----------
    x : array_like, shape ``(N, d1, ..., dk)``, read as ``(N, D)`` with ``D = d1*...*dk``
    w : array_like, shape ``(D, M)``
    b : array_like, shape ``(M,)``, optional

    Returns
    -------
    ndarray of float64, shape ``(N, M)``

    Examples
    --------
    >>> affine_forward(np.ones((2, 2, 3)), np.ones((6, 4)), [0, 1, 2, 3])
    array([[6., 7., 8., 9.],
           [6., 7., 8., 9.]])
    """
    x2, w, b = _prepare(x, w, b)
    out = x2 @ w
    if b is not None:
        out += b
    return out


def affine_backward(x, w, dout=None, b=None) -> dict:
    """Backward pass of :func:`affine_forward`.

    With ``out = x2 @ w + b`` the chain rule gives ``dx2 = dout @ w.T``,
    ``dw = x2.T @ dout`` and ``db = dout`` summed over the rows.

    Parameters
    ----------
    x, w, b
        As for :func:`affine_forward`.
    dout : array_like, shape ``(N, M)``, optional
        The upstream gradient; all ones when omitted.

    Returns
    -------
    dict
        ``{'x': dx, 'w': dw}`` with x's own shape ``(N, d1, ..., dk)`` and
        w's shape, plus ``'b': db`` of shape ``(M,)`` when a bias was given.
    """
    x2, w, bias = _prepare(x, w, b)
    shape = (x2.shape[0], w.shape[1])
    if dout is None:
        dout = np.ones(shape)
    dout = _as_float(dout, "dout")
    if dout.shape != shape:
        raise ShapeError(f"dout must have the output's shape {shape}; got shape {dout.shape}")
    grads = {"x": (dout @ w.T).reshape(np.shape(x)), "w": x2.T @ dout}
    if bias is not None:
        grads["b"] = dout.sum(axis=0)
    return grads


def _prepare(x, w, b):
    """``x`` as float64 ``(N, D)``, ``w`` as ``(D, M)`` and ``b`` as ``(M,)`` or None, checked."""
    x, w = _as_float(x, "x"), _as_float(w, "w")
    if x.ndim < 2:
        raise ShapeError(f"x must have shape (N, d1, ..., dk), at least 2 dimensions; got shape {x.shape}")
    if w.ndim != 2:
        raise ShapeError(f"w must have shape (D, M); got shape {w.shape}")
    x2 = x.reshape(x.shape[0], -1)
    if w.shape[0] != x2.shape[1]:
        raise ShapeError(
            f"w must have D = {x2.shape[1]} rows (x of shape {x.shape} is read as (N, D) = {x2.shape});"
            f" got w shape {w.shape}"
        )
    if b is not None:
        b = _as_float(b, "b")
        if b.shape != (w.shape[1],):
            raise ShapeError(f"b must have shape ({w.shape[1]},), one number per output; got shape {b.shape}")
    return x2, w, b
