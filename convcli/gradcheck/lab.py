"""The lab's functions (``dot_forward`` ... ``conv_backward``): their checks, inputs, references and verdicts.

:func:`convcli.gradcheck.impl.check_impl` runs a user's file with these.
Forward outputs are compared in the parent with
``sum(x * w)`` and ``scipy.signal.correlate2d(X, w, "valid")``; gradients are
checked in the child with :func:`convcli.checking.gradient_check` against the
file's own forward pass.  :func:`compare_forward` and :func:`gradcheck_records`
turn either kind of verdict into :class:`~convcli.gradcheck.reports.CheckRecord` objects
(the self-check in :mod:`convcli.gradcheck.selfcheck` uses them too).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from convcli.checking import MODES
from convcli.errors import ParameterError
from convcli.gradcheck.reports import CheckRecord

#: The lab's functions, in the order they are checked.
LAB_FUNCTIONS = ("dot_forward", "dot_backward", "conv_forward", "conv_backward")
#: The checks each function gets.
LAB_CHECKS = {
    "dot_forward": ("dot_forward",),
    "dot_backward": ("dot_backward:x", "dot_backward:w"),
    "conv_forward": ("conv_forward",),
    "conv_backward": ("conv_backward:X", "conv_backward:w"),
}
LAYERS = ("dot", "conv")


@dataclass(frozen=True)
class CheckSettings:
    """How checks are run.  ``size``, ``kernel_size`` and ``timeout`` apply to a user's file only."""

    seed: int = 0
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3
    mode: str = "full"
    size: int = 8
    kernel_size: int = 3
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ParameterError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.seed < 0:
            raise ParameterError(f"seed must be a whole number >= 0; got {self.seed}")
        finite = all(math.isfinite(value) for value in (self.eps, self.atol, self.rtol))
        if not (finite and self.eps > 0 and self.atol >= 0 and self.rtol >= 0):
            raise ParameterError(
                "need finite eps > 0, atol >= 0 and rtol >= 0; "
                f"got eps={self.eps}, atol={self.atol}, rtol={self.rtol}"
            )
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ParameterError(f"timeout must be a positive, finite number of seconds; got {self.timeout}")
        if self.kernel_size < 1 or self.size < self.kernel_size:
            raise ParameterError(
                f"need 1 <= kernel size <= image size; got kernel size {self.kernel_size} and image size {self.size}"
            )

    def report(self, *, impl: bool) -> "dict[str, Any]":
        """The settings a report shows: the checker's, plus the input sizes and timeout for a file."""
        keys = ("eps", "atol", "rtol", "mode") + (("size", "kernel_size", "timeout") if impl else ())
        return {key: getattr(self, key) for key in keys}


def functions_for(layers: Iterable[str]) -> "list[str]":
    """The lab functions of the chosen layers (``"dot"``, ``"conv"``), in checking order."""
    layers = set(layers)
    unknown = layers - set(LAYERS)
    if unknown:
        raise ParameterError(f"layer must be one of {', '.join(LAYERS)}; got {sorted(unknown)[0]!r}")
    return [name for name in LAB_FUNCTIONS if name.split("_")[0] in layers]


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A generator per check, so a check's inputs do not depend on which other checks run."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


# ----------------------------------------------------------------------------- verdicts


def compare_forward(function: str, expected, actual, *, atol: float, rtol: float, reference: str) -> CheckRecord:
    """Compare a forward pass's output with a reference: shape, finiteness, then values.

    An element passes when ``|actual - expected| <= atol + rtol * |expected|``.
    The record's ``expected``/``actual`` are the worst element's two values.
    """
    expected, actual = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    record = dict(name=function, function=function, kind="forward")
    if actual.shape != expected.shape:
        want = "a scalar" if expected.shape == () else f"shape {expected.shape}"
        return CheckRecord(
            **record, status="fail", message=f"{function}: returned shape {actual.shape}, expected {want} ({reference})"
        )
    abs_err = np.abs(actual - expected)
    scale = np.maximum(np.abs(actual), np.abs(expected))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_err = np.where(scale > 0, abs_err / np.where(scale > 0, scale, 1.0), 0.0)
        tolerance = atol + rtol * np.abs(expected)
        badness = np.where(np.isfinite(actual), abs_err / np.maximum(tolerance, np.finfo(float).tiny), np.inf)
    worst = np.unravel_index(int(np.argmax(badness)), badness.shape) if badness.size else ()
    index = [int(i) for i in worst] if expected.ndim else None
    where = f" at {index}" if index is not None else ""
    numbers = dict(
        max_abs_error=_number(np.max(abs_err)) if abs_err.size else 0.0,
        max_rel_error=_number(np.max(rel_err)) if rel_err.size else 0.0,
        worst_index=index,
        expected=_number(expected[worst]) if expected.size else None,
        actual=_number(actual[worst]) if actual.size else None,
    )
    if not np.isfinite(actual).all():
        message = f"{function}: returned a non-finite value{where}: {actual[worst]} (expected {expected[worst]:.4f})"
        return CheckRecord(**record, status="fail", message=message, **numbers)
    if np.all(abs_err <= tolerance):
        message = f"{function}: matches {reference} (max abs. error {numbers['max_abs_error']:.1e})"
        return CheckRecord(**record, status="pass", message=message, **numbers)
    rel = float(rel_err[worst])
    message = (
        f"{function}: wrong{where}: expected {expected[worst]:.4f} ({reference}), "
        f"got {actual[worst]:.4f} (rel. error {rel:.1e})"
    )
    return CheckRecord(**record, status="fail", message=message, **numbers)


#: What the child's guard raises in place of a user's exception; its text is the whole story.
USER_ERROR = "UserCodeError"


def gradcheck_records(
    result, names: "dict[str, str]", *, function: str, forward: str, seconds: float = 0.0
) -> "list[CheckRecord]":
    """One record per input of a :class:`~convcli.checking.GradCheckResult`.

    ``names`` maps input names to check names (``{"X": "conv_backward:X"}``).
    An exception from the user's code arrives as ``UserCodeError: <description>``
    (see :mod:`convcli.gradcheck._worker`) and becomes a crashed check with that
    description; ``forward_f`` in the checker's messages is given its real name.
    """
    records = []
    share = seconds / max(len(result.inputs), 1)
    for check in result.inputs:
        message = check.message.replace("forward_f raised", f"{forward} raised")
        crashed = f"{USER_ERROR}: " in message
        if crashed:
            description = message.split(f"{USER_ERROR}: ", 1)[1]
            message = description if description.startswith(f"{function} ") else f"{function}: {description}"
        records.append(
            CheckRecord(
                name=names.get(check.name, f"{function}:{check.name}"),
                function=function,
                kind="backward",
                input=check.name,
                status="pass" if check.passed else "fail",
                message=message,
                max_abs_error=_number(check.max_abs_error),
                max_rel_error=_number(check.max_rel_error),
                worst_index=list(check.worst_index) if check.worst_index is not None and not crashed else None,
                numerical=_number(check.numerical),
                analytical=_number(check.analytical),
                crashed=crashed,
                seconds=share,
            )
        )
    return records


def failed_checks(function: str, message: str, *, crashed: bool, seconds: float = 0.0) -> "list[CheckRecord]":
    """Every check of ``function`` failed for one reason (a crash, a timeout, a bad signature)."""
    return _same_verdict(function, "fail", message, crashed=crashed, seconds=seconds)


def skipped_checks(function: str, source: str) -> "list[CheckRecord]":
    """Every check of ``function`` skipped: ``source`` does not define it."""
    return _same_verdict(function, "skip", f"{source} defines no {function}")


def _same_verdict(function: str, status: str, message: str, **extra: Any) -> "list[CheckRecord]":
    records = []
    for name in LAB_CHECKS[function]:
        _, _, gradient = name.partition(":")  # "conv_backward:X" -> "X"; forward checks have none
        kind = "backward" if gradient else "forward"
        records.append(CheckRecord(name, function, kind, status, message, input=gradient or None, **extra))
    return records


def _number(value) -> "float | None":
    return None if value is None else float(value)


# ----------------------------------------------------------------------------- a user's file


def lab_inputs(function: str, settings: CheckSettings) -> "dict[str, np.ndarray]":
    """The random inputs a function is checked with: 3x3 for dot, X (size x size) and w for conv."""
    rng = rng_for(settings.seed, function)
    if function.startswith("dot"):
        return {"x": rng.standard_normal((3, 3)), "w": rng.standard_normal((3, 3))}
    return {
        "X": rng.standard_normal((settings.size, settings.size)),
        "w": rng.standard_normal((settings.kernel_size, settings.kernel_size)),
    }


def reference_output(function: str, inputs: "dict[str, np.ndarray]") -> "tuple[np.ndarray, str]":
    """What a correct forward pass returns, and how the reference was computed."""
    if function == "dot_forward":
        return np.sum(inputs["x"] * inputs["w"]), "sum(x * w)"
    from scipy.signal import correlate2d  # slow to import: only when conv_forward is checked

    return correlate2d(inputs["X"], inputs["w"], mode="valid"), "scipy.signal.correlate2d 'valid'"
