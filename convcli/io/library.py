"""The named filter library: :class:`Filter`, the filters of :data:`FILTERS` and two kernel properties (numpy only).

Every kernel here is a *correlation* kernel, written rows top to bottom, as the
lab's filters are: ``A[y, x] = sum_ij X[y + i, x + j] * w[i, j]``.  So
``sobel-x`` (``-1 0 1`` in each row) responds where brightness rises to the
right.  ``convcli convolve --flip`` turns any of them into a true convolution.
Kernels given by file or inline are read by :mod:`convcli.io.kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcli.errors import KernelError


@dataclass(frozen=True)
class Filter:
    """A kernel with a name and a one-line description.

    ``kernel`` is stored as a read-only float64 copy, shape ``(Fh, Fw)``, or
    ``(C, Fh, Fw)`` for a kernel over C input channels (from a ``.npy`` file).
    Two filters are equal when name, description and kernel values agree.
    """

    name: str
    kernel: np.ndarray
    description: str

    def __post_init__(self) -> None:
        kernel = np.array(self.kernel, dtype=np.float64)  # a private copy
        if kernel.ndim not in (2, 3) or 0 in kernel.shape:
            raise KernelError(
                f"kernel '{self.name}' must be a non-empty (Fh, Fw) or (C, Fh, Fw) array; got shape {kernel.shape}"
            )
        kernel.setflags(write=False)
        object.__setattr__(self, "kernel", kernel)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Filter):
            return NotImplemented
        return (
            (self.name, self.description) == (other.name, other.description)
            and self.kernel.shape == other.kernel.shape
            and bool(np.array_equal(self.kernel, other.kernel))
        )

    def __hash__(self) -> int:
        return hash((self.name, self.description, self.kernel.shape, self.kernel.tobytes()))

    @property
    def shape(self) -> tuple[int, int]:
        """``(Fh, Fw)``, the window (also for a ``(C, Fh, Fw)`` kernel)."""
        return self.kernel.shape[-2:]  # type: ignore[return-value]

    @property
    def channels(self) -> "int | None":
        """``C`` for a ``(C, Fh, Fw)`` kernel, None for a 2-D one."""
        return int(self.kernel.shape[0]) if self.kernel.ndim == 3 else None


# ----------------------------------------------------------------------------- the library


def _rows(text: str) -> np.ndarray:
    """``"1 2 1 / 0 0 0"`` -> a 2-D array (only for writing the table below)."""
    return np.array([[float(v) for v in row.split()] for row in text.split("/")])


def _compass(top_row: str, count: int) -> np.ndarray:
    """A Kirsch-style kernel: the 8 border cells of a 3x3, rotated ``count`` steps clockwise."""
    ring = [float(v) for v in top_row.split()] + [-3.0] * 5  # clockwise from top-left
    ring = ring[-count:] + ring[:-count] if count else ring
    cells = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]
    out = np.zeros((3, 3))
    for (i, j), value in zip(cells, ring):
        out[i, j] = value
    return out


_IDENTITY = _rows("0 0 0 / 0 1 0 / 0 0 0")
_BOX = np.ones((3, 3))
_BINOMIAL3 = np.array([1.0, 2.0, 1.0])
_BINOMIAL5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
_SOBEL_X = _rows("-1 0 1 / -2 0 2 / -1 0 1")
_PREWITT_X = _rows("-1 0 1 / -1 0 1 / -1 0 1")
_SCHARR_X = _rows("-3 0 3 / -10 0 10 / -3 0 3")

_TABLE = [
    # the issue-3 table, in its order
    ("identity", _IDENTITY, "Copies the image (a 1 in the centre)."),
    ("edge-h", _rows("1 1 1 / 0 0 0 / -1 -1 -1"),
     "Horizontal edges: positive where the row above is brighter than the row below (the lab's w1)."),
    ("edge-v", _rows("1 0 -1 / 1 0 -1 / 1 0 -1"),
     "Vertical edges: positive where the column on the left is brighter than the one on the right."),
    ("box", _BOX, "Sum of the 3x3 neighbourhood (the lab's w2): blurs and brightens 9 times."),
    ("blur", _BOX / 9.0, "Mean of the 3x3 neighbourhood: blurs, keeps the brightness."),
    ("sharpen", 2.0 * _IDENTITY - _BOX / 9.0, "2 x identity - blur (the lab's third filter): sharpens."),
    ("gaussian", np.outer(_BINOMIAL3, _BINOMIAL3) / 16.0, "3x3 Gaussian blur, [1 2 1]^T [1 2 1] / 16."),
    ("sobel-x", _SOBEL_X, "Sobel gradient: positive where brightness rises to the right."),
    ("sobel-y", _SOBEL_X.T, "Sobel gradient: positive where brightness rises downwards."),
    ("prewitt-x", _PREWITT_X, "Prewitt gradient: positive where brightness rises to the right."),
    ("prewitt-y", _PREWITT_X.T, "Prewitt gradient: positive where brightness rises downwards."),
    ("scharr-x", _SCHARR_X, "Scharr gradient (better rotation symmetry): brightness rising to the right."),
    ("scharr-y", _SCHARR_X.T, "Scharr gradient (better rotation symmetry): brightness rising downwards."),
    ("laplacian", _rows("0 1 0 / 1 -4 1 / 0 1 0"), "Laplacian (4-neighbour): responds to spots and thin lines."),
    ("laplacian-8", _rows("1 1 1 / 1 -8 1 / 1 1 1"), "Laplacian (8-neighbour): spots and lines in every direction."),
    ("emboss", _rows("-2 -1 0 / -1 1 1 / 0 1 2"), "Emboss: a relief lit from the top left."),
    # extras
    ("gaussian-5", np.outer(_BINOMIAL5, _BINOMIAL5) / 256.0, "5x5 Gaussian blur, [1 4 6 4 1]^T [1 4 6 4 1] / 256."),
    ("log", _rows("0 0 -1 0 0 / 0 -1 -2 -1 0 / -1 -2 16 -2 -1 / 0 -1 -2 -1 0 / 0 0 -1 0 0"),
     "5x5 Laplacian of Gaussian: bright blobs about 3 pixels wide, zero on flat areas."),
    ("roberts-x", _rows("1 0 / 0 -1"), "Roberts cross: diagonal differences (top-left minus bottom-right)."),
    ("roberts-y", _rows("0 1 / -1 0"), "Roberts cross: diagonal differences (top-right minus bottom-left)."),
    ("kirsch-n", _compass("5 5 5", 0), "Kirsch compass: edges with the bright side to the north."),
    ("kirsch-e", _compass("5 5 5", 2), "Kirsch compass: edges with the bright side to the east."),
    ("kirsch-s", _compass("5 5 5", 4), "Kirsch compass: edges with the bright side to the south."),
    ("kirsch-w", _compass("5 5 5", 6), "Kirsch compass: edges with the bright side to the west."),
    ("motion-blur", np.eye(5) / 5.0, "5x5 diagonal motion blur (mean along the main diagonal)."),
]

#: The named filters, in display order (the issue-3 table first, then extras).
FILTERS: dict[str, Filter] = {name: Filter(name, kernel, text) for name, kernel, text in _TABLE}


def get_filter(name: str) -> Filter:
    """The library filter called ``name``.

    Raises
    ------
    KernelError
        For an unknown name, suggesting the closest known names.
    """
    try:
        return FILTERS[name]
    except (KeyError, TypeError):
        pass
    import difflib

    close = difflib.get_close_matches(str(name).lower(), list(FILTERS), n=3, cutoff=0.6)
    hint = f"did you mean: {', '.join(close)}?" if close else "see 'convcli filters list' for the names"
    raise KernelError(f"unknown filter '{name}'; {hint}")


# ----------------------------------------------------------------------------- properties


def is_separable(kernel) -> bool:
    """True when ``kernel`` is an outer product ``u v^T`` (matrix rank <= 1 by SVD).

    The rank uses numpy's default tolerance, ``S.max() * max(Fh, Fw) * eps``.
    A separable kernel can be applied as a column pass then a row pass.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise KernelError(f"kernel must be 2-D; got shape {kernel.shape}")
    return int(np.linalg.matrix_rank(kernel)) <= 1


def is_zero_sum(kernel, *, rtol: float = 1e-9) -> bool:
    """True when the weights sum to 0 (up to ``rtol`` times the sum of their magnitudes).

    A zero-sum kernel gives 0 on flat regions: it detects change (edges, spots).
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    return bool(abs(kernel.sum()) <= rtol * max(float(np.abs(kernel).sum()), 1e-300))
