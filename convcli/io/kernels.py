"""The named filter library and kernel parsing (numpy only).

Every kernel here is a *correlation* kernel, written rows top to bottom, as the
lab's filters are: ``A[y, x] = sum_ij X[y + i, x + j] * w[i, j]``.  So
``sobel-x`` (``-1 0 1`` in each row) responds where brightness rises to the
right.  ``convcli convolve --flip`` turns any of them into a true convolution.

``-k`` takes, in this order of lookup (:func:`load_kernel`):

1. a name from :data:`FILTERS`;
2. an existing file: ``.txt``/``.csv`` (rows of numbers separated by spaces or
   commas, ``#`` comments), ``.json`` (a nested list) or ``.npy`` (a 2-D array
   ``(Fh, Fw)``, or ``(C, Fh, Fw)``: one output channel of a conv layer, which
   sums over the C channels of a colour image);
3. an inline matrix such as ``"1,2,1;0,0,0;-1,-2,-1"`` (rows separated by
   ``;``, values by ``,`` or spaces), or the JSON form ``"[[1,2,1],[0,0,0],[-1,-2,-1]]"``.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from convcli.errors import ImageFormatError, KernelError
from convcli.io import npyfiles
from convcli.io import pictures

#: Kernel file extensions read by :func:`load_kernel`.
KERNEL_FILE_TYPES = (".txt", ".csv", ".json", ".npy")
#: The largest text or JSON kernel file read (bytes).
MAX_TEXT_BYTES = 16 * 2**20


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


# ----------------------------------------------------------------------------- parsing

_NAME_LIKE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MATRIX_CHARS = re.compile(r"^[0-9\s.,;eE+\-/]+$")
_FRACTION = re.compile(r"^([-+]?[0-9.eE+-]+)/([0-9.eE+-]+)$")


def load_kernel(spec: str, *, check_shape: Callable[[tuple[int, int]], None] | None = None) -> Filter:
    """A kernel from ``-k``: a filter name, a kernel file or an inline matrix.

    Parameters
    ----------
    spec : str
        ``"sobel-x"``, ``"kernels/ridge.txt"``, ``"1,2,1;0,0,0;-1,-2,-1"`` or
        ``"[[1,2,1],[0,0,0],[-1,-2,-1]]"``.  Numbers in the ``;`` form may be
        written as fractions (``1/9``).
    check_shape : callable, optional
        For a ``.npy`` file, called with the ``(Fh, Fw)`` of its header before
        its data is read, so that a kernel too large for the image is refused
        without reading a large file; it raises to refuse.  (Text and JSON
        files are at most :data:`MAX_TEXT_BYTES`; their shape is checked by the
        caller after loading, as for names and inline matrices.)

    Returns
    -------
    Filter
        Named after the filter, the file's stem, or ``"inline"``; its
        description says where the kernel came from.

    Raises
    ------
    KernelError
        Naming the file (or the inline text) and the row or value at fault:
        empty, ragged, non-numeric, NaN/inf, not 2-D; or an unknown name with
        the closest known names suggested.
    """
    spec = str(spec).strip()
    if spec in FILTERS:
        return FILTERS[spec]
    if not spec:
        raise KernelError("kernel is empty; give a filter name, a kernel file or a matrix like '1,0,-1;2,0,-2;1,0,-1'")
    path, kind = _path_kind(spec)
    if kind == "file":
        return _load_file(path, check_shape)
    if spec.startswith("["):  # the JSON form, as in a .json file
        return Filter("inline", _parse_json(spec, f"inline kernel '{spec}'"), f"Inline matrix '{spec}'.")
    if kind == "folder":
        raise KernelError(f"kernel '{spec}' is a folder; give a kernel file ({', '.join(KERNEL_FILE_TYPES)})")
    if kind == "other":
        raise KernelError(f"kernel '{spec}' is not a regular file (a FIFO, socket or device?); give a kernel file "
                          f"({', '.join(KERNEL_FILE_TYPES)})")
    looks_numeric = _MATRIX_CHARS.match(spec) is not None  # "1/9,1/9;..." has slashes but is no path
    if not looks_numeric and (path.suffix.lower() in KERNEL_FILE_TYPES or "/" in spec or "\\" in spec):
        raise KernelError(f"kernel file '{spec}' not found")
    if _NAME_LIKE.match(spec) and spec.lower() not in ("nan", "inf", "infinity"):
        get_filter(spec)  # raises with suggestions
    where = f"inline kernel '{spec}'"
    rows = []
    for i, row in enumerate(spec.split(";")):
        try:
            rows.append(_split_values(row))
        except KernelError as exc:
            raise KernelError(f"{where}, row {i + 1}: {exc}") from None
    kernel = _to_matrix(rows, where, [f"row {i + 1}" for i in range(len(rows))])
    return Filter("inline", kernel, f"Inline matrix '{spec}'.")


def _path_kind(spec: str) -> tuple[Path, str]:
    """``(path, kind)``: kind is "file", "folder", "other" (FIFO, device...) or "none" (nothing there).

    A name the system cannot look up (too long for a file name) is "none": it may be an inline matrix.
    """
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # "~user" for a user that does not exist
        raise KernelError(f"kernel file '{spec}' not found: there is no user '{spec[1:].split('/')[0]}'") from None
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):  # missing, name too long, NUL byte...
        return path, "none"
    return path, "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def _load_file(path: Path, check_shape=None) -> Filter:
    where = f"kernel file '{path}'"
    with path.open("rb") as handle:
        head = handle.read(6)
        size = os.fstat(handle.fileno()).st_size
    if path.suffix.lower() == ".npy" or head == b"\x93NUMPY":
        kernel = _load_npy(path, where, check_shape)
    else:
        if size > MAX_TEXT_BYTES:
            raise KernelError(f"{where} holds {size:,} bytes, more than the limit of {MAX_TEXT_BYTES:,} for a text "
                              "or JSON kernel; save large kernels with numpy.save (.npy)")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise KernelError(f"{where} is not a text, JSON or .npy file (it is not UTF-8 text)") from None
        if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
            kernel = _parse_json(text, where)
        else:
            kernel = _parse_text(text, where)
    return Filter(path.stem, kernel, f"Kernel file '{path}'.")


def _load_npy(path: Path, where: str, check_shape=None) -> np.ndarray:
    """A ``(Fh, Fw)`` or ``(C, Fh, Fw)`` ``.npy`` kernel: the header is checked (type, shape, size,
    ``check_shape`` with ``(Fh, Fw)``) before the data is read."""
    with path.open("rb") as handle:
        if handle.read(2) == b"PK":
            raise KernelError(f"{where} is an .npz archive; save one 2-D array with numpy.save")
        handle.seek(0)
        try:
            header = npyfiles.read_header(handle, where)
        except ImageFormatError as exc:
            message = str(exc)
            if "Python objects" in message:
                raise KernelError(f"{where} holds Python objects; convcli never loads pickles, save a float array") \
                    from None
            raise KernelError(message.replace("expected numbers (bool, int or float)", "expected a 2-D array of numbers")) \
                from None
        if len(header.shape) not in (2, 3):
            raise KernelError(
                f"{where} holds an array of shape {header.shape}; expected (Fh, Fw), or (C, Fh, Fw) for a kernel "
                "over the C channels of a colour image (with --color)"
            )
        limit = pictures.MAX_PIXELS  # a kernel may hold as many values as an image has pixels
        if limit is not None and math.prod(header.shape) > limit:
            raise KernelError(f"{where} holds a {'x'.join(map(str, header.shape))} kernel, more than the limit of "
                              f"{limit:,} values")
        try:
            npyfiles.check_data_size(header, os.fstat(handle.fileno()).st_size - header.offset, where)
        except ImageFormatError as exc:
            raise KernelError(str(exc)) from None
        if check_shape is not None:
            check_shape(tuple(header.shape[-2:]))
        array = np.fromfile(handle, dtype=header.dtype, count=math.prod(header.shape))
    array = array.reshape(header.shape, order=header.order)
    if array.ndim == 3:
        C, Fh, Fw = array.shape
        flat = _check_values(array.astype(np.float64).reshape(C * Fh, Fw), where)
        return flat.reshape(array.shape)
    return _check_values(array.astype(np.float64), where)


def _parse_json(text: str, where: str) -> np.ndarray:
    import json  # here: only JSON kernels need it

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KernelError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise KernelError(f"{where} is nested too deeply; expected a list of rows like [[1, 0, -1], [2, 0, -2]]") \
            from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise KernelError(f"{where} holds a number of more than 4300 digits; kernels need finite float numbers") \
            from None
    if not isinstance(data, list) or not data or not all(isinstance(row, list) for row in data):
        raise KernelError(f"{where}: expected a nested list of numbers like [[1, 0, -1], [2, 0, -2]]")
    rows = []
    for i, row in enumerate(data):
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise KernelError(f"{where}, row {i + 1}, value {j + 1}: {json.dumps(value)} is not a number")
        try:
            rows.append([float(v) for v in row])
        except OverflowError:
            j = next(j for j, v in enumerate(row) if abs(v) > 1e308)
            raise KernelError(f"{where}, row {i + 1}, value {j + 1}: a number too large for a float "
                              "(beyond 1.8e308); kernels need finite numbers") from None
    return _to_matrix(rows, where, [f"row {i + 1}" for i in range(len(rows))])


def _parse_text(text: str, where: str) -> np.ndarray:
    rows, labels = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        labels.append(f"row {len(rows) + 1} (line {number})")
        try:
            rows.append(_split_values(line))
        except KernelError as exc:
            raise KernelError(f"{where}, {labels[-1]}: {exc}") from None
    return _to_matrix(rows, where, labels)


def _split_values(line: str) -> list[float]:
    """``"1, 2 3"`` -> [1.0, 2.0, 3.0]; an empty field between commas is an error."""
    line = line.strip()
    if not line:
        return []
    values = []
    for field in line.split(","):
        words = field.split()
        if not words:
            raise KernelError(f"empty value between commas in '{line}'")
        values.extend(_number(word) for word in words)
    return values


def _number(word: str) -> float:
    fraction = _FRACTION.match(word)
    try:
        if fraction:
            return float(fraction.group(1)) / float(fraction.group(2))
        return float(word)
    except (ValueError, ZeroDivisionError):
        raise KernelError(f"'{word}' is not a number") from None


def _to_matrix(rows: list[list[float]], where: str, labels: list[str]) -> np.ndarray:
    """Check rows for raggedness, stack them and check the values."""
    if not rows or not any(rows):
        raise KernelError(f"{where} holds no numbers; expected rows like '1 0 -1'")
    width = len(rows[0])
    for row, label in zip(rows, labels):
        if len(row) != width:
            expected = f"{width} number" + ("s" if width != 1 else "")
            raise KernelError(f"{where}, {label}: expected {expected} (as in row 1), got {len(row)}")
    return _check_values(np.array(rows, dtype=np.float64), where, labels)


def _check_values(kernel: np.ndarray, where: str, labels: list[str] | None = None) -> np.ndarray:
    if kernel.size == 0:
        raise KernelError(f"{where} holds no numbers; expected a non-empty 2-D array")
    bad = np.argwhere(~np.isfinite(kernel))
    if len(bad):
        i, j = (int(v) for v in bad[0])
        row = labels[i] if labels else f"row {i + 1}"
        raise KernelError(f"{where}, {row}, value {j + 1}: {kernel[i, j]} is not finite; kernels need finite numbers")
    return kernel


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
