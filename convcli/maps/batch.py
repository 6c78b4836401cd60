"""Batch rendering: many images × a bank of filters -> PNG maps, a manifest and a contact sheet.

numpy and the core only (no click, no rich).  The work is split in two so that
nothing is written before everything has been checked:

- :func:`plan_render` opens every input, parses ``index``, checks every
  kernel against every input's size and the output folder, and returns a
  :class:`RenderPlan`.  It raises a :class:`~convcli.errors.ConvcliError` for
  any bad input, filter or output, and writes nothing.
- :func:`run_render` carries the plan out: it reads the images in chunks,
  correlates each chunk with the whole bank in one call of
  :func:`convcli.layers.conv_forward` (one call per kernel size: a bank needs
  kernels of one shape; a large photo's bank is split so that each call's
  maps fit the budget), and hands the PNG encoding and writing to worker
  processes while the next chunk is computed.  At most two chunks of maps are
  alive at any time, so a 60,000-image MNIST file renders in bounded memory.

Output layout, under the folder ``out_dir``::

    <stem>/<filter>.png           plain images
    <stem>-<index>/<filter>.png   IDX, .npz and 3-D .npy items
    manifest.json                 every file written, with the raw map's min and max
    sheet.png                     the contact sheet (first 64 images)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from convcli.errors import ConvcliError, KernelError, ParameterError, ShapeError
from convcli.io.files import atomic_write_bytes
from convcli.io.images import SAMPLE_DIR, ImageSource, open_source, parse_indices
from convcli.io.kernels import Filter
from convcli.layers import conv_forward, pad_widths
from convcli.maps.folder import (
    MANIFEST,
    RESERVED,
    SHEET,
    MapWriter,
    check_folder,
    cpu_count,
    locked_folder,
    refuse_inputs_among_outputs,
    remove_old_results,
    remove_stale,
    safe_name,
    unused_name,
    write_manifest,
)
from convcli.maps.levels import apply_cmap, colormap_lut, to_uint8, to_uint8_each
from convcli.maps.sheet import (
    SHEET_MAX_PIXELS,
    SHEET_MAX_ROWS,
    SHEET_MIN_CELL,
    cell_scale,
    contact_sheet,
    display_input,
    rows_that_fit,
)
from convcli.maps.single import check_finite, check_padded_size
from convcli.maps.writing import check_size, encode_png

#: Bytes of activation maps (float64) computed per chunk; bounds the memory of a run.
CHUNK_BYTES = 32 * 2**20
#: Jobs with fewer maps than this are written without worker processes.
PARALLEL_MIN_MAPS = 4000
#: Sheet rows are kept until the end with pictures of at most this many pixels a side (the sheet
#: shows them at half that or less).
SHEET_KEEP_PX = 4 * SHEET_MIN_CELL
#: What ``convcli filters render`` renders without INPUT (files in ``sample_images/``): the
#: Fashion-MNIST subset and the scene.  The sample PNGs are left out, as they are items 0, 1, 2
#: and 9 of that subset: a sheet with them shows those four pictures twice.
SAMPLE_INPUTS = ("fashion-mnist-16-images-idx3-ubyte.gz", "scene-256.png")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Group:
    """Filters that share a kernel shape, so they form one bank ``(k, Fh, Fw)``."""

    columns: tuple[int, ...]  # positions of the filters in RenderPlan.filters
    bank: np.ndarray  # (k, Fh, Fw) float64


@dataclass(frozen=True)
class Job:
    """One input and the items to render from it."""

    source: ImageSource
    indices: tuple[int, ...] | None  # None for a plain image (one item)
    folders: tuple[str, ...]  # one output folder name (relative to out_dir) per item
    map_shape: tuple[tuple[int, int], ...]  # (H', W') per filter


@dataclass(frozen=True)
class RenderPlan:
    """Everything :func:`run_render` needs, checked by :func:`plan_render`."""

    jobs: tuple[Job, ...]
    filters: tuple[Filter, ...]
    file_names: tuple[str, ...]  # "<filter>.png", one per filter
    groups: tuple[Group, ...]
    out_dir: Path
    padding: object = "valid"
    border: str = "zero"
    normalize: str = "minmax"
    size: int | None = None
    sheet: bool = True
    force: bool = False
    sheet_rows: int = SHEET_MAX_ROWS  # rows the sheet shows: fewer when many filters would make it huge
    cmap: str | None = None
    stale: frozenset = frozenset()  # files of an earlier render in out_dir (relative paths), replaced by this one

    @property
    def total(self) -> int:
        """Number of images (items) to render."""
        return sum(len(job.folders) for job in self.jobs)

    @property
    def total_maps(self) -> int:
        """Number of PNG maps to write: images × filters."""
        return self.total * len(self.filters)

    @property
    def estimated_bytes(self) -> int:
        """About how much disk the maps will take: a PNG of p pixels is about ``0.7 * p`` bytes
        (``2 * p`` in colour) plus 100 of header, and each file fills whole 4 KiB blocks."""
        total = 0
        per_pixel = 2.0 if self.cmap else 0.7
        for job in self.jobs:
            for h, w in job.map_shape:
                if self.size:
                    h, w = max(1, round(h * self.size / max(h, w))), max(1, round(w * self.size / max(h, w)))
                total += len(job.folders) * -(-int(100 + per_pixel * h * w) // 4096) * 4096
        return total


@dataclass
class RenderResult:
    """What :func:`run_render` wrote."""

    out_dir: Path
    images: int
    maps: int
    manifest: Path
    sheet: Path | None


def sample_inputs() -> list[Path]:
    """The bundled inputs of :data:`SAMPLE_INPUTS`: 17 images, none of them twice."""
    return [SAMPLE_DIR / name for name in SAMPLE_INPUTS]


# ----------------------------------------------------------------------------- planning


def plan_render(
    sources: Sequence[str | os.PathLike | ImageSource],
    filters: Sequence[Filter],
    out_dir: str | os.PathLike,
    *,
    index: str | None = None,
    padding="valid",
    border: str = "zero",
    normalize: str = "minmax",
    size: int | None = None,
    sheet: bool = True,
    force: bool = False,
    key: str | None = None,
    budget: int = CHUNK_BYTES,
    cmap: str | None = None,
) -> RenderPlan:
    """Check a batch job completely, before anything is written.

    Parameters
    ----------
    sources : sequence of paths (``-`` for stdin) or opened :class:`ImageSource`
    filters : sequence of :class:`~convcli.io.kernels.Filter`, at least one
        Filters with the same name and kernel are kept once; different kernels
        with the same name (two inline ``-k``) are told apart as ``inline``,
        ``inline-2``, ...
    out_dir : the output folder; it may not exist yet, and may hold an earlier
        render (every file listed in its manifest), which this one replaces; any
        other file needs ``force`` (and then only the files this job writes are replaced).
    index : "3", "0:100" or "0,5,7"; applied to every indexed input (IDX,
        ``.npz``, 3-D ``.npy``).  ``None`` renders every item.
    padding, border : as for :func:`convcli.layers.conv_forward`
    normalize, size : how maps become PNGs (:func:`convcli.maps.levels.to_uint8`, ``upscale``)
    cmap : a matplotlib colour map name: RGB PNGs (:func:`convcli.maps.levels.apply_cmap`)
    sheet : also write ``sheet.png``
    key : the array of ``.npz`` inputs (see :func:`convcli.io.images.open_source`)
    budget : bytes per chunk when the selected images are read to check them

    Every selected image is decoded once here (chunk by chunk, then dropped),
    so a corrupt picture or a NaN in item 50,000 is refused before the first
    file is written.  :func:`run_render` decodes them again: for an IDX file
    of 60,000 items one pass takes about 0.04 s (measured; the uint8 values are
    neither copied nor scanned), against minutes for writing 1.5 million PNGs.

    Raises
    ------
    ParameterError, ImageFormatError, KernelError, ShapeError, OutputError
    """
    if not filters:
        raise ParameterError("filters: need at least one filter; got none")
    if not sources:
        raise ParameterError("inputs: need at least one image; got none")
    to_uint8(np.zeros(1), normalize)  # refuses an unknown mode early
    if cmap is not None:
        colormap_lut(cmap)  # refuses an unknown name, or says what to install
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1):
        raise ParameterError(f"size must be a whole number >= 1; got {size!r}")

    filters, file_names = _unique_filters(filters)
    opened = [s if isinstance(s, ImageSource) else open_source(s, key=key) for s in sources]
    if index is not None and not any(s.indexed for s in opened):
        names = ", ".join(s.name for s in opened)
        raise ParameterError(
            f"--index {index!r} needs an indexed input (IDX, .npz or 3-D .npy); got only plain images: {names}"
        )

    jobs = []
    used: set[str] = set(RESERVED)  # an input called manifest.json.png gets the folder manifest.json-2
    for source in opened:
        map_shape = tuple(_map_shape(source, f, padding) for f in filters)
        if source.indexed:
            indices = parse_indices(index, source.count) if index is not None else list(range(source.count))
            wanted = [f"{source.stem}-{i}" for i in indices]
        else:
            indices, wanted = None, [source.stem]
        folders = tuple(unused_name(safe_name(name), used) for name in wanted)
        jobs.append(Job(source, None if indices is None else tuple(indices), folders, map_shape))
        for shape in map_shape:
            check_size(shape, size)  # ParameterError: pictures past the decompression-bomb limit

    out_dir = Path(out_dir)
    earlier = check_folder(out_dir, (f for job in jobs for f in job.folders), [MANIFEST] + [SHEET] * sheet,
                           force=force)
    refuse_inputs_among_outputs([job.source.name for job in jobs], out_dir,
                                {f for job in jobs for f in job.folders}, file_names)
    for job in jobs:
        for chunk, _ in _chunks(job, budget):
            job.source.read(chunk, dtype=None)  # ImageFormatError for corrupt data or NaN/inf pixels
    return RenderPlan(
        jobs=tuple(jobs),
        filters=tuple(filters),
        file_names=tuple(file_names),
        groups=_groups(filters),
        out_dir=out_dir,
        padding=padding,
        border=border,
        normalize=normalize,
        size=None if size is None else int(size),
        sheet=sheet,
        force=force or earlier is not None,
        sheet_rows=_sheet_rows(jobs, len(filters)) if sheet else 0,
        cmap=cmap,
        stale=frozenset(earlier or ()),
    )


def _sheet_rows(jobs: Sequence[Job], filters: int) -> int:
    """Rows of the contact sheet, so that it stays within the picture limit; ParameterError when none fits."""
    side = max(cell_scale([job.source.shape, *job.map_shape])[0] for job in jobs)  # at least the side drawn
    rows = rows_that_fit(side, filters)
    if rows == 0:
        raise ParameterError(
            f"a contact sheet of {filters:,} filters would pass the limit of {SHEET_MAX_PIXELS:,} pixels in one row; "
            "use --no-sheet or fewer filters"
        )
    return rows


def _unique_filters(filters: Sequence[Filter]) -> tuple[list[Filter], list[str]]:
    """Drop exact repeats; give distinct kernels with one name distinct file names."""
    kept: list[Filter] = []
    names: list[str] = []
    used: set[str] = set()
    for f in filters:
        if f.kernel.ndim != 2:
            raise KernelError(
                f"filter '{f.name}' has shape {f.kernel.shape}; filters render takes 2-D kernels (a (C, Fh, Fw) "
                "kernel works with 'convcli convolve --color')"
            )
        if not np.all(np.isfinite(f.kernel)):
            raise KernelError(f"filter '{f.name}' has NaN or infinite values; kernels must be finite")
        if any(f.name == k.name and np.array_equal(f.kernel, k.kernel) for k in kept):
            continue
        kept.append(f)
        names.append(unused_name(safe_name(f.name), used) + ".png")
    return kept, names


def _map_shape(source: ImageSource, f: Filter, padding) -> tuple[int, int]:
    """The (H', W') of ``f`` on ``source``; ShapeError when the kernel does not fit."""
    (top, bottom), (left, right) = pad_widths(padding, f.kernel.shape)
    h, w = source.shape
    fh, fw = f.kernel.shape
    check_padded_size((h + top + bottom, w + left + right), padding, f"input '{source.name}'")
    out = (h + top + bottom - fh + 1, w + left + right - fw + 1)
    if out[0] < 1 or out[1] < 1:
        raise ShapeError(
            f"filter '{f.name}' ({fh}×{fw}) is larger than input '{source.name}' ({h}×{w})"
            f" with padding {padding!r}; use --padding same or full, or a smaller filter"
        )
    return out


def _groups(filters: Sequence[Filter]) -> tuple[Group, ...]:
    """Filters grouped by kernel shape, in order of first appearance."""
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(filters):
        by_shape.setdefault(tuple(f.kernel.shape), []).append(i)
    return tuple(
        Group(tuple(cols), np.stack([np.asarray(filters[c].kernel, dtype=np.float64) for c in cols]))
        for cols in by_shape.values()
    )


# ----------------------------------------------------------------------------- running


def chunk_size(job: Job, budget: int = CHUNK_BYTES) -> int:
    """How many images of ``job`` to correlate at once so that its float64 maps fit ``budget`` bytes."""
    h, w = job.source.shape
    per_image = 8 * (h * w + sum(mh * mw for mh, mw in job.map_shape))
    return max(1, budget // per_image)


def _chunks(job: Job, budget: int):
    """``(indices, folders)`` chunk by chunk: the items to read and their output folders.

    A plain image is one chunk whose indices are ``None``.
    """
    if job.indices is None:
        yield None, job.folders
        return
    step = chunk_size(job, budget)
    for start in range(0, len(job.indices), step):
        yield list(job.indices[start : start + step]), job.folders[start : start + step]


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
    workers : processes that encode and write the PNGs while the next chunk is
        computed; ``0`` does it all in this process.  Default: :func:`default_workers`.
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
    """Writer processes for ``plan``: none below :data:`PARALLEL_MIN_MAPS` maps (starting them costs
    more than they save), else one per CPU, at most 4.

    Measured with ``benchmarks/bench_filters.py`` on 2 CPUs (1,000 items × 25
    filters): 2 workers take about 0.6 times as long as none.
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
    filter and folder (a render of 25,000 maps spent 0.3 s in ``json.dumps``).
    """
    filters = [json.dumps(f.name) for f in plan.filters]
    for job, indices, folders, lows, highs in records:
        source = json.dumps(job.source.name)
        for index, folder, low, high in zip(indices, folders, lows.tolist(), highs.tolist()):
            head = f'{{"input": {source}, "index": {json.dumps(index)}, "filter": '
            prefix = json.dumps(folder + "/")[:-1]  # the folder's quoted text without its closing quote
            for name, quoted, lo, hi in zip(plan.file_names, filters, low, high):
                yield (f'{head}{quoted}, "file": {prefix}{json.dumps(name)[1:]}, '
                       f'"min": {json.dumps(lo)}, "max": {json.dumps(hi)}}}')


def _settings(plan: RenderPlan) -> str:
    """The sheet's title line."""
    size = f" · size {plan.size}" if plan.size else ""
    size += f" · cmap {plan.cmap}" if plan.cmap else ""
    return f"padding {plan.padding} · border {plan.border} · normalize {plan.normalize}{size}"
