"""The child process of ``convcli gradcheck --impl``: load a user's file and call its functions.

Run as ``python -m convcli.gradcheck._worker``.  It reads one JSON job on stdin and
answers in JSON lines on a private copy of stdout (the protocol is described in
:mod:`convcli.gradcheck.runner`).  The real stdout is pointed at stderr first, so that
whatever the user's code prints is a log line, never part of the protocol.

Every call into user code goes through :class:`Guard`, which turns any
exception (even ``SystemExit``) into :class:`UserCodeError` whose text names
the exception and the line of the user's file it came from.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import json
import linecache
import os
import sys
import time
import traceback
import warnings
from typing import Any, Callable

#: The upstream-gradient argument each backward pass gets (the lab's names).
UPSTREAM = {"dot_backward": "da", "conv_backward": "dA"}
UPSTREAM_USE = {
    "dot_backward": "dx and dw must both be multiplied by da",
    "conv_backward": "dX and dw must both be computed from dA",
}
#: What to tell a student whose file fails while loading (a SyntaxError aside).
TOP_LEVEL_HINT = 'code outside the functions runs when the file is loaded: move it under if __name__ == "__main__":'


class UserCodeError(Exception):
    """A user's function raised; the text says what and where."""


class LoadError(Exception):
    """The user's file could not be run as a module."""


class Guard:
    """Calls into the user's file, describing any exception by the line it came from."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.filename = os.path.basename(path)

    def call(self, name: str, function: Callable, *args: Any) -> Any:
        try:
            return function(*args)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from user code too
            raise UserCodeError(f"{name} raised {self.describe(exc, function)}") from exc

    def describe(self, exc: BaseException, function: "Callable | None" = None) -> str:
        """``"ValueError: bad shape at lab.py, line 12: A = X @ w"``."""
        text = str(exc).strip()
        what = type(exc).__name__ + (f": {text.splitlines()[0][:200]}" if text else "")
        lines = [
            lineno for frame, lineno in traceback.walk_tb(exc.__traceback__) if frame.f_code.co_filename == self.path
        ]
        if lines:
            code = _excerpt(linecache.getline(self.path, lines[-1]))
            return f"{what} at {self.filename}, line {lines[-1]}" + (f": {code}" if code else "")
        code_object = getattr(function, "__code__", None)
        if code_object is not None and code_object.co_filename == self.path:
            return f"{what} (calling the function defined at {self.filename}, line {code_object.co_firstlineno})"
        return what


def load(path: str, guard: Guard):
    """Run the user's file as a module (under a private name) and return it."""
    name = "_convcli_user_impl"
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = path
    sys.modules[name] = module
    sys.path.insert(0, os.path.dirname(path))  # so the file's own helper modules import
    try:
        loader.exec_module(module)
    except BaseException as exc:  # SystemExit too
        if isinstance(exc, SyntaxError) and exc.filename in (path, None):  # None: not text at all (null bytes)
            where = f" at line {exc.lineno}" if exc.lineno else ""
            code = _excerpt(exc.text or "")
            raise LoadError(f"SyntaxError{where}: {exc.msg}" + (f": {code}" if code else "")) from None
        raise LoadError(f"running it raised {guard.describe(exc)} ({TOP_LEVEL_HINT})") from None
    return module


def _excerpt(line: str, limit: int = 100) -> str:
    """A line of the user's file for a message: stripped, and cut short if it is long."""
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ----------------------------------------------------------------------------- one function


def check_forward(function: str, module, inputs: dict, guard: Guard) -> dict:
    """Call a forward pass; send back its output (compared by the parent) or why there is none."""
    import numpy as np

    from convcli.gradcheck.lab import failed_checks

    cap = 10**6 + 4 * sum(a.size for a in inputs.values())
    started = time.perf_counter()
    try:
        out = guard.call(function, getattr(module, function), *inputs.values())
    except UserCodeError as exc:
        return _records(failed_checks(function, str(exc), crashed=True, seconds=time.perf_counter() - started))
    seconds = time.perf_counter() - started
    want = "a number" if function == "dot_forward" else "an array"
    try:
        array = np.asarray(out)
    except (TypeError, ValueError):  # e.g. ragged nested lists
        array = np.asarray(None)
    if out is None or array.dtype.kind not in "biuf":
        hint = " (is a return statement missing?)" if out is None else ""
        message = f"{function}: returned {type(out).__name__}, expected {want} of real numbers{hint}"
        return _records(failed_checks(function, message, crashed=False, seconds=seconds))
    array = array.astype(np.float64)
    data = array.ravel().tolist() if array.size <= cap else None
    return {"output": {"shape": list(array.shape), "data": data}, "seconds": seconds}


def check_backward(function: str, module, inputs: dict, settings: dict, guard: Guard) -> dict:
    """Gradient-check a backward pass against the file's own forward pass (convcli's if it has none)."""
    from convcli import layers
    from convcli.checking import gradient_check
    from convcli.gradcheck.lab import LAB_CHECKS, failed_checks, gradcheck_records

    forward_name = function.replace("backward", "forward")
    backward = getattr(module, function)
    forward = getattr(module, forward_name, None)
    note = ""
    if forward is None:
        forward, note = getattr(layers, forward_name), f" (checked against convcli's {forward_name}: the file has none)"
    names = list(inputs)  # ("x", "w") or ("X", "w")
    upstream = UPSTREAM[function]
    if not _accepts(backward, len(names) + 1):
        return _records(failed_checks(function, _signature_problem(function, backward, names), crashed=False))

    def forward_f(**arrays):
        return guard.call(forward_name, forward, *(arrays[n] for n in names))

    def backward_f(**arrays):
        return guard.call(function, backward, *(arrays[n] for n in names), arrays[upstream])

    backward_f.__name__ = function
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # the checker's dtype warnings become notes
        warnings.simplefilter("always")
        result = gradient_check(
            forward_f,
            backward_f,
            eps=settings["eps"],
            atol=settings["atol"],
            rtol=settings["rtol"],
            seed=settings["seed"],
            mode=settings["mode"],
            upstream=upstream,
            **inputs,
        )
    seconds = time.perf_counter() - started
    for text in dict.fromkeys(str(w.message).replace("forward_f", forward_name) for w in caught):
        note += f"; note: {text}"
    check_names = {name.split(":")[1]: name for name in LAB_CHECKS[function]}
    records = gradcheck_records(result, check_names, function=function, forward=forward_name, seconds=seconds)
    for record in records:
        record.message += note
    return _records(records)


def _signature_problem(function: str, backward: Callable, names: "list[str]") -> str:
    """Why ``backward`` cannot take the upstream gradient, against the lab's signature.

    ``"dot_backward(x, w) has no parameter for the upstream gradient: the lab's
    signature is dot_backward(x, w, da=None), and dx and dw must both be
    multiplied by da"``
    """
    upstream = UPSTREAM[function]
    signature = inspect.signature(backward)
    lab = f"the lab's signature is {function}({', '.join(names)}, {upstream}=None), and {UPSTREAM_USE[function]}"
    kinds = [parameter.kind for parameter in signature.parameters.values()]
    if kinds == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(kinds) and len(kinds) <= len(names):
        return f"{function}{signature} has no parameter for the upstream gradient: {lab}"
    return f"{function}{signature} cannot be called as {function}({', '.join(names)}, {upstream}): {lab}"


def _accepts(function: Callable, count: int) -> bool:
    """Whether ``function`` can be called with ``count`` positional arguments (True if unknowable)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _records(records) -> dict:
    return {"records": [record.to_dict() for record in records]}


# ----------------------------------------------------------------------------- the process


def _private_stdout():
    """A stream to the parent on a copy of fd 1; fd 1 itself then goes to stderr, stdin to /dev/null."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return protocol


def main() -> None:
    job = json.loads(sys.stdin.read())
    protocol = _private_stdout()

    def send(**event: Any) -> None:
        protocol.write(json.dumps(event) + "\n")
        protocol.flush()

    try:
        import numpy as np

        import convcli.checking  # noqa: F401  (imported before the clock starts for the user's file)
        import convcli.gradcheck.lab  # noqa: F401

        send(event="ready")
        guard = Guard(job["path"])
        try:
            module = load(job["path"], guard)
        except LoadError as exc:
            send(event="load_error", message=str(exc))
            return
        present = [name for name in convcli.gradcheck.lab.LAB_FUNCTIONS if hasattr(module, name)]
        send(event="loaded", functions=present)
        for function in job["functions"]:
            if function not in present:
                continue
            inputs = {k: np.array(v, dtype=np.float64) for k, v in job["inputs"][function].items()}
            send(event="start", function=function)
            if function.endswith("forward"):
                result = check_forward(function, module, inputs, guard)
            else:
                result = check_backward(function, module, inputs, job["settings"], guard)
            send(event="result", function=function, **result)
        send(event="done")
    except BaseException:  # a bug in convcli, not in the user's code: the parent raises it
        send(event="internal_error", traceback=traceback.format_exc())


if __name__ == "__main__":
    main()
