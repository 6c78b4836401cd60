"""cs231n's convention (assignment 2, ``layers.py``): NCHW arrays, ``(out, cache)`` forwards.

- ``conv_forward_naive(x, w, b, conv_param)`` -> ``(out, cache)``, ``conv_param = {'stride', 'pad'}``,
  x ``(N, C, H, W)``, w ``(F, C, HH, WW)``, b ``(F,)``; ``conv_backward_naive(dout, cache)`` -> ``(dx, dw, db)``.
- ``max_pool_forward_naive(x, pool_param)`` -> ``(out, cache)``, ``{'pool_height', 'pool_width', 'stride'}``;
  ``max_pool_backward_naive(dout, cache)`` -> ``dx``.
- ``affine_forward(x, w, b)`` -> ``(out, cache)``; ``affine_backward(dout, cache)`` -> ``(dx, dw, db)``.

The assignment asserts that sizes divide evenly by the stride, so its cases do.
An adapter (see ``convcli.gradcheck.conventions``): numpy and the standard library only.
"""

NAME = "cs231n"

LAYERS = {
    "affine": {
        "forward": "affine_forward",
        "backward": "affine_backward",
        "inputs": {"x": "x", "w": "w", "b": "b"},
        "output": "out",
        "cases": {},
    },
    "conv": {
        "forward": "conv_forward_naive",
        "backward": "conv_backward_naive",
        "inputs": {"X": "x", "w": "w", "b": "b"},
        "output": "out",
        "cases": {"batch": True, "channels": True, "bias": True, "stride": "divides", "padding": "any",
                  "square_kernel": False},
    },
    "pool": {
        "forward": "max_pool_forward_naive",
        "backward": "max_pool_backward_naive",
        "inputs": {"X": "x"},
        "output": "out",
        "cases": {"batch": True, "channels": True, "modes": {"max": "max"}, "square": False, "stride": "divides"},
    },
}

LAYOUT = {}

PARAMETERS = {
    "affine_forward": [["x", "w", "b"]],
    "affine_backward": [["dout", "cache"]],
    "conv_forward_naive": [["x", "w", "b", "conv_param"]],
    "conv_backward_naive": [["dout", "cache"]],
    "max_pool_forward_naive": [["x", "pool_param"]],
    "max_pool_backward_naive": [["dout", "cache"]],
}


def pair(result, name):
    """``(out, cache)`` from what a forward returned, or a clear error."""
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return result[0], result[1]
    raise ValueError(f"{name} returned {type(result).__name__}, expected a pair (out, cache)")


def forward(module, layer, args, options):
    if layer == "affine":
        return pair(module.affine_forward(args["x"], args["w"], args["b"]), "affine_forward")
    if layer == "conv":
        conv_param = {"stride": options["stride"], "pad": options["padding"]}
        return pair(module.conv_forward_naive(args["X"], args["w"], args["b"], conv_param), "conv_forward_naive")
    pool_param = {"pool_height": options["size"][0], "pool_width": options["size"][1], "stride": options["stride"]}
    return pair(module.max_pool_forward_naive(args["X"], pool_param), "max_pool_forward_naive")


def backward(module, layer, args, options, dout, state):
    name = LAYERS[layer]["backward"]
    if state is None:
        raise ValueError(f"{name}(dout, cache) needs the cache that {LAYERS[layer]['forward']} returns, "
                         "and it gave none")
    return getattr(module, name)(dout, state)
