"""Verdicts: an output or a gradient against the true answer, and messages a student can act on.

Everything here runs in the parent, on values the child sent back
(:class:`~convcli.gradcheck.protocol.Value`) and references computed here.
An element passes when ``|actual - expected| <= atol + rtol * |expected|``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcli.gradcheck.protocol import Raised, Value
from convcli.gradcheck.reports import CheckRecord


def compare(expected, actual, *, atol: float, rtol: float) -> "dict[str, Any]":
    """Shape, finiteness and values: ``{"ok", "problem", numbers...}`` (``problem`` names a shape or NaN)."""
    expected, actual = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if actual.shape != expected.shape:
        want = "a number" if expected.shape == () else f"shape {expected.shape}"
        got = "a number" if actual.shape == () else f"shape {actual.shape}"
        return {"ok": False, "problem": f"has {got}, expected {want}"}
    abs_err = np.abs(actual - expected)
    scale = np.maximum(np.abs(actual), np.abs(expected))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_err = np.where(scale > 0, abs_err / np.where(scale > 0, scale, 1.0), 0.0)
        tolerance = atol + rtol * np.abs(expected)
        badness = np.where(np.isfinite(actual), abs_err / np.maximum(tolerance, np.finfo(float).tiny), np.inf)
    worst = np.unravel_index(int(np.argmax(badness)), badness.shape) if badness.size else ()
    numbers = dict(
        max_abs_error=float(np.max(abs_err)) if abs_err.size else 0.0,
        max_rel_error=float(np.max(rel_err)) if rel_err.size else 0.0,
        worst_index=[int(i) for i in worst] if expected.ndim and expected.size else None,
        expected=float(expected[worst]) if expected.size else None,
        actual=float(actual[worst]) if actual.size else None,
    )
    problem = None
    if not np.isfinite(actual).all():
        problem = "has a non-finite value"
    ok = problem is None and bool(np.all(abs_err <= tolerance))
    return {"ok": ok, "problem": problem, **numbers}


def where(index) -> str:
    return f" at {index}" if index is not None else ""


def compare_forward(function: str, expected, actual, *, atol: float, rtol: float, reference: str) -> CheckRecord:
    """A forward output against a reference, as a record named ``function`` (used by the self-check)."""
    result = compare(expected, actual, atol=atol, rtol=rtol)
    record = dict(name=function, function=function, kind="forward")
    numbers = {k: result.get(k) for k in ("max_abs_error", "max_rel_error", "worst_index", "expected", "actual")}
    return CheckRecord(**record, status="pass" if result["ok"] else "fail",
                       message=f"{function}: " + value_message(result, reference), **numbers)


def value_message(result: dict, reference: str) -> str:
    """``"matches convcli's conv_forward (max abs. error 1e-16)"`` or what is wrong, and where."""
    if result["ok"]:
        return f"matches {reference} (max abs. error {result['max_abs_error']:.1e})"
    if result["problem"] and "shape" in result["problem"]:
        return f"returned an array that {result['problem']} ({reference})"
    index = where(result["worst_index"])
    if result["problem"]:
        return f"returned a non-finite value{index}: {result['actual']} (expected {result['expected']:.4f})"
    return (f"wrong{index}: expected {result['expected']:.4f} ({reference}), got {result['actual']:.4f} "
            f"(rel. error {result['max_rel_error']:.1e})")


def shape_word(expected: np.ndarray) -> str:
    return "a number" if np.ndim(expected) == 0 else f"an array of shape {np.shape(expected)}"


def returned_problem(value: Value, expected: np.ndarray) -> "str | None":
    """Why a returned value is not an array of numbers at all, or None."""
    if value.kind == "array":
        return None
    hint = " (is a return statement missing?)" if value.kind == "none" else ""
    return f"returned {value.describe()}, expected {shape_word(expected)}{hint}"


# ----------------------------------------------------------------------------- gradients


def gradients_of(value: Value, spec, expected: "dict[str, np.ndarray]") -> "tuple[dict, dict]":
    """Read a backward's return value as ``{convcli name: array}``; ``{name: problem}`` for what is missing.

    A dict is keyed by the course's input names, a tuple follows ``spec.order``,
    one array is the gradient of a layer's only input.
    """
    course_to_ours = {course: ours for ours, course in spec.inputs.items()}
    names = [n for n in expected]
    found: "dict[str, Value]" = {}
    problems: "dict[str, str]" = {}
    wanted = ", ".join(repr(spec.course_name(n)) for n in names)
    if value.kind == "dict":
        for key, item in value.items:
            ours = course_to_ours.get(key, key if key in names else None)
            if ours in names:
                found[ours] = item
        keys = ", ".join(repr(k) for k, _ in value.items) or "none"
        for name in names:
            if name not in found:
                key = spec.course_name(name)
                problems[name] = f"returned a dict without key {key!r} (keys: {keys}; expected {wanted})"
    elif value.kind == "tuple":
        order = [course_to_ours.get(course, course) for course in spec.order]
        if value.length != len(order):
            message = f"returned a tuple of {value.length}, expected {len(order)}: ({', '.join(spec.order)})"
            problems = dict.fromkeys(names, message)
        else:
            found = {name: item for name, (_, item) in zip(order, value.items)}
    elif value.kind == "array" and len(names) == 1:
        found = {names[0]: value}
    else:
        hint = " (is a return statement missing?)" if value.kind == "none" else ""
        problems = dict.fromkeys(names, f"returned {value.describe()}, expected the gradients of {wanted}{hint}")
    arrays = {}
    for name, item in found.items():
        if item.kind == "array":
            arrays[name] = item.array
        else:
            problems[name] = f"gradient of {spec.course_name(name)!r} is {item.describe()}, " \
                             f"expected {shape_word(expected[name])}"
    return arrays, problems


def raised_message(raised: Raised, source, notes) -> str:
    """``"raised NameError: name 'h5py' is not defined: the import on line 3 failed (...) at hw.py, line 7: ..."``."""
    if raised.origin == "adapter" and raised.type == "ValueError" and raised.line is None:
        return raised.message
    text = f"raised {raised.type}" + (f": {raised.message}" if raised.message else "")
    if raised.type == "NameError":
        name = raised.name or _quoted(raised.message)
        for note in notes:
            if name and name in note.names:
                text += f": {explain_note(note, source)}"
                break
    if raised.type == "ModuleNotFoundError" and "convcli cannot be imported" in raised.message:
        text += " (convcli's layers are the reference here; write the layer yourself)"
    if raised.line is not None:
        text += f" at {source.path.name}, {source.where(raised.line)}"
        if raised.code:
            text += f": {raised.code}"
    return text


def explain_note(note, source) -> str:
    """Why a statement of the file did not run: ``"the import on line 3 failed (No module named 'h5py')"``."""
    place = source.where(note.line)
    if note.kind == "timeout":
        return f"the statement on {place} was stopped: loading the file ran past the time limit"
    if note.kind == "late":
        return f"the statement on {place} was not run: loading the file ran past the time limit"
    if note.kind == "syntax":
        return f"the cell at {place} has a syntax error ({note.message})"
    what = "the import" if note.kind == "import" else "the statement"
    reason = f"{note.type}: {note.message}" if note.kind != "import" else note.message or note.type
    return f"{what} on {place} failed ({reason})"


def note_line(note, source) -> str:
    """A skipped statement for the report: ``"cell 3, line 2: from lib.checking import ... -- skipped (...)"``."""
    code = source.line_text(note.line)
    if note.kind in ("timeout", "late"):
        reason = "loading the file ran past the time limit"
    else:
        reason = f"{note.type}: {note.message}" if note.message else note.type
    return f"{source.where(note.line)}: {code} -- skipped ({reason})"


def _quoted(message: str) -> "str | None":
    parts = message.split("'")
    return parts[1] if len(parts) >= 3 else None


def gradcheck_records(result, names: "dict[str, str]", *, function: str, forward: str) -> "list[CheckRecord]":
    """One record per input of a :class:`~convcli.checking.GradCheckResult` (the self-check's backward checks)."""
    records = []
    for check in result.inputs:
        message = check.message.replace("forward_f raised", f"{forward} raised")
        records.append(CheckRecord(
            name=names.get(check.name, f"{function}:{check.name}"), function=function, kind="backward",
            input=check.name, status="pass" if check.passed else "fail", message=message,
            max_abs_error=_number(check.max_abs_error), max_rel_error=_number(check.max_rel_error),
            worst_index=list(check.worst_index) if check.worst_index is not None else None,
            numerical=_number(check.numerical), analytical=_number(check.analytical),
        ))
    return records


def _number(value) -> "float | None":
    return None if value is None else float(value)
