"""Reading a checked file as a course hands it in: a ``.py`` file or a Jupyter notebook.

:func:`read_source` turns either into a :class:`Source`: chunks of code, each
placed at its line in one numbering (a notebook's code cells follow one
another; IPython magics and shell lines, ``%...`` and ``!...``, become blank
lines), and a way back from that numbering to what a student sees
(:meth:`Source.where`: ``"line 12"`` or ``"cell 4, line 2"``).

:func:`scan` reads the code without running it: which functions and classes
(with their parameter names) the top level defines.  It is what ``--api auto``
looks at, in the parent, before anything of the file runs.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from convcli.errors import ImplementationError

#: The largest file read (a notebook with embedded pictures can be large; the code is not).
MAX_BYTES = 50 * 2**20
SUFFIXES = (".py", ".ipynb")
_MAGIC = re.compile(r"^\s*[%!]")


@dataclass
class Source:
    """The code of a checked file, ready for the child: ``chunks`` of ``{"source", "line"}``."""

    path: Path
    chunks: "list[dict]"
    notebook: bool = False
    #: for a notebook: (first line in the joined numbering, cell number) of each code cell
    cells: "list[tuple[int, int]]" = field(default_factory=list)

    def line_text(self, line: int) -> str:
        """The text of a line in the joined numbering (stripped, at most 100 characters)."""
        for chunk in reversed(self.chunks):
            if chunk["line"] < line:
                lines = chunk["source"].splitlines()
                index = line - chunk["line"] - 1
                text = lines[index].strip() if index < len(lines) else ""
                return text if len(text) <= 100 else text[:97] + "..."
        return ""

    def where(self, line: "int | None") -> str:
        """``"line 12"`` of a .py file, ``"cell 4, line 2"`` of a notebook."""
        if line is None:
            return ""
        if not self.notebook:
            return f"line {line}"
        first, number = max(((f, n) for f, n in self.cells if f < line), default=(0, 0))
        return f"cell {number}, line {line - first}"


def implementation_file(path: "str | os.PathLike") -> Path:
    """``path`` as a Path, if it names a ``.py`` or ``.ipynb`` file that exists."""
    give = "give the .py or .ipynb file with your functions"
    if not os.fspath(path):
        raise ImplementationError(f"the implementation file name is empty; {give}")
    path = Path(path)
    if path.is_dir():
        raise ImplementationError(f"implementation file '{path}' is a folder; {give}")
    if not path.exists():
        raise ImplementationError(f"implementation file '{path}' does not exist; {give}")
    if not path.is_file():
        raise ImplementationError(f"implementation file '{path}' is not a regular file; {give}")
    if path.suffix.lower() not in SUFFIXES:
        raise ImplementationError(f"implementation file '{path}' is not a .py or .ipynb file; {give}")
    return path


def read_source(path: "str | os.PathLike") -> Source:
    """The code of a ``.py`` file or of a notebook's code cells."""
    path = implementation_file(path)
    if path.stat().st_size > MAX_BYTES:
        raise ImplementationError(f"'{path}' is larger than {MAX_BYTES // 2**20} MiB; is it the right file?")
    raw = path.read_bytes()
    if path.suffix.lower() == ".py":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImplementationError(f"cannot read '{path}': it is not UTF-8 text (byte {exc.start})") from None
        return Source(path=path.resolve(), chunks=[{"source": text.replace("\x00", ""), "line": 0}])
    return _notebook(path, raw)


def _notebook(path: Path, raw: bytes) -> Source:
    try:
        document = json.loads(raw.decode("utf-8"))
        cells = document["cells"]
        if not isinstance(cells, list):
            raise TypeError
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise ImplementationError(
            f"cannot read '{path}' as a Jupyter notebook (expected JSON with a 'cells' list)"
        ) from None
    chunks, starts, line, number = [], [], 0, 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        text = cell.get("source", "")
        text = "".join(text) if isinstance(text, list) else str(text)
        lines = ["" if _MAGIC.match(piece) else piece for piece in text.splitlines()]
        chunks.append({"source": "\n".join(lines), "line": line})
        starts.append((line, number))
        line += len(lines) + 1
    if not chunks:
        raise ImplementationError(f"notebook '{path}' has no code cells")
    return Source(path=path.resolve(), chunks=chunks, notebook=True, cells=starts)


def syntax_problem(source: Source) -> "str | None":
    """Why a ``.py`` file cannot be parsed (``"SyntaxError at line 4: '(' was never closed: ..."``), or None.

    A notebook's cells are parsed one by one when it is loaded: a broken cell is skipped, not fatal.
    """
    if source.notebook:
        return None
    try:
        ast.parse(source.chunks[0]["source"])
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        code = (exc.text or "").strip()
        code = code if len(code) <= 100 else code[:97] + "..."
        return f"SyntaxError{where}: {exc.msg}" + (f": {code}" if code else "")
    except ValueError as exc:  # e.g. null bytes
        return f"SyntaxError: {exc}"
    return None


@dataclass
class Definitions:
    """Top-level functions (with parameter names) and classes (with their methods) of a file."""

    functions: "dict[str, list[str]]" = field(default_factory=dict)
    classes: "dict[str, list[str]]" = field(default_factory=dict)

    def names(self) -> "list[str]":
        return list(self.functions) + list(self.classes)


def scan(source: Source) -> Definitions:
    """What the code defines at its top level, read without running it (unparsable chunks are passed over)."""
    found = Definitions()
    for chunk in source.chunks:
        try:
            tree = ast.parse(chunk["source"])
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                found.functions[node.name] = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
            elif isinstance(node, ast.ClassDef):
                found.classes[node.name] = [
                    item.name for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                ]
    return found
