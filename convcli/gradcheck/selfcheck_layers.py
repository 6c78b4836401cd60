"""The self-check of the deep-learning layers: conv with channels, bias, dilation and groups; pooling; affine.

Each configuration gets a forward check against a direct loop over output
pixels written here, independently of :mod:`convcli.layers`, and one gradient
check per input (:func:`convcli.checking.gradient_check`, random upstream
gradient).  It covers groups 1, 2 and C (depthwise), dilation 2, a bias,
strides, paddings, and max/avg pooling with overlapping windows.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from convcli import layers
from convcli.checking import gradient_check
from convcli.gradcheck.settings import CheckSettings
from convcli.gradcheck.verdicts import compare_forward, gradcheck_records

#: (X shape, w shape, bias?, options)
CHANNEL_CONFIGS: "list[tuple[tuple, tuple, bool, dict[str, Any]]]" = [
    ((2, 3, 6, 7), (4, 3, 3, 3), True, dict(padding=1)),
    ((1, 3, 5, 6), (2, 3, 2, 3), False, dict(padding="valid", stride=2)),
    ((2, 4, 7, 6), (4, 2, 3, 2), True, dict(padding="same", groups=2)),
    ((1, 3, 7, 7), (3, 1, 3, 3), True, dict(padding=1, stride=2, groups=3)),  # depthwise
    ((2, 2, 9, 8), (3, 2, 3, 3), True, dict(padding="same", dilation=2)),
    ((1, 2, 8, 9), (2, 2, 2, 3), False, dict(padding=(2, 1), stride=(2, 1), dilation=(2, 1))),
    ((1, 4, 6, 6), (6, 2, 3, 3), True, dict(padding="full", dilation=2, groups=2)),
]
#: (X shape, size, options)
POOL_CONFIGS: "list[tuple[tuple, Any, dict[str, Any]]]" = [
    ((2, 3, 6, 8), 2, dict(mode="max")),
    ((2, 3, 6, 8), 2, dict(mode="avg")),
    ((2, 2, 7, 9), 3, dict(stride=2, mode="max")),  # overlapping
    ((2, 2, 7, 9), 3, dict(stride=2, mode="avg")),
    ((1, 1, 5, 6), (2, 3), dict(stride=1, mode="avg")),
    ((1, 2, 6, 7), 3, dict(stride=2, padding=1, mode="max")),
]
AFFINE_CONFIGS = [((3, 2, 4), 5), ((2, 7), 1)]


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _options(settings: CheckSettings) -> dict:
    return dict(eps=settings.eps, atol=settings.atol, rtol=settings.rtol, seed=settings.seed, mode=settings.mode)


def _label(function: str, shapes: "list[tuple]", options: dict) -> str:
    parts = ["x".join(str(n) for n in shape) for shape in shapes]
    parts += [f"{k}={v}".replace(" ", "") for k, v in options.items()]
    return f"{function}[{','.join(parts)}]"


def _check(name, forward, backward, reference, arrays, settings, upstream, function) -> list:
    record = compare_forward(f"{function}_forward", reference(**arrays), forward(**arrays),
                             atol=settings.atol, rtol=settings.rtol, reference="a direct loop over output pixels")
    record.name = name.replace("%s", "forward")
    result = gradient_check(forward, backward, upstream=upstream, **arrays, **_options(settings))
    names = {key: name.replace("%s", "backward") + f":{key}" for key in arrays}
    return [record] + gradcheck_records(result, names, function=f"{function}_backward", forward=f"{function}_forward")


def check_channels(settings: CheckSettings) -> list:
    records = []
    for X_shape, w_shape, bias, options in CHANNEL_CONFIGS:
        name = _label("conv_%s", [X_shape, w_shape], {**options, **({"bias": True} if bias else {})})
        rng = _rng(settings.seed, name)
        arrays = {"X": rng.standard_normal(X_shape), "w": rng.standard_normal(w_shape)}
        if bias:
            arrays["b"] = rng.standard_normal(w_shape[0])

        def conv_forward(X, w, b=None, options=options):
            return layers.conv_forward(X, w, b, **options)

        def conv_backward(X, w, dA, b=None, options=options):
            return layers.conv_backward(X, w, dA, b, **options)

        def reference(X, w, b=None, options=options):
            return reference_conv4(X, w, b, **options)

        records += _check(name, conv_forward, conv_backward, reference, arrays, settings, "dA", "conv")
    return records


def check_pooling(settings: CheckSettings) -> list:
    records = []
    for X_shape, size, options in POOL_CONFIGS:
        name = _label("pool_%s", [X_shape], {"size": size, **options})
        X = _rng(settings.seed, name).standard_normal(X_shape)

        def pool_forward(X, size=size, options=options):
            return layers.pool_forward(X, size, **options)

        def pool_backward(X, dA, size=size, options=options):
            return layers.pool_backward(X, dA, size, **options)

        def reference(X, size=size, options=options):
            return reference_pool(X, size, **options)

        records += _check(name, pool_forward, pool_backward, reference, {"X": X}, settings, "dA", "pool")
    return records


def check_affine(settings: CheckSettings) -> list:
    records = []
    for x_shape, m in AFFINE_CONFIGS:
        d = int(np.prod(x_shape[1:]))
        name = _label("affine_%s", [x_shape, (d, m)], {})
        rng = _rng(settings.seed, name)
        arrays = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal((d, m)), "b": rng.standard_normal(m)}

        def reference(x, w, b):
            return np.array([[sum(xi * w[k, j] for k, xi in enumerate(row)) + b[j] for j in range(w.shape[1])]
                             for row in x.reshape(len(x), -1)])

        records += _check(name, layers.affine_forward, layers.affine_backward, reference, arrays, settings,
                          "dout", "affine")
    return records


def planned(layer: str) -> int:
    if layer == "conv":
        return sum(3 + bias for _, _, bias, _ in CHANNEL_CONFIGS)
    if layer == "pool":
        return 2 * len(POOL_CONFIGS)
    return 4 * len(AFFINE_CONFIGS)


# ----------------------------------------------------------------------------- independent references


def _pair(value) -> "tuple[int, int]":
    return (value, value) if np.isscalar(value) else tuple(value)


def reference_conv4(X, w, b=None, *, padding="valid", stride=1, dilation=1, groups=1) -> np.ndarray:
    """``A[n, k, y, x] = b[k] + sum over c in k's group, i, j of Xp[n, c, y*sh + i*dh, x*sw + j*dw] * w[k, c, i, j]``."""
    N, C, H, W = X.shape
    K, Cg, fh, fw = w.shape
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    eh, ew = dh * (fh - 1) + 1, dw * (fw - 1) + 1  # the dilated kernel's extent
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    elif padding == "full":
        pads = ((eh - 1, eh - 1), (ew - 1, ew - 1))
    elif padding == "same":
        pads = (((eh - 1) // 2, eh // 2), ((ew - 1) // 2, ew // 2))
    else:
        ph, pw = _pair(padding)
        pads = ((ph, ph), (pw, pw))
    Xp = np.pad(X, ((0, 0), (0, 0)) + pads)
    out_h, out_w = (Xp.shape[2] - eh) // sh + 1, (Xp.shape[3] - ew) // sw + 1
    A = np.zeros((N, K, out_h, out_w))
    per_group = K // groups
    for n in range(N):
        for k in range(K):
            channels = slice((k // per_group) * Cg, (k // per_group + 1) * Cg)
            for y in range(out_h):
                for x in range(out_w):
                    patch = Xp[n, channels, y * sh:y * sh + eh:dh, x * sw:x * sw + ew:dw]
                    A[n, k, y, x] = np.sum(patch * w[k]) + (0.0 if b is None else b[k])
    return A


def reference_pool(X, size, *, stride=None, mode="max", padding=0) -> np.ndarray:
    """Max or mean of each window, padding left out of both (as torch with ``count_include_pad=False``)."""
    (fh, fw) = _pair(size)
    (sh, sw) = _pair(stride if stride is not None else size)
    ph, pw = _pair(padding)
    N, C, H, W = X.shape
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=np.nan)
    out_h, out_w = (H + 2 * ph - fh) // sh + 1, (W + 2 * pw - fw) // sw + 1
    A = np.zeros((N, C, out_h, out_w))
    for y in range(out_h):
        for x in range(out_w):
            window = Xp[:, :, y * sh:y * sh + fh, x * sw:x * sw + fw]
            A[:, :, y, x] = np.nanmax(window, axis=(2, 3)) if mode == "max" else np.nanmean(window, axis=(2, 3))
    return A
