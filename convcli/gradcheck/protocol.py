"""The messages between the parent and the child (:mod:`convcli.gradcheck._worker`), checked strictly.

The parent trusts nothing the child sends: every answer is read by
:func:`parse_answer`, which accepts only the known message types with the
known fields, of the right types and sizes, and turns returned values into
:class:`Value` trees whose arrays are rebuilt here from their bytes.  Anything
else raises :class:`ProtocolError`, which the caller turns into an error of
the check that was running -- never into a pass.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The most numbers an answer may carry, and the longest line the parent reads.
MAX_ELEMENTS = 1_000_000
MAX_LINE = 8 * MAX_ELEMENTS + 1_000_000
MAX_DEPTH, MAX_ITEMS = 3, 16
KINDS = ("none", "array", "tuple", "dict", "other", "too_big")


class ProtocolError(Exception):
    """The child sent something that is not a well-formed answer."""


@dataclass
class Value:
    """A value a function returned: ``kind`` is one of :data:`KINDS`."""

    kind: str
    array: "np.ndarray | None" = None
    items: "list[tuple[str | None, Value]]" = field(default_factory=list)
    length: int = 0
    type_name: str = ""
    shape: "tuple[int, ...] | None" = None

    def describe(self) -> str:
        """``"a tuple of 2"``, ``"an array of shape (3, 3)"``, ``"None"``..."""
        if self.kind == "none":
            return "None"
        if self.kind == "array":
            return "a number" if self.array.ndim == 0 else f"an array of shape {self.array.shape}"
        if self.kind == "tuple":
            return f"a tuple of {self.length}"
        if self.kind == "dict":
            keys = ", ".join(repr(k) for k, _ in self.items)
            return f"a dict with keys {keys}" if keys else "an empty dict"
        if self.kind == "too_big":
            return f"an array of shape {self.shape} (too large)"
        return f"a {self.type_name}"


@dataclass
class Raised:
    """What the child says about an exception: all text, cut to size."""

    type: str
    message: str
    line: "int | None"
    code: str
    origin: str
    name: "str | None" = None


# ----------------------------------------------------------------------------- parent -> child


def encode_array(array: np.ndarray) -> dict:
    array = np.asarray(array, dtype="<f8")
    data = base64.b64encode(array.tobytes(order="C")).decode("ascii")
    return {"kind": "array", "shape": list(array.shape), "data": data}


def encode_arrays(arrays: "dict[str, np.ndarray]") -> dict:
    return {name: encode_array(array) for name, array in arrays.items()}


# ----------------------------------------------------------------------------- child -> parent


def _need(condition: bool, what: str) -> None:
    if not condition:
        raise ProtocolError(what)


def _text(data: dict, key: str, limit: int = 1000, *, optional: bool = False) -> "str | None":
    value = data.get(key)
    if value is None and optional:
        return None
    _need(isinstance(value, str), f"field {key!r} is not text")
    return value[:limit]


def _int(value: Any, what: str, *, optional: bool = False) -> "int | None":
    if value is None and optional:
        return None
    _need(isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9, f"{what} is not a count")
    return value


def parse_value(data: Any, depth: int = 0) -> Value:
    """A :class:`Value` from the child's description, validated all the way down."""
    _need(isinstance(data, dict) and data.get("kind") in KINDS, "a value of unknown kind")
    _need(depth <= MAX_DEPTH, "a value nested too deep")
    kind = data["kind"]
    if kind == "none":
        return Value("none")
    if kind == "other":
        return Value("other", type_name=_text(data, "type", 100))
    if kind in ("array", "too_big"):
        shape = data.get("shape")
        _need(isinstance(shape, list) and len(shape) <= 8, "an array without a shape")
        shape = tuple(_int(n, "an array dimension") for n in shape)
        size = math.prod(shape)
        if kind == "too_big":
            return Value("too_big", shape=shape)
        _need(size <= MAX_ELEMENTS, "an array larger than allowed")
        raw = data.get("data")
        _need(isinstance(raw, str) and len(raw) <= 4 * (8 * size + 2) // 3 + 4, "array data of the wrong size")
        try:
            buffer = base64.b64decode(raw.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ProtocolError("array data that is not base64") from None
        _need(len(buffer) == 8 * size, "array data of the wrong size")
        return Value("array", array=np.frombuffer(buffer, dtype="<f8").reshape(shape).astype(np.float64))
    items = data.get("items")
    _need(isinstance(items, list) and len(items) <= MAX_ITEMS, "a container without items")
    length = _int(data.get("length"), "a container length")
    if kind == "tuple":
        return Value("tuple", items=[(None, parse_value(item, depth + 1)) for item in items], length=length)
    parsed = []
    for item in items:
        _need(isinstance(item, list) and len(item) == 2 and isinstance(item[0], str), "a dict item")
        parsed.append((item[0][:100], parse_value(item[1], depth + 1)))
    return Value("dict", items=parsed, length=length)


def parse_raised(data: Any) -> Raised:
    _need(isinstance(data, dict), "an exception that is not a record")
    origin = _text(data, "origin", 20)
    _need(origin in ("student", "adapter", "other"), "an exception of unknown origin")
    return Raised(
        type=_text(data, "type", 100),
        message=_text(data, "message", 500),
        line=_int(data.get("line"), "a line number", optional=True),
        code=_text(data, "code", 200),
        origin=origin,
        name=_text(data, "name", 100, optional=True),
    )


def parse_answer(message: Any, expected_id: int) -> "Value | Raised":
    """A call's answer: the returned :class:`Value`, or :class:`Raised`."""
    _need(isinstance(message, dict), "an answer that is not a record")
    kind = message.get("type")
    _need(kind in ("result", "raised"), f"an unexpected message {str(kind)[:40]!r} instead of an answer")
    _need(message.get("id") == expected_id, "an answer to a request that was not asked")
    if kind == "raised":
        return parse_raised(message.get("exception"))
    return parse_value(message.get("value"))


@dataclass
class Note:
    """A top-level statement of the file that was skipped while loading it."""

    line: int
    kind: str  # "import", "statement", "syntax", "timeout", "late"
    names: "list[str]"
    type: str
    message: str


def parse_loaded(message: Any) -> "tuple[list[str], list[Note], dict[str, str]]":
    """The ``loaded`` message: defined names, notes on skipped statements, forms the adapter detected."""
    _need(isinstance(message, dict) and message.get("type") == "loaded", "not a 'loaded' message")
    defined = message.get("defined")
    _need(isinstance(defined, list) and len(defined) <= 2000, "defined names that are not a list")
    names = [name[:200] for name in defined if isinstance(name, str)]
    raw_notes = message.get("notes")
    _need(isinstance(raw_notes, list) and len(raw_notes) <= 200, "notes that are not a list")
    notes = []
    for note in raw_notes:
        _need(isinstance(note, dict), "a note that is not a record")
        kind = _text(note, "kind", 20)
        _need(kind in ("import", "statement", "syntax", "timeout", "late"), "a note of unknown kind")
        found = note.get("names")
        _need(isinstance(found, list) and all(isinstance(n, str) for n in found), "a note's names")
        line = _int(note.get("line"), "a note's line", optional=True) or 0
        bound = [n[:100] for n in found[:50]]
        notes.append(Note(line, kind, bound, _text(note, "type", 100), _text(note, "message", 500)))
    forms = message.get("forms")
    _need(isinstance(forms, dict) and len(forms) <= 20, "forms that are not a record")
    forms = {str(k)[:40]: str(v)[:300] for k, v in forms.items() if isinstance(v, str)}
    return names, notes, forms
