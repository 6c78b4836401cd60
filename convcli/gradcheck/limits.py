"""What a sandboxed child may use (:class:`Limits`), and memory sizes as users write them (:func:`parse_memory`).

:mod:`convcli.gradcheck.sandbox` applies these limits to each child it starts;
the CLI reads ``--memory`` with :func:`parse_memory`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from convcli.errors import ParameterError

GiB, MiB = 2**30, 2**20


@dataclass(frozen=True)
class Limits:
    """What one sandboxed child may use.  ``None`` leaves that limit off."""

    memory: "int | None" = 4 * GiB  #: address space in bytes (RLIMIT_AS)
    cpu_seconds: "float | None" = None  #: CPU time of each process (RLIMIT_CPU): SIGXCPU, a second later SIGKILL
    file_size: "int | None" = 64 * MiB  #: largest file it may write (RLIMIT_FSIZE)
    processes: "int | None" = 32  #: processes and threads it may add (RLIMIT_NPROC above the user's count)
    output_lines: int = 200  #: lines of its output kept
    output_width: int = 500  #: characters kept of each line
    message_bytes: int = 16 * MiB  #: longest protocol line accepted
    landlock: bool = True  #: restrict writing to its folder, where the kernel can


_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_memory(text: "str | int | None", option: str = "--memory") -> "int | None":
    """``"4G"``, ``"512M"``, ``"1.5GiB"``, ``"800MB"`` or a number of bytes -> bytes; ``"none"`` -> None.

    Units are binary (``M`` = MiB), as for other memory limits.  At least 64 MiB
    (Python alone needs about 30, numpy about 200 more).
    """
    if text is None or isinstance(text, int):
        value = text
    elif str(text).strip().lower() in ("none", "unlimited"):
        return None
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text), re.IGNORECASE)
        if not match:
            raise ParameterError(f"{option} must be a size like 4G, 512M or 1.5GiB, or none; got {text!r}")
        value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value is not None and value < 64 * MiB:
        raise ParameterError(f"{option} must be at least 64M (Python and numpy need more); got {text!r}")
    return value
