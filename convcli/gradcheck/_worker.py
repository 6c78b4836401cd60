"""The child process of ``convcli gradcheck --impl``: load a file, call its functions, send back raw outputs.

This file runs on its own (``python -I _worker.py REQUEST_FD RESPONSE_FD``): it
imports the standard library and numpy only, never convcli, and it blocks
``import convcli`` for the code it runs, so the checked file cannot reach the
reference it is judged against.  It judges nothing either: it runs what the
parent asks and sends back what came out -- arrays, numbers, an exception's
type, message and line.  Every reference, tolerance and verdict lives in the
parent (:mod:`convcli.gradcheck.impl`), which validates each message strictly.

Requests (JSON lines on REQUEST_FD) and answers (JSON lines on RESPONSE_FD):

- ``{"op": "load", "adapter": path, "chunks": [{"source", "line"}], "filename", "budget"}``:
  load the convention's adapter, then run the file's top-level statements one
  at a time (a notebook's cells are chunks).  A statement that raises is
  skipped and noted.  Answers ``adapter`` (its ``LAYERS``/``LAYOUT``), then
  ``loaded`` (defined names and notes) or ``load_error``.
- ``{"op": "call", "id", "layer", "step": "forward"|"backward", "args", "options", "dout", "state"}``:
  answers ``result`` with the raw value, or ``raised``.
- ``{"op": "losses", "id", "layer", "args", "options", "dout", "input", "points"}``:
  ``sum(dout * forward(args with input replaced by each point))`` per point (only to
  explain a wrong gradient); answers ``result`` or ``raised``.
"""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import linecache
import os
import signal
import sys
import traceback
import types

#: The most numbers one answer may carry (the parent enforces its own limit too).
MAX_ELEMENTS = 1_000_000
#: How deep and how wide a returned tuple or dict is described.
MAX_DEPTH, MAX_ITEMS = 3, 16
#: How long an import may take once the file's loading time is used up (the parent allows a few seconds more).
LATE_IMPORT_SECONDS = 0.5
BLOCK_MESSAGE = (
    "convcli cannot be imported by the code being checked: gradcheck compares your functions with "
    "convcli's own layers, so they must not use them"
)


class BlockConvcli:
    """A meta path finder that refuses ``convcli`` and its submodules."""

    def find_spec(self, name, path=None, target=None):
        if name == "convcli" or name.startswith("convcli."):
            raise ModuleNotFoundError(BLOCK_MESSAGE, name=name)
        return None


class LoadTimeout(BaseException):
    """The file's top level ran past the loading time."""


# ----------------------------------------------------------------------------- values


def encode(value, depth: int = 0) -> dict:
    """A returned value as plain data: arrays as base64 float64, tuples and dicts item by item."""
    import numpy as np

    if value is None:
        return {"kind": "none"}
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, (tuple, list)) and depth < MAX_DEPTH and not _numeric_list(value):
        return {"kind": "tuple", "items": [encode(v, depth + 1) for v in list(value)[:MAX_ITEMS]], "length": len(value)}
    if isinstance(value, dict) and depth < MAX_DEPTH:
        items = [[str(k)[:100], encode(v, depth + 1)] for k, v in list(value.items())[:MAX_ITEMS]]
        return {"kind": "dict", "items": items, "length": len(value)}
    if isinstance(value, (bool, int, float, np.number, np.ndarray, list, tuple)) or hasattr(value, "__array__"):
        try:
            array = np.asarray(value)
        except Exception:  # ragged lists and other oddities
            return {"kind": "other", "type": type(value).__name__}
        if array.dtype.kind not in "biuf":
            return {"kind": "other", "type": f"{type(value).__name__} of {array.dtype}"}
        if array.size > MAX_ELEMENTS:
            return {"kind": "too_big", "shape": list(array.shape)}
        data = np.asarray(array, dtype="<f8").tobytes(order="C")
        return {"kind": "array", "shape": list(array.shape), "data": base64.b64encode(data).decode("ascii")}
    return {"kind": "other", "type": type(value).__name__}


def _numeric_list(value) -> bool:
    return bool(value) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def decode(data: dict):
    import numpy as np

    raw = base64.b64decode(data["data"])
    return np.frombuffer(raw, dtype="<f8").reshape(data["shape"]).copy()


def describe(exc: BaseException, filename: str, adapter: str) -> dict:
    """An exception as data: type, message, and the deepest line of the checked file it passed through."""
    frames = list(traceback.walk_tb(exc.__traceback__))
    student = [lineno for frame, lineno in frames if frame.f_code.co_filename == filename]
    origin = "other"
    if student:
        origin = "student"
    elif any(frame.f_code.co_filename == adapter for frame, _ in frames):
        origin = "adapter"
    line = student[-1] if student else None
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line, origin = exc.lineno, "student"
    code = linecache.getline(filename, line).strip()[:200] if line else ""
    text = str(exc).strip().splitlines()
    return {
        "type": type(exc).__name__[:100],
        "message": text[0][:500] if text else "",
        "line": line,
        "code": code,
        "origin": origin,
        "name": getattr(exc, "name", None) if isinstance(exc, (NameError, ImportError)) else None,
    }


# ----------------------------------------------------------------------------- loading


def load_adapter(path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("_convcli_adapter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bound_names(stmt: ast.stmt) -> "list[str]":
    """The names a top-level statement would have made."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [alias.asname or alias.name.split(".")[0] for alias in stmt.names if alias.name != "*"]
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    return [node.id for node in ast.walk(stmt) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)]


def load_student(request: dict, adapter_path: str) -> "tuple[types.ModuleType, list[dict]]":
    """Run the file's statements one at a time; a failing one is noted and skipped."""
    filename = request["filename"]
    module = types.ModuleType("_convcli_student")
    module.__file__ = filename
    sys.modules[module.__name__] = module
    sys.path.insert(0, os.path.dirname(filename))  # the file's own helper modules import
    lines = []
    for chunk in request["chunks"]:
        lines += [""] * (chunk["line"] - len(lines))
        lines += chunk["source"].splitlines()
    linecache.cache[filename] = (0, None, [line + "\n" for line in lines], filename)
    notes: "list[dict]" = []
    deadline = _monotonic() + float(request["budget"])
    signal.signal(signal.SIGALRM, _raise_timeout)
    flags = 0
    for chunk in request["chunks"]:
        padded = "\n" * chunk["line"] + chunk["source"]
        try:
            tree = ast.parse(padded, filename)
        except SyntaxError as exc:
            if len(request["chunks"]) == 1:
                raise
            notes.append({"line": exc.lineno, "kind": "syntax", "names": [], **_error(exc, filename, adapter_path)})
            continue
        for stmt in tree.body:
            definition = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            remaining = deadline - _monotonic()
            if remaining <= 0:  # past the time: definitions still run, imports get a moment, the rest is skipped
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    remaining = LATE_IMPORT_SECONDS
                elif not definition:
                    notes.append({"line": stmt.lineno, "kind": "late", "names": bound_names(stmt), "type": "",
                                  "message": ""})
                    continue
            code = compile(ast.Module([stmt], type_ignores=[]), filename, "exec", flags=flags, dont_inherit=True)
            try:
                if not definition:
                    signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001))
                exec(code, module.__dict__)
            except BaseException as exc:  # SystemExit and the timeout too: the statement is skipped
                signal.setitimer(signal.ITIMER_REAL, 0)
                kind = "import" if isinstance(stmt, (ast.Import, ast.ImportFrom)) else "statement"
                if isinstance(exc, LoadTimeout):
                    kind = "timeout"
                missing = [n for n in bound_names(stmt) if n not in module.__dict__]
                error = _error(exc, filename, adapter_path)
                notes.append({"line": stmt.lineno, "kind": kind, "names": missing, **error})
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                import __future__

                for alias in stmt.names:
                    flags |= getattr(getattr(__future__, alias.name, None), "compiler_flag", 0)
    return module, notes


def _error(exc: BaseException, filename: str, adapter: str) -> dict:
    info = describe(exc, filename, adapter)
    return {"type": info["type"], "message": info["message"]}


def _raise_timeout(signum, frame):
    raise LoadTimeout("the file's top level ran past the time limit")


def _monotonic() -> float:
    import time

    return time.monotonic()


def defined_names(module: types.ModuleType) -> "list[str]":
    """Callables at the top level, and ``Class.method`` for the methods of classes."""
    names = []
    for name, value in list(vars(module).items())[:10_000]:
        if name.startswith("__") or not callable(value):
            continue
        names.append(name)
        if isinstance(value, type):
            names += [f"{name}.{attr}" for attr in list(vars(value))[:200] if not attr.startswith("__")]
    return names[:2000]


def adapter_data(adapter: types.ModuleType) -> dict:
    data = {"layers": getattr(adapter, "LAYERS", None), "layout": getattr(adapter, "LAYOUT", {}),
            "name": str(getattr(adapter, "NAME", ""))[:60]}
    return json.loads(json.dumps(data, default=str))


# ----------------------------------------------------------------------------- calls


class Session:
    def __init__(self, send, adapter: types.ModuleType, adapter_path: str, module, filename: str) -> None:
        self.send, self.adapter, self.adapter_path = send, adapter, adapter_path
        self.module, self.filename = module, filename
        self.states: "dict[int, object]" = {}

    def arrays(self, data: dict) -> dict:
        return {name: decode(value) for name, value in data.items()}

    def handle(self, request: dict) -> None:
        ident = request["id"]
        try:
            if request["op"] == "losses":
                value = self.losses(request)
            elif request["step"] == "forward":
                out, state = self.adapter.forward(
                    self.module, request["layer"], self.arrays(request["args"]), request["options"]
                )
                self.states = {ident: state}  # only the latest forward's state is kept
                value = encode(out)
            else:
                state = self.states.pop(request.get("state"), None)
                grads = self.adapter.backward(
                    self.module,
                    request["layer"],
                    self.arrays(request["args"]),
                    request["options"],
                    decode(request["dout"]),
                    state,
                )
                value = encode(grads)
        except BaseException as exc:  # anything from the checked code is an answer, not our failure
            self.send({"type": "raised", "id": ident, "exception": describe(exc, self.filename, self.adapter_path)})
            return
        self.send({"type": "result", "id": ident, "value": value})

    def losses(self, request: dict) -> dict:
        import numpy as np

        args, dout, key = self.arrays(request["args"]), decode(request["dout"]), request["input"]
        values = []
        for point in request["points"]:
            trial = dict(args)
            trial[key] = decode(point)
            out, _ = self.adapter.forward(self.module, request["layer"], trial, request["options"])
            if hasattr(out, "detach"):
                out = out.detach().cpu().numpy()
            values.append(float(np.sum(np.asarray(out, dtype=np.float64) * dout)))
        return encode(np.array(values))


def _module_of(thing) -> str:
    """The module a finder or hook (a class, an instance or a function) comes from."""
    return str(getattr(thing, "__module__", None) or getattr(type(thing), "__module__", ""))


def main() -> None:
    request_fd, response_fd = int(sys.argv[1]), int(sys.argv[2])
    requests = os.fdopen(request_fd, "r", encoding="utf-8")
    responses = os.fdopen(response_fd, "w", encoding="utf-8")

    def send(message: dict) -> None:
        responses.write(json.dumps(message, allow_nan=False) + "\n")
        responses.flush()

    # an editable install finds convcli through a finder of its own: drop it, then refuse convcli outright
    sys.meta_path[:] = [f for f in sys.meta_path if "convcli" not in _module_of(f)]
    sys.path_hooks[:] = [h for h in sys.path_hooks if "convcli" not in _module_of(h)]
    sys.path_importer_cache.clear()
    sys.meta_path.insert(0, BlockConvcli())
    for name in [n for n in sys.modules if n == "convcli" or n.startswith("convcli.")]:
        del sys.modules[name]
    try:
        import numpy  # noqa: F401  (before the clock starts on the file)
    except ImportError as exc:
        send({"type": "load_error", "stage": "numpy", "exception": {"type": "ImportError", "message": str(exc)}})
        return
    session = None
    for line in requests:
        request = json.loads(line)
        if request["op"] == "load":
            session = _load(request, send)
            if session is None:
                return
        elif session is not None:
            session.handle(request)


def _load(request: dict, send) -> "Session | None":
    adapter_path = request["adapter"]
    try:
        adapter = load_adapter(adapter_path)
        send({"type": "adapter", **adapter_data(adapter)})
    except BaseException as exc:
        info = describe(exc, adapter_path, adapter_path)
        frames = traceback.walk_tb(exc.__traceback__)
        info["line"] = next((n for f, n in frames if f.f_code.co_filename == adapter_path), None)
        send({"type": "load_error", "stage": "adapter", "exception": info})
        return None
    try:
        module, notes = load_student(request, adapter_path)
    except SyntaxError as exc:
        send({"type": "load_error", "stage": "file", "exception": describe(exc, request["filename"], adapter_path)})
        return None
    summary = getattr(adapter, "describe", None)
    try:
        forms = summary(module) if summary else {}
        forms = {str(k): str(v)[:300] for k, v in dict(forms).items()}
    except BaseException:
        forms = {}
    send({"type": "loaded", "defined": defined_names(module), "notes": notes[:200], "forms": forms})
    return Session(send, adapter, adapter_path, module, request["filename"])


if __name__ == "__main__":
    main()
