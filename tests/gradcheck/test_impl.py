"""The checks behind ``convcli gradcheck``: the self-check suite and checking a user's file.

The verdicts on the student files in ``tests/student_impls`` are the heart of
it: correct files in three styles pass, each planted bug fails exactly its own
checks, and the lab's own code fails exactly where it is wrong.
"""

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

import convcli.layers
from convcli.errors import ImplementationError, ParameterError
from convcli.gradcheck.impl import check_impl, planned_checks
from convcli.gradcheck.lab import LAB_CHECKS, CheckSettings, compare_forward
from convcli.gradcheck.selfcheck import CONV_CONFIGS, check_convcli, reference_conv, reference_pads
from convcli.gradcheck.selfcheck import planned_checks as planned_self_checks

IMPLS = Path(__file__).parent / "student_impls"
ALL_CHECKS = [name for names in LAB_CHECKS.values() for name in names]


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of ``path`` containing ``text``."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@functools.lru_cache(maxsize=None)
def verdict(name: str, **options):
    """``{check name: record}`` for a student file (cached: each run starts a child process)."""
    records = check_impl(IMPLS / f"{name}.py", settings=CheckSettings(**options))
    return {record.name: record for record in records}


def statuses(name: str, **options):
    return {check: record.status for check, record in verdict(name, **options).items()}


# ----------------------------------------------------------------------------- users' files

P, F, S = "pass", "fail", "skip"
EXPECTED = {
    # correct solutions in three styles
    "loops": dict.fromkeys(ALL_CHECKS, P),
    "vectorized": dict.fromkeys(ALL_CHECKS, P),
    "scipy_impl": dict.fromkeys(ALL_CHECKS, P),
    # one planted bug each
    "bug_dot_forward_offset": {**dict.fromkeys(ALL_CHECKS, P), "dot_forward": F},
    "bug_dot_backward_w": {**dict.fromkeys(ALL_CHECKS, P), "dot_backward:w": F},
    "bug_dot_backward_raises": {**dict.fromkeys(ALL_CHECKS, P), "dot_backward:x": F, "dot_backward:w": F},
    "bug_conv_forward_shape": {**dict.fromkeys(ALL_CHECKS, P), "conv_forward": F},
    "bug_conv_backward_dx": {**dict.fromkeys(ALL_CHECKS, P), "conv_backward:X": F},
    "bug_conv_backward_nan": {**dict.fromkeys(ALL_CHECKS, P), "conv_backward:w": F},
    "bug_conv_backward_key": {**dict.fromkeys(ALL_CHECKS, P), "conv_backward:w": F},
    # partial files
    "only_dot": {
        "dot_forward": P,
        "dot_backward:x": P,
        "dot_backward:w": P,
        "conv_forward": S,
        "conv_backward:X": S,
        "conv_backward:w": S,
    },
    "no_upstream": {
        "dot_forward": P,
        "dot_backward:x": F,
        "dot_backward:w": F,
        "conv_forward": S,
        "conv_backward:X": S,
        "conv_backward:w": S,
    },
    # the lab's own code: dot_backward ignores da, conv_backward does not scale dw by dA
    "lab": {
        "dot_forward": P,
        "dot_backward:x": F,
        "dot_backward:w": F,
        "conv_forward": P,
        "conv_backward:X": P,
        "conv_backward:w": F,
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verdict_of_each_check(name):
    assert statuses(name) == EXPECTED[name]
    assert list(verdict(name)) == ALL_CHECKS  # always every check, in order


def test_lab_fails_exactly_where_it_is_wrong():
    checks = verdict("lab")
    for name in ("dot_backward:x", "dot_backward:w", "conv_backward:w"):
        record = checks[name]
        assert not record.crashed
        gradient = name.split(":")[1]
        assert record.message.startswith(
            f"{record.function}: gradient for '{gradient}' wrong at {record.worst_index}: numerical "
        )
        # the analytical gradient ignores the upstream gradient, so the two differ a lot
        assert record.max_rel_error > 0.5
        assert abs(record.numerical - record.analytical) > 0.5 * max(abs(record.numerical), abs(record.analytical))
    assert checks["conv_backward:X"].max_rel_error < 1e-4
    assert checks["conv_forward"].message == (
        "conv_forward: matches scipy.signal.correlate2d 'valid' "
        f"(max abs. error {checks['conv_forward'].max_abs_error:.1e})"
    )


def test_lab_conv_forward_only_handles_3x3_kernels():
    checks = verdict("lab", size=7, kernel_size=5)
    line = line_of(IMPLS / "lab.py", "assert (F, F) == (3, 3)")
    assert checks["conv_forward"].status == "fail" and checks["conv_forward"].crashed
    assert (
        checks["conv_forward"].message
        == f"conv_forward raised AssertionError at lab.py, line {line}: assert (F, F) == (3, 3)"
    )
    # conv_backward is checked against the file's own conv_forward, which raises first
    assert checks["conv_backward:X"].message == (
        f"conv_backward: conv_forward raised AssertionError at lab.py, line {line}: assert (F, F) == (3, 3)"
    )


def test_correct_file_passes_with_other_sizes_and_fast_mode():
    assert set(statuses("vectorized", size=6, kernel_size=2, seed=3).values()) == {"pass"}
    fast = statuses("lab", mode="fast")
    assert fast == EXPECTED["lab"]


def test_exception_names_the_line_in_the_users_file():
    record = verdict("bug_dot_backward_raises")["dot_backward:w"]
    line = line_of(IMPLS / "bug_dot_backward_raises.py", "dx = w @ da")
    assert record.crashed
    assert record.message.startswith("dot_backward raised ValueError: matmul: ")
    assert record.message.endswith(
        f"at bug_dot_backward_raises.py, line {line}: dx = w @ da  # BUG: matmul with a scalar raises ValueError"
    )


def test_wrong_shape_nan_and_missing_gradient_messages():
    assert verdict("bug_conv_forward_shape")["conv_forward"].message == (
        "conv_forward: returned shape (5, 5), expected shape (6, 6) (scipy.signal.correlate2d 'valid')"
    )
    nan = verdict("bug_conv_backward_nan")["conv_backward:w"]
    assert nan.message.startswith("conv_backward: gradient for 'w' is not finite at [2, 0]: numerical ")
    assert nan.message.endswith("analytical nan")
    assert verdict("bug_conv_backward_key")["conv_backward:w"].message == "conv_backward: no gradient returned for 'w'"
    assert verdict("no_upstream")["dot_backward:x"].message == (
        "dot_backward(x, w) has no parameter for the upstream gradient: the lab's signature is "
        "dot_backward(x, w, da=None), and dx and dw must both be multiplied by da"
    )


def test_a_backward_that_cannot_take_the_upstream_gradient_is_told_the_lab_signature(tmp_path):
    path = tmp_path / "signatures.py"
    path.write_text(
        "def dot_forward(x, w):\n    return (x * w).sum()\n"
        "def dot_backward(x, w, *, da=1.0):\n    return {'x': da * w, 'w': da * x}\n"
        "def conv_backward(X, w):\n    return {}\n"
    )
    checks = {r.name: r for r in check_impl(path)}
    assert checks["dot_backward:w"].message == (
        "dot_backward(x, w, *, da=1.0) cannot be called as dot_backward(x, w, da): the lab's signature is "
        "dot_backward(x, w, da=None), and dx and dw must both be multiplied by da"
    )
    assert checks["conv_backward:X"].message == (
        "conv_backward(X, w) has no parameter for the upstream gradient: the lab's signature is "
        "conv_backward(X, w, dA=None), and dX and dw must both be computed from dA"
    )
    assert not checks["conv_backward:X"].crashed and checks["conv_backward:X"].status == "fail"


def test_planted_wrong_value_is_located():
    record = verdict("bug_dot_forward_offset")["dot_forward"]
    assert record.actual - record.expected == pytest.approx(1.0)
    assert record.message.startswith("dot_forward: wrong: expected ")
    dx = verdict("bug_conv_backward_dx")["conv_backward:X"]
    assert dx.message.startswith(f"conv_backward: gradient for 'X' wrong at {dx.worst_index}: ")


def test_hanging_function_is_stopped_and_the_rest_still_checked():
    checks = verdict("hangs", timeout=1.0)
    for name in ("dot_backward:x", "dot_backward:w"):
        assert checks[name].status == "fail" and checks[name].crashed
        assert checks[name].message == (
            "dot_backward did not finish within 1 s (its process was stopped); "
            "if dot_forward is slow: the check in --mode full calls it 37 times, --mode fast far fewer"
        )
    assert {checks[n].status for n in ("dot_forward", "conv_forward", "conv_backward:X", "conv_backward:w")} == {"pass"}


def test_a_slow_forward_timing_out_a_full_backward_check_is_explained(tmp_path):
    path = tmp_path / "slow.py"
    path.write_text(
        (IMPLS / "loops.py")
        .read_text()
        .replace("    H, W = X.shape\n", "    import time\n    time.sleep(0.05)\n    H, W = X.shape\n")
    )
    checks = {r.name: r for r in check_impl(path, layers=["conv"], settings=CheckSettings(timeout=1.0))}
    assert checks["conv_forward"].status == "pass"  # one call is quick
    assert checks["conv_backward:X"].message == (  # 1 + 2 * (8 * 8 + 3 * 3) calls of 0.05 s are not
        "conv_backward did not finish within 1 s (its process was stopped); "
        "if conv_forward is slow: the check in --mode full calls it 147 times, --mode fast far fewer"
    )


def test_crashing_functions_fail_their_checks_not_the_checker():
    checks = verdict("crashes")
    assert checks["dot_forward"].status == "pass"
    assert checks["dot_backward:x"].message == "the process ended while checking dot_backward (exit status 3)"
    assert checks["conv_forward"].message == "the process ended while checking conv_forward (killed by signal SIGSEGV)"
    assert checks["conv_backward:w"].crashed and checks["conv_backward:w"].status == "fail"


def test_layers_restrict_the_checks_and_progress_counts_them():
    seen = []
    records = check_impl(IMPLS / "loops.py", layers=["conv"], progress=seen.append)
    assert [r.name for r in records] == ["conv_forward", "conv_backward:X", "conv_backward:w"]
    assert seen[-1] == len(records) == planned_checks(["conv"])
    assert seen == sorted(seen)


def test_same_seed_same_numbers():
    again = check_impl(IMPLS / "lab.py", layers=["dot"])
    assert [(r.name, r.numerical, r.analytical) for r in again] == [
        (n, r.numerical, r.analytical) for n, r in verdict("lab").items() if n.startswith("dot")
    ]
    other = check_impl(IMPLS / "lab.py", layers=["dot"], settings=CheckSettings(seed=1))
    assert other[1].analytical != again[1].analytical


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing", "implementation file '{path}' does not exist; give the .py file with your lab functions"),
        ("syntax_error", "cannot load '{path}': SyntaxError at line 5: '(' was never closed: return np.sum(x * w"),
        (
            "import_error",
            "cannot load '{path}': running it raised ModuleNotFoundError: No module named 'lib' "
            "at import_error.py, line 3: from lib.checking import gradient_check (code outside the functions "
            'runs when the file is loaded: move it under if __name__ == "__main__":)',
        ),
        (
            "no_functions",
            "'{path}' defines none of the lab's functions (dot_forward, dot_backward, conv_forward, conv_backward)",
        ),
    ],
)
def test_files_that_cannot_be_checked(name, message):
    path = IMPLS / f"{name}.py"
    with pytest.raises(ImplementationError) as info:
        check_impl(path)
    assert str(info.value) == message.format(path=path)


def test_only_a_py_file_is_loaded(tmp_path):
    give = "give the .py file with your lab functions"
    notebook = tmp_path / "lab.ipynb"
    notebook.write_text('{"cells": []}')
    text = tmp_path / "lab.txt"
    text.write_text("def dot_forward(x, w):\n    return 0\n")
    for path, message in [
        (tmp_path, f"implementation file '{tmp_path}' is a folder; {give}"),
        ("", f"the implementation file name is empty; {give}"),
        ("/dev/null", f"implementation file '/dev/null' is not a regular file; {give}"),
        (
            notebook,
            f"implementation file '{notebook}' is a notebook; export its code first "
            "(jupyter nbconvert --to script lab.ipynb) and give the .py file",
        ),
        (text, f"implementation file '{text}' is not a .py file; {give}"),
    ]:
        with pytest.raises(ImplementationError) as info:
            check_impl(path)
        assert str(info.value) == message


def test_top_level_hang_and_crash_are_load_errors(tmp_path):
    hang = tmp_path / "hang.py"
    hang.write_text("while True:\n    pass\n")
    with pytest.raises(ImplementationError) as info:
        check_impl(hang, settings=CheckSettings(timeout=1.0))
    assert (
        str(info.value)
        == f"cannot load '{hang}': running hang.py did not finish within 1 s (does its top level loop forever?)"
    )
    crash = tmp_path / "crash.py"
    crash.write_text("import os\nos._exit(4)\n")
    with pytest.raises(ImplementationError) as info:
        check_impl(crash)
    assert str(info.value) == f"cannot load '{crash}': running crash.py ended the process (exit status 4)"


def test_a_binary_file_is_a_syntax_error_without_the_top_level_hint(tmp_path):
    path = tmp_path / "binary.py"
    path.write_bytes(b"\x00\x01\xff" * 10)
    with pytest.raises(ImplementationError) as info:
        check_impl(path)
    assert str(info.value) == f"cannot load '{path}': SyntaxError: source code string cannot contain null bytes"


def test_a_long_line_is_quoted_short(tmp_path):
    path = tmp_path / "long.py"
    line = "x = [" + "1, " * 100 + "undefined]"
    path.write_text(line + "\n")
    with pytest.raises(ImplementationError) as info:
        check_impl(path)
    quoted = line[:97] + "..."  # 100 characters at most
    assert f"NameError: name 'undefined' is not defined at long.py, line 1: {quoted} (code outside" in str(info.value)


def test_odd_returns_and_prints_do_not_confuse_the_checker(tmp_path, capfd):
    path = tmp_path / "odd.py"
    path.write_text(
        "import sys\nprint('top level talk')\n"
        'def dot_forward(x, w):\n    print(\'{"event": "done"}\')\n    return x * w\n'
        "def conv_forward(X, w):\n    return None\n"
        "def conv_backward(X, w, dA):\n    sys.exit(5)\n"
    )
    checks = {r.name: r for r in check_impl(path)}
    assert checks["dot_forward"].message == "dot_forward: returned shape (3, 3), expected a scalar (sum(x * w))"
    assert checks["conv_forward"].message == (
        "conv_forward: returned NoneType, expected an array of real numbers (is a return statement missing?)"
    )
    assert checks["dot_backward:x"].status == "skip"
    assert checks["conv_backward:X"].status == "fail"
    assert "top level talk" in capfd.readouterr().err  # the user's prints are logs on stderr
    # conv_backward calls sys.exit: a failed check naming the line, not a dead checker
    path.write_text(
        path.read_text().replace(
            "return None", "import numpy as np\n    return np.zeros((X.shape[0] - 2, X.shape[1] - 2))"
        )
    )
    checks = {r.name: r for r in check_impl(path, layers=["conv"])}
    line = line_of(path, "sys.exit(5)")
    assert (
        checks["conv_backward:w"].message == f"conv_backward raised SystemExit: 5 at odd.py, line {line}: sys.exit(5)"
    )


def test_a_flood_of_prints_is_cut_short(tmp_path, capfd):
    path = tmp_path / "chatty.py"
    path.write_text(
        "import numpy as np\n"
        "def dot_forward(x, w):\n    for i in range(100):\n        print('debug', i, 'x' * 1000)\n    return np.sum(x * w)\n"
    )
    checks = check_impl(path, layers=["dot"])
    assert checks[0].status == "pass"
    lines = capfd.readouterr().err.splitlines()
    assert lines[:2] == ["debug 0 " + "x" * 488 + "...", "debug 1 " + "x" * 488 + "..."]  # 500 characters a line
    assert len(lines) == 51 and lines[-1] == "[50 more lines of output from chatty.py not shown]"


def test_a_file_that_changes_between_loads_cannot_loop_forever(tmp_path):
    # dot_backward kills the process, so a fresh child reloads the file, which then lacks conv_forward
    path = tmp_path / "flaky.py"
    path.write_text(
        "import os\nimport numpy as np\n"
        "marker = os.path.join(os.path.dirname(__file__), 'loaded-once')\n"
        "first = not os.path.exists(marker)\nopen(marker, 'w').close()\n"
        "def dot_forward(x, w):\n    return np.sum(x * w)\n"
        "def dot_backward(x, w, da):\n    os._exit(1)\n"
        "if first:\n    def conv_forward(X, w):\n        return X[:-2, :-2]\n"
    )
    checks = {r.name: r for r in check_impl(path)}
    assert checks["dot_backward:x"].message == "the process ended while checking dot_backward (exit status 1)"
    assert (
        checks["conv_forward"].message
        == "conv_forward could not be checked: flaky.py no longer defines it when loaded again"
    )
    assert checks["conv_backward:X"].status == "skip"


def test_backward_without_forward_uses_convcli_forward(tmp_path):
    path = tmp_path / "bw.py"
    source = (IMPLS / "loops.py").read_text().replace("def conv_forward(", "def _conv_forward(")
    path.write_text(source)
    checks = {r.name: r for r in check_impl(path, layers=["conv"])}
    assert checks["conv_forward"].status == "skip"
    assert checks["conv_backward:X"].status == "pass"
    assert checks["conv_backward:X"].message.endswith("(checked against convcli's conv_forward: the file has none)")


def test_settings_are_validated():
    with pytest.raises(ParameterError, match="got kernel size 9 and image size 8"):
        CheckSettings(kernel_size=9)
    with pytest.raises(ParameterError, match="mode must be one of full, fast; got 'slow'"):
        CheckSettings(mode="slow")
    for timeout in (0, float("inf"), float("nan")):
        with pytest.raises(ParameterError, match="timeout must be a positive, finite number of seconds"):
            CheckSettings(timeout=timeout)
    with pytest.raises(ParameterError, match="need finite eps > 0, atol >= 0 and rtol >= 0; got eps=1e-06, atol=inf"):
        CheckSettings(atol=float("inf"))  # no report could hold it: JSON has no infinity
    with pytest.raises(ParameterError, match="seed must be a whole number >= 0; got -1"):
        CheckSettings(seed=-1)  # numpy's generators take no negative seeds
    with pytest.raises(ParameterError, match="layer must be one of dot, conv; got 'pool'"):
        check_impl(IMPLS / "lab.py", layers=["pool"])


# ----------------------------------------------------------------------------- forward comparison


def test_compare_forward_locates_the_worst_element():
    expected = np.arange(12.0).reshape(3, 4)
    actual = expected.copy()
    actual[2, 1] += 0.5
    actual[0, 3] += 0.01
    record = compare_forward("conv_forward", expected, actual, atol=1e-5, rtol=1e-3, reference="ref")
    assert record.status == "fail" and record.worst_index == [2, 1]
    assert (record.expected, record.actual) == (9.0, 9.5)
    assert record.message == "conv_forward: wrong at [2, 1]: expected 9.0000 (ref), got 9.5000 (rel. error 5.3e-02)"
    actual[1, 1] = np.nan
    record = compare_forward("conv_forward", expected, actual, atol=1e-5, rtol=1e-3, reference="ref")
    assert record.worst_index == [1, 1] and record.message.startswith(
        "conv_forward: returned a non-finite value at [1, 1]: nan"
    )
    ok = compare_forward("dot_forward", 2.0, 2.0 + 1e-9, atol=1e-5, rtol=1e-3, reference="sum(x * w)")
    assert ok.status == "pass" and ok.worst_index is None


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 3), st.integers(0, 3), st.integers(0, 10**6))
def test_reference_matches_scipy(fh, fw, extra_h, extra_w, seed):
    rng = np.random.default_rng(seed)
    X, w = rng.standard_normal((fh + extra_h, fw + extra_w)), rng.standard_normal((fh, fw))
    for mode in ("valid", "same", "full"):
        np.testing.assert_allclose(reference_conv(X, w, padding=mode), signal.correlate2d(X, w, mode=mode), atol=1e-12)
    np.testing.assert_allclose(
        reference_conv(X, w, padding="full", flip=True), signal.convolve2d(X, w, mode="full"), atol=1e-12
    )
    strided = signal.correlate2d(np.pad(X, ((1, 1), (2, 2)), mode="edge"), w, mode="valid")[::2, ::3]
    np.testing.assert_allclose(reference_conv(X, w, padding=(1, 2), stride=(2, 3), border="edge"), strided, atol=1e-12)


def test_reference_pads_agree_with_layers():
    for padding in ("valid", "same", "full", 2, (1, 3)):
        for kernel in ((1, 1), (2, 3), (4, 4), (3, 2)):
            assert reference_pads(padding, kernel) == convcli.layers.pad_widths(padding, kernel)


# ----------------------------------------------------------------------------- the self-check


def test_self_check_passes_and_covers_the_spread():
    seen = []
    records = check_convcli(progress=seen.append)
    assert all(r.status == "pass" for r in records), [r.message for r in records if r.status != "pass"]
    names = [r.name for r in records]
    assert len(names) == len(set(names)) == planned_self_checks() == seen[-1] == 3 + 3 * len(CONV_CONFIGS)
    assert names[:3] == ["dot_forward", "dot_backward:x", "dot_backward:w"]
    assert "conv_backward[w=2x2,padding=same,stride=1]:X" in names
    joined = " ".join(names)
    for part in (
        "padding=valid",
        "padding=same",
        "padding=full",
        "padding=1",
        "padding=(1,2)",
        "stride=1",
        "stride=2",
        "stride=3",
        "flip",
        "batch=2",
        "bank=3",
        "w=2x2",
        "w=2x3",
        "w=4x3",
        *(f"border={b}" for b in ("reflect", "symmetric", "edge", "wrap")),
    ):
        assert part in joined, part
    assert [r.name for r in check_convcli(layers=["dot"])] == names[:3]


def test_self_check_catches_a_broken_backward(monkeypatch):
    original = convcli.layers.conv_backward

    def forgets_dA_for_w(X, w, dA=None, **options):
        grads = original(X, w, dA, **options)
        return {"X": grads["X"], "w": original(X, w, None, **options)["w"]}

    monkeypatch.setattr(convcli.layers, "conv_backward", forgets_dA_for_w)
    records = check_convcli(layers=["conv"])
    failed = {r.name for r in records if r.status == "fail"}
    assert failed == {r.name for r in records if r.name.endswith("]:w")}


def test_self_check_catches_a_broken_forward(monkeypatch):
    original = convcli.layers.conv_forward
    monkeypatch.setattr(
        convcli.layers,
        "conv_forward",
        lambda X, w, **options: original(X, w, **{**options, "flip": not options.get("flip", False)}),
    )
    records = check_convcli(layers=["conv"])
    flippable = [r for r in records if r.name.startswith("conv_forward[") and "w=1x1" not in r.name]
    assert len(flippable) == len(CONV_CONFIGS) - 1 and all(r.status == "fail" for r in flippable)
