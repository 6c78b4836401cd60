"""The gradient checker and its result objects (numpy only).

The call form is the lab's::

    gradient_check(forward_f=conv_forward, backward_f=conv_backward, X=X, w=w)

It checks the gradient of the scalar ``L = sum(G * forward_f(**inputs))`` for a
random upstream gradient ``G``.  A random ``G`` (rather than all ones) is what
exposes a backward pass that forgets to multiply by its upstream gradient,
as the lab's ``dot_backward`` and ``conv_backward`` do.

The work is split into small named steps, as in torch's ``gradcheck``:
:func:`_numerical_gradient` / :func:`_numerical_directional`,
:func:`_analytical_gradient`, :func:`_compare` and :func:`_message`.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from convcli.errors import ParameterError

MODES = ("full", "fast")


@dataclass
class InputCheck:
    """The verdict on one input's gradient.

    ``worst_index`` is the element where the gradient is furthest outside
    tolerance (in ``mode="fast"`` it is the direction number, as a 1-tuple),
    and ``numerical``/``analytical`` are the two values there.
    """

    name: str
    passed: bool
    max_abs_error: float = float("nan")
    max_rel_error: float = float("nan")
    worst_index: "tuple[int, ...] | None" = None
    numerical: "float | None" = None
    analytical: "float | None" = None
    message: str = ""


@dataclass
class GradCheckResult:
    """What :func:`gradient_check` found: one :class:`InputCheck` per input.

    ``bool(result)`` is True only when every input passed.  ``error`` holds the
    exception text when ``forward_f`` or ``backward_f`` raised.
    """

    function: str
    inputs: "list[InputCheck]" = field(default_factory=list)
    error: "str | None" = None
    upstream: "str | None" = None
    mode: str = "full"

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.inputs) and all(check.passed for check in self.inputs)

    def __bool__(self) -> bool:
        return self.passed

    def __getitem__(self, name: str) -> InputCheck:
        for check in self.inputs:
            if check.name == name:
                return check
        raise KeyError(name)

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"gradient check of {self.function}: {verdict}"]
        if self.error and not self.inputs:
            lines.append(f"  {self.error}")
        lines += [f"  [{'ok' if c.passed else 'FAIL'}] {c.message}" for c in self.inputs]
        return "\n".join(lines)


def gradient_check(
    forward_f: Callable[..., Any],
    backward_f: Callable[..., Any],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    mode: str = "full",
    upstream: "str | None" = None,
    n_directions: int = 4,
    options: "dict[str, Any] | None" = None,
    **inputs: Any,
) -> GradCheckResult:
    """Compare ``backward_f``'s gradients with finite differences of ``forward_f``.

    Parameters
    ----------
    forward_f : callable
        Called as ``forward_f(**inputs)``; returns a number or an array.
    backward_f : callable
        Called as ``backward_f(**inputs)`` (plus the upstream gradient, see
        below); returns a dict from input name to its gradient.
    eps : float
        Finite-difference step.
    atol, rtol : float
        An element passes when ``|analytical - numerical| <= atol + rtol * |numerical|``.
    seed : int
        Seeds the upstream gradient and the fast-mode directions.
    mode : {"full", "fast"}
        ``full`` perturbs every element (central differences, float64);
        ``fast`` compares ``n_directions`` random directional derivatives,
        ``(f(x + eps*u) - f(x - eps*u)) / 2eps`` against ``<grad, u>``, for
        inputs too large for ``full``.
    upstream : str, optional
        The name of ``backward_f``'s upstream-gradient parameter.  By default
        it is the first positional parameter that is not an input (the lab's
        ``da``/``dA``); a random ``G`` of the output's shape is passed to it.
        With no such parameter ``G`` is all ones.
    options : dict, optional
        Arguments passed unchanged to both functions and never perturbed
        (``{"size": (3, 2), "mode": "avg"}``).
    **inputs : array_like or option
        The inputs, by the names both functions use (``x=..., w=..., b=...``).
        Arrays, lists and floats are checked; strings, whole numbers, bools,
        ``None`` and tuples (``size=2``, ``mode="max"``, ``stride=(2, 1)``)
        are options, passed through like ``options``.  Pass a whole-number
        input to check as an array or a float (``b=np.array(0.0)``).

    Returns
    -------
    GradCheckResult
        Truthy when every input passed.  A function that raises gives a failed
        result carrying the exception, not a crash.
    """
    if mode not in MODES:
        raise ParameterError(
            f"mode must be one of {', '.join(MODES)}; got {mode!r}"
            f" (a layer's own option named mode goes in options={{'mode': {mode!r}}})"
        )
    if not inputs:
        raise ParameterError("gradient_check needs at least one input, e.g. gradient_check(f, df, x=x)")
    if not (eps > 0 and atol >= 0 and rtol >= 0):
        raise ParameterError(f"need eps > 0, atol >= 0 and rtol >= 0; got eps={eps}, atol={atol}, rtol={rtol}")
    name = getattr(backward_f, "__name__", type(backward_f).__name__)
    options, inputs = _split_options(inputs, options)
    if not inputs:
        raise ParameterError(
            f"gradient_check needs at least one array input to check; got only options {sorted(options)}"
        )
    arrays = _float64_inputs(inputs)
    upstream = upstream if upstream is not None else _upstream_parameter(backward_f, {**options, **arrays})
    if options:
        forward_f, backward_f = _with_options(forward_f, options), _with_options(backward_f, options)
    result = GradCheckResult(function=name, upstream=upstream, mode=mode)
    rng = np.random.default_rng(seed)

    try:
        raw = forward_f(**_fresh(arrays))
    except Exception as exc:  # the user's function failed: report, don't crash
        return _all_failed(result, arrays, f"forward_f raised {_describe(exc)}", prefix=True)
    out = _forward_output(raw)
    if out is None:
        return _all_failed(result, arrays, f"forward_f returned {type(raw).__name__}, not numbers", prefix=True)
    G = rng.standard_normal(out.shape) if upstream else np.ones(out.shape)

    try:
        grads = _analytical_gradient(backward_f, arrays, upstream, G)
    except Exception as exc:
        return _all_failed(result, arrays, f"{name} raised {_describe(exc)}", prefix=False)

    for key, x in arrays.items():
        grad = grads.get(key)
        problem = _gradient_problem(key, grad, x.shape)
        if problem:
            result.inputs.append(InputCheck(key, False, message=f"{name}: {problem}"))
            continue
        try:
            if mode == "full":
                numerical = _numerical_gradient(forward_f, arrays, key, G, eps)
                analytical = grad
            else:
                numerical, analytical = _numerical_directional(forward_f, arrays, key, G, grad, eps, rng, n_directions)
        except Exception as exc:
            result.error = f"forward_f raised {_describe(exc)}"
            result.inputs.append(InputCheck(key, False, message=f"{name}: {result.error}"))
            continue
        check = _compare(key, numerical, analytical, atol, rtol)
        check.message = _message(name, check, mode)
        result.inputs.append(check)
    return result


# ----------------------------------------------------------------------------- steps


def _is_option(value: Any) -> bool:
    """Strings, whole numbers, bools, None, tuples and callables are options, not arrays to check."""
    return value is None or isinstance(value, (str, bool, int, np.integer, np.bool_, tuple)) or callable(value)


def _split_options(inputs: dict, options: "dict | None") -> "tuple[dict, dict]":
    """``(options, arrays)``: the explicit options plus the inputs that look like options, and the rest."""
    options = dict(options or {})
    clash = sorted(set(options) & set(inputs))
    if clash:
        raise ParameterError(f"{', '.join(clash)} given both as an input and in options; give each once")
    arrays = {}
    for key, value in inputs.items():
        (options if _is_option(value) else arrays)[key] = value
    return options, arrays


def _with_options(f: Callable, options: dict) -> Callable:
    """``f`` with ``options`` always passed as keywords, keeping its name for messages."""

    def call(**kwargs):
        return f(**kwargs, **options)

    call.__name__ = getattr(f, "__name__", type(f).__name__)
    return call


def _float64_inputs(inputs: dict) -> "dict[str, np.ndarray]":
    """Fresh float64 copies of the inputs; warns about anything that was not float64."""
    arrays = {}
    for key, value in inputs.items():
        array = np.asarray(value)
        if array.dtype != np.float64:
            warnings.warn(
                f"input '{key}' has dtype {array.dtype}; it is checked as float64 "
                "(finite differences in lower precision give false failures)",
                stacklevel=3,
            )
        arrays[key] = np.array(array, dtype=np.float64)
    return arrays


def _upstream_parameter(backward_f: Callable, arrays: dict) -> "str | None":
    """The first positional parameter of ``backward_f`` that is not an input, if any."""
    try:
        parameters = inspect.signature(backward_f).parameters.values()
    except (TypeError, ValueError):
        return None
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD) and parameter.name not in arrays:
            return parameter.name
    return None


def _fresh(arrays: dict) -> dict:
    """Copies, so that a function that mutates its arguments cannot corrupt the check."""
    return {key: value.copy() for key, value in arrays.items()}


def _forward_output(raw: Any) -> "np.ndarray | None":
    """``forward_f``'s output as a float64 array (None if it is not numbers); warns if not float64."""
    try:
        out = np.asarray(raw)
        as_float = out.astype(np.float64)
    except (TypeError, ValueError):
        return None
    if out.dtype != np.float64:
        warnings.warn(
            f"forward_f returned dtype {out.dtype}; finite differences need float64 to be trusted",
            stacklevel=4,
        )
    return as_float


def _loss(forward_f: Callable, arrays: dict, G: np.ndarray) -> float:
    """``sum(G * forward_f(**arrays))``: the scalar whose gradient is checked."""
    out = np.asarray(forward_f(**_fresh(arrays)), dtype=np.float64)
    if out.shape != G.shape:
        raise ValueError(f"output shape changed from {G.shape} to {out.shape} under a small perturbation")
    return float(np.sum(G * out))


def _analytical_gradient(backward_f: Callable, arrays: dict, upstream: "str | None", G: np.ndarray) -> dict:
    """``backward_f``'s gradients as float arrays, keyed by input name."""
    kwargs = _fresh(arrays)
    if upstream:
        kwargs[upstream] = G if G.ndim else G[()]
    grads = backward_f(**kwargs)
    if not isinstance(grads, dict):
        raise TypeError(f"expected a dict of gradients like {{'x': dx}}, got {type(grads).__name__}")
    return grads


def _gradient_problem(key: str, grad: Any, shape: tuple) -> "str | None":
    """Why ``grad`` cannot be compared at all (missing, not numeric, wrong shape), or None."""
    if grad is None:
        return f"no gradient returned for '{key}'"
    try:
        grad = np.asarray(grad, dtype=np.float64)
    except (TypeError, ValueError):
        return f"gradient for '{key}' is not numeric ({type(grad).__name__})"
    if grad.shape != shape:
        return f"gradient for '{key}' has shape {grad.shape}, expected {shape}"
    return None


def _numerical_gradient(forward_f: Callable, arrays: dict, key: str, G: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of the loss, one element of ``arrays[key]`` at a time."""
    x = arrays[key]
    grad = np.empty_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        plus = _loss(forward_f, arrays, G)
        x[index] = original - eps
        minus = _loss(forward_f, arrays, G)
        x[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def _numerical_directional(forward_f, arrays, key, G, grad, eps, rng, n_directions):
    """Directional derivatives along random unit directions u: numerical and ``<grad, u>``."""
    x = arrays[key]
    numerical, analytical = np.empty(n_directions), np.empty(n_directions)
    for d in range(n_directions):
        u = rng.standard_normal(x.shape)
        u /= np.linalg.norm(u) or 1.0
        shifted = dict(arrays)
        shifted[key] = x + eps * u
        plus = _loss(forward_f, shifted, G)
        shifted[key] = x - eps * u
        minus = _loss(forward_f, shifted, G)
        numerical[d] = (plus - minus) / (2 * eps)
        analytical[d] = float(np.sum(np.asarray(grad, dtype=np.float64) * u))
    return numerical, analytical


def _compare(key: str, numerical: np.ndarray, analytical: Any, atol: float, rtol: float) -> InputCheck:
    """Elementwise ``|a - n| <= atol + rtol * |n|``, all finite; finds the worst element."""
    numerical = np.asarray(numerical, dtype=np.float64)
    analytical = np.asarray(analytical, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        abs_err = np.abs(analytical - numerical)
        scale = np.maximum(np.abs(analytical), np.abs(numerical))
        rel_err = np.where(scale > 0, abs_err / np.where(scale > 0, scale, 1.0), 0.0)
        tolerance = atol + rtol * np.abs(numerical)
        finite = np.isfinite(numerical) & np.isfinite(analytical)
        ok = finite & (abs_err <= tolerance)
        # worst = a non-finite element first, else the largest error relative to its tolerance
        badness = np.where(finite, abs_err / np.maximum(tolerance, np.finfo(float).tiny), np.inf)
    flat = int(np.argmax(badness)) if badness.size else 0
    worst = tuple(int(i) for i in np.unravel_index(flat, badness.shape)) if badness.size else ()
    return InputCheck(
        name=key,
        passed=bool(ok.all()),
        max_abs_error=float(np.max(abs_err)) if abs_err.size else 0.0,
        max_rel_error=float(np.max(rel_err)) if rel_err.size else 0.0,
        worst_index=worst,
        numerical=float(numerical[worst]) if numerical.size else None,
        analytical=float(analytical[worst]) if analytical.size else None,
    )


def _message(function: str, check: InputCheck, mode: str) -> str:
    """A sentence saying what was compared and, on failure, where it went wrong."""
    where = f"along direction {check.worst_index[0]}" if mode == "fast" else f"at {list(check.worst_index)}"
    if check.passed:
        return (
            f"{function}: gradient for '{check.name}' ok "
            f"(max abs. error {check.max_abs_error:.1e}, max rel. error {check.max_rel_error:.1e})"
        )
    if not (np.isfinite(check.numerical) and np.isfinite(check.analytical)):
        return (
            f"{function}: gradient for '{check.name}' is not finite {where}: "
            f"numerical {check.numerical:.4f}, analytical {check.analytical:.4f}"
        )
    rel = abs(check.analytical - check.numerical) / max(abs(check.analytical), abs(check.numerical))
    return (
        f"{function}: gradient for '{check.name}' wrong {where}: "
        f"numerical {check.numerical:.4f}, analytical {check.analytical:.4f} (rel. error {rel:.1e})"
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _all_failed(result: GradCheckResult, arrays: dict, error: str, *, prefix: bool) -> GradCheckResult:
    """Every input fails with the same message, because a call raised."""
    result.error = error
    message = f"{result.function}: {error}" if prefix else error
    result.inputs = [InputCheck(key, False, message=message) for key in arrays]
    return result
