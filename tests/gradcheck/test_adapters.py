"""Adapters: a course's own FILE.py (the worked examples in docs/adapters/), and the built-ins on the same interface."""

import importlib

import pytest

from convcli.errors import ImplementationError
from convcli.gradcheck import conventions
from convcli.gradcheck.impl import FileNotChecked, check_impl
from helpers_impl import ADAPTERS, IMPLS

CLASS = ADAPTERS / "class_layer"
TORCH = ADAPTERS / "torch_function"


def statuses(path, api):
    return {r.name: r.status for r in check_impl(path, api=str(api)).records}


def test_the_class_based_layer_example_passes():
    result = check_impl(CLASS / "conv_layer.py", api=str(CLASS / "adapter.py"))
    assert result.convention == "class-layer"
    assert {r.status for r in result.records} == {"pass"} and len(result.records) == 48
    assert "Conv2D.backward[N2 C3 K4 7x9 k3x2 s1 p1]:W" in {r.name for r in result.records}


def test_a_bug_in_the_class_based_layer_fails_only_where_it_is(tmp_path):
    source = (CLASS / "conv_layer.py").read_text()
    path = tmp_path / "conv_layer.py"
    path.write_text(source.replace("self.db = dout.sum(axis=(0, 2, 3))", "self.db = dout.sum(axis=(2, 3))[0]"))
    checked = statuses(path, CLASS / "adapter.py")
    failed = {name for name, status in checked.items() if status == "fail"}
    # only db, and only with a batch of 2 (with one image, the first image's sum is the whole sum)
    assert failed == {n for n in checked if n.startswith("Conv2D.backward[N2") and n.endswith(":b")} != set()


def test_the_torch_function_example_passes_and_a_bug_fails(tmp_path):
    pytest.importorskip("torch")
    assert set(statuses(TORCH / "conv_function.py", TORCH / "adapter.py").values()) == {"pass"}
    path = tmp_path / "conv_function.py"
    path.write_text((TORCH / "conv_function.py").read_text().replace("grad_b = g.sum((0, 2))", "grad_b = g.sum(2)[0]"))
    failed = {n for n, s in statuses(path, TORCH / "adapter.py").items() if s == "fail"}
    assert failed and all(n.startswith("Conv2dFunction.backward[N2") and n.endswith(":bias") for n in failed)


@pytest.mark.parametrize(
    "adapter, message",
    [
        ("LAYERS = {'conv': {'backward': 'f'}}\n", "LAYERS['conv'] needs a 'forward' name"),
        ("LAYERS = {'lstm': {'forward': 'f'}}\n", "unknown layer 'lstm' in LAYERS"),
        ("LAYERS = {'conv': {'forward': 'f', 'inputs': {'X': 'x'}}}\n", "LAYERS['conv']['inputs'] must have keys"),
        ("LAYOUT = {}\n", "LAYERS must be a dict"),
        ("import not_a_module\n", "cannot load the adapter"),
    ],
)
def test_a_broken_adapter_is_reported(tmp_path, adapter, message):
    path = tmp_path / "adapter.py"
    path.write_text(adapter + "def forward(*a): pass\ndef backward(*a): pass\n")
    with pytest.raises(ImplementationError) as info:
        check_impl(IMPLS / "lab" / "loops.py", api=str(path))
    assert message in str(info.value)


def test_a_missing_adapter_file_is_a_usage_error():
    with pytest.raises(conventions.ParameterError, match="adapter file 'nope.py' does not exist"):
        check_impl(IMPLS / "lab" / "loops.py", api="nope.py")


@pytest.mark.parametrize("name", conventions.BUILTIN)
def test_the_built_ins_are_adapters_on_the_same_interface(name):
    module = importlib.import_module(f"convcli.gradcheck.conventions.{name}")
    assert callable(module.forward) and callable(module.backward)
    specs = conventions.layer_specs(module.LAYERS, getattr(module, "LAYOUT", {}), where=name)
    assert set(specs) <= set(conventions.LAYER_NAMES)


def test_layer_not_in_the_convention_is_refused():
    with pytest.raises(FileNotChecked.__mro__[1].__mro__[1]) as info:  # a ConvcliError
        check_impl(IMPLS / "lab" / "loops.py", layers=["pool"])
    assert "--layer pool: the lab convention has no pool layer; it has dot, conv" in str(info.value)
