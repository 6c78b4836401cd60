"""Shared by the layers: padding and stride geometry, borders, and input validation (numpy only).

``pad_widths`` is public (the maps use it); the rest is private to :mod:`convcli.layers`.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from convcli.errors import ParameterError, ShapeError

Padding = Union[str, int, "tuple[int, int]"]

#: ``border`` names and the :func:`numpy.pad` mode each one means.
BORDERS = {"zero": "constant", "reflect": "reflect", "symmetric": "symmetric", "edge": "edge", "wrap": "wrap"}
PADDING_NAMES = ("valid", "same", "full")


def pad_widths(padding: Padding, kernel_shape, stride=1, dilation=1) -> "tuple[tuple[int, int], tuple[int, int]]":
    """How many rows and columns ``padding`` adds on each side.

    Parameters
    ----------
    padding : "valid", "same", "full", int or (ph, pw)
    kernel_shape : (Fh, Fw)
    stride : int or (sh, sw)
    dilation : int or (dh, dw)
        A dilated kernel spans ``d * (F - 1) + 1`` pixels, so ``same`` pads
        ``d * (F - 1)`` in total and ``full`` that much on each side.

    Returns
    -------
    ((top, bottom), (left, right))

    Examples
    --------
    >>> pad_widths("same", (4, 3))
    ((1, 2), (1, 1))
    """
    fh, fw = _span(kernel_shape, _pair(dilation, "dilation", minimum=1))
    strides = _pair(stride, "stride", minimum=1)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "full":
            return ((fh - 1, fh - 1), (fw - 1, fw - 1))
        if padding == "same":
            if strides != (1, 1):
                raise ParameterError(f"padding 'same' needs stride 1; got stride {stride!r}")
            return (((fh - 1) // 2, fh - 1 - (fh - 1) // 2), ((fw - 1) // 2, fw - 1 - (fw - 1) // 2))
        raise ParameterError(
            f"padding must be one of {', '.join(PADDING_NAMES)}, a whole number or a pair; got {padding!r}"
        )
    ph, pw = _pair(padding, "padding", minimum=0)
    return ((ph, ph), (pw, pw))


def _pair(value, name: str, *, minimum: int) -> "tuple[int, int]":
    """An int or a pair of ints, each >= minimum, as a pair."""
    items = value if isinstance(value, (tuple, list, np.ndarray)) else (value, value)
    if len(items) != 2:
        raise ParameterError(f"{name} must be a whole number or a pair of them; got {value!r}")
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise ParameterError(f"{name} must be a whole number or a pair of them; got {value!r}")
        if item < minimum:
            raise ParameterError(f"{name} must be >= {minimum}; got {value!r}")
        out.append(int(item))
    return out[0], out[1]


def _span(kernel_hw, dilations) -> "tuple[int, int]":
    """The pixels a dilated kernel spans: ``d * (F - 1) + 1`` on each axis."""
    return tuple(d * (int(f) - 1) + 1 for f, d in zip(kernel_hw, dilations))


def _geometry(image_hw, kernel_hw, padding, stride, dilation=1):
    """Validated pad widths and strides; refuses a kernel larger than the padded image."""
    dilations = _pair(dilation, "dilation", minimum=1)
    pads = pad_widths(padding, kernel_hw, stride, dilations)
    strides = _pair(stride, "stride", minimum=1)
    padded = (image_hw[0] + sum(pads[0]), image_hw[1] + sum(pads[1]))
    span = _span(kernel_hw, dilations)
    if span[0] > padded[0] or span[1] > padded[1]:
        what = f"kernel of shape {tuple(kernel_hw)}"
        if dilations != (1, 1):
            what += f" dilated by {dilations} (spanning {span})"
        raise ShapeError(
            f"{what} is larger than the image of shape {tuple(image_hw)}"
            f" padded to {padded} (padding {padding!r}); use a smaller kernel or more padding"
        )
    return pads, strides


def _output_hw(padded_hw, kernel_hw, strides, dilations=(1, 1)) -> "tuple[int, int]":
    """``(Hp - span) // s + 1`` on each axis, ``span = d * (F - 1) + 1``."""
    span = _span(kernel_hw, dilations)
    return tuple((p - f) // s + 1 for p, f, s in zip(padded_hw, span, strides))



def _pad(X3: np.ndarray, pads, border: str) -> np.ndarray:
    """Pad images ``(..., H, W)`` on their last two axes."""
    mode = _border_mode(border)
    if tuple(map(tuple, pads)) == ((0, 0), (0, 0)):
        return X3
    return np.pad(X3, ((0, 0),) * (X3.ndim - 2) + tuple(pads), mode=mode)


def _unpad(dXp: np.ndarray, x_shape, pads, border: str) -> np.ndarray:
    """The adjoint of :func:`_pad`: carry a gradient on the padded grid back to the pixels.

    Zero padding just crops.  For the other borders each padded cell is a copy
    of some pixel, found by padding an array of pixel numbers the same way; its
    gradient is added to that pixel (``np.bincount`` sums the repeats).
    """
    if len(x_shape) != 3:  # (N, C, H, W) and the like: the same, on N*C images
        images = int(np.prod(x_shape[:-2]))
        flat = _unpad(dXp.reshape((images,) + dXp.shape[-2:]), (images,) + tuple(x_shape[-2:]), pads, border)
        return flat.reshape(x_shape)
    n, h, w = x_shape
    (top, bottom), (left, right) = pads
    if _border_mode(border) == "constant":
        return np.ascontiguousarray(dXp[:, top : top + h, left : left + w])
    source = np.pad(np.arange(h * w).reshape(h, w), pads, mode=_border_mode(border)).ravel()
    offsets = (np.arange(n) * (h * w))[:, None]
    flat = np.bincount((source[None, :] + offsets).ravel(), weights=dXp.reshape(n, -1).ravel(), minlength=n * h * w)
    return flat.reshape(x_shape)


# ----------------------------------------------------------------------------- validation


def _as_float(a, name: str) -> np.ndarray:
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} must be an array of numbers; got {type(a).__name__} ({exc})") from None


def _same_shape(x: np.ndarray, w: np.ndarray, xname: str, wname: str) -> None:
    if x.shape != w.shape:
        raise ShapeError(f"{xname} and {wname} must have the same shape; got {xname} {x.shape} and {wname} {w.shape}")


def _border_mode(border: str) -> str:
    try:
        return BORDERS[border]
    except (KeyError, TypeError):
        raise ParameterError(f"border must be one of {', '.join(BORDERS)}; got {border!r}") from None
