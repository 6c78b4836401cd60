"""Running ``check_impl`` on the student files of ``tests/gradcheck/student_impls`` (cached: each run starts a child)."""

import functools
from pathlib import Path

from convcli.gradcheck.impl import check_impl
from convcli.gradcheck.settings import CheckSettings

IMPLS = Path(__file__).parent / "student_impls"
NOTEBOOKS = Path(__file__).parent / "notebooks"
ADAPTERS = Path(__file__).resolve().parents[2] / "docs" / "adapters"


@functools.lru_cache(maxsize=None)
def run(path: str, api: str = "auto", **options):
    """The :class:`ImplResult` of checking ``path`` (relative to student_impls, or absolute)."""
    full = Path(path) if Path(path).is_absolute() else IMPLS / path
    return check_impl(full, api=api, settings=CheckSettings(**options))


def records(path: str, api: str = "auto", **options) -> dict:
    """``{check name: record}``."""
    return {record.name: record for record in run(path, api, **options).records}


def failed(path: str, api: str = "auto", **options) -> "set[str]":
    return {name for name, record in records(path, api, **options).items() if record.status == "fail"}


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of ``path`` containing ``text``."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)
