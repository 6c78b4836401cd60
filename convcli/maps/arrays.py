"""Filter responses of a whole dataset as one array ``(N, K, H', W')``: planning, reading, ``maps.npy``.

numpy and the core only.  ``convcli filters render --format npy`` writes
``DIR/maps.npy`` (item ``n`` of the inputs × filter ``k``) and ``DIR/manifest.json``
(inputs, filters with their kernels, options, dtype); ``--format zarr``
(:mod:`convcli.maps.zarrstore`) writes the same array as a Zarr store.

- :func:`plan_arrays` reuses :func:`convcli.maps.batch.plan_render` (every input
  opened and read once, every kernel checked) and adds what one array needs:
  every item of one size, every filter's map of one size, a chunk length
  that keeps a chunk's float64 maps within a memory budget.
- :mod:`convcli.maps.items` reads the items of a chunk (:class:`~convcli.maps.items.ItemReader`)
  and correlates them with the whole bank (:func:`~convcli.maps.items.compute_block`).
- :func:`run_npy` writes the chunks one by one through
  :func:`numpy.lib.format.open_memmap` into a temporary file that becomes
  ``maps.npy`` only when all of it is written; ``manifest.json`` comes last.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from convcli.errors import ImageFormatError, OutputError, ParameterError, ShapeError
from convcli.io.files import atomic_write_bytes
from convcli.io.images import ImageSource
from convcli.layers import pad_widths
from convcli.maps.batch import CHUNK_BYTES, RenderPlan, plan_render
from convcli.maps.folder import MANIFEST, check_folder
from convcli.maps.items import ItemReader, compute_block

NPY = "maps.npy"
ZARR = "maps.zarr"
FORMATS = ("npy", "zarr")
DTYPES = ("float32", "float64")
AXES = ("item", "filter", "row", "column")

#: What a folder INPUT contributes: its files with these suffixes (any case), sorted by name.
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm", ".pbm")

Progress = Callable[[int], None]


def expand_inputs(sources: Sequence[str | os.PathLike | ImageSource]) -> list:
    """Folders and glob patterns among ``sources`` replaced by the pictures in them, sorted by name.

    A folder gives its files whose suffix is in :data:`PICTURE_SUFFIXES` (not
    its subfolders); a pattern such as ``'photos/*.jpg'`` or ``'photos/**/*.png'``
    that names no existing file gives the files it matches.  Other sources
    are kept as they are.

    Raises
    ------
    ImageFormatError
        A folder without pictures, or a pattern that matches no file.
    """
    out: list = []
    for source in sources:
        if isinstance(source, ImageSource) or str(source) == "-":
            out.append(source)
            continue
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)
            if not found:
                raise ImageFormatError(
                    f"input folder '{source}' holds no pictures ({', '.join(PICTURE_SUFFIXES)})"
                )
            out.extend(found)
        elif not path.exists() and glob.has_magic(str(source)):
            found = sorted(Path(p) for p in glob.glob(str(source), recursive=True) if Path(p).is_file())
            if not found:
                raise ImageFormatError(f"input pattern '{source}' matches no file")
            out.extend(found)
        else:
            out.append(source)
    return out


@dataclass(frozen=True)
class ArrayPlan:
    """What :func:`run_npy` and :func:`convcli.maps.zarrstore.run_zarr` need, checked by :func:`plan_arrays`."""

    render: RenderPlan  # jobs (inputs and items), filters, kernel groups, padding, border
    format: str  # "npy" or "zarr"
    dtype: str  # "float32" or "float64"
    image_shape: tuple[int, int]  # (H, W) of every item
    map_shape: tuple[int, int]  # (H', W') of every filter's map
    chunk: int  # items per chunk
    force: bool = False
    resume: bool = False
    key: str | None = None  # the array of .npz inputs, for readers that re-open them
    size: int | None = None  # every item scaled and centre-cropped to size × size first

    @property
    def out_dir(self) -> Path:
        return self.render.out_dir

    @property
    def total(self) -> int:
        """N, the number of items."""
        return self.render.total

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, K, H', W')``."""
        return (self.total, len(self.render.filters), *self.map_shape)

    @property
    def bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of every chunk along N."""
        return [(a, min(a + self.chunk, self.total)) for a in range(0, self.total, self.chunk)]

    def reader(self) -> "ItemReader":
        return ItemReader(self.render, key=self.key, size=self.size)

    def settings(self) -> dict:
        """The manifest: array, axes, options, filters with kernels, inputs with their items."""
        plan = self.render
        start, inputs = 0, []
        for job in plan.jobs:
            n = len(job.folders)
            inputs.append(
                {
                    "file": job.source.name,
                    "format": job.source.format,
                    "items": [start, start + n],
                    "indices": None if job.indices is None else _runs(job.indices),
                }
            )
            start += n
        return {
            "array": NPY if self.format == "npy" else ZARR,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "axes": list(AXES),
            "chunk": self.chunk,
            "size": self.size,
            "padding": plan.padding if isinstance(plan.padding, (str, int)) else list(plan.padding),
            "border": plan.border,
            "filters": [{"name": f.name, "kernel": f.kernel.tolist()} for f in plan.filters],
            "inputs": inputs,
        }


def _runs(indices: Sequence[int]) -> list[list[int]]:
    """``[0, 1, 2, 7, 8]`` -> ``[[0, 3], [7, 9]]``: half-open runs, so 60,000 indices take one line."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


def plan_arrays(
    sources: Sequence[str | os.PathLike | ImageSource],
    filters,
    out_dir: str | os.PathLike,
    *,
    format: str = "npy",
    dtype: str = "float32",
    index: str | None = None,
    key: str | None = None,
    padding="valid",
    border: str = "zero",
    force: bool = False,
    resume: bool = False,
    size: int | None = None,
    budget: int = CHUNK_BYTES,
) -> ArrayPlan:
    """Check an array job completely, before anything is written.

    Parameters are those of :func:`convcli.maps.batch.plan_render` (where
    ``sources`` may also be folders of pictures and glob patterns, see
    :func:`expand_inputs`), plus
    ``format`` ("npy" or "zarr"), ``dtype`` ("float32" or "float64"),
    ``resume`` (zarr only: keep the chunks a previous run marked complete) and
    ``size``: scale every item so that its shorter side is ``size`` pixels and
    crop its centre to ``size × size`` (see :func:`convcli.maps.items.fit_square`), so that items
    of any size share the array.

    Raises
    ------
    ParameterError, ImageFormatError, KernelError, ShapeError, OutputError
        Besides plan_render's: items of different sizes (naming the first
        mismatch), filters whose maps differ in size, an output that exists.
    """
    if format not in FORMATS:
        raise ParameterError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    if dtype not in DTYPES:
        raise ParameterError(f"dtype must be float32 or float64; got {dtype!r}")
    if resume and format != "zarr":
        raise ParameterError("--resume works with --format zarr (its chunks are marked complete one by one)")
    # force=True: plan_render checks a PNG folder layout; the array outputs are checked below
    plan = plan_render(expand_inputs(sources), filters, out_dir, index=index, key=key, padding=padding, border=border,
                       sheet=False, force=True, budget=budget)
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1):
        raise ParameterError(f"size must be a whole number >= 1; got {size!r}")
    first = plan.jobs[0]
    image_shape = first.source.shape if size is None else (int(size), int(size))
    map_shapes = first.map_shape if size is None else [_map_shape(image_shape, f, plan.padding) for f in plan.filters]
    for job in plan.jobs[1:] if size is None else ():
        if job.source.shape != first.source.shape:
            (h, w), (h0, w0) = job.source.shape, first.source.shape
            raise ShapeError(
                f"input '{job.source.name}' is {h}×{w} but '{first.source.name}' is {h0}×{w0}; "
                f"--format {format} puts every item in one array, so they must be one size "
                f"(use --size PX to scale and centre-crop every item to PX×PX, or --format png)"
            )
    for f, shape in zip(plan.filters, map_shapes):
        if shape != map_shapes[0]:
            f0 = plan.filters[0]
            raise ShapeError(
                f"filter '{f.name}' ({_size(f.kernel.shape)}) gives {_size(shape)} maps but '{f0.name}' "
                f"({_size(f0.kernel.shape)}) gives {_size(map_shapes[0])} with --padding {plan.padding}; "
                f"--format {format} needs maps of one size: use --padding same, or filters of one size"
            )
    out = Path(out_dir)
    name = NPY if format == "npy" else ZARR
    if not resume or not (out / name).is_dir():  # --resume without a store to resume: as a new run
        check_folder(out, [], [name, MANIFEST] if format == "npy" else [MANIFEST], force=force)
    if format == "zarr" and (out / name).exists() and not (out / name).is_dir():
        raise OutputError(f"cannot write the Zarr store '{out / name}': it is a file, not a folder")
    (h, w), (mh, mw) = image_shape, map_shapes[0]
    K = len(plan.filters)
    per_item = 8 * (h * w + K * mh * mw) + np.dtype(dtype).itemsize * K * mh * mw
    return ArrayPlan(plan, format, dtype, (h, w), (mh, mw), max(1, budget // per_item), force, resume, key,
                     None if size is None else int(size))


def _size(shape) -> str:
    return f"{shape[0]}×{shape[1]}"


def _map_shape(image_shape, f, padding) -> tuple[int, int]:
    """(H', W') of filter ``f`` on items of ``image_shape``; ShapeError when it does not fit."""
    (top, bottom), (left, right) = pad_widths(padding, f.kernel.shape)
    out = (image_shape[0] + top + bottom - f.kernel.shape[0] + 1, image_shape[1] + left + right - f.kernel.shape[1] + 1)
    if min(out) < 1:
        raise ShapeError(
            f"filter '{f.name}' ({_size(f.kernel.shape)}) is larger than the {_size(image_shape)} items of --size"
            f" with padding {padding!r}; use a larger --size, --padding same, or a smaller filter"
        )
    return out


# ----------------------------------------------------------------------------- npy


def run_npy(plan: ArrayPlan, *, progress: Progress | None = None) -> Path:
    """Write ``maps.npy`` chunk by chunk, then ``manifest.json``; returns the array's path.

    The array goes to a temporary file in ``out_dir`` (written through
    :func:`numpy.lib.format.open_memmap`, re-mapped per chunk so that only one
    chunk's pages are mapped at a time) and is renamed to ``maps.npy`` when
    complete: an interrupted run leaves no ``maps.npy`` and no manifest.
    """
    out_dir = plan.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / NPY
    tmp = out_dir / f".{NPY}.{secrets.token_hex(4)}.tmp"
    reader, groups = plan.reader(), plan.render.groups
    try:
        np.lib.format.open_memmap(tmp, mode="w+", dtype=plan.dtype, shape=plan.shape).flush()  # header, size
        for a, b in plan.bounds:
            block = compute_block(reader(a, b), groups, padding=plan.render.padding, border=plan.render.border,
                                  dtype=plan.dtype)
            array = np.lib.format.open_memmap(tmp, mode="r+")
            array[a:b] = block
            array.flush()
            del array, block  # unmaps: the written pages leave this process's memory
            if progress is not None:
                progress(b - a)
        if target.exists() and not plan.force:
            raise OutputError(f"output '{target}' already exists; use --force to overwrite it")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    write_array_manifest(plan)
    return target


def write_array_manifest(plan: ArrayPlan) -> Path:
    """``out_dir/manifest.json`` for an array output (written atomically, last)."""
    lines = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in {**plan.settings(), "complete": True}.items()]
    text = "{\n" + ",\n".join(lines) + "\n}\n"  # one key a line
    return atomic_write_bytes(plan.out_dir / MANIFEST, text.encode(), force=True)
