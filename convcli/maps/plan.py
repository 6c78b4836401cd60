"""Planning a batch render: every input, filter, size and output name checked before anything is written.

:func:`plan_render` opens every input, parses ``index``, checks every kernel
against every input's size, the padded sizes against the pixel limit, and the
output folder, and returns a :class:`RenderPlan` that
:func:`convcli.maps.batch.run_render` carries out.  It raises a
:class:`~convcli.errors.ConvcliError` for any bad input, filter or output, and
writes nothing.  :func:`chunk_size` says how many items are computed at once
under a memory budget.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from convcli.errors import KernelError, ParameterError, ShapeError
from convcli.io.images import SAMPLE_DIR, ImageSource, open_source, parse_indices
from convcli.io.library import Filter
from convcli.layers import pad_widths
from convcli.maps.folder import (
    MANIFEST,
    RESERVED,
    SHEET,
    check_folder,
    refuse_inputs_among_outputs,
    safe_name,
    unused_name,
)
from convcli.maps.levels import colormap_lut, to_uint8
from convcli.maps.sheet import (
    SHEET_MAX_PIXELS,
    SHEET_MAX_ROWS,
    cell_scale,
    rows_that_fit,
)
from convcli.maps.single import check_padded_size
from convcli.maps.writing import check_size

#: Bytes of activation maps (float64) computed per chunk; bounds the memory of a run.
CHUNK_BYTES = 32 * 2**20
#: What ``convcli filters render`` renders without INPUT (files in ``sample_images/``): the
#: Fashion-MNIST subset and the scene.  The sample PNGs are left out, as they are items 0, 1, 2
#: and 9 of that subset: a sheet with them shows those four pictures twice.
SAMPLE_INPUTS = ("fashion-mnist-16-images-idx3-ubyte.gz", "scene-256.png")


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
    filters : sequence of :class:`~convcli.io.library.Filter`, at least one
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


# ----------------------------------------------------------------------------- chunks


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
