"""Holberton School's convention (CNN project): NHWC arrays, an activation, "same"/"valid" padding.

- ``conv_forward(A_prev, W, b, activation, padding="same"|"valid", stride=(sh, sw))`` -> A,
  A_prev ``(m, h, w, c_prev)``, W ``(kh, kw, c_prev, c_new)``, b ``(1, 1, 1, c_new)``;
  checked with the identity as activation, plus one forward case with ``np.tanh``;
- ``conv_backward(dZ, A_prev, W, b, padding, stride)`` -> ``(dA_prev, dW, db)``;
- ``pool_forward(A_prev, kernel_shape, stride, mode="max"|"avg")``;
  ``pool_backward(dA, A_prev, kernel_shape, stride, mode)`` -> ``dA_prev``.

"same" is used only with stride 1 and odd kernels, where its padding rule is
unambiguous.  An adapter (see ``convcli.gradcheck.conventions``): numpy and the
standard library only.
"""

import numpy as np

NAME = "holberton"

LAYERS = {
    "conv": {
        "forward": "conv_forward",
        "backward": "conv_backward",
        "inputs": {"X": "A_prev", "w": "W", "b": "b"},
        "output": "A",
        "cases": {"batch": True, "channels": True, "bias": True, "stride": "any", "padding": "same",
                  "square_kernel": False, "activations": ["tanh"]},
    },
    "pool": {
        "forward": "pool_forward",
        "backward": "pool_backward",
        "inputs": {"X": "A_prev"},
        "output": "A",
        "cases": {"batch": True, "channels": True, "modes": {"max": "max", "avg": "avg"}, "square": False,
                  "stride": "any"},
    },
}

NHWC = [["transpose", [0, 2, 3, 1]]]
LAYOUT = {
    "conv": {"X": NHWC, "w": [["transpose", [2, 3, 1, 0]]], "b": [["reshape", [1, 1, 1, -1]]], "out": NHWC},
    "pool": {"X": NHWC, "out": NHWC},
}

PARAMETERS = {
    "conv_forward": [["A_prev", "W", "b", "activation", "padding", "stride"]],
    "conv_backward": [["dZ", "A_prev", "W", "b", "padding", "stride"]],
    "pool_forward": [["A_prev", "kernel_shape", "stride", "mode"]],
    "pool_backward": [["dA", "A_prev", "kernel_shape", "stride", "mode"]],
}

ACTIVATIONS = {"identity": lambda Z: Z, "tanh": np.tanh}


def padding(options):
    return "valid" if options["padding"] == 0 else "same"


def forward(module, layer, args, options):
    stride = (options["stride"], options["stride"])
    if layer == "conv":
        activation = ACTIVATIONS[options.get("activation", "identity")]
        out = module.conv_forward(args["X"], args["w"], args["b"], activation, padding=padding(options),
                                  stride=stride)
        return out, None
    return module.pool_forward(args["X"], tuple(options["size"]), stride=stride, mode=options["mode"]), None


def backward(module, layer, args, options, dout, state):
    stride = (options["stride"], options["stride"])
    if layer == "conv":
        return module.conv_backward(dout, args["X"], args["w"], args["b"], padding=padding(options), stride=stride)
    return module.pool_backward(dout, args["X"], tuple(options["size"]), stride=stride, mode=options["mode"])
