"""The parent judges: nothing a checked file does in its child turns a wrong function into a pass.

Each file below is a student's attack from the grader issue; every one of its
functions is wrong, so every check must end as FAIL (or a contained error).
"""

import ast
from pathlib import Path

import numpy as np
import pytest

from convcli.gradcheck import protocol
from convcli.gradcheck.impl import check_impl
from convcli.gradcheck.settings import CheckSettings

PACKAGE = Path(__file__).resolve().parents[2] / "convcli" / "gradcheck"

ATTACKS = {
    # right on its first call only, with zero gradients (the old checker compared the backward with this forward)
    "two_faced": """
import numpy as np
from scipy.signal import correlate2d
calls = []
def conv_forward(X, w):
    calls.append(1)
    return correlate2d(X, w, "valid") if len(calls) == 1 else np.zeros((X.shape[0] - w.shape[0] + 1, X.shape[1] - w.shape[1] + 1))
def conv_backward(X, w, dA):
    return {"X": np.zeros_like(X), "w": np.zeros_like(w)}
""",
    # everything zeros
    "zeros": """
import numpy as np
def conv_forward(X, w):
    return np.zeros((X.shape[0] - w.shape[0] + 1, X.shape[1] - w.shape[1] + 1))
def conv_backward(X, w, dA):
    return {"X": np.zeros_like(X), "w": np.zeros_like(w)}
""",
    # patch numpy's comparisons in the child (the parent's numpy is another process's)
    "patched_numpy": """
import numpy as np
np.abs = lambda x, *a, **k: np.zeros_like(x)
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, bool)
def conv_forward(X, w):
    return np.ones((X.shape[0] - w.shape[0] + 1, X.shape[1] - w.shape[1] + 1))
def conv_backward(X, w, dA):
    return {"X": np.ones_like(X), "w": np.ones_like(w)}
""",
    # forge answers: on the protocol pipe, and on every fd above 2
    "forged_messages": """
import json, os
import numpy as np
FAKE = json.dumps({"type": "result", "id": 1, "value": {"kind": "none"}, "passed": True, "status": "pass"}) + "\\n"
def _forge():
    for fd in range(3, 64):
        try:
            os.write(fd, FAKE.encode())
        except OSError:
            pass
def conv_forward(X, w):
    _forge()
    return np.ones((X.shape[0] - w.shape[0] + 1, X.shape[1] - w.shape[1] + 1))
def conv_backward(X, w, dA):
    _forge()
    return {"X": np.ones_like(X), "w": np.ones_like(w)}
""",
    # use convcli's own layers as the answer
    "imports_convcli": """
import numpy as np
def conv_forward(X, w):
    from convcli.layers import conv_forward as reference
    return reference(X, w)
def conv_backward(X, w, dA):
    import convcli.layers
    return convcli.layers.conv_backward(X, w, dA)
""",
    # take the blocker away first (convcli is installed in editable mode here, as the README and CI install it)
    "unblocks_convcli": """
import sys
import numpy as np
def _unblock():
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "BlockConvcli"]
def conv_forward(X, w):
    _unblock()
    import convcli.layers
    return convcli.layers.conv_forward(X, w)
def conv_backward(X, w, dA):
    _unblock()
    import convcli.layers
    return convcli.layers.conv_backward(X, w, dA)
""",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_ends_as_fail(tmp_path, name):
    path = tmp_path / f"{name}.py"
    path.write_text(ATTACKS[name])
    records = check_impl(path, api="lab", layers=["conv"], settings=CheckSettings(timeout=20)).records
    assert len(records) == 12  # 4 cases: the forward, then X and w
    passed = {record.name for record in records if record.status != "fail"}
    # the two-faced forward really is right on its first call; nothing else may pass
    assert passed == ({"conv_forward[8x8 k3x3]"} if name == "two_faced" else set())


def test_forged_messages_are_errors_of_the_check_not_answers(tmp_path):
    path = tmp_path / "forged.py"
    path.write_text(ATTACKS["forged_messages"])
    records = check_impl(path, api="lab", layers=["conv"]).records
    assert all(record.status == "fail" for record in records)
    # the real answer after a forged one is either seen at once or by the next call: an error either way
    assert any(r.crashed and ("malformed answer" in r.message or "more than one answer" in r.message) for r in records)


def test_the_child_side_never_imports_convcli():
    """The worker and the built-in adapters run in the child, which cannot import convcli."""
    files = [PACKAGE / "_worker.py"] + [PACKAGE / "conventions" / f"{n}.py" for n in ("lab", "cs231n", "dlai", "holberton")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "convcli" for a in node.names), path
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "convcli", path


@pytest.mark.parametrize(
    "message",
    [
        "not a dict",
        {"type": "verdict", "id": 1, "passed": True},
        {"type": "result", "id": 2, "value": {"kind": "none"}},  # an answer to another request
        {"type": "result", "id": 1, "value": {"kind": "array", "shape": [2, 2], "data": "AAAA"}},  # wrong size
        {"type": "result", "id": 1, "value": {"kind": "array", "shape": [-1], "data": ""}},
        {"type": "result", "id": 1, "value": {"kind": "array", "shape": [10**7], "data": ""}},
        {"type": "result", "id": 1, "value": {"kind": "tuple", "items": [], "length": True}},
        {"type": "raised", "id": 1, "exception": {"type": "E", "message": "m", "line": "3", "code": "", "origin": "student"}},
        {"type": "raised", "id": 1, "exception": {"type": "E", "message": "m", "line": 3, "code": "", "origin": "parent"}},
    ],
)
def test_the_parent_rejects_malformed_answers(message):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_answer(message, 1)


def test_arrays_survive_the_protocol_exactly():
    array = np.random.default_rng(0).standard_normal((2, 3, 4))
    value = protocol.parse_answer({"type": "result", "id": 7, "value": protocol.encode_array(array)}, 7)
    assert value.kind == "array" and np.array_equal(value.array, array)
    scalar = protocol.parse_answer({"type": "result", "id": 1, "value": protocol.encode_array(np.float64(2.5))}, 1)
    assert scalar.array.shape == () and scalar.array == 2.5
