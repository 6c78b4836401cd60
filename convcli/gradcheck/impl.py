"""Checking someone's file: ``convcli gradcheck --impl FILE``.

:func:`check_impl` reads the file (:mod:`.loading`), picks its convention
(:mod:`.conventions`), loads it in a child (:mod:`.session`) and, for every
case of every layer (:mod:`.cases`), calls the forward and the backward there.
Each output is compared here with convcli's own layer on the same inputs, and
each gradient with convcli's gradient for the same random upstream gradient
(:mod:`.references`).  When a gradient is wrong, the finite-difference
gradient of the file's own forward says which case it is: a backward that
matches a wrong forward, or one that is plainly wrong (:mod:`.explain`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from convcli.errors import ImplementationError, ParameterError
from convcli.gradcheck import cases as case_sets
from convcli.gradcheck import conventions
from convcli.gradcheck.explain import check_backward, check_forward
from convcli.gradcheck.loading import Source, read_source, scan, syntax_problem
from convcli.gradcheck.reports import CheckRecord
from convcli.gradcheck.limits import Limits
from convcli.gradcheck.session import LoadFailure, Session
from convcli.gradcheck.settings import CheckSettings
from convcli.gradcheck.verdicts import note_line


class FileNotChecked(ImplementationError):
    """The file could not be checked; ``records`` holds the checks that ran, for the report."""

    def __init__(self, message: str, *, records=(), convention: "str | None" = None, notes=()) -> None:
        super().__init__(message)
        self.records, self.convention, self.notes = list(records), convention, list(notes)


@dataclass
class ImplResult:
    records: "list[CheckRecord]"
    convention: str
    notes: "list[str]" = field(default_factory=list)


def check_impl(
    path: "str | os.PathLike",
    *,
    api: str = "auto",
    settings: CheckSettings = CheckSettings(),
    layers: "Iterable[str] | None" = None,
    progress: "Callable[[int, int], None] | None" = None,
    limits: "Limits | None" = None,
) -> ImplResult:
    """Check the functions a ``.py`` file or notebook defines, in a child process.

    Parameters
    ----------
    path : the ``.py`` or ``.ipynb`` file
    api : ``"auto"``, a built-in convention's name, or an adapter ``FILE.py``
    settings : seed, tolerances, mode, the case by hand, and ``timeout`` (per call, and for loading)
    layers : ``"dot"``, ``"affine"``, ``"conv"``, ``"pool"`` (default: all the convention has)
    progress : called with (checks done, checks planned)
    limits : the child's resource limits (:class:`~convcli.gradcheck.limits.Limits`; default: 4 GiB,
        and CPU time ten times ``timeout``)

    Returns
    -------
    ImplResult
        The records (``<function>[<case>]`` and ``<function>[<case>]:<input>``),
        the convention used and notes on loading.

    Raises
    ------
    FileNotChecked
        The file is missing, cannot be loaded, matches no convention or
        defines none of its functions.
    """
    source = read_source(path)
    convention = conventions.resolve(api)
    problem = syntax_problem(source)
    if problem:
        raise FileNotChecked(f"cannot load '{source.path}': {problem}",
                             convention=convention.name if convention else None)
    notes = []
    if convention is None:
        found = scan(source)
        convention = _detect(found)
        notes.append(f"convention: {convention.name} (chosen by --api auto from the names the file defines)")
    try:
        with Session(source, convention, settings.timeout, limits) as session:
            return _check(session, source, convention, settings, layers, notes, progress)
    except LoadFailure as exc:
        raise FileNotChecked(str(exc), convention=convention.name, notes=notes) from None


def _detect(found) -> conventions.Convention:
    try:
        return conventions.detect(found.functions, found.classes)
    except ImplementationError as exc:
        raise FileNotChecked(f"{exc}") from None


def _check(session: Session, source: Source, convention, settings, layers, notes, progress) -> ImplResult:
    specs = convention.layers
    chosen = list(specs) if layers is None else list(dict.fromkeys(layers))
    missing = [layer for layer in chosen if layer not in specs]
    if missing:
        raise ParameterError(
            f"--layer {missing[0]}: the {convention.name} convention has no {missing[0]} layer; "
            f"it has {', '.join(specs)}"
        )
    notes += [note_line(n, source) for n in session.notes]
    notes += [f"{layer}: {text}" for layer, text in session.forms.items()]
    defined = set(session.defined)
    present = [l for l in chosen if specs[l].forward in defined or (specs[l].backward or "") in defined]
    if not present:
        wanted = ", ".join(n for l in chosen for n in (specs[l].forward, specs[l].backward) if n)
        found = ", ".join(n for n in session.defined if "." not in n) or "nothing callable"
        raise FileNotChecked(
            f"'{source.path.name}' defines none of the {convention.name} convention's functions ({wanted}); "
            f"it defines: {found}. Choose another with --api NAME, or write an adapter, --api FILE.py",
            convention=convention.name, notes=notes,
        )
    plan = {layer: _cases(layer, specs[layer], settings, convention.name) for layer in chosen}
    total = sum(_planned(specs[l], plan[l], defined) for l in chosen)
    records: "list[CheckRecord]" = []
    for layer in chosen:
        spec = specs[layer]
        has_forward, has_backward = spec.forward in defined, bool(spec.backward) and spec.backward in defined
        for name, present_ in ((spec.forward, has_forward), (spec.backward, has_backward)):
            if name and not present_:
                records.append(CheckRecord(name, name, "forward" if name == spec.forward else "backward", "skip",
                                           f"{source.path.name} defines no {name}", convention=convention.name))
        for case in plan[layer]:
            context = dict(session=session, spec=spec, case=case, settings=settings, source=source,
                           convention=convention.name)
            forward = check_forward(**context) if has_forward else None
            state = session.last_id if has_forward else None
            if forward is not None:
                records.append(forward)
            if has_backward and case.backward:
                records += check_backward(**context, forward=forward, state=state)
            if progress:
                progress(sum(r.status != "skip" for r in records), total)
    return ImplResult(records, convention.name, notes)


def _cases(layer: str, spec, settings: CheckSettings, convention: str) -> "list[case_sets.Case]":
    if settings.by_hand:
        size = settings.size or (8, 8)
        kernel = settings.kernel_size or (min(3, size[0]), min(3, size[1]))
        return case_sets.by_hand(layer, spec.cases, size, kernel, convention)
    return case_sets.default_cases(layer, spec.cases)


def _planned(spec, cases, defined) -> int:
    forward = len(cases) if spec.forward in defined else 0
    backward = sum(c.backward for c in cases) * len(spec.inputs) if spec.backward in defined else 0
    return forward + backward
