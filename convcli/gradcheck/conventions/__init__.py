"""Conventions: how to call a course's functions, with which array layout, and which layers it has.

A convention is an *adapter*: a small Python file with

``LAYERS``
    ``{layer: spec}`` for the layers it has (``"dot"``, ``"affine"``, ``"conv"``,
    ``"pool"``).  A spec names the course's ``forward`` and ``backward``
    (``"conv_forward_naive"``, ``"Conv2D.backward"``; ``backward`` may be None),
    maps convcli's input names to the course's (``"inputs": {"X": "x", "w":
    "w", "b": "b"}``), names the ``output``, and says which ``cases`` its
    arguments can express (see :mod:`convcli.gradcheck.cases`).  A backward may
    return a dict keyed by the course's input names, a tuple in the order of
    ``inputs`` (or of ``"order"``), or one array.
``LAYOUT`` (optional)
    ``{layer: {name: steps}}``: how convcli's arrays become the course's
    (``X`` ``(N, C, H, W)``, ``w`` ``(K, C, Fh, Fw)``, ``b`` ``(K,)``, ``out``),
    as ``["transpose", axes]``, ``["reshape", shape]`` or ``["squeeze", axes]``
    steps.  Gradients take their input's layout.  References are converted
    this way in the parent, so messages speak in the course's shapes.
``forward(module, layer, args, options)`` -> ``(output, state)``
    Calls the student's module with the arrays ``args`` (already in the
    course's layout, keyed by convcli's names) and ``options`` (``stride``,
    ``padding``: ints; pool ``size``: ``[h, w]``, ``mode``: the course's name;
    conv ``activation``).  ``state`` is kept in the child for the backward.
``backward(module, layer, args, options, dout, state)`` -> gradients
``describe(module)`` (optional)
    ``{layer: text}``: a form it detected, for the report.

The functions run in the child, where convcli cannot be imported, so an
adapter imports only what the checked code may (numpy, torch...).  The four
built-in conventions (:mod:`.lab`, :mod:`.cs231n`, :mod:`.dlai`,
:mod:`.holberton`) are written exactly so; ``docs/adapters/`` has a
class-based layer and a ``torch.autograd.Function``.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convcli.errors import ImplementationError, ParameterError

BUILTIN = ("lab", "cs231n", "dlai", "holberton")
LAYER_NAMES = ("dot", "affine", "conv", "pool")
#: convcli's input names per layer; ``b`` is there when the course's layer has a bias.
CANONICAL_INPUTS = {"dot": ("x", "w", "b"), "affine": ("x", "w", "b"), "conv": ("X", "w", "b"), "pool": ("X",)}
STEPS = ("transpose", "reshape", "squeeze")
HERE = Path(__file__).resolve().parent


@dataclass
class LayerSpec:
    """One layer of a convention, validated."""

    layer: str
    forward: str
    backward: "str | None"
    inputs: "dict[str, str]"
    output: str
    cases: "dict[str, Any]"
    layout: "dict[str, list]" = field(default_factory=dict)
    order: "list[str]" = field(default_factory=list)

    def course_name(self, name: str) -> str:
        """The course's name of one of convcli's inputs (``"X"`` -> ``"A_prev"``)."""
        return self.inputs.get(name, name)


@dataclass
class Convention:
    """A convention's name, adapter file and layers (``layers`` is None until a FILE.py adapter is read)."""

    name: str
    path: Path
    layers: "dict[str, LayerSpec] | None"
    parameters: "dict[str, list[list[str]]]" = field(default_factory=dict)

    @property
    def builtin(self) -> bool:
        return self.path.parent == HERE


def builtin(name: str) -> Convention:
    """One of :data:`BUILTIN`, read from its module."""
    module = importlib.import_module(f"{__name__}.{name}")
    convention = Convention(name, Path(module.__file__).resolve(), None, dict(module.PARAMETERS))
    convention.layers = layer_specs(module.LAYERS, getattr(module, "LAYOUT", {}), where=f"the {name} convention")
    return convention


def adapter(path: "str | os.PathLike") -> Convention:
    """A course's own adapter file; its layers arrive from the child, which loads it (:func:`layer_specs`)."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"--api: adapter file '{path}' does not exist; give a built-in name "
                             f"({', '.join(BUILTIN)}), auto, or a .py adapter (see docs/adapters/)")
    return Convention(path.stem, path.resolve(), None)


def resolve(api: str) -> "Convention | None":
    """``--api`` as a convention; None for ``auto``."""
    if api == "auto":
        return None
    if api in BUILTIN:
        return builtin(api)
    if api.lower().endswith(".py"):
        return adapter(api)
    raise ParameterError(f"--api must be auto, one of {', '.join(BUILTIN)}, or an adapter FILE.py; got {api!r}")


def layer_specs(layers: Any, layout: Any, *, where: str) -> "dict[str, LayerSpec]":
    """Validate an adapter's ``LAYERS`` and ``LAYOUT`` (plain data, maybe sent by the child)."""

    def bad(what: str) -> ImplementationError:
        return ImplementationError(f"{where}: {what} (see the adapter interface in docs/adapters/README.md)")

    if not isinstance(layers, dict) or not layers:
        raise bad("LAYERS must be a dict {layer: spec} with at least one of " + ", ".join(LAYER_NAMES))
    layout = layout or {}
    if not isinstance(layout, dict):
        raise bad("LAYOUT must be a dict {layer: {array name: steps}}")
    specs = {}
    for layer, spec in layers.items():
        if layer not in LAYER_NAMES:
            raise bad(f"unknown layer {layer!r} in LAYERS; layers are {', '.join(LAYER_NAMES)}")
        if not isinstance(spec, dict) or not isinstance(spec.get("forward"), str):
            raise bad(f"LAYERS[{layer!r}] needs a 'forward' name")
        backward = spec.get("backward")
        inputs = spec.get("inputs", {name: name for name in CANONICAL_INPUTS[layer]})
        if backward is not None and not isinstance(backward, str):
            raise bad(f"LAYERS[{layer!r}]['backward'] must be a name or None")
        if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
            raise bad(f"LAYERS[{layer!r}]['inputs'] must map convcli's input names to the course's")
        unknown = set(inputs) - set(CANONICAL_INPUTS[layer])
        required = set(CANONICAL_INPUTS[layer]) - {"b"}
        if unknown or not required <= set(inputs):
            raise bad(f"LAYERS[{layer!r}]['inputs'] must have keys {sorted(required)} (and 'b' for a bias); "
                      f"got {sorted(inputs)}")
        cases = spec.get("cases", {})
        steps = layout.get(layer, {})
        if not isinstance(cases, dict) or not isinstance(steps, dict):
            raise bad(f"LAYERS[{layer!r}]['cases'] and LAYOUT[{layer!r}] must be dicts")
        for name, chain in steps.items():
            if not (isinstance(chain, list) and all(_step_ok(step) for step in chain)):
                raise bad(f"LAYOUT[{layer!r}][{name!r}] must be a list of [step, axes] with step one of "
                          + ", ".join(STEPS))
        order = spec.get("order", list(inputs))
        if "b" in inputs:
            cases = {**cases, "bias": True}
        specs[layer] = LayerSpec(layer, spec["forward"], backward, dict(inputs), str(spec.get("output", "out")),
                                 dict(cases), dict(steps), [inputs.get(n, n) for n in order if n in inputs])
    return specs


def _step_ok(step: Any) -> bool:
    return (isinstance(step, list) and len(step) == 2 and step[0] in STEPS and isinstance(step[1], list)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in step[1]))


# ----------------------------------------------------------------------------- auto


def detect(functions: "dict[str, list[str]]", classes: "dict[str, list[str]]") -> Convention:
    """The built-in convention whose function names (and parameter names) the file matches best."""
    best, best_score = None, 0
    for name in BUILTIN:
        convention = builtin(name)
        score = 0
        for function, signatures in convention.parameters.items():
            if function not in functions:
                continue
            params = [p.lower() for p in functions[function]]
            score += 1
            if any([p.lower() for p in sig] == params for sig in signatures):
                score += 3
            elif any(len(sig) == len(params) for sig in signatures):
                score += 1
        if score > best_score:
            best, best_score = convention, score
    if best is None:
        found = ", ".join(list(functions) + [f"class {c}" for c in classes]) or "none"
        raise ImplementationError(
            "matches none of the conventions convcli knows (" + ", ".join(BUILTIN) + f"); it defines: {found}. "
            "Name one with --api NAME, or describe how to call your functions in an adapter, --api FILE.py "
            "(see docs/adapters/)"
        )
    return best
