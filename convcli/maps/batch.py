"""Batch rendering: many images × a bank of filters -> PNG maps, a manifest and a contact sheet.

numpy and the core only (no click, no rich).  The work is split in two so that
nothing is written before everything has been checked:

- :func:`~convcli.maps.plan.plan_render` (in :mod:`convcli.maps.plan`) opens every input, parses ``index``, checks every
  kernel against every input's size and the output folder, and returns a
  :class:`RenderPlan`.  It raises a :class:`~convcli.errors.ConvcliError` for
  any bad input, filter or output, and writes nothing.
- :func:`run_render` carries the plan out: it reads the images in chunks,
  correlates each chunk with the whole bank in one call of
  :func:`convcli.layers.conv_forward` (one call per kernel size: a bank needs
  kernels of one shape; a large photo's bank is split so that each call's
  maps fit the budget), and hands the PNG encoding and writing to writer
  threads (:mod:`convcli.maps.writer`) while the next chunk is computed.  At
  most two chunks of maps are alive at any time, so a 60,000-image MNIST file
  renders in bounded memory.

Output layout, under the folder ``out_dir``::

    <stem>/<filter>.png           plain images
    <stem>-<index>/<filter>.png   IDX, .npz and 3-D .npy items
    manifest.json                 every file written, with the raw map's min and max
    sheet.png                     the contact sheet (first 64 images)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from convcli.errors import ConvcliError
from convcli.io.files import atomic_write_bytes
from convcli.io.library import Filter
from convcli.layers import conv_forward
from convcli.maps.folder import (
    MANIFEST,
    SHEET,
    check_folder,
    cpu_count,
    locked_folder,
    remove_old_results,
    remove_stale,
    write_manifest,
)
from convcli.maps.levels import apply_cmap, to_uint8_each
from convcli.maps.plan import (  # noqa: F401 (plan_render, sample_inputs, ... are part of this module's API too)
    CHUNK_BYTES,
    SAMPLE_INPUTS,
    Group,
    Job,
    RenderPlan,
    _chunks,
    chunk_size,
    plan_render,
    sample_inputs,
)
from convcli.maps.sheet import (
    SHEET_MIN_CELL,
    contact_sheet,
    display_input,
)
from convcli.maps.single import check_finite
from convcli.maps.writer import MapWriter
from convcli.maps.writing import encode_png

#: Jobs with fewer maps than this are written without writer threads.
PARALLEL_MIN_MAPS = 1000
#: Sheet rows are kept until the end with pictures of at most this many pixels a side (the sheet
#: shows them at half that or less).
SHEET_KEEP_PX = 4 * SHEET_MIN_CELL

Progress = Callable[[int], None]



@dataclass
class RenderResult:
    """What :func:`run_render` wrote."""

    out_dir: Path
    images: int
    maps: int
    manifest: Path
    sheet: Path | None


# ----------------------------------------------------------------------------- running


def run_render(
    plan: RenderPlan,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
    budget: int = CHUNK_BYTES,
) -> RenderResult:
    """Render every map of ``plan``; write the PNGs, ``manifest.json`` and ``sheet.png``.

    Parameters
    ----------
    plan : from :func:`plan_render`
    progress : called with the number of images finished since the last call
    workers : threads that encode and write the PNGs while the next chunk is
        computed; ``0`` does it all in the calling thread.  Default: :func:`default_workers`.
    budget : bytes of float64 maps per chunk (see :func:`chunk_size`)

    Returns
    -------
    RenderResult

    Notes
    -----
    The folder is locked for the whole run (:func:`~convcli.maps.folder.locked_folder`):
    a second render into it fails at once.  An old ``manifest.json`` and
    ``sheet.png`` (there only when the plan may replace files: ``force``) are
    deleted before the first map is written, and the new ones are written
    only when every map is: so a folder
    never holds a manifest describing pictures it does not hold, even after a
    run that failed or was interrupted.

    Raises
    ------
    OutputError
        Another render holds the folder; a file cannot be written (naming it,
        and saying what the folder holds now).
    ImageFormatError
        A map overflows float64 (naming the input and the filter).
    """
    with locked_folder(plan.out_dir):
        # again, under the lock: another render may have written here since plan_render looked
        check_folder(plan.out_dir, (f for job in plan.jobs for f in job.folders), [MANIFEST] + [SHEET] * plan.sheet,
                     force=plan.force)
        # a run that stops half-way must not leave a manifest describing other maps (only a run allowed to
        # replace files gets here with a manifest in the folder)
        remove_old_results(plan.out_dir, (MANIFEST, SHEET))
        try:
            return _run(plan, progress, workers, budget)
        except ConvcliError as exc:  # a full disk, a folder made read-only...: say what is left
            left = ("the maps and manifest.json are written, sheet.png is not"
                    if (plan.out_dir / MANIFEST).exists() else "without manifest.json or sheet.png")
            raise type(exc)(f"{exc}; '{plan.out_dir}' holds the maps written so far, {left}") from exc


def _run(plan: RenderPlan, progress: Progress | None, workers: int | None, budget: int) -> RenderResult:
    records = []  # (job, indices, folders, lows (n, K), highs (n, K)) per chunk: the manifest
    sheet_rows: list = []
    shown = plan.sheet_rows if plan.sheet else 0
    workers = default_workers(plan) if workers is None else workers
    writer = MapWriter(
        plan.out_dir, plan.file_names, size=plan.size, force=plan.force, workers=workers, progress=progress
    )
    with writer:
        for job in plan.jobs:
            for chunk, folders in _chunks(job, budget):
                X = job.source.read(chunk, dtype=None)  # (n, H, W), as stored: uint8 MNIST is not copied
                maps, lows, highs = _maps(plan, job, X, budget, chunk)
                records.append((job, [None] if chunk is None else chunk, folders, lows, highs))
                for i in range(min(len(folders), shown - len(sheet_rows))):
                    sheet_rows.append(_sheet_row(folders[i], display_input(X[i]), [m[i] for m in maps]))
                writer.write(folders, maps)

    head = {
        "padding": plan.padding if isinstance(plan.padding, (str, int)) else list(plan.padding),
        "border": plan.border,
        "normalize": plan.normalize,
        "cmap": plan.cmap,
        "size": plan.size,
        "filters": [
            {"name": f.name, "file": name, "kernel": f.kernel.tolist()}
            for f, name in zip(plan.filters, plan.file_names)
        ],
    }
    manifest = write_manifest(plan.out_dir, head, _manifest_entries(plan, records))
    sheet_path = None
    if plan.sheet:
        note = f"showing the first {len(sheet_rows)} of {plan.total:,} images" if plan.total > len(sheet_rows) else None
        picture = contact_sheet(sheet_rows, [f.name for f in plan.filters], title=_settings(plan), note=note)
        sheet_path = atomic_write_bytes(plan.out_dir / SHEET, encode_png(picture), force=True)
    remove_stale(plan.out_dir, plan.stale, _written(plan))
    return RenderResult(plan.out_dir, plan.total, plan.total_maps, manifest, sheet_path)


def _maps(plan: RenderPlan, job: Job, X: np.ndarray, budget: int, chunk=None):
    """Every filter's map of the images ``X`` ``(n, H, W)`` of ``job``, as pictures.

    Returns ``(maps, lows, highs)``: ``maps[k]`` is filter ``k``'s uint8 pictures
    ``(n, H'_k, W'_k)``; ``lows`` and ``highs`` ``(n, K)`` are the raw maps' min
    and max.  Each kernel shape's bank goes through one :func:`conv_forward` call,
    unless its float64 maps would pass ``budget`` bytes (a large photo: 25 maps of
    12 megapixels are 2.4 GB); then it is split so that each call's maps fit.
    """
    n, K = len(X), len(plan.filters)
    maps: list[np.ndarray] = [np.empty(0)] * K
    lows, highs = np.empty((n, K)), np.empty((n, K))
    for group in plan.groups:
        h, w = job.map_shape[group.columns[0]]
        step = max(1, budget // (8 * n * h * w))  # filters per call
        for start in range(0, len(group.columns), step):
            columns = list(group.columns[start : start + step])
            bank = group.bank[start : start + step]
            with np.errstate(over="ignore", invalid="ignore"):
                A = conv_forward(X, bank, padding=plan.padding, border=plan.border)  # (n, k, H', W')
            lows[:, columns], highs[:, columns] = A.min(axis=(2, 3)), A.max(axis=(2, 3))
            if not (np.isfinite(lows[:, columns]).all() and np.isfinite(highs[:, columns]).all()):
                check_finite(A, lambda at: _overflow_names(job, chunk, at, plan.filters[columns[at[1]]]))
            for j, col in enumerate(columns):
                maps[col] = to_uint8_each(A[:, j], plan.normalize)
                if plan.cmap is not None:
                    maps[col] = apply_cmap(maps[col], plan.cmap)  # (n, H', W', 3)
    return maps, lows, highs


def _overflow_names(job: Job, chunk, at: tuple[int, ...], f: Filter) -> tuple[str, str, tuple[int, int]]:
    """For :func:`~convcli.maps.single.check_finite`: the input (with its index), the filter, the place."""
    which = f" [{chunk[at[0]]}]" if chunk is not None else ""
    return f"'{job.source.name}'{which}", f"'{f.name}'", at[2:4]


def _sheet_row(label: str, image: np.ndarray, maps: list[np.ndarray]):
    """A contact-sheet row, kept until the sheet is drawn at the end, with large pictures shrunk now.

    25 maps of a 12-megapixel photo are 300 MB; a row whose largest picture
    passes :data:`SHEET_KEEP_PX` is shrunk to that (one factor for the row, box
    filter), 4 MB.  The sheet shows such a row at half that size or less
    (:func:`~convcli.maps.sheet.contact_sheet`), so it hardly changes.  Smaller
    pictures are copied as they are, so the chunk they come from can be freed.
    """
    factor = SHEET_KEEP_PX / max(max(p.shape) for p in [image, *maps])
    if factor >= 1:
        return label, image.copy(), [m.copy() for m in maps]
    from PIL import Image

    def shrink(picture: np.ndarray) -> np.ndarray:
        h, w = picture.shape[:2]
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        return np.asarray(Image.fromarray(np.ascontiguousarray(picture)).resize(size, Image.Resampling.BOX))

    return label, shrink(image), [shrink(m) for m in maps]


def default_workers(plan: RenderPlan) -> int:
    """Writer threads for ``plan``: none below :data:`PARALLEL_MIN_MAPS` maps, else one per CPU, at most 4.

    Measured on 2 CPUs (1,000 Fashion-MNIST items × 25 filters, ``benchmarks/bench.py --only render``):
    two threads take about 0.6 times as long as none when the file system is slow to create files, and
    about as long when it is fast (tmpfs) and the machine busy.
    """
    if plan.total_maps < PARALLEL_MIN_MAPS:
        return 0
    return min(4, cpu_count())


def _written(plan: RenderPlan) -> set:
    """Every file ``plan`` writes, as paths relative to its folder."""
    names = {f"{folder}/{name}" for job in plan.jobs for folder in job.folders for name in plan.file_names}
    return names | {MANIFEST} | ({SHEET} if plan.sheet else set())


def _manifest_entries(plan: RenderPlan, records):
    """One manifest entry per file written, from the per-chunk records of :func:`run_render`.

    Each is the text ``json.dumps`` makes of ``{"input", "index", "filter",
    "file", "min", "max"}``, put together from pieces quoted once per input,
    filter and folder (a render of 25,000 maps spent 0.3 s in ``json.dumps``; the
    finite floats min and max are written by ``repr``, which is the text json gives them).
    """
    filters = [json.dumps(f.name) for f in plan.filters]
    files = [json.dumps(name)[1:] for name in plan.file_names]  # the quoted name without its opening quote
    for job, indices, folders, lows, highs in records:
        source = json.dumps(job.source.name)
        for index, folder, low, high in zip(indices, folders, lows.tolist(), highs.tolist()):
            head = f'{{"input": {source}, "index": {json.dumps(index)}, "filter": '
            prefix = json.dumps(folder + "/")[:-1]  # the folder's quoted text without its closing quote
            for name, quoted, lo, hi in zip(files, filters, low, high):  # finite floats: repr is json's text
                yield f'{head}{quoted}, "file": {prefix}{name}, "min": {lo!r}, "max": {hi!r}}}'


def _settings(plan: RenderPlan) -> str:
    """The sheet's title line."""
    size = f" · size {plan.size}" if plan.size else ""
    size += f" · cmap {plan.cmap}" if plan.cmap else ""
    return f"padding {plan.padding} · border {plan.border} · normalize {plan.normalize}{size}"
