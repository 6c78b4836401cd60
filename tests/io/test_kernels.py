"""The filter library and kernel parsing (convcli.io.kernels)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, signal

from convcli.errors import KernelError
from convcli.io.library import FILTERS, Filter, get_filter, is_separable, is_zero_sum
from convcli.io.kernels import load_kernel

# The issue-3 table, typed in again from the issue text (rows top to bottom).
ISSUE_TABLE = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "edge-h": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "edge-v": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "box": [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[-1 / 9, -1 / 9, -1 / 9], [-1 / 9, 2 - 1 / 9, -1 / 9], [-1 / 9, -1 / 9, -1 / 9]],
    "gaussian": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "prewitt-x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt-y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "scharr-x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr-y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian-8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}


@pytest.mark.parametrize("name", ISSUE_TABLE)
def test_issue_table_values_exact(name):
    np.testing.assert_allclose(get_filter(name).kernel, ISSUE_TABLE[name], rtol=0, atol=1e-15)


def test_library_order_starts_with_issue_table_and_names_are_kebab_case():
    names = list(FILTERS)
    assert names[: len(ISSUE_TABLE)] == list(ISSUE_TABLE)
    assert {"gaussian-5", "log", "roberts-x", "roberts-y", "kirsch-n"} <= set(names[len(ISSUE_TABLE):])
    for name, flt in FILTERS.items():
        assert name == flt.name and name == name.lower() and " " not in name and "_" not in name
        assert flt.description and "\n" not in flt.description
        assert flt.kernel.dtype == np.float64 and flt.kernel.ndim == 2


def test_kernels_are_read_only():
    with pytest.raises(ValueError):
        FILTERS["sobel-x"].kernel[0, 0] = 5
    assert FILTERS["sobel-x"].kernel[0, 0] == -1


def test_sobel_x_responds_to_brightness_rising_right_and_sobel_y_downwards():
    ramp = np.tile(np.arange(6.0), (6, 1))  # brighter to the right
    assert (signal.correlate2d(ramp, get_filter("sobel-x").kernel, "valid") > 0).all()
    assert (signal.correlate2d(ramp.T, get_filter("sobel-y").kernel, "valid") > 0).all()
    assert (signal.correlate2d(ramp.T[::-1], get_filter("edge-h").kernel, "valid") > 0).all()  # brighter above


def test_extras_agree_with_scipy_ndimage_definitions():
    # 5x5 Gaussian: binomial weights; the LoG kernel is zero-sum and symmetric
    g5 = get_filter("gaussian-5").kernel
    assert g5.sum() == pytest.approx(1.0) and is_separable(g5)
    log = get_filter("log").kernel
    assert is_zero_sum(log) and np.array_equal(log, log.T) and np.array_equal(log, log[::-1])
    # Sobel-x equals scipy.ndimage.sobel along axis 1 (up to its sign convention: correlate)
    image = np.random.default_rng(0).random((9, 9))
    ours = signal.correlate2d(image, get_filter("sobel-x").kernel, "valid")
    theirs = ndimage.sobel(image, axis=1, mode="constant")[1:-1, 1:-1]
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert np.array_equal(get_filter("kirsch-e").kernel, np.rot90(get_filter("kirsch-n").kernel, -1))


def test_unknown_name_suggests_closest():
    with pytest.raises(KernelError) as err:
        get_filter("sobelx")
    assert str(err.value) == "unknown filter 'sobelx'; did you mean: sobel-x, sobel-y?"
    with pytest.raises(KernelError, match="unknown filter 'zzzz'; see 'convcli filters list'"):
        load_kernel("zzzz")
    with pytest.raises(KernelError, match="did you mean: laplacian"):
        load_kernel("laplacien")


def test_load_kernel_lookup_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "edge-h").write_text("5 5\n")  # a file named like a filter: the name wins
    assert load_kernel("edge-h") is FILTERS["edge-h"]
    (tmp_path / "ridge").write_text("1 2\n3 4\n")  # an existing file without extension
    assert load_kernel("ridge").name == "ridge"
    np.testing.assert_array_equal(load_kernel("ridge").kernel, [[1, 2], [3, 4]])


def test_inline_matrix():
    flt = load_kernel("1,2,1;0,0,0;-1,-2,-1")
    assert flt.name == "inline" and "1,2,1;0,0,0;-1,-2,-1" in flt.description
    np.testing.assert_array_equal(flt.kernel, [[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
    np.testing.assert_array_equal(load_kernel("1 2; 3 4").kernel, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(load_kernel("1, -1").kernel, [[1, -1]])
    np.testing.assert_allclose(load_kernel("1/9,1/9;1/9,1/9").kernel, np.full((2, 2), 1 / 9))
    np.testing.assert_array_equal(load_kernel("2.5e1").kernel, [[25.0]])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("1,2;3", "inline kernel '1,2;3', row 2: expected 2 numbers (as in row 1), got 1"),
        ("1,a;3,4", "inline kernel '1,a;3,4', row 1: 'a' is not a number"),
        ("1,,2", "inline kernel '1,,2', row 1: empty value between commas in '1,,2'"),
        ("1,2;nan,4", "inline kernel '1,2;nan,4', row 2, value 1: nan is not finite; kernels need finite numbers"),
        ("1;inf", "inline kernel '1;inf', row 2, value 1: inf is not finite; kernels need finite numbers"),
        ("", "kernel is empty; give a filter name, a kernel file or a matrix like '1,0,-1;2,0,-2;1,0,-1'"),
        ("1/0", "inline kernel '1/0', row 1: '1/0' is not a number"),
        ("missing.txt", "kernel file 'missing.txt' not found"),
        ("dir/k.csv", "kernel file 'dir/k.csv' not found"),
    ],
)
def test_inline_and_missing_refusals(spec, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KernelError) as err:
        load_kernel(spec)
    assert str(err.value) == message


def test_text_and_csv_files(tmp_path):
    txt = tmp_path / "ridge.txt"
    txt.write_text("# a ridge detector\n-1 2 -1\n\n-1 2 -1   # middle row\n-1 2 -1\n")
    flt = load_kernel(str(txt))
    assert flt.name == "ridge" and str(txt) in flt.description
    np.testing.assert_array_equal(flt.kernel, [[-1, 2, -1]] * 3)
    csv = tmp_path / "k.csv"
    csv.write_text("1, 0, -1\r\n2,0,-2\r\n1 ,0, -1\r\n")
    np.testing.assert_array_equal(load_kernel(str(csv)).kernel, get_filter("sobel-x").kernel[:, ::-1])


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "holds no numbers; expected rows like '1 0 -1'"),
        ("# only a comment\n\n", "holds no numbers; expected rows like '1 0 -1'"),
        ("1 2 3\n4 5\n", ", row 2 (line 2): expected 3 numbers (as in row 1), got 2"),
        ("# c\n1 2\n3 x\n", ", row 2 (line 3): 'x' is not a number"),
        ("1 2\nnan 3\n", ", row 2 (line 2), value 1: nan is not finite; kernels need finite numbers"),
        ("1 2\n3 -inf\n", ", row 2 (line 2), value 2: -inf is not finite; kernels need finite numbers"),
    ],
)
def test_text_file_refusals_name_file_and_row(tmp_path, content, message):
    path = tmp_path / "k.txt"
    path.write_text(content)
    with pytest.raises(KernelError) as err:
        load_kernel(str(path))
    assert str(err.value) == f"kernel file '{path}'" + (" " if message[0] != "," else "") + message


def test_json_files(tmp_path):
    path = tmp_path / "k.json"
    path.write_text(json.dumps([[1, 2.5], [-3, 4]]))
    np.testing.assert_array_equal(load_kernel(str(path)).kernel, [[1, 2.5], [-3, 4]])
    bad = {
        "[[1, 2], [3]]": ", row 2: expected 2 numbers (as in row 1), got 1",
        '[[1, "a"]]': ', row 1, value 2: "a" is not a number',
        "[[1, true]]": ", row 1, value 2: true is not a number",
        "[1, 2, 3]": ": expected a nested list of numbers like [[1, 0, -1], [2, 0, -2]]",
        "[[[1]]]": ", row 1, value 1: [1] is not a number",
        "[]": ": expected a nested list of numbers like [[1, 0, -1], [2, 0, -2]]",
        "[[NaN, 1]]": ", row 1, value 1: nan is not finite; kernels need finite numbers",
        "[[1, 2],": " is not valid JSON: Expecting value at line 1, column 9",
    }
    for text, message in bad.items():
        path.write_text(text)
        with pytest.raises(KernelError) as err:
            load_kernel(str(path))
        assert str(err.value) == f"kernel file '{path}'{message}", text


def test_npy_files(tmp_path):
    path = tmp_path / "k.npy"
    np.save(path, np.arange(6, dtype=np.int32).reshape(2, 3))
    flt = load_kernel(str(path))
    assert flt.name == "k" and flt.kernel.dtype == np.float64
    np.testing.assert_array_equal(flt.kernel, [[0, 1, 2], [3, 4, 5]])
    cases = {
        "1d": (np.ones(3), "holds an array of shape (3,); expected (Fh, Fw), or (C, Fh, Fw) for a kernel over the "
               "C channels of a colour image (with --color)"),
        "4d": (np.ones((1, 2, 2, 2)), "holds an array of shape (1, 2, 2, 2); expected (Fh, Fw), or (C, Fh, Fw) "
               "for a kernel over the C channels of a colour image (with --color)"),
        "empty": (np.ones((0, 3)), "holds no numbers; expected a non-empty 2-D array"),
        "nan": (np.array([[1.0, np.nan]]), ", row 1, value 2: nan is not finite; kernels need finite numbers"),
        "str": (np.array([["a", "b"]]), "holds <U1 values; expected a 2-D array of numbers"),
        "obj": (np.array([[1, None]], dtype=object),
                "holds Python objects; convcli never loads pickles, save a float array"),
    }
    for name, (array, message) in cases.items():
        target = tmp_path / f"{name}.npy"
        np.save(target, array, allow_pickle=True)
        with pytest.raises(KernelError) as err:
            load_kernel(str(target))
        sep = "" if message[0] == "," else " "
        assert str(err.value) == f"kernel file '{target}'{sep}{message}", name


def test_binary_garbage_and_folders(tmp_path):
    blob = tmp_path / "k.txt"
    blob.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(KernelError, match=r"is not a text, JSON or \.npy file"):
        load_kernel(str(blob))
    with pytest.raises(KernelError, match="is a folder"):
        load_kernel(str(tmp_path))


def test_filter_equality_and_hash():
    a = Filter("x", [[1, 2]], "d")
    b = Filter("x", np.array([[1.0, 2.0]]), "d")
    assert a == b and hash(a) == hash(b) and a != Filter("x", [[1, 3]], "d")
    with pytest.raises(KernelError):
        Filter("bad", [1, 2], "1-D")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=5),
       st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=5))
def test_outer_products_are_separable(u, v):
    assert is_separable(np.outer(u, v))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(0, 10_000))
def test_separable_agrees_with_rank(n, seed):
    k = np.random.default_rng(seed).normal(size=(n, n))
    assert not is_separable(k)  # a random square matrix has full rank
    assert is_separable(k[:1] * 3.0) and is_separable(np.zeros((n, n)))


def test_separable_and_zero_sum_on_library():
    assert [n for n in ISSUE_TABLE if is_separable(get_filter(n).kernel)] == [
        "identity", "edge-h", "edge-v", "box", "blur", "gaussian", "sobel-x", "sobel-y",
        "prewitt-x", "prewitt-y", "scharr-x", "scharr-y",
    ]
    assert [n for n in ISSUE_TABLE if is_zero_sum(get_filter(n).kernel)] == [
        "edge-h", "edge-v", "sobel-x", "sobel-y", "prewitt-x", "prewitt-y", "scharr-x", "scharr-y",
        "laplacian", "laplacian-8",
    ]
    assert not is_zero_sum([[1e-3]]) and is_zero_sum([[0.1, 0.2, -0.3]])


@pytest.mark.filterwarnings("error::ResourceWarning", "error::pytest.PytestUnraisableExceptionWarning")
def test_kernel_files_are_closed(tmp_path):
    import gc

    (tmp_path / "k.txt").write_text("1 2\n3 4\n")
    with open(tmp_path / "k.npy", "wb") as handle:
        np.savez(handle, a=np.ones((2, 2)))  # an .npz archive under an .npy name
    load_kernel(str(tmp_path / "k.txt"))
    with pytest.raises(KernelError, match=r"is an \.npz archive"):
        load_kernel(str(tmp_path / "k.npy"))
    gc.collect()


def test_inline_json_and_channel_kernels(tmp_path):
    np.testing.assert_array_equal(load_kernel("[[1, 2, 1], [0, 0, 0], [-1, -2, -1]]").kernel,
                                  load_kernel("1,2,1;0,0,0;-1,-2,-1").kernel)
    with pytest.raises(KernelError) as err:
        load_kernel('[[1, "x"]]')
    assert str(err.value) == """inline kernel '[[1, "x"]]', row 1, value 2: "x" is not a number"""
    path = tmp_path / "rgb.npy"
    np.save(path, np.arange(12, dtype=np.int16).reshape(3, 2, 2))
    f = load_kernel(str(path))
    assert f.kernel.shape == (3, 2, 2) and f.shape == (2, 2) and f.channels == 3 and f.kernel.dtype == np.float64
    assert load_kernel("sobel-x").channels is None
    bad = np.ones((2, 2, 2))
    bad[1, 0, 1] = np.inf
    np.save(path, bad)
    with pytest.raises(KernelError, match="is not finite; kernels need finite numbers"):
        load_kernel(str(path))
