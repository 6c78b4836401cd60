"""The package is laid out as promised: one subpackage per layer, lower layers never importing higher ones.

The rules (also in each subpackage's ``__init__.py``):

============  ==========================================  ============================
part          may import from convcli                     may import besides stdlib
============  ==========================================  ============================
errors        nothing                                     nothing
layers        errors                                      numpy
checking      errors, layers                              numpy
io            errors, layers                              numpy, PIL
maps          errors, layers, io                          numpy, scipy, PIL (lazily: matplotlib; dask, distributed, zarr)
gradcheck     errors, layers, checking, io                numpy, scipy
cli           everything                                  click, rich, numpy
============  ==========================================  ============================

Every import counts, also one inside a function (convcli imports heavy
modules lazily), and no two modules may import each other, directly or round
a longer circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import convcli

PACKAGE = Path(convcli.__file__).resolve().parent

#: part -> (convcli parts it may import, third-party top-level modules it may import)
RULES = {
    "errors": (set(), set()),
    "layers": ({"errors"}, {"numpy"}),
    "checking": ({"errors", "layers"}, {"numpy"}),
    "io": ({"errors", "layers"}, {"numpy", "PIL"}),
    # lazily, for the optional extras: matplotlib (convcli[cmap], --cmap), dask/distributed/zarr (convcli[dask])
    "maps": ({"errors", "layers", "io"}, {"numpy", "scipy", "PIL", "matplotlib", "dask", "distributed", "zarr"}),
    "gradcheck": ({"errors", "layers", "checking", "io"}, {"numpy", "scipy"}),
    "cli": ({"errors", "layers", "checking", "io", "maps", "gradcheck"}, {"click", "rich", "numpy"}),
    # the package itself: ``__init__`` imports nothing, ``__main__`` starts the CLI
    "": ({"cli"}, set()),
}


def module_files(package: Path = PACKAGE) -> "dict[str, Path]":
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(module: str, path: Path, modules: "set[str]") -> "set[str]":
    """Every module ``module`` imports (convcli modules by full name, others by top-level name)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # ``from pkg import module`` imports that module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name if name.split(".")[0] == "convcli" else name.split(".")[0] for name in found if name}


def part_of(module: str) -> str:
    """``convcli.maps.batch`` -> ``maps``; ``convcli`` and ``convcli.__main__`` -> ``""``."""
    parts = module.split(".")
    return "" if len(parts) == 1 or parts[1] == "__main__" else parts[1]


def violations(package: Path = PACKAGE) -> "list[str]":
    """Every import that breaks :data:`RULES`, and every circle between modules, as messages."""
    files = module_files(package)
    graph = {m: imports_of(m, p, set(files)) for m, p in files.items()}
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    problems = []
    for module, imported in sorted(graph.items()):
        part = part_of(module)
        allowed_parts, allowed_libs = RULES[part]
        for name in sorted(imported):
            if name.split(".")[0] == "convcli":
                other = part_of(name)
                if other != part and other not in allowed_parts and name != "convcli":
                    problems.append(f"{module} imports {name}: '{part}' may not import '{other}'")
            elif name not in stdlib and name not in allowed_libs:
                problems.append(f"{module} imports {name}: '{part or 'convcli'}' may not import it")
    problems += [" -> ".join(circle) for circle in circles(graph)]
    return problems


def circles(graph: "dict[str, set[str]]") -> "list[list[str]]":
    """Import circles among the modules of ``graph`` (each found once, from a module on it)."""
    found, state = [], {}

    def visit(module: str, path: "list[str]") -> None:
        state[module] = "open"
        for name in sorted(graph.get(module, ())):
            if name not in graph or name == module:
                continue
            if state.get(name) == "open":
                found.append(path[path.index(name):] + [module, name] if name in path else [module, name])
            elif name not in state:
                visit(name, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    return found


def test_the_layout_shows_the_architecture():
    parts = {part_of(m) for m in module_files()}
    assert parts == set(RULES)
    for sub in ("layers", "io", "maps", "gradcheck", "cli"):
        init = PACKAGE / sub / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init} must say what it holds and what it may import"


def test_no_layer_imports_a_higher_one_and_no_circles():
    assert violations() == []


def _copy_package(tmp_path: Path) -> Path:
    target = tmp_path / "convcli"
    for module, path in module_files().items():
        dest = target / path.relative_to(PACKAGE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(path.read_text())
    return target


@pytest.mark.parametrize(
    "file, planted, expected",
    [
        ("layers/conv.py", "from convcli.maps import levels\n", "'layers' may not import 'maps'"),
        ("layers/dot.py", "import scipy.signal\n", "'layers' may not import it"),
        ("io/kernels.py", "def f():\n    from convcli.maps.writing import write_map\n", "'io' may not import 'maps'"),
        ("maps/levels.py", "import click\n", "convcli.maps.levels imports click"),
        ("gradcheck/cases.py", "from convcli.gradcheck import impl\n", "convcli.gradcheck.impl -> convcli.gradcheck.cases"),
    ],
)
def test_a_planted_import_is_caught(tmp_path, file, planted, expected):
    package = _copy_package(tmp_path)
    path = package / file
    path.write_text(path.read_text() + "\n" + planted)
    assert any(expected in problem for problem in violations(package)), violations(package)


#: every module outside the CLI layer
CORE = sorted(m for m in module_files() if part_of(m) not in ("cli", ""))


def test_the_core_modules_are_there():
    assert {"convcli.layers", "convcli.checking", "convcli.errors", "convcli.maps.levels", "convcli.io.images"} <= set(
        CORE
    )


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_neither_click_nor_rich(module):
    code = f"import sys, {module}; print(sorted(m for m in ('click', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_and_help_import_nothing_heavy():
    code = (
        "import sys; from click.testing import CliRunner; from convcli.cli import cli; "
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('scipy', 'PIL', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_dash_m_and_version():
    from convcli import __version__

    out = subprocess.run([sys.executable, "-m", "convcli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"convcli, version {__version__}"
    help_out = subprocess.run([sys.executable, "-m", "convcli", "-h"], capture_output=True, text=True)
    assert help_out.returncode == 0
    for command in ("convolve", "filters", "gradcheck"):
        assert command in help_out.stdout
