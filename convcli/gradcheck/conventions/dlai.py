"""deeplearning.ai's convention ("Convolutional Model: Step by Step"): NHWC arrays, ``hparameters`` dicts.

- ``conv_single_step(a_slice_prev, W, b)`` -> ``sum(a_slice_prev * W) + b`` (the Dot layer, with a bias);
- ``conv_forward(A_prev, W, b, hparameters)`` -> ``(Z, cache)``, ``{'stride', 'pad'}``,
  A_prev ``(m, n_H, n_W, n_C_prev)``, W ``(f, f, n_C_prev, n_C)``, b ``(1, 1, 1, n_C)``;
  ``conv_backward(dZ, cache)`` -> ``(dA_prev, dW, db)``;
- ``pool_forward(A_prev, hparameters, mode="max"|"average")`` with ``{'f', 'stride'}`` -> ``(A, cache)``;
  ``pool_backward(dA, cache, mode)`` -> ``dA_prev``.

An adapter (see ``convcli.gradcheck.conventions``): numpy and the standard library only.
"""

NAME = "dlai"

LAYERS = {
    "dot": {
        "forward": "conv_single_step",
        "backward": None,
        "inputs": {"x": "a_slice_prev", "w": "W", "b": "b"},
        "output": "Z",
        "cases": {"ndim": 3, "square": True, "bias": True},
    },
    "conv": {
        "forward": "conv_forward",
        "backward": "conv_backward",
        "inputs": {"X": "A_prev", "w": "W", "b": "b"},
        "output": "Z",
        "cases": {"batch": True, "channels": True, "bias": True, "stride": "any", "padding": "any",
                  "square_kernel": True},
    },
    "pool": {
        "forward": "pool_forward",
        "backward": "pool_backward",
        "inputs": {"X": "A_prev"},
        "output": "A",
        "cases": {"batch": True, "channels": True, "modes": {"max": "max", "avg": "average"}, "square": True,
                  "stride": "any"},
    },
}

NHWC = [["transpose", [0, 2, 3, 1]]]
LAYOUT = {
    "dot": {"b": [["reshape", [1, 1, 1]]]},
    "conv": {"X": NHWC, "w": [["transpose", [2, 3, 1, 0]]], "b": [["reshape", [1, 1, 1, -1]]], "out": NHWC},
    "pool": {"X": NHWC, "out": NHWC},
}

PARAMETERS = {
    "conv_single_step": [["a_slice_prev", "W", "b"]],
    "conv_forward": [["A_prev", "W", "b", "hparameters"]],
    "conv_backward": [["dZ", "cache"]],
    "pool_forward": [["A_prev", "hparameters", "mode"]],
    "pool_backward": [["dA", "cache", "mode"]],
}


def pair(result, name):
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return result[0], result[1]
    raise ValueError(f"{name} returned {type(result).__name__}, expected a pair (output, cache)")


def forward(module, layer, args, options):
    if layer == "dot":
        return module.conv_single_step(args["x"], args["w"], args["b"]), None
    if layer == "conv":
        hparameters = {"stride": options["stride"], "pad": options["padding"]}
        return pair(module.conv_forward(args["X"], args["w"], args["b"], hparameters), "conv_forward")
    hparameters = {"f": options["size"][0], "stride": options["stride"]}
    return pair(module.pool_forward(args["X"], hparameters, mode=options["mode"]), "pool_forward")


def backward(module, layer, args, options, dout, state):
    name = LAYERS[layer]["backward"]
    if state is None:
        raise ValueError(f"{name} needs the cache that {LAYERS[layer]['forward']} returns, and it gave none")
    if layer == "conv":
        return module.conv_backward(dout, state)
    return module.pool_backward(dout, state, mode=options["mode"])
