"""The self-check: convcli's own layers over a spread of configurations.

``convcli gradcheck`` without ``--impl`` runs :func:`check_convcli`.  For the
Dot layer and for each conv configuration (kernel sizes including even and
non-square ones, every padding form, strides 1 to 3, every border, flip, batch
and bank) it makes

- a forward check, ``conv_forward[w=3x3,padding=same,stride=1]``: the output
  against a direct loop over output pixels (the lab's definition, written
  independently of :mod:`convcli.layers`' tap-wise code), and
- one gradient check per input, ``conv_backward[w=3x3,padding=same,stride=1]:X``
  and ``...:w``, with a random upstream gradient.

The arrays are small (at most 2x6x7), so the whole suite takes well under a
second in ``mode="full"``.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Iterable

import numpy as np

from convcli import layers as conv_layers
from convcli.checking import gradient_check
from convcli.errors import ParameterError
from convcli.gradcheck.selfcheck_layers import check_affine, check_channels, check_pooling, planned
from convcli.gradcheck.settings import CheckSettings
from convcli.gradcheck.verdicts import compare_forward, gradcheck_records
from convcli.gradcheck.reports import CheckRecord

#: (image shape, kernel shape, options) of every conv configuration checked.
CONV_CONFIGS: "list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]]" = [
    ((6, 7), (3, 3), dict(padding="valid", stride=1)),
    ((6, 7), (1, 1), dict(padding="valid", stride=2)),
    ((6, 7), (2, 2), dict(padding="same", stride=1)),
    ((6, 7), (4, 4), dict(padding="same", stride=1)),
    ((6, 7), (2, 3), dict(padding="full", stride=1)),
    ((6, 7), (3, 2), dict(padding="valid", stride=3)),
    ((6, 7), (3, 3), dict(padding=1, stride=2)),
    ((6, 7), (3, 2), dict(padding=(1, 2), stride=(2, 3))),
    ((6, 7), (3, 2), dict(padding="full", stride=1, flip=True)),
    ((6, 7), (2, 3), dict(padding=2, stride=3, flip=True)),
    ((6, 7), (3, 3), dict(padding="same", stride=1, border="reflect")),
    ((6, 7), (2, 3), dict(padding="full", stride=1, border="symmetric")),
    ((6, 7), (3, 3), dict(padding=2, stride=2, border="edge")),
    ((6, 7), (4, 3), dict(padding="same", stride=1, border="wrap")),
    ((2, 5, 6), (3, 3), dict(padding="same", stride=1)),
    ((6, 6), (3, 2, 2), dict(padding="valid", stride=2)),
    ((2, 5, 5), (2, 3, 3), dict(padding=1, stride=2, flip=True, border="reflect")),
]

REFERENCE = "a direct loop over output pixels"


def check_name(function: str, X_shape, w_shape, options: dict) -> str:
    """``conv_backward[w=3x2,padding=(1,2),stride=(2,3),batch=2,bank=3,flip,border=edge]``."""
    parts = [f"w={'x'.join(str(n) for n in w_shape[-2:])}"]
    for key in ("padding", "stride"):
        value = options.get(key, "valid" if key == "padding" else 1)
        parts.append(f"{key}={value}".replace(" ", ""))
    if len(X_shape) == 3:
        parts.append(f"batch={X_shape[0]}")
    if len(w_shape) == 3:
        parts.append(f"bank={w_shape[0]}")
    if options.get("flip"):
        parts.append("flip")
    if options.get("border", "zero") != "zero":
        parts.append(f"border={options['border']}")
    return f"{function}[{','.join(parts)}]"


LAYERS = ("dot", "affine", "conv", "pool")


def _chosen(layers: Iterable[str]) -> "set[str]":
    chosen = set(layers)
    unknown = chosen - set(LAYERS)
    if unknown:
        raise ParameterError(f"layer must be one of {', '.join(LAYERS)}; got {sorted(unknown)[0]!r}")
    return chosen


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A generator per check, so a check's inputs do not depend on which other checks run."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def planned_checks(layers: Iterable[str] = LAYERS) -> int:
    """How many checks :func:`check_convcli` makes for these layers (for a progress bar)."""
    chosen = _chosen(layers)
    total = (3 if "dot" in chosen else 0) + (3 * len(CONV_CONFIGS) + planned("conv") if "conv" in chosen else 0)
    return total + sum(planned(layer) for layer in ("affine", "pool") if layer in chosen)


def check_convcli(
    *,
    settings: CheckSettings = CheckSettings(),
    layers: Iterable[str] = LAYERS,
    progress: "Callable[[int], None] | None" = None,
) -> "list[CheckRecord]":
    """Check convcli's Dot and Conv layers: forward against references, backward against finite differences.

    Parameters
    ----------
    settings : seed, eps, atol, rtol and mode (``size``, ``kernel_size``, ``timeout`` are not used)
    layers : any of ``"dot"``, ``"affine"``, ``"conv"``, ``"pool"``
    progress : called with the number of checks finished so far

    Returns
    -------
    list of CheckRecord
        Three per configuration: the forward check, then ``:X``/``:x`` and ``:w``.
    """
    chosen = _chosen(layers)
    records: "list[CheckRecord]" = []
    if "dot" in chosen:
        records += _check_dot(settings)
        if progress:
            progress(len(records))
    if "conv" in chosen:
        for X_shape, w_shape, options in CONV_CONFIGS:
            records += _check_conv(X_shape, w_shape, options, settings)
            if progress:
                progress(len(records))
        records += check_channels(settings)
    for layer, check in (("affine", check_affine), ("pool", check_pooling)):
        if layer in chosen:
            records += check(settings)
            if progress:
                progress(len(records))
    return records


def _check_dot(settings: CheckSettings) -> "list[CheckRecord]":
    rng = rng_for(settings.seed, "dot")
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    forward = compare_forward(
        "dot_forward",
        np.sum(x * w),
        conv_layers.dot_forward(x, w),
        atol=settings.atol,
        rtol=settings.rtol,
        reference="sum(x * w)",
    )
    result = gradient_check(
        conv_layers.dot_forward, conv_layers.dot_backward, upstream="da", x=x, w=w, **_options(settings)
    )
    names = {"x": "dot_backward:x", "w": "dot_backward:w"}
    return [forward] + gradcheck_records(result, names, function="dot_backward", forward="dot_forward")


def _check_conv(X_shape, w_shape, options: dict, settings: CheckSettings) -> "list[CheckRecord]":
    rng = rng_for(settings.seed, check_name("conv", X_shape, w_shape, options))
    X, w = rng.standard_normal(X_shape), rng.standard_normal(w_shape)
    name = check_name("conv_forward", X_shape, w_shape, options)
    forward = compare_forward(
        "conv_forward",
        reference_conv(X, w, **options),
        conv_layers.conv_forward(X, w, **options),
        atol=settings.atol,
        rtol=settings.rtol,
        reference=REFERENCE,
    )
    forward.name = name

    def conv_forward(X, w):
        return conv_layers.conv_forward(X, w, **options)

    def conv_backward(X, w, dA):
        return conv_layers.conv_backward(X, w, dA, **options)

    result = gradient_check(conv_forward, conv_backward, upstream="dA", X=X, w=w, **_options(settings))
    backward_name = check_name("conv_backward", X_shape, w_shape, options)
    names = {"X": f"{backward_name}:X", "w": f"{backward_name}:w"}
    return [forward] + gradcheck_records(result, names, function="conv_backward", forward="conv_forward")


def _options(settings: CheckSettings) -> dict:
    return dict(eps=settings.eps, atol=settings.atol, rtol=settings.rtol, seed=settings.seed, mode=settings.mode)


# ----------------------------------------------------------------------------- the reference


def reference_pads(padding, kernel_hw) -> "tuple[tuple[int, int], tuple[int, int]]":
    """Pad widths as documented: full adds F-1 per side, same (F-1)//2 before and the rest after."""
    fh, fw = kernel_hw
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "full":
        return ((fh - 1, fh - 1), (fw - 1, fw - 1))
    if padding == "same":
        return (((fh - 1) // 2, fh // 2), ((fw - 1) // 2, fw // 2))
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    return ((ph, ph), (pw, pw))


def reference_conv(X, w, *, padding="valid", stride=1, flip=False, border="zero") -> np.ndarray:
    """``A[n, k, y, x] = sum(Xp[n, y*sh : y*sh+Fh, x*sw : x*sw+Fw] * w[k])``, one output pixel at a time.

    Deliberately naive: it is the lab's definition, used to check the fast code.
    Shapes follow :func:`convcli.layers.conv_forward`.
    """
    X3 = np.asarray(X, float).reshape((-1,) + np.shape(X)[-2:])  # (N, H, W)
    w3 = np.asarray(w, float).reshape((-1,) + np.shape(w)[-2:])  # (K, Fh, Fw)
    if flip:
        w3 = w3[:, ::-1, ::-1]
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    fh, fw = w3.shape[1:]
    mode = "constant" if border == "zero" else border
    Xp = np.pad(X3, ((0, 0),) + reference_pads(padding, (fh, fw)), mode=mode)
    out_h, out_w = (Xp.shape[1] - fh) // sh + 1, (Xp.shape[2] - fw) // sw + 1
    A = np.zeros((X3.shape[0], w3.shape[0], out_h, out_w))
    for n in range(X3.shape[0]):
        for k in range(w3.shape[0]):
            for y in range(out_h):
                for x in range(out_w):
                    A[n, k, y, x] = np.sum(Xp[n, y * sh : y * sh + fh, x * sw : x * sw + fw] * w3[k])
    if np.ndim(w) == 2:
        A = A[:, 0]
    if np.ndim(X) == 2:
        A = A[0]
    return A
