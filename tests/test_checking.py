"""convcli.checking: passes correct layers, fails planted bugs (the lab's among them)."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.checking import GradCheckResult, gradient_check
from convcli.errors import ParameterError
from convcli.layers import conv_backward, conv_forward, dot_backward, dot_forward


def _load_lab():
    """The lab's own solutions, verbatim from ../shared/seed/conv-lab.md (tests/gradcheck/student_impls/lab/lab.py)."""
    path = Path(__file__).parent / "gradcheck" / "student_impls" / "lab" / "lab.py"
    spec = importlib.util.spec_from_file_location("lab_solutions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_LAB = _load_lab()
lab_dot_backward = _LAB.dot_backward
lab_conv_backward = _LAB.conv_backward


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def test_lab_square_example_passes():
    result = gradient_check(forward_f=lambda x: x**2, backward_f=lambda x: {"x": 2 * x}, x=np.array([2.0]))
    assert result and result.passed
    assert result["x"].max_abs_error < 1e-8
    assert result.upstream is None  # no upstream parameter: G is all ones


def test_correct_dot_layer_passes(rng):
    result = gradient_check(forward_f=dot_forward, backward_f=dot_backward, x=rng.standard_normal((3, 3)), w=rng.standard_normal((3, 3)))
    assert result.passed
    assert result.upstream == "da"
    assert [c.name for c in result.inputs] == ["x", "w"]
    assert all(c.max_abs_error < 1e-8 for c in result.inputs)


def test_lab_dot_backward_is_caught_by_random_upstream_gradient(rng):
    x, w = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    result = gradient_check(forward_f=dot_forward, backward_f=lab_dot_backward, x=x, w=w)
    assert not result
    assert not result["x"].passed and not result["w"].passed
    # The analytical gradient it returns is w itself: the check reports it at the worst index.
    i = result["x"].worst_index
    assert result["x"].analytical == pytest.approx(w[i])
    assert result["x"].message.startswith(f"dot_backward: gradient for 'x' wrong at {list(i)}: numerical ")


def test_lab_conv_backward_fails_for_w_only(rng):
    X, w = rng.standard_normal((8, 8)), rng.standard_normal((3, 3))
    result = gradient_check(forward_f=conv_forward, backward_f=lab_conv_backward, X=X, w=w)
    assert not result.passed
    assert result["X"].passed  # the lab's dX does use dA
    assert not result["w"].passed  # ... but its dw forgets it
    assert result["w"].max_rel_error > 0.1


def test_all_ones_upstream_would_miss_the_lab_bug(rng):
    """The reason for a random G: with G = 1 the lab's dw is right."""
    X, w = rng.standard_normal((8, 8)), rng.standard_normal((3, 3))
    result = gradient_check(forward_f=conv_forward, backward_f=lambda X, w: lab_conv_backward(X, w), X=X, w=w)
    assert result.upstream is None and result.passed


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(padding="same"), dict(padding="full", stride=2), dict(padding=(1, 2), stride=(2, 1), flip=True), dict(padding=1, border="reflect")],
)
def test_convcli_conv_layer_passes(rng, mode, kwargs):
    X, w = rng.standard_normal((7, 6)), rng.standard_normal((3, 2))
    result = gradient_check(
        forward_f=lambda X, w: conv_forward(X, w, **kwargs),
        backward_f=lambda X, w, dA: conv_backward(X, w, dA, **kwargs),
        X=X, w=w, mode=mode,
    )
    assert result.passed, str(result)


def test_batch_and_bank_pass(rng):
    X, w = rng.standard_normal((2, 6, 5)), rng.standard_normal((3, 2, 3))
    assert gradient_check(forward_f=conv_forward, backward_f=conv_backward, X=X, w=w)


def test_transposed_dw_is_caught(rng):
    X, w = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))

    def transposed(X, w, dA):
        grads = conv_backward(X, w, dA)
        return {"X": grads["X"], "w": grads["w"].T}

    result = gradient_check(forward_f=conv_forward, backward_f=transposed, X=X, w=w)
    assert result["X"].passed and not result["w"].passed
    i, j = result["w"].worst_index
    assert i != j  # the diagonal of a transpose is right; the error is off it


def test_fast_mode_catches_the_lab_bug(rng):
    X, w = rng.standard_normal((30, 30)), rng.standard_normal((3, 3))
    result = gradient_check(forward_f=conv_forward, backward_f=lab_conv_backward, X=X, w=w, mode="fast")
    assert result["X"].passed and not result["w"].passed
    assert "along direction" in result["w"].message


def test_nan_gradient_fails(rng):
    X, w = rng.standard_normal((5, 5)), rng.standard_normal((3, 3))

    def nan_backward(X, w, dA):
        grads = conv_backward(X, w, dA)
        grads["X"][1, 2] = np.nan
        return grads

    result = gradient_check(forward_f=conv_forward, backward_f=nan_backward, X=X, w=w)
    assert not result["X"].passed and result["w"].passed
    assert result["X"].worst_index == (1, 2)
    assert "is not finite at [1, 2]" in result["X"].message


def test_nan_output_fails(rng):
    result = gradient_check(forward_f=lambda x: x * np.nan, backward_f=lambda x, dout: {"x": dout}, x=rng.standard_normal(3))
    assert not result.passed


def test_function_that_raises_gives_failed_result_not_crash(rng):
    def broken_backward(X, w, dA):
        raise RuntimeError("boom")

    result = gradient_check(forward_f=conv_forward, backward_f=broken_backward, X=rng.standard_normal((5, 5)), w=np.ones((3, 3)))
    assert not result
    assert result.error == "broken_backward raised RuntimeError: boom"
    assert all(not c.passed and "RuntimeError: boom" in c.message for c in result.inputs)

    def broken_forward(X, w):
        raise ValueError("bad forward")

    result = gradient_check(forward_f=broken_forward, backward_f=conv_backward, X=rng.standard_normal((5, 5)), w=np.ones((3, 3)))
    assert not result and "forward_f raised ValueError: bad forward" in result.error


def test_non_numeric_forward_output_fails_with_a_clear_message(rng):
    result = gradient_check(forward_f=lambda x: "oops", backward_f=lambda x, dout: {"x": x}, x=rng.standard_normal(3))
    assert not result and result.error == "forward_f returned str, not numbers"


def test_missing_and_misshapen_gradients_fail(rng):
    X, w = rng.standard_normal((5, 5)), rng.standard_normal((3, 3))
    result = gradient_check(forward_f=conv_forward, backward_f=lambda X, w, dA: {"X": conv_backward(X, w, dA)["X"]}, X=X, w=w)
    assert result["X"].passed and result["w"].message.endswith("no gradient returned for 'w'")
    result = gradient_check(forward_f=conv_forward, backward_f=lambda X, w, dA: {"X": np.zeros((4, 4)), "w": np.zeros((3, 3))}, X=X, w=w)
    assert "gradient for 'X' has shape (4, 4), expected (5, 5)" in result["X"].message
    result = gradient_check(forward_f=conv_forward, backward_f=lambda X, w, dA: [1, 2], X=X, w=w)
    assert not result and "expected a dict of gradients" in result.error


def test_mutating_functions_cannot_corrupt_the_check(rng):
    X, w = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    X_before = X.copy()

    def mutating_forward(X, w):
        out = conv_forward(X, w)
        X[:] = 0  # vandalism
        return out

    def mutating_backward(X, w, dA):
        grads = conv_backward(X, w, dA)
        w[:] = 99
        return grads

    assert gradient_check(forward_f=mutating_forward, backward_f=mutating_backward, X=X, w=w).passed
    np.testing.assert_array_equal(X, X_before)


def test_warns_about_non_float64_inputs_and_outputs(rng):
    X32 = rng.standard_normal((5, 5)).astype(np.float32)
    with pytest.warns(UserWarning, match="input 'X' has dtype float32"):
        gradient_check(forward_f=conv_forward, backward_f=conv_backward, X=X32, w=np.ones((3, 3)))
    with pytest.warns(UserWarning, match="forward_f returned dtype float32"):
        gradient_check(forward_f=lambda x: (x * 2).astype(np.float32), backward_f=lambda x: {"x": 2 * np.ones_like(x)}, x=np.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradient_check(forward_f=conv_forward, backward_f=conv_backward, X=rng.standard_normal((5, 5)), w=np.ones((3, 3)))


def test_tolerances_decide(rng):
    x = rng.standard_normal(4)
    slightly_off = lambda x: {"x": 2 * x * (1 + 1e-4)}  # noqa: E731
    assert gradient_check(forward_f=lambda x: x**2, backward_f=slightly_off, x=x, rtol=1e-3).passed
    assert not gradient_check(forward_f=lambda x: x**2, backward_f=slightly_off, x=x, rtol=1e-6, atol=1e-9).passed


def test_seed_makes_results_reproducible(rng):
    X, w = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    a = gradient_check(forward_f=conv_forward, backward_f=lab_conv_backward, X=X, w=w, seed=3)
    b = gradient_check(forward_f=conv_forward, backward_f=lab_conv_backward, X=X, w=w, seed=3)
    assert a["w"] == b["w"]


def test_result_str_and_bool():
    result = gradient_check(forward_f=lambda x: x**2, backward_f=lambda x: {"x": 3 * x}, x=np.array([2.0]))
    assert isinstance(result, GradCheckResult) and not bool(result)
    text = str(result)
    assert text.splitlines()[0] == "gradient check of <lambda>: FAILED"
    assert "gradient for 'x' wrong at [0]: numerical 4.0000, analytical 6.0000 (rel. error 3.3e-01)" in text


@pytest.mark.parametrize(
    "kwargs, message",
    [({"mode": "slow"}, "mode must be one of full, fast; got 'slow'"), ({"eps": 0}, "need eps > 0")],
)
def test_bad_checker_options(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        gradient_check(forward_f=lambda x: x, backward_f=lambda x: {"x": x}, x=np.ones(2), **kwargs)


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 8), st.integers(3, 8), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2))
def test_checker_passes_conv_layer_for_varied_shapes(h, w_, fh, fw, stride):
    rng = np.random.default_rng(h * 100 + w_)
    X, w = rng.standard_normal((h, w_)), rng.standard_normal((fh, fw))
    result = gradient_check(
        forward_f=lambda X, w: conv_forward(X, w, stride=stride),
        backward_f=lambda X, w, dA: conv_backward(X, w, dA, stride=stride),
        X=X, w=w,
    )
    assert result.passed, str(result)


# ----------------------------------------------------------------------------- options, bias keys, upstream shapes


def test_non_array_options_are_passed_through_not_checked(rng):
    from convcli.layers import pool_backward, pool_forward

    seen = []

    def forward(X, size, stride, mode):
        seen.append((size, stride, mode))
        return pool_forward(X, size, stride=stride, mode=mode)

    def backward(X, dA, size, stride, mode):
        return pool_backward(X, dA, size, stride=stride, mode=mode)

    result = gradient_check(forward, backward, X=rng.standard_normal((2, 5, 5)), size=3, stride=(2, 1),
                            options={"mode": "avg"})
    assert result.passed, str(result)
    assert [c.name for c in result.inputs] == ["X"] and result.upstream == "dA"
    assert set(seen) == {(3, (2, 1), "avg")}  # never perturbed, never turned into float arrays


def test_checker_mode_and_a_layer_option_named_mode(rng):
    from convcli.layers import pool_backward, pool_forward

    with pytest.raises(ParameterError, match=r"got 'max' \(a layer's own option named mode goes in options=\{'mode': 'max'\}\)"):
        gradient_check(pool_forward, pool_backward, X=rng.standard_normal((4, 4)), mode="max")
    fast = gradient_check(pool_forward, pool_backward, X=rng.standard_normal((4, 4)), mode="fast", options={"mode": "max"})
    assert fast.passed and fast.mode == "fast"


def test_options_errors(rng):
    with pytest.raises(ParameterError, match="needs at least one array input to check; got only options"):
        gradient_check(lambda size: size, lambda size: {}, size=2)
    with pytest.raises(ParameterError, match="x given both as an input and in options"):
        gradient_check(lambda x: x, lambda x: {"x": x}, x=np.ones(2), options={"x": 1})


def test_bias_key_is_checked_and_a_wrong_bias_gradient_fails(rng):
    X, w, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(4)
    good = gradient_check(conv_forward, conv_backward, X=X, w=w, b=b, padding=1)
    assert good.passed and [c.name for c in good.inputs] == ["X", "w", "b"]

    def no_bias_gradient(X, w, dA, b, padding):
        grads = conv_backward(X, w, dA, b, padding=padding)
        del grads["b"]
        return grads

    missing = gradient_check(conv_forward, no_bias_gradient, X=X, w=w, b=b, padding=1)
    assert not missing["b"].passed and "no gradient returned for 'b'" in missing["b"].message


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 1, 3, 2)])
def test_random_upstream_for_every_output_shape(shape):
    """A backward that ignores its upstream gradient fails for every output shape, scalar included."""
    x = np.random.default_rng(0).standard_normal(shape)
    good = gradient_check(lambda x: x**3, lambda x, dy: {"x": 3 * x**2 * dy}, x=x)
    assert good.passed, str(good)
    lazy = gradient_check(lambda x: x**3, lambda x, dy: {"x": 3 * x**2}, x=x)
    assert not lazy.passed
