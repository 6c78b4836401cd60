"""Making text that came from a student's code harmless to show: in a terminal, a CI log or a report.

- :func:`clean_text` drops terminal escape sequences (colours, clear-screen,
  cursor moves, window titles, hyperlinks), control characters, carriage
  returns, Unicode direction overrides and line separators, keeping the rest.
- :class:`BoundedLines` takes a byte stream in chunks of any size (with or
  without newlines) and keeps at most ``lines`` lines of at most ``width``
  characters, cleaned and prefixed with ``"student | "``, counting what it
  leaves out.  Its memory never exceeds about ``lines * width`` characters,
  however much arrives, and no kept line can start like convcli's own output
  or a CI command (``::add-mask::``, ``##vso[``).
"""

from __future__ import annotations

import codecs
import re
from typing import Callable

PREFIX = "student | "

_ESCAPES = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?          # CSI: colours, cursor moves, clear screen
    | \x9b[0-?]*[ -/]*[@-~]?            # the same with the 8-bit introducer
    | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC: titles, hyperlinks, clipboard
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?         # DCS, SOS, PM, APC strings
    | \x1b[\x20-\x2f]*[\x30-\x7e]?      # any other escape
    """,
    re.VERBOSE,
)
#: C0 and C1 controls, DEL, zero-width and direction marks, line and paragraph separators, BOM.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def clean_text(text: str) -> str:
    """``text`` without escape sequences and control characters (a tab becomes a space).

    >>> clean_text("\\x1b[2J\\x1b[31mPASSED\\x1b[0m\\r")
    'PASSED'
    """
    return _CONTROLS.sub("", _ESCAPES.sub("", text).replace("\t", " "))


class BoundedLines:
    """A student's output, cut into at most ``lines`` cleaned lines of at most ``width`` characters.

    Feed it bytes with :meth:`feed` and call :meth:`close` at the end of the
    stream.  ``on_line`` (optional) gets each kept line as it completes, e.g. to
    pass it on to a log.  :attr:`kept` holds the kept lines (prefixed),
    :attr:`dropped_lines` counts the lines left out once ``lines`` were kept,
    :attr:`cut_lines` the lines cut at ``width``.
    """

    def __init__(self, lines: int = 200, width: int = 500, on_line: "Callable[[str], None] | None" = None) -> None:
        self.lines, self.width, self.on_line = lines, width, on_line
        self.kept: "list[str]" = []
        self.dropped_lines = self.cut_lines = self.bytes_seen = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial: "list[str]" = []  # pieces of the current line, never more than ``width`` + a few characters
        self._partial_len = 0
        self._cut = self._tail = False

    def feed(self, data: bytes) -> None:
        self.bytes_seen += len(data)
        if len(self.kept) >= self.lines:  # full: only count (the line in progress, if any, is counted at its end)
            self.dropped_lines += data.count(b"\n")
            self._tail = not data.endswith(b"\n")
            return
        text = self._decoder.decode(data)
        *complete, rest = text.split("\n")
        for piece in complete:
            self._add(piece)
            self._end_line()
        self._add(rest)
        self._tail = bool(rest) and len(self.kept) >= self.lines  # a line begun after the last one kept

    def close(self) -> None:
        """The end of the stream: a last line without a newline counts too."""
        if len(self.kept) < self.lines:
            self._add(self._decoder.decode(b"", final=True))
        if self._partial_len or self._cut or self._tail:
            self._tail = False
            self._end_line()

    @property
    def hidden_summary(self) -> str:
        """``"[1,234 more lines not shown; 5 lines cut at 500 characters]"``, or ``""``."""
        parts = []
        if self.dropped_lines:
            parts.append(f"{self.dropped_lines:,} more line{'s' if self.dropped_lines != 1 else ''} not shown")
        if self.cut_lines:
            parts.append(f"{self.cut_lines:,} line{'s' if self.cut_lines != 1 else ''} cut at {self.width:,} characters")
        return f"[{'; '.join(parts)}]" if parts else ""

    def _add(self, piece: str) -> None:
        if len(self.kept) >= self.lines:
            return  # this line will only be counted
        # keep some room past ``width``: escape sequences are removed before cutting
        room = 4 * self.width + 64 - self._partial_len
        if len(piece) > room:
            piece, self._cut = piece[: max(room, 0)], True
        if piece:
            self._partial.append(piece)
            self._partial_len += len(piece)

    def _end_line(self) -> None:
        raw, cut = "".join(self._partial), self._cut
        self._partial, self._partial_len, self._cut = [], 0, False
        if len(self.kept) >= self.lines:
            self.dropped_lines += 1
            return
        line = clean_text(raw)
        if len(line) > self.width or cut:
            line, self.cut_lines = line[: self.width - 1] + "\u2026", self.cut_lines + 1
        line = PREFIX + line
        self.kept.append(line)
        if self.on_line is not None:
            self.on_line(line)
