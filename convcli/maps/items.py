"""The items of a dataset, chunk by chunk, and their filter responses (numpy, Pillow and the core only).

For :mod:`convcli.maps.arrays` (``--format npy``) and :mod:`convcli.maps.zarrstore`
(``--format zarr``):

- :class:`ItemReader` reads items ``a:b`` of the concatenated inputs; it
  pickles as file names, so Dask worker processes re-open the files
  themselves (and only read the items of their chunk);
- :func:`fit_square` scales and centre-crops items to ``size × size`` (``--size``);
- :func:`compute_block` correlates one chunk with the whole bank (one
  :func:`~convcli.layers.conv_forward` call per kernel shape).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from convcli.errors import ParameterError
from convcli.io.images import ImageSource, open_source
from convcli.layers import conv_forward
from convcli.maps.batch import Group, RenderPlan


def fit_square(X: np.ndarray, size: int) -> np.ndarray:
    """Items ``X`` ``(n, H, W)`` scaled so the shorter side is ``size``, centre-cropped: ``(n, size, size)`` float64.

    Pillow resamples each item in 32-bit float: box (area) averaging when
    shrinking, bilinear when enlarging.  Items already ``size × size`` are
    returned unchanged.
    """
    n, h, w = X.shape
    if (h, w) == (size, size):
        return X.astype(np.float64, copy=False)
    from PIL import Image

    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    how = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = np.empty((n, size, size))
    for i in range(n):  # one resampling per item (a picture input is one item)
        picture = Image.fromarray(np.ascontiguousarray(X[i], dtype=np.float32), mode="F").resize((new_w, new_h), how)
        out[i] = np.asarray(picture)[top : top + size, left : left + size]
    return out


class ItemReader:
    """Items ``a:b`` of the inputs of a plan, end to end, as stored (uint8 for MNIST).

    Pickles as the inputs' file names (absolute paths), key and item indices:
    a Dask worker process opens each file once, on its first chunk, and reads
    only the items of its chunks (IDX and ``.npy`` through a memory map).
    """

    def __init__(self, plan: RenderPlan, *, key: str | None = None, size: int | None = None) -> None:
        self.files = [job.source.name for job in plan.jobs]
        self.indices = [None if job.indices is None else np.asarray(job.indices, np.int64) for job in plan.jobs]
        self.starts = np.cumsum([0] + [len(job.folders) for job in plan.jobs])
        self.shape = plan.jobs[0].source.shape if size is None else (size, size)
        self.key, self.size = key, size
        self._sources: list[ImageSource | None] = [job.source for job in plan.jobs]

    def portable(self) -> "ItemReader":
        """Make the reader picklable for other processes; ParameterError for stdin, which they cannot re-read."""
        if any(f == "stdin" and not Path(f).is_file() for f in self.files):
            raise ParameterError(
                "INPUT '-' (stdin) cannot be read by Dask worker processes; use --scheduler threads, "
                "or save the data to a file first"
            )
        self.files = [str(Path(f).resolve()) for f in self.files]
        return self

    def part(self, start: int, stop: int) -> "ItemReader":
        """A reader of items ``start:stop`` only (numbered from 0): what one Dask task carries.

        A chunk of a folder of 100,000 photos then pickles as its own few file
        names, not all of them.
        """
        part = object.__new__(ItemReader)
        part.__dict__.update(self.__dict__)
        keep = [j for j in range(len(self.files)) if self.starts[j] < stop and self.starts[j + 1] > start]
        part.files = [self.files[j] for j in keep]
        part._sources = [self._sources[j] for j in keep]
        part.indices = []
        starts = [0]
        for j in keep:
            a, b = max(start, self.starts[j]), min(stop, self.starts[j + 1])
            whole = self.indices[j]
            part.indices.append(None if whole is None else whole[a - self.starts[j] : b - self.starts[j]])
            starts.append(starts[-1] + b - a)
        part.starts = np.asarray(starts)
        return part

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_sources"] = [None] * len(self.files)  # closures over open files: re-opened where unpickled
        return state

    def __call__(self, start: int, stop: int) -> np.ndarray:
        """Items ``start:stop``, shape ``(stop - start, H, W)``."""
        parts = []
        for j in range(len(self.files)):
            a, b = max(start, self.starts[j]), min(stop, self.starts[j + 1])
            if a >= b:
                continue
            if self._sources[j] is None:
                self._sources[j] = open_source(self.files[j], key=self.key)
            wanted = None if self.indices[j] is None else self.indices[j][a - self.starts[j] : b - self.starts[j]]
            part = self._sources[j].read(wanted, dtype=None)
            parts.append(part if self.size is None else fit_square(part, self.size))
        return parts[0] if len(parts) == 1 else np.concatenate([p.astype(np.float64) for p in parts])


def compute_block(X: np.ndarray, groups: Sequence[Group], *, padding, border: str, dtype) -> np.ndarray:
    """Every filter's map of the images ``X`` ``(n, H, W)``: ``(n, K, H', W')`` in ``dtype``.

    One :func:`convcli.layers.conv_forward` call per kernel shape (the whole
    bank of that shape at once); float64 arithmetic, then cast.
    """
    K = sum(len(g.columns) for g in groups)
    out = None
    for group in groups:
        A = conv_forward(X, group.bank, padding=padding, border=border)  # (n, k, H', W') float64
        if out is None:
            out = np.empty((A.shape[0], K) + A.shape[2:], dtype=dtype)
        out[:, list(group.columns)] = A
    return out
