"""One case of one layer: call the file's forward and backward, judge them, explain a wrong gradient.

The verdict is always against the true answer (:mod:`.references`).  Finite
differences of the file's own forward only explain a failed gradient: it
either matches the gradient of a wrong forward ("matches the gradient of your
conv_forward, but conv_forward is wrong"), or it is plainly wrong.  A gradient
equal to the one for an upstream gradient of ones gets a hint to use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcli.gradcheck import cases as case_sets
from convcli.gradcheck.protocol import Raised, Value, encode_array, encode_arrays
from convcli.gradcheck.references import REFERENCE_NAME, reference_gradients, reference_output, to_course
from convcli.gradcheck.reports import CheckRecord
from convcli.gradcheck.session import Failed
from convcli.gradcheck.verdicts import compare, gradients_of, raised_message, returned_problem, value_message

#: Full mode perturbs every element of inputs up to this size; larger ones (and fast mode) use a few random
#: directions, which tell "the gradient of your forward" from "not" as surely, at a fraction of the calls.
FULL_LIMIT, DIRECTIONS = 64, 6
NUMBERS = ("max_abs_error", "max_rel_error", "worst_index", "expected", "actual")


def _course(spec, name: str, array: np.ndarray) -> np.ndarray:
    return to_course(array, spec.layout.get(name, []))


def _request(spec, case, args: dict, step: str, **extra) -> dict:
    options = {k: v for k, v in case.options.items() if k != "convcli_mode"}
    return {"op": "call", "layer": spec.layer, "step": step, "args": encode_arrays(args), "options": options, **extra}


def _prepared(spec, case, settings):
    arrays = case_sets.inputs(case, settings.seed)
    return arrays, {name: _course(spec, name, array) for name, array in arrays.items()}


def _crash(record: dict, message: str) -> CheckRecord:
    return CheckRecord(**record, status="fail", message=f"{record['name']}: {message}", crashed=True)


def check_forward(*, session, spec, case, settings, source, convention) -> CheckRecord:
    """Call the forward on the case's inputs and compare its output with convcli's."""
    arrays, args = _prepared(spec, case, settings)
    expected = _course(spec, "out", reference_output(case, arrays))
    record = dict(name=f"{spec.forward}[{case.label}]", function=spec.forward, kind="forward", case=case.label,
                  convention=convention)
    answer = session.call(_request(spec, case, args, "forward"))
    if isinstance(answer, Failed):
        result = _crash(record, answer.message)
    elif isinstance(answer, Raised):
        result = _crash(record, raised_message(answer, source, session.notes) + _call_hint(answer, spec.forward, session))
    elif (problem := returned_problem(answer, expected)) is not None:
        result = CheckRecord(**record, status="fail", message=f"{record['name']}: {problem}")
    else:
        actual = answer.array
        if expected.ndim == 0 and actual.size == 1:  # a number returned as a 1-element array is still the number
            actual = actual.reshape(())
        outcome = compare(expected, actual, atol=settings.atol, rtol=settings.rtol)
        numbers = {k: outcome.get(k) for k in NUMBERS}
        reference = "sum(x * w) + b" if spec.layer == "dot" and "b" in case.shapes else REFERENCE_NAME[spec.layer]
        message = value_message(outcome, reference)
        result = CheckRecord(**record, status="pass" if outcome["ok"] else "fail",
                             message=f"{record['name']}: {message}", **numbers)
    return result


def _call_hint(raised: Raised, function: str, session) -> str:
    """How the convention calls ``function``, when calling it failed on its parameters."""
    if raised.origin != "adapter" or raised.type != "TypeError":
        return ""
    signatures = session.convention.parameters.get(function)
    if not signatures:
        return ""
    return f" (the {session.convention.name} convention calls {function}({', '.join(signatures[0])}))"


def check_backward(*, session, spec, case, settings, source, convention, forward, state=None) -> "list[CheckRecord]":
    """Call the backward with a random upstream gradient; one record per input, against convcli's gradient.

    ``forward`` is the forward's record on this case (None when the file has no forward), ``state``
    the id of that call, whose result (a cache, a layer object) the child keeps for the backward.
    """
    arrays, args = _prepared(spec, case, settings)
    out = reference_output(case, arrays)
    G = case_sets.upstream(case, out.shape, settings.seed)
    G_course = _course(spec, "out", G)
    expected = {n: _course(spec, n, g) for n, g in reference_gradients(case, arrays, G).items() if n in arrays}
    answer = session.call(_request(spec, case, args, "backward", dout=encode_array(G_course), state=state))
    base = f"{spec.backward}[{case.label}]"
    records = []

    def record(name: str) -> dict:
        course = spec.course_name(name)
        return dict(name=f"{base}:{course}", function=spec.backward, kind="backward", input=course, case=case.label,
                    convention=convention)

    if isinstance(answer, (Failed, Raised)):
        if isinstance(answer, Failed):
            message = answer.message
        else:
            message = raised_message(answer, source, session.notes) + _call_hint(answer, spec.backward, session)
        if forward is not None and forward.crashed and isinstance(answer, Raised) and answer.origin == "adapter":
            message = f"not checked: {spec.backward} needs what {spec.forward} returns, and {forward.name} failed"
        return [_crash(record(n), message) for n in expected]
    grads, problems = gradients_of(answer, spec, expected)
    for name in expected:
        if name in problems:
            records.append(CheckRecord(**record(name), status="fail", message=f"{record(name)['name']}: {problems[name]}"))
            continue
        outcome = compare(expected[name], grads[name], atol=settings.atol, rtol=settings.rtol)
        numbers = {k: outcome.get(k) for k in NUMBERS}
        text = value_message(outcome, f"convcli's {spec.layer} gradient")
        text = text.replace("returned an array", "returned a gradient")
        extra: "dict[str, Any]" = {}
        if not outcome["ok"] and outcome["problem"] is None:
            text += _why(session, spec, case, settings, arrays, args, G, G_course, name, grads[name], forward, extra)
        records.append(CheckRecord(**record(name), status="pass" if outcome["ok"] else "fail",
                                   message=f"{record(name)['name']}: {text}", analytical=outcome.get("actual"),
                                   **numbers, **extra))
    return records


def _why(session, spec, case, settings, arrays, args, G, G_course, name, grad, forward, extra) -> str:
    """Explain a wrong gradient: the upstream gradient ignored, or the gradient of a wrong forward."""
    ones = _course(spec, name, reference_gradients(case, arrays, np.ones_like(G))[name])
    if compare(ones, grad, atol=settings.atol, rtol=settings.rtol)["ok"]:
        return "; it is the gradient for an upstream gradient of ones: multiply by the upstream gradient"
    if forward is None or forward.crashed:
        return ""
    numerical = _numerical(session, spec, case, settings, args, G_course, name, grad)
    if numerical is None:
        return ""
    matches, value = numerical
    if value is not None:
        extra["numerical"] = value
    if matches and forward.status == "fail":
        return (f"; it matches the gradient of your {spec.forward}, but {spec.forward} is wrong "
                f"(see {forward.name})")
    if not matches and forward.status == "fail":
        return f"; it is not the gradient of your {spec.forward} either"
    return ""


def _numerical(session, spec, case, settings, args, G_course, name, grad) -> "tuple[bool, float | None] | None":
    """Whether ``grad`` is the finite-difference gradient of the file's forward (None: cannot tell)."""
    x = args[name]
    eps = settings.eps
    if settings.mode == "full" and x.size <= FULL_LIMIT:
        directions = [np.eye(x.size)[i].reshape(x.shape) for i in range(x.size)]
    else:
        rng = np.random.default_rng(settings.seed)
        directions = [rng.standard_normal(x.shape) for _ in range(DIRECTIONS)]
    points = [encode_array(x + sign * eps * d) for d in directions for sign in (1, -1)]
    answer = session.call({"op": "losses", "layer": spec.layer, "args": encode_arrays(args),
                           "options": {k: v for k, v in case.options.items() if k != "convcli_mode"},
                           "dout": encode_array(G_course), "input": name, "points": points},
                          seconds=settings.timeout)
    if not isinstance(answer, Value) or answer.kind != "array" or answer.array.shape != (2 * len(directions),):
        return None
    losses = answer.array.reshape(-1, 2)
    slopes = (losses[:, 0] - losses[:, 1]) / (2 * eps)
    projected = np.array([np.sum(grad * d) for d in directions])
    outcome = compare(slopes, projected, atol=settings.atol * 10, rtol=settings.rtol * 10)
    value = None
    if len(directions) == x.size and np.shape(grad) == x.shape:  # per element: the value where they differ most
        numerical = slopes.reshape(x.shape)
        value = float(numerical.flat[int(np.argmax(np.abs(grad - numerical)))])
    return bool(outcome["ok"]), value
