"""convcli adapter for a class-based conv layer: ``convcli gradcheck --impl conv_layer.py --api adapter.py``.

Construct the layer with the case's weights, call ``.forward``, then
``.backward``; ``dx`` is returned, ``dW`` and ``db`` are read from attributes.
"""

NAME = "class-layer"

LAYERS = {
    "conv": {
        "forward": "Conv2D.forward",
        "backward": "Conv2D.backward",
        "inputs": {"X": "x", "w": "W", "b": "b"},  # convcli's names -> this course's
        "output": "out",
        "cases": {"batch": True, "channels": True, "bias": True, "stride": "any", "padding": "any"},
    },
}
# Arrays already come as (N, C, H, W) and (F, C, HH, WW): no LAYOUT needed.


def _layer(module, args, options):
    return module.Conv2D(args["w"].copy(), args["b"].copy(), stride=options["stride"], pad=options["padding"])


def forward(module, layer, args, options):
    conv = _layer(module, args, options)
    return conv.forward(args["X"].copy()), conv  # the layer object is the state the backward needs


def backward(module, layer, args, options, dout, conv):
    if conv is None:  # the forward did not run in this process: redo it
        conv = _layer(module, args, options)
        conv.forward(args["X"].copy())
    dx = conv.backward(dout)
    return {"x": dx, "W": getattr(conv, "dW", None), "b": getattr(conv, "db", None)}
