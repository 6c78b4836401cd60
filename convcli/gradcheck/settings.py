"""How checks are run: seed, tolerances, mode, the case chosen by hand, the time limit."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from convcli.checking import MODES
from convcli.errors import ParameterError


def parse_size(text: "str | int | tuple", option: str) -> "tuple[int, int]":
    """``"8"`` -> (8, 8), ``"7x9"`` -> (7, 9); each at least 1."""
    if isinstance(text, tuple):
        return text
    match = re.fullmatch(r"\s*(\d+)\s*(?:[x×]\s*(\d+))?\s*", str(text))
    if not match:
        raise ParameterError(f"{option} must be N or HxW (e.g. 8 or 7x9); got {text!r}")
    h = int(match.group(1))
    w = int(match.group(2)) if match.group(2) else h
    if h < 1 or w < 1 or h > 4096 or w > 4096:
        raise ParameterError(f"{option} sizes must be between 1 and 4096; got {text!r}")
    return h, w


@dataclass(frozen=True)
class CheckSettings:
    """How checks are run.  ``size``/``kernel_size`` (pairs, or None for the case set) and
    ``timeout`` (seconds per call, and for loading) apply to a user's file only."""

    seed: int = 0
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3
    mode: str = "full"
    size: "tuple[int, int] | None" = None
    kernel_size: "tuple[int, int] | None" = None
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ParameterError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.seed < 0:
            raise ParameterError(f"seed must be a whole number >= 0; got {self.seed}")
        finite = all(math.isfinite(value) for value in (self.eps, self.atol, self.rtol))
        if not (finite and self.eps > 0 and self.atol >= 0 and self.rtol >= 0):
            raise ParameterError(
                "need finite eps > 0, atol >= 0 and rtol >= 0; "
                f"got eps={self.eps}, atol={self.atol}, rtol={self.rtol}"
            )
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ParameterError(f"timeout must be a positive, finite number of seconds; got {self.timeout}")
        for name in ("size", "kernel_size"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, parse_size(value, "--" + name.replace("_", "-")))
        if self.size and self.kernel_size:
            if self.kernel_size[0] > self.size[0] or self.kernel_size[1] > self.size[1]:
                raise ParameterError(
                    f"need kernel size <= image size; got kernel size {self.kernel_size[0]}x{self.kernel_size[1]}"
                    f" and image size {self.size[0]}x{self.size[1]}"
                )

    @property
    def by_hand(self) -> bool:
        return self.size is not None or self.kernel_size is not None

    def report(self, *, impl: bool) -> "dict[str, Any]":
        """The settings a report shows: the checker's, plus the input sizes and timeout for a file."""
        data = {key: getattr(self, key) for key in ("eps", "atol", "rtol", "mode")}
        if impl:
            for key in ("size", "kernel_size"):
                value = getattr(self, key)
                data[key] = None if value is None else f"{value[0]}x{value[1]}"
            data["timeout"] = self.timeout
        return data
