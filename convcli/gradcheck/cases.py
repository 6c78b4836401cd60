"""The cases a file's layers are checked on: honest shapes, as far as a convention's arguments reach.

Each layer has a default set of cases in convcli's terms (NCHW arrays, square
strides and paddings).  A convention's ``cases`` capabilities keep the ones it
can express:

conv
    ``batch``, ``channels``, ``bias`` (bool); ``stride``: ``"any"``,
    ``"divides"`` (only sizes that divide evenly) or False (1 only);
    ``padding``: ``"any"``, ``"same"`` ("same"/"valid": stride 1 and odd
    kernels for "same") or False (0 only); ``square_kernel``; ``activations``
    (extra forward-only cases, e.g. ``["tanh"]``).
pool
    ``batch``, ``channels``; ``modes`` (convcli's mode -> the course's name);
    ``square`` (windows); ``stride``.
dot
    ``ndim`` (2 or 3), ``square``, ``bias``.
affine
    nothing to choose.

The set covers the lab's 8x8 image with a 3x3 kernel, images non-square both
ways, non-square kernels, a larger kernel, batch and channels >= 2, stride 2
with padding, a non-zero bias, and pooling with overlapping and
non-overlapping windows.  ``--size``/``--kernel-size`` replace it with one case
(:func:`by_hand`).  :func:`inputs` draws a case's random arrays.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convcli.errors import ParameterError


@dataclass(frozen=True)
class Case:
    """One call of a layer: input shapes (convcli's layout) and options."""

    layer: str
    label: str
    shapes: "dict[str, tuple[int, ...]]"
    options: "dict[str, Any]" = field(default_factory=dict)
    backward: bool = True


# (N, C, K, H, W, Fh, Fw, stride, padding)
CONV = [
    (1, 1, 1, 8, 8, 3, 3, 1, 0),  # the lab's
    (1, 1, 1, 7, 9, 3, 3, 1, 0),
    (1, 1, 1, 9, 7, 3, 3, 1, 0),
    (1, 1, 1, 7, 9, 3, 2, 1, 0),
    (1, 1, 1, 9, 7, 2, 3, 1, 0),
    (1, 1, 1, 12, 10, 5, 5, 1, 0),
    (2, 3, 4, 7, 9, 3, 3, 1, 1),
    (2, 3, 4, 7, 9, 3, 2, 1, 1),
    (2, 2, 3, 9, 7, 3, 2, 1, 0),
    (2, 3, 2, 9, 11, 3, 3, 2, 1),
    (1, 2, 2, 8, 10, 2, 2, 2, 0),
    (2, 2, 3, 10, 8, 5, 5, 1, 2),
]
# (N, C, H, W, window h, window w, stride)
POOL = [
    (2, 3, 6, 8, 2, 2, 2),  # non-overlapping
    (2, 2, 7, 9, 3, 3, 2),  # overlapping
    (1, 2, 8, 6, 2, 3, 1),
    (2, 1, 9, 6, 3, 3, 3),
    (1, 1, 6, 6, 2, 2, 2),
]
DOT = [(3, 3), (5, 5), (2, 4), (3, 3, 4), (2, 2, 3)]
AFFINE = [((2, 5), 3), ((3, 2, 3, 2), 4), ((1, 7), 1)]


def default_cases(layer: str, caps: "dict[str, Any]") -> "list[Case]":
    """Every default case of ``layer`` that a convention with capabilities ``caps`` can express."""
    if layer == "conv":
        cases = [c for c in (_conv(*row, caps) for row in CONV) if c is not None]
        for activation in caps.get("activations", []):
            row = next(r for r in reversed(CONV) if _conv(*r, caps) is not None)
            base = _conv(*row, caps)
            cases.append(Case("conv", f"{base.label} {activation}", base.shapes,
                              {**base.options, "activation": activation}, backward=False))
        return cases
    if layer == "pool":
        return [c for row in POOL for mode in caps.get("modes", {"max": "max"}) for c in [_pool(*row, mode, caps)] if c]
    if layer == "dot":
        return [c for c in (_dot(shape, caps) for shape in DOT) if c is not None]
    return [_affine(shape, m) for shape, m in AFFINE]


def by_hand(layer: str, caps: "dict[str, Any]", size: "tuple[int, int]", kernel: "tuple[int, int]",
            convention: str = "this") -> "list[Case]":
    """The one case of ``--size HxW --kernel-size FhxFw``."""
    (h, w), (fh, fw) = size, kernel
    if fh > h or fw > w:
        raise ParameterError(f"--kernel-size {fh}x{fw} is larger than --size {h}x{w}")
    square = caps.get("square_kernel" if layer == "conv" else "square", False)
    if square and fh != fw and layer in ("conv", "pool", "dot"):
        what = "kernels" if layer == "conv" else f"{layer} windows"
        raise ParameterError(f"the {convention} convention's {what} are square (FxF); got --kernel-size {fh}x{fw}")
    if layer == "conv":
        n, c, k = (2, 3, 4) if caps.get("channels") else (1, 1, 1)
        n = n if caps.get("batch") else 1
        case = _conv(n, c, k, h, w, fh, fw, 1, 0, caps)
    elif layer == "pool":
        case = _pool(2 if caps.get("batch") else 1, 2 if caps.get("channels") else 1, h, w, fh, fw, 1,
                     next(iter(caps.get("modes", {"max": "max"}))), caps)
    elif layer == "dot":
        case = _dot((fh, fw) if caps.get("ndim", 2) == 2 else (fh, fw, 3), caps)
    else:
        case = _affine((2, h, w), 3)
    if case is None:
        raise ParameterError(
            f"the {convention} convention cannot express a {layer} case of size {h}x{w} with kernel {fh}x{fw}")
    return [case]


def _conv(n, c, k, h, w, fh, fw, stride, pad, caps) -> "Case | None":
    if (n > 1 and not caps.get("batch")) or ((c > 1 or k > 1) and not caps.get("channels")):
        return None
    if caps.get("square_kernel") and fh != fw:
        return None
    stride_cap, pad_cap = caps.get("stride", False), caps.get("padding", False)
    if stride > 1 and not stride_cap:
        return None
    if stride_cap == "divides" and ((h + 2 * pad - fh) % stride or (w + 2 * pad - fw) % stride):
        return None
    if pad and not pad_cap:
        return None
    if pad_cap == "same" and pad and not (stride == 1 and fh % 2 and fw % 2 and pad == (fh - 1) // 2 == (fw - 1) // 2):
        return None
    parts = [f"N{n}"] if caps.get("batch") else []
    parts += [f"C{c}", f"K{k}"] if caps.get("channels") else []
    parts += [f"{h}x{w}", f"k{fh}x{fw}"]
    if stride_cap:
        parts.append(f"s{stride}")
    if pad_cap == "same":
        parts.append("same" if pad else "valid")
    elif pad_cap:
        parts.append(f"p{pad}")
    shapes = {"X": (n, c, h, w), "w": (k, c, fh, fw)}
    if caps.get("bias"):
        shapes["b"] = (k,)
    return Case("conv", " ".join(parts), shapes, {"stride": stride, "padding": pad})


def _pool(n, c, h, w, ph, pw, stride, mode, caps) -> "Case | None":
    if (n > 1 and not caps.get("batch")) or (c > 1 and not caps.get("channels")):
        return None
    if caps.get("square") and ph != pw:
        return None
    if caps.get("stride") == "divides" and ((h - ph) % stride or (w - pw) % stride):
        return None
    course_mode = caps.get("modes", {"max": "max"})[mode]
    parts = ([f"N{n}"] if caps.get("batch") else []) + ([f"C{c}"] if caps.get("channels") else [])
    parts += [f"{h}x{w}", f"w{ph}x{pw}", f"s{stride}"]
    if len(caps.get("modes", {})) > 1:
        parts.append(course_mode)
    options = {"size": [ph, pw], "stride": stride, "mode": course_mode, "convcli_mode": mode}
    return Case("pool", " ".join(parts), {"X": (n, c, h, w)}, options)


def _dot(shape, caps) -> "Case | None":
    if len(shape) != caps.get("ndim", 2) or (caps.get("square") and shape[0] != shape[1]):
        return None
    shapes = {"x": shape, "w": shape}
    if caps.get("bias"):
        shapes["b"] = ()
    return Case("dot", "x".join(str(n) for n in shape), shapes)


def _affine(shape, m) -> Case:
    d = int(np.prod(shape[1:]))
    label = f"N{shape[0]} " + "x".join(str(n) for n in shape[1:]) + f" M{m}"
    return Case("affine", label, {"x": shape, "w": (d, m), "b": (m,)})


def inputs(case: Case, seed: int) -> "dict[str, np.ndarray]":
    """The case's random inputs (normal), the same for a given seed whatever else runs."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{case.layer} {case.label}".encode())])
    return {name: rng.standard_normal(shape) for name, shape in case.shapes.items()}


def upstream(case: Case, shape: "tuple[int, ...]", seed: int) -> np.ndarray:
    """A random upstream gradient of the output's shape."""
    rng = np.random.default_rng([seed, zlib.crc32(f"upstream {case.layer} {case.label}".encode())])
    return rng.standard_normal(shape)
