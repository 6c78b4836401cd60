"""The core stays free of the CLI's dependencies, and the package is laid out as promised."""

import subprocess
import sys
from pathlib import Path

import pytest

import convcli

#: every module of the package except the CLI layer (cli*.py, __main__.py)
CORE = sorted(
    f"convcli.{path.stem}"
    for path in Path(convcli.__file__).parent.glob("*.py")
    if not path.stem.startswith(("cli", "__main__", "_cli"))
)


def test_the_core_modules_are_there():
    assert {"convcli.layers", "convcli.checking", "convcli.errors", "convcli.render"} <= set(CORE)


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


def test_atomic_write_refuses_overwrite_and_gives_usual_mode(tmp_path):
    import os

    from convcli.errors import OutputError
    from convcli.files import atomic_write_bytes

    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"one")
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
    with pytest.raises(OutputError, match="already exists; use --force to overwrite it"):
        atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"one"
    atomic_write_bytes(target, b"two", force=True)
    assert target.read_bytes() == b"two"
    with pytest.raises(OutputError, match="output folder '.*missing' does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "x.bin", b"")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]  # no temp files left behind


@pytest.mark.parametrize(
    "args, message",
    [
        (["bogus"], "Error: No such command 'bogus'."),
        (["--bogus"], "Error: No such option '--bogus'."),
        (["convolve", "-k", "box", "--stride", "0"], "Error: Invalid value for '--stride': 0 is not in the range x>=1."),
        (["filters", "show"], "Error: Missing argument 'NAME|KERNEL'."),
    ],
)
def test_usage_errors_are_one_error_line(args, message):
    from click.testing import CliRunner

    from convcli.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message  # no usage block, no hint, no traceback
