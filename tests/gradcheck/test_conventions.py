"""Each built-in convention: correct files pass, each planted bug fails exactly at its functions, cases and inputs.

The expected failures are written from the bug's meaning (which cases can show
it), not copied from a run: e.g. a stride ignored in the backward shows only
in the backward checks of stride-2 cases, and only for the input and weight
gradients (the bias gradient does not depend on the stride).
"""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers_impl import IMPLS, failed, records, run

CORRECT = {
    "lab": ["loops", "vectorized", "scipy_impl", "cache_form"],
    "cs231n": ["loops", "vectorized"],
    "dlai": ["loops"],
    "holberton": ["vectorized"],
}


def geometry(name: str) -> dict:
    """The numbers of a case label: ``conv_forward[N2 C3 K4 7x9 k3x2 s1 p1]:w`` -> H, W, C, s, p..."""
    label = re.search(r"\[(.*)\]", name).group(1)
    out = {"label": label, "tanh": "tanh" in label}
    if m := re.search(r"(\d+)x(\d+)", label):
        out["H"], out["W"] = int(m.group(1)), int(m.group(2))
    for key, pattern in (("C", r"C(\d+)"), ("s", r" s(\d+)"), ("p", r" p(\d+)")):
        if m := re.search(pattern, label):
            out[key] = int(m.group(1))
    if m := re.search(r" w(\d+)x(\d+) s(\d+)", label):  # a pool window and its stride
        out["overlap"] = int(m.group(1)) > int(m.group(3)) or int(m.group(2)) > int(m.group(3))
    out["input"] = name.split(":")[-1] if ":" in name else None
    return out


def conv_forward_only(function):
    return lambda name: name.startswith(function + "[")


# (convention, file) -> predicate over the correct file's check names: True where the check must fail
PLANTED = {
    ("cs231n", "bug_padding_hardcoded"): lambda n: n.startswith("conv_forward_naive[") and geometry(n)["p"] != 1
    or (n.startswith("conv_backward_naive[") and geometry(n)["p"] == 2),  # p2 shrinks the output: no cache
    ("cs231n", "bug_stride_ignored_backward"): lambda n: n.startswith("conv_backward_naive[")
    and geometry(n)["s"] == 2 and geometry(n)["input"] in ("x", "w"),
    ("cs231n", "bug_bias_per_input_channel"): lambda n: n.startswith("conv_forward_naive[") and geometry(n)["C"] > 1,
    ("cs231n", "bug_shape_from_rows"): lambda n: (n.startswith("conv_forward_naive[") and geometry(n)["H"] != geometry(n)["W"])
    or (n.startswith("conv_backward_naive[") and geometry(n)["H"] > geometry(n)["W"]),
    ("cs231n", "bug_pool_overlap"): lambda n: n.startswith("max_pool_backward_naive[") and geometry(n)["overlap"],
    ("cs231n", "bug_affine_dx_shape"): lambda n: n == "affine_backward[N3 2x3x2 M4]:x",
    ("cs231n", "bug_forward_flipped_backward_matches"): lambda n: n.startswith("conv_") and geometry(n)["input"] != "b",
    ("dlai", "bug_stride_ignored_backward"): lambda n: n.startswith("conv_backward[")
    and geometry(n)["s"] == 2 and geometry(n)["input"] in ("A_prev", "W"),
    ("dlai", "bug_shape_from_rows"): lambda n: (n.startswith("conv_forward[") and geometry(n)["H"] != geometry(n)["W"])
    or (n.startswith("conv_backward[") and geometry(n)["H"] > geometry(n)["W"]),
    ("dlai", "bug_average_not_divided"): lambda n: n.startswith("pool_backward[") and "average" in n,
    ("dlai", "bug_pool_overlap"): lambda n: n.startswith("pool_backward[") and " max" in n and geometry(n)["overlap"],
    ("holberton", "bug_activation_ignored"): lambda n: geometry(n)["tanh"],
    ("holberton", "bug_padding_hardcoded"): lambda n: n.startswith("conv_") and "k5x5" in n and "same" in n
    and not geometry(n)["tanh"] or (n.startswith("conv_forward[") and "k5x5" in n and "same" in n),
    ("holberton", "bug_stride_ignored_backward"): lambda n: n.startswith("conv_backward[")
    and geometry(n)["s"] == 2 and geometry(n)["input"] in ("A_prev", "W"),
    ("holberton", "bug_avg_backward_rows_only"): lambda n: n.startswith("pool_backward[") and " avg" in n,
    ("lab", "bug_dot_forward_offset"): conv_forward_only("dot_forward"),
    ("lab", "bug_dot_backward_w"): lambda n: n.startswith("dot_backward[") and n.endswith(":w"),
    ("lab", "bug_dot_backward_raises"): lambda n: n.startswith("dot_backward["),
    ("lab", "bug_conv_forward_shape"): conv_forward_only("conv_forward"),
    ("lab", "bug_conv_backward_dx"): lambda n: n.startswith("conv_backward[") and n.endswith(":X"),
    ("lab", "bug_conv_backward_nan"): lambda n: n.startswith("conv_backward[") and n.endswith(":w"),
    ("lab", "bug_conv_backward_key"): lambda n: n.startswith("conv_backward[") and n.endswith(":w"),
    ("lab", "lab"): lambda n: (n.startswith("dot_backward[") or n.startswith("conv_") and "8x8" not in n
                               or n == "conv_backward[8x8 k3x3]:w"),
    ("lab", "bug_shape_from_rows"): lambda n: n.startswith("conv_forward[") and geometry(n)["H"] != geometry(n)["W"],
    ("lab", "bug_forward_flipped_backward_matches"): lambda n: n.startswith("conv_"),
}


@pytest.mark.parametrize("convention, name", [(c, n) for c, names in CORRECT.items() for n in names])
def test_correct_files_pass_everything_under_their_convention(convention, name):
    result = run(f"{convention}/{name}.py")
    assert result.convention == convention  # chosen by --api auto
    statuses = {r.status for r in result.records}
    assert statuses <= {"pass", "skip"} and "pass" in statuses
    assert all(r.convention == convention and r.case for r in result.records if r.status == "pass")


@pytest.mark.parametrize("convention, name", sorted(PLANTED))
def test_each_planted_bug_fails_exactly_its_checks(convention, name):
    correct = CORRECT[convention][0]
    names = [n for n, r in records(f"{convention}/{correct}.py").items() if r.status == "pass"]
    expected = {n for n in names if PLANTED[convention, name](n)}
    assert expected, "the predicate must select some checks"
    assert failed(f"{convention}/{name}.py") == expected


def test_the_cases_cover_honest_shapes():
    names = set(records("cs231n/loops.py"))
    labels = {re.search(r"\[(.*)\]", n).group(1) for n in names if "[" in n}
    assert "N1 C1 K1 8x8 k3x3 s1 p0" in labels  # the lab's image and kernel
    assert {"N1 C1 K1 7x9 k3x3 s1 p0", "N1 C1 K1 9x7 k3x3 s1 p0"} <= labels  # non-square both ways
    assert "N2 C3 K4 7x9 k3x2 s1 p1" in labels  # a non-square kernel, batch, channels, padding
    assert "N1 C1 K1 12x10 k5x5 s1 p0" in labels  # a larger kernel
    assert "N2 C3 K2 9x11 k3x3 s2 p1" in labels  # stride 2 that divides evenly, with padding
    assert {"N2 C3 6x8 w2x2 s2", "N2 C2 7x9 w3x3 s2"} <= labels  # pooling without and with overlap
    assert "conv_backward_naive[N2 C3 K4 7x9 k3x2 s1 p1]:w" in names  # the course's own names
    # the lab's kernels are square; the cs231n assignment asserts sizes divide by the stride
    lab = {re.search(r"\[(.*)\]", n).group(1) for n in records("lab/loops.py")}
    assert lab == {"3x3", "5x5", "8x8 k3x3", "7x9 k3x3", "9x7 k3x3", "12x10 k5x5"}


def test_messages_name_the_missing_key_and_the_conventions_call():
    key = records("lab/bug_conv_backward_key.py")["conv_backward[7x9 k3x3]:w"].message
    assert key == "conv_backward[7x9 k3x3]:w: returned a dict without key 'w' (keys: 'X', 'W'; expected 'X', 'w')"
    call = records("lab/no_upstream.py")["dot_backward[3x3]:x"].message
    assert call == ("dot_backward[3x3]:x: raised TypeError: dot_backward() takes 2 positional arguments but 3 were "
                    "given (the lab convention calls dot_backward(x, w, da))")
    assert {r.status for r in run("lab/only_dot.py").records if r.function.startswith("conv")} == {"skip"}


def test_a_backward_that_matches_a_wrong_forward_says_so():
    checks = records("cs231n/bug_forward_flipped_backward_matches.py")
    case = "N2 C3 K4 7x9 k3x2 s1 p1"
    message = checks[f"conv_backward_naive[{case}]:w"].message
    assert "expected" in message and "(convcli's conv gradient)" in message
    assert message.endswith(
        f"it matches the gradient of your conv_forward_naive, but conv_forward_naive is wrong "
        f"(see conv_forward_naive[{case}])"
    )
    assert checks[f"conv_backward_naive[{case}]:b"].status == "pass"


def test_a_plainly_wrong_gradient_is_not_blamed_on_the_forward():
    message = records("cs231n/bug_stride_ignored_backward.py")["conv_backward_naive[N2 C3 K2 9x11 k3x3 s2 p1]:w"].message
    assert "wrong at [" in message and "your conv_forward_naive" not in message


def test_the_lab_itself_fails_where_it_is_wrong_with_messages_to_act_on():
    checks = records("lab/lab.py")
    assert checks["dot_forward[3x3]"].status == "pass"
    assert checks["dot_backward[3x3]:x"].message.endswith(
        "it is the gradient for an upstream gradient of ones: multiply by the upstream gradient"
    )
    assert checks["conv_backward[8x8 k3x3]:X"].status == "pass"
    assert checks["conv_backward[8x8 k3x3]:w"].status == "fail"
    big = checks["conv_forward[12x10 k5x5]"]
    assert big.crashed and "raised AssertionError at lab.py, line" in big.message
    assert big.message.endswith("assert (F, F) == (3, 3)")
    assert "expected shape (7, 5)" in checks["conv_forward[9x7 k3x3]"].message


def test_the_cache_form_is_detected_and_noted():
    result = run("lab/cache_form.py")
    assert any(note.startswith("conv: cache form") for note in result.notes)


def test_holberton_runs_a_tanh_forward_case_and_only_same_or_valid():
    names = set(records("holberton/vectorized.py"))
    assert "conv_forward[N2 C2 K3 10x8 k5x5 s1 same tanh]" in names
    assert not any("tanh" in n for n in names if "backward" in n)
    assert all(("same" in n) or ("valid" in n) for n in names if n.startswith("conv_"))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(3, 9), w=st.integers(3, 9), fh=st.integers(1, 3), fw=st.integers(1, 3))
def test_one_case_by_hand_judges_any_shape(h, w, fh, fw):
    """A correct file passes and the X.shape[0] bug fails exactly when the image is not square."""
    size, kernel = f"{h}x{w}", f"{fh}x{fw}"
    correct = records("cs231n/vectorized.py", size=size, kernel_size=kernel)
    assert {r.status for r in correct.values()} == {"pass"}
    assert f"conv_forward_naive[N2 C3 K4 {h}x{w} k{fh}x{fw} s1 p0]" in correct
    buggy = failed("cs231n/bug_shape_from_rows.py", size=size, kernel_size=kernel)
    assert bool(buggy) == (h != w)
