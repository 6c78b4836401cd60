"""Kernels by name, file or inline matrix: :func:`load_kernel` and its parsers (numpy only).

``-k`` takes, in this order of lookup (:func:`load_kernel`):

1. a name from :data:`convcli.io.library.FILTERS`;
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
from pathlib import Path
from typing import Callable

import numpy as np

from convcli.errors import ImageFormatError, KernelError
from convcli.io import npyfiles
from convcli.io import pictures
from convcli.io.library import FILTERS, Filter, get_filter

#: Kernel file extensions read by :func:`load_kernel`.
KERNEL_FILE_TYPES = (".txt", ".csv", ".json", ".npy")
#: The largest text or JSON kernel file read (bytes).
MAX_TEXT_BYTES = 16 * 2**20


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
