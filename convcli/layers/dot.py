"""The Dot layer: ``sum(x * w)``, forward and backward (numpy only).

The lab's first layer: one window of a convolution.  :func:`dot_backward`
scales by its upstream gradient ``da``, which the lab's version forgot.
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ShapeError
from convcli.layers._geometry import _as_float, _same_shape


def dot_forward(x, w) -> float:
    """The Dot layer: ``sum(x * w)``.

    Parameters
    ----------
    x, w : array_like, the same shape (the lab uses ``(F, F)``)

    Returns
    -------
    float
    """
    x, w = _as_float(x, "x"), _as_float(w, "w")
    _same_shape(x, w, "x", "w")
    return float(np.sum(x * w))


def dot_backward(x, w, da=1.0) -> dict:
    """Backward pass of :func:`dot_forward`.

    With ``a = sum(x * w)`` and upstream gradient ``da = dL/da`` (a scalar),
    the chain rule gives ``dL/dx = da * w`` and ``dL/dw = da * x``.

    Returns
    -------
    dict
        ``{'x': dx, 'w': dw}``, each of the inputs' common shape.
    """
    x, w = _as_float(x, "x"), _as_float(w, "w")
    _same_shape(x, w, "x", "w")
    da = 1.0 if da is None else da
    da_arr = np.asarray(da, dtype=np.float64)
    if da_arr.size != 1:
        raise ShapeError(f"da must be a scalar (the Dot layer's output is one number); got shape {da_arr.shape}")
    da = float(da_arr.reshape(()))
    return {"x": da * w, "w": da * x}
