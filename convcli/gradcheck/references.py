"""The true answers, computed in the parent with convcli's own layers, in a course's layout.

:func:`reference` gives a case's output and, for an upstream gradient ``G``,
the gradient of ``sum(G * output)`` with respect to every input -- convcli's
backward, not finite differences.  :func:`to_course` turns convcli's arrays
(NCHW, ``w`` as ``(K, C, Fh, Fw)``) into a convention's layout with the steps
of its ``LAYOUT``.
"""

from __future__ import annotations

import numpy as np

from convcli import layers
from convcli.gradcheck.cases import Case

#: What each layer's reference is, for messages.
REFERENCE_NAME = {
    "dot": "sum(x * w)",
    "affine": "convcli's affine_forward",
    "conv": "convcli's conv_forward",
    "pool": "convcli's pool_forward",
}


def reference_output(case: Case, arrays: "dict[str, np.ndarray]") -> np.ndarray:
    """The case's true output, in convcli's layout."""
    if case.layer == "dot":
        return np.asarray(np.sum(arrays["x"] * arrays["w"]) + arrays.get("b", 0.0), dtype=np.float64)
    if case.layer == "affine":
        return layers.affine_forward(arrays["x"], arrays["w"], arrays.get("b"))
    if case.layer == "conv":
        out = layers.conv_forward(arrays["X"], arrays["w"], arrays.get("b"), **_conv_options(case))
        return np.tanh(out) if case.options.get("activation") == "tanh" else out
    return layers.pool_forward(arrays["X"], **_pool_options(case))


def reference_gradients(case: Case, arrays: "dict[str, np.ndarray]", G: np.ndarray) -> "dict[str, np.ndarray]":
    """The gradient of ``sum(G * output)`` for every input, in convcli's layout."""
    if case.layer == "dot":
        grads = {"x": arrays["w"] * G, "w": arrays["x"] * G}
        if "b" in arrays:
            grads["b"] = np.asarray(G, dtype=np.float64)
        return grads
    if case.layer == "affine":
        return dict(layers.affine_backward(arrays["x"], arrays["w"], G, arrays.get("b")))
    if case.layer == "conv":
        return dict(layers.conv_backward(arrays["X"], arrays["w"], G, arrays.get("b"), **_conv_options(case)))
    grads = layers.pool_backward(arrays["X"], G, **_pool_options(case))
    return {"X": grads["X"] if isinstance(grads, dict) else grads}


def _conv_options(case: Case) -> dict:
    return {"padding": case.options["padding"], "stride": case.options["stride"]}


def _pool_options(case: Case) -> dict:
    return {"size": tuple(case.options["size"]), "stride": case.options["stride"], "mode": case.options["convcli_mode"]}


def to_course(array: np.ndarray, steps: "list") -> np.ndarray:
    """Apply a ``LAYOUT`` chain of ``["transpose"|"reshape"|"squeeze", axes]`` steps."""
    out = np.asarray(array, dtype=np.float64)
    for step, axes in steps:
        if step == "transpose":
            out = np.transpose(out, axes)
        elif step == "reshape":
            out = np.reshape(out, axes)
        else:
            out = np.squeeze(out, axis=tuple(axes))
    return np.array(out, dtype=np.float64, order="C")
