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


# ----------------------------------------------------------------------------- the Conv layer's forms


def _channels_form(X, w, dilation, groups) -> bool:
    """Whether the channels path computes this call: a 4-D form, dilation or groups."""
    return np.ndim(w) == 4 or np.ndim(X) == 4 or _pair(dilation, "dilation", minimum=1) != (1, 1) or groups != 1


def _prepare_channels(X, w, groups):
    """float64 ``(N, C, H, W)`` images and ``(K, C/groups, Fh, Fw)`` kernels, and which axes to squeeze out.

    One-channel forms (2-D/3-D ``X`` and ``w``, here because of ``dilation``)
    become ``C = 1``; one ``(C, H, W)`` image with a 4-D ``w`` becomes ``N = 1``.
    """
    X, w = _as_float(X, "X"), _as_float(w, "w")
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ParameterError(f"groups must be a whole number >= 1; got {groups!r}")
    if X.ndim in (2, 3) and w.ndim in (2, 3):
        squeeze = (X.ndim == 2, w.ndim == 2)
        X4, w4 = X.reshape((-1, 1) + X.shape[-2:]), w.reshape((-1, 1) + w.shape[-2:])
    elif w.ndim == 4 and X.ndim in (3, 4):
        squeeze = (X.ndim == 3, False)
        X4, w4 = (X[None] if X.ndim == 3 else X), w
    elif w.ndim == 4:
        raise ShapeError(
            f"with w of shape (K, C // groups, Fh, Fw), X must have shape (N, C, H, W) or (C, H, W); got shape {X.shape}"
        )
    elif X.ndim == 4:
        raise ShapeError(
            f"X of shape {X.shape} is (N, C, H, W) and needs w of shape (K, C // groups, Fh, Fw); got w shape {w.shape}"
        )
    else:
        raise ShapeError(f"X must have shape (H, W), (N, H, W) or (N, C, H, W); got shape {X.shape} (w {w.shape})")
    if 0 in X4.shape or 0 in w4.shape:
        raise ShapeError(f"X and w must not be empty; got X {X.shape} and w {w.shape}")
    c, (k, cg) = X4.shape[1], w4.shape[:2]
    if c % groups:
        raise ParameterError(f"groups must divide the input channels C = {c}; got groups={groups}")
    if k % groups:
        raise ParameterError(f"groups must divide the number of kernels K = {k} (w.shape[0]); got groups={groups}")
    if cg * groups != c:
        raise ShapeError(
            f"w.shape[1] must be C // groups = {c // groups} (X has C = {c} channels, groups={groups});"
            f" got w shape {w.shape}"
        )
    return X4, w4, squeeze


def _bias(b, n_kernels: int) -> "np.ndarray | None":
    """The bias as a float64 array of shape ``(K,)`` (or ``()`` for one kernel), or None."""
    if b is None:
        return None
    b = _as_float(b, "b")
    if b.shape == (n_kernels,) or (b.ndim == 0 and n_kernels == 1):
        return b
    scalar = " or a scalar" if n_kernels == 1 else ""
    raise ShapeError(f"b must have shape ({n_kernels},), one number per kernel{scalar}; got shape {b.shape}")


def _zero_pads(X4: np.ndarray, pads, border: str):
    """``(X, pads)`` for the channels path: zero pads stay implicit; other borders are padded here."""
    if _border_mode(border) == "constant" or pads == ((0, 0), (0, 0)):
        return X4, pads
    return _pad(X4, pads, border), ((0, 0), (0, 0))


def _flipped(w: np.ndarray, flip: bool) -> np.ndarray:
    """The kernels rotated by 180 degrees on their last two axes when ``flip``."""
    return w[..., ::-1, ::-1] if flip else w
