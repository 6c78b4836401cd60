"""The lab's convention (conv-lab.md): ``dot_forward(x, w)``, ``conv_forward(X, w)`` on 2-D arrays.

Two forms, told apart by what the file's functions look like:

- the lab's own: ``dot_backward(x, w, da)`` -> ``{'x', 'w'}`` and
  ``conv_backward(X, w, dA)`` -> ``{'X', 'w'}``;
- the "cache" form of many tutorials: ``conv_forward(X, w)`` -> ``(A, cache)`` and
  ``conv_backward(dA, cache)`` -> ``(dX, dw)`` (the same for the Dot layer).
  It is used when the backward's parameters are ``(upstream, cache)``.

This file is an adapter (see ``convcli.gradcheck.conventions``): it runs in
the child process on its own, so it imports numpy and the standard library only.
"""

import inspect

NAME = "lab"

LAYERS = {
    "dot": {
        "forward": "dot_forward",
        "backward": "dot_backward",
        "inputs": {"x": "x", "w": "w"},
        "output": "a",
        "cases": {"ndim": 2, "square": True, "bias": False},
    },
    "conv": {
        "forward": "conv_forward",
        "backward": "conv_backward",
        "inputs": {"X": "X", "w": "w"},
        "output": "A",
        # one image, one channel, one square kernel: no batch, bias, stride or padding to vary
        "cases": {"batch": False, "channels": False, "bias": False, "stride": False, "padding": False,
                  "square_kernel": True},
    },
}

LAYOUT = {"conv": {"X": [["squeeze", [0, 1]]], "w": [["squeeze", [0, 1]]], "out": [["squeeze", [0, 1]]]}}

#: Parameter names of each function, for ``--api auto``.
PARAMETERS = {
    "dot_forward": [["x", "w"]],
    "dot_backward": [["x", "w", "da"], ["da", "cache"], ["dout", "cache"]],
    "conv_forward": [["X", "w"]],
    "conv_backward": [["X", "w", "dA"], ["dA", "cache"], ["dout", "cache"]],
}


def cache_form(module, layer):
    """Whether ``<layer>_backward`` takes ``(upstream, cache)``."""
    function = getattr(module, f"{layer}_backward", None)
    try:
        names = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return len(names) == 2 and "cache" in names[1].lower()


def describe(module):
    return {layer: f"cache form: {layer}_forward(...) -> (out, cache), {layer}_backward(d_out, cache)"
            for layer in LAYERS if cache_form(module, layer)}


def forward(module, layer, args, options):
    names = list(LAYERS[layer]["inputs"])
    result = getattr(module, f"{layer}_forward")(*(args[n] for n in names))
    if cache_form(module, layer) and isinstance(result, (tuple, list)) and len(result) == 2:
        return result[0], result[1]
    return result, None


def backward(module, layer, args, options, dout, state):
    function = getattr(module, f"{layer}_backward")
    if cache_form(module, layer):
        if state is None:
            raise ValueError(f"{layer}_backward(d_out, cache) needs the cache that {layer}_forward returns "
                             f"as (out, cache), and {layer}_forward gave none")
        return function(dout, state)
    names = list(LAYERS[layer]["inputs"])
    return function(*(args[n] for n in names), dout)
