"""Checking someone's lab code (``dot_forward`` ... ``conv_backward``) in a child process.

:func:`check_impl` is what ``convcli gradcheck --impl FILE.py`` runs.  The
user's file is loaded and called only in a child process
(:mod:`convcli.gradcheck._worker`, started by :mod:`convcli.gradcheck.runner`),
so an infinite loop is stopped at the timeout and a crash (``os._exit``, a
segmentation fault) fails one check instead of the checker.  Each function gets
``timeout`` seconds; when the child hangs or dies, that function's checks fail
and a fresh child carries on with the rest.

Forward outputs come back as data and are compared here, in the parent, with
the references of :mod:`convcli.gradcheck.lab`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from convcli.errors import ImplementationError
from convcli.gradcheck.lab import (
    LAB_CHECKS,
    LAB_FUNCTIONS,
    LAYERS,
    CheckSettings,
    compare_forward,
    failed_checks,
    functions_for,
    lab_inputs,
    reference_output,
    skipped_checks,
)
from convcli.gradcheck.reports import CheckRecord
from convcli.gradcheck.runner import LabWorker


def planned_checks(layers: Iterable[str] = LAYERS) -> int:
    """How many checks :func:`check_impl` reports for these layers (for a progress bar)."""
    return sum(len(LAB_CHECKS[f]) for f in functions_for(layers))


def check_impl(
    path: "str | os.PathLike",
    *,
    settings: CheckSettings = CheckSettings(),
    layers: Iterable[str] = LAYERS,
    progress: "Callable[[int], None] | None" = None,
) -> "list[CheckRecord]":
    """Check the lab functions a Python file defines, in a child process.

    Parameters
    ----------
    path : the ``.py`` file (loaded as a module under a private name, not imported by its own)
    settings : seed, tolerances, mode, input sizes and the per-function ``timeout``
    layers : which layers to check, ``"dot"`` and/or ``"conv"``
    progress : called with the number of checks finished so far

    Returns
    -------
    list of CheckRecord
        In :data:`LAB_CHECKS` order; absent functions are skipped.

    Raises
    ------
    ImplementationError
        The file is missing or not a ``.py`` file, cannot be loaded (syntax
        error, failing import, hang or crash while loading; the message names
        the line when there is one), or defines none of the lab's functions.
    """
    path = implementation_file(path)
    functions = functions_for(layers)
    inputs = {f: lab_inputs(f, settings) for f in functions}
    done: "dict[str, list[CheckRecord]]" = {}

    def finish(function: str, records: "list[CheckRecord]") -> None:
        done[function] = records
        if progress:
            progress(sum(len(r) for r in done.values()))

    pending = list(functions)
    first_load = True
    # Each child either checks every pending function or ends on one (hang, crash), which then
    # has its verdict: so every round finishes at least one function and the loop ends.
    while pending:
        with LabWorker(path, pending, inputs, settings) as worker:
            loaded = worker.load()
            if first_load and not any(name in loaded for name in LAB_FUNCTIONS):
                raise ImplementationError(f"'{path}' defines none of the lab's functions ({', '.join(LAB_FUNCTIONS)})")
            for function in [f for f in pending if f not in loaded]:
                if first_load:
                    finish(function, skipped_checks(function, path.name))
                else:  # a fresh child after a crash: the file changed in between
                    message = f"{function} could not be checked: {path.name} no longer defines it when loaded again"
                    finish(function, failed_checks(function, message, crashed=True))
            first_load = False
            pending = [f for f in pending if f in loaded]
            for function, event in worker.results(pending):
                if "output" in event:
                    records = [_forward_verdict(function, event, inputs[function], settings)]
                else:
                    records = [CheckRecord.from_dict(data) for data in event["records"]]
                finish(function, records)
                pending.remove(function)
    return [record for function in functions for record in done[function]]


def implementation_file(path: "str | os.PathLike") -> Path:
    """``path`` as a Path, if it names a ``.py`` file that exists."""
    give = "give the .py file with your lab functions"
    if not os.fspath(path):
        raise ImplementationError(f"the implementation file name is empty; {give}")
    path = Path(path)
    if path.is_dir():
        raise ImplementationError(f"implementation file '{path}' is a folder; {give}")
    if not path.exists():
        raise ImplementationError(f"implementation file '{path}' does not exist; {give}")
    if not path.is_file():
        raise ImplementationError(f"implementation file '{path}' is not a regular file; {give}")
    if path.suffix.lower() == ".ipynb":
        raise ImplementationError(
            f"implementation file '{path}' is a notebook; export its code first "
            f"(jupyter nbconvert --to script {path.name}) and give the .py file"
        )
    if path.suffix.lower() != ".py":
        raise ImplementationError(f"implementation file '{path}' is not a .py file; {give}")
    return path


def _forward_verdict(
    function: str, event: dict, inputs: "dict[str, np.ndarray]", settings: CheckSettings
) -> CheckRecord:
    """Compare a forward output the child sent back (shape, and data unless it was huge) with the reference."""
    shape = tuple(event["output"]["shape"])
    data = event["output"]["data"]
    actual = np.broadcast_to(np.nan, shape) if data is None else np.array(data, dtype=np.float64).reshape(shape)
    reference, how = reference_output(function, inputs)
    record = compare_forward(function, reference, actual, atol=settings.atol, rtol=settings.rtol, reference=how)
    record.seconds = float(event.get("seconds", 0.0))
    return record
