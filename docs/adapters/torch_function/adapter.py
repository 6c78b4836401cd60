"""convcli adapter for a ``torch.autograd.Function``: ``convcli gradcheck --impl conv_function.py --api adapter.py``.

The arrays become float64 tensors that require gradients; ``.apply`` runs the
forward, ``out.backward(dout)`` the student's backward, and the gradients are
read from ``.grad``.
"""
import torch

NAME = "torch-function"

LAYERS = {
    "conv": {
        "forward": "Conv2dFunction.forward",
        "backward": "Conv2dFunction.backward",
        "inputs": {"X": "input", "w": "weight", "b": "bias"},
        "output": "out",
        "cases": {"batch": True, "channels": True, "bias": True, "stride": "any", "padding": "any"},
    },
}


def _apply(module, args, options):
    tensors = [torch.tensor(args[name], dtype=torch.float64, requires_grad=True) for name in ("X", "w", "b")]
    out = module.Conv2dFunction.apply(*tensors, options["stride"], options["padding"])
    return out, tensors


def forward(module, layer, args, options):
    out, tensors = _apply(module, args, options)
    return out.detach().numpy(), (out, tensors)


def backward(module, layer, args, options, dout, state):
    out, tensors = state if state is not None else _apply(module, args, options)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    grads = [None if t.grad is None else t.grad.numpy() for t in tensors]
    return {"input": grads[0], "weight": grads[1], "bias": grads[2]}
