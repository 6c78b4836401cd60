"""The contact sheet: each input beside its maps, one row per image, with labelled columns.

numpy; Pillow is imported where the sheet is drawn.
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ParameterError
from convcli.maps.levels import to_uint8, upscale

#: The most rows a contact sheet shows; later images are left out with a note.
SHEET_MAX_ROWS = 64
#: The largest contact sheet (pixels): fewer rows are shown rather than a sheet viewers refuse to open.
SHEET_MAX_PIXELS = 50_000_000
#: The smallest cell (in pixels) of a contact sheet; small maps are upscaled to it.
SHEET_MIN_CELL = 96

_GAP = 6  # pixels between cells
_MARGIN = 10  # pixels around the whole sheet
_BACKGROUND = 255
_INK = 0
_FONT_PX = 14  # label size when the scalable default font is available
_MIN_FONT_PX = 9


def display_input(X: np.ndarray) -> np.ndarray:
    """How an input image is shown next to its maps: as it is, when it can be.

    An image whose values already lie in 0..255 (PNG, MNIST) is shown with the
    ``clip`` formula, so its grey levels are the file's; anything else (a float
    ``.npy`` in 0..1, negative values) is stretched with ``minmax``.

    Parameters
    ----------
    X : ndarray, shape (H, W)

    Returns
    -------
    ndarray of uint8, shape (H, W)
    """
    X = np.asarray(X)
    if X.size and X.min() >= 0 and 1 < X.max() <= 255:
        return to_uint8(X, "clip")
    return to_uint8(X, "minmax")


def cell_scale(shapes, min_cell: int = SHEET_MIN_CELL) -> "tuple[int, float]":
    """The cell size of a sheet and the scale of one of its rows.

    Every picture in a row (the input and its maps) is scaled by the same
    factor, so a pixel is as large in the input as in the maps next to it.
    A row whose largest side ``m`` is at most ``min_cell`` is enlarged by the
    whole number ``ceil(min_cell / m)`` (crisp nearest-neighbour pixels); a
    larger one is kept as it is up to ``2 * min_cell`` and shrunk to that
    beyond.  (:func:`contact_sheet` shrinks large rows further to the side of
    the small ones when a sheet has both.)

    Parameters
    ----------
    shapes : sequence of (H, W), the pictures of one row
    min_cell : int

    Returns
    -------
    (side, factor) : the row's own cell side in pixels and its scale factor.
    """
    m = max(max(int(h), int(w)) for h, w in shapes)
    if m <= min_cell:
        factor = -(-min_cell // m)
        return m * factor, float(factor)
    side = min(m, 2 * min_cell)
    return side, side / m


def _font(size: int):
    """Pillow's default font at ``size`` pixels (scalable since Pillow 10.1, bitmap before)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # old Pillow, or no FreeType
        return ImageFont.load_default()


def _fit_text(draw, text: str, width: int, size: int):
    """The largest font (down to a floor) at which ``text`` fits ``width``; else an ellipsized text."""
    for px in range(size, _MIN_FONT_PX - 1, -1):
        font = _font(px)
        if draw.textlength(text, font=font) <= width:
            return text, font
        if not hasattr(font, "size"):  # bitmap font: one size only
            break
    font = _font(_MIN_FONT_PX)
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…", font


def _caption(draw, text: str, width: int, size: int):
    """``text`` as one line, or two lines broken after a ``-``/``_``/``.``, in the largest font that fits.

    Returns ``(lines, font)``.  A name that fits neither way keeps its end
    (the index) and loses its middle: ``fashion…ubyte-3``.
    """
    for px in range(size, _MIN_FONT_PX - 1, -1):
        font = _font(px)
        if draw.textlength(text, font=font) <= width:
            return [text], font
        breaks = [i + 1 for i, c in enumerate(text[:-1]) if c in "-_. "]
        for cut in sorted(breaks, key=lambda i: abs(len(text) / 2 - i)):
            lines = [text[:cut], text[cut:]]
            if all(draw.textlength(line, font=font) <= width for line in lines):
                return lines, font
        if not hasattr(font, "size"):  # bitmap font: one size only
            break
    font = _font(_MIN_FONT_PX)
    head, tail = text[: len(text) // 2], text[len(text) // 2 :]
    while len(head) > 1 and draw.textlength(head + "…" + tail, font=font) > width:
        head = head[:-1]
        if len(tail) > 1 and draw.textlength(head + "…" + tail, font=font) > width:
            tail = tail[1:]
    return [head + "…" + tail], font


def _scaled(picture: np.ndarray, factor: float):
    """A Pillow image of ``picture`` scaled by ``factor``: nearest neighbour up, area average down."""
    from PIL import Image

    h, w = picture.shape[:2]
    longest = max(1, round(max(h, w) * factor))
    if factor >= 1:
        return Image.fromarray(upscale(picture, longest))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return Image.fromarray(picture).resize(size, Image.Resampling.BOX)


def contact_sheet(
    rows,
    columns,
    *,
    min_cell: int = SHEET_MIN_CELL,
    title: str | None = None,
    note: str | None = None,
) -> np.ndarray:
    """Lay out inputs and their activation maps as one labelled picture (grey, or RGB when a map is in colour).

    Parameters
    ----------
    rows : sequence of (label, input, maps)
        ``label`` is written under the input; ``input`` is a uint8 ``(H, W)``
        picture (see :func:`display_input`); ``maps`` is a sequence of uint8
        ``(H', W')`` pictures (or ``(H', W', 3)`` with ``--cmap``), one per
        column after the first.
    columns : sequence of str
        The filter names written above the map columns (the first column is
        labelled ``input``).
    min_cell : int
        The smallest cell side in pixels.  All cells have the same side: the
        largest of the rows' own sides (see :func:`cell_scale`), or of the
        enlarged rows' sides when there are any, large pictures shrinking to it.
    title : str, optional
        One line above the column labels (the settings, say).
    note : str, optional
        One line under the last row (e.g. "showing the first 64 of 1000 images").

    Returns
    -------
    ndarray of uint8, shape (height, width), or (height, width, 3) when any picture is RGB
        ``width = 2 * 10 + (len(columns) + 1) * side + len(columns) * 6``.
        Pictures are centred in their cells on a white background.
    """
    from PIL import Image, ImageDraw

    columns = [str(c) for c in columns]
    rows = list(rows)
    if not rows:
        raise ParameterError("a contact sheet needs at least one row; got none")
    for label, image, maps in rows:
        if len(maps) != len(columns):
            raise ParameterError(f"row {label!r} has {len(maps)} maps but the sheet has {len(columns)} filter columns")
    scales = [cell_scale([image.shape[:2]] + [m.shape[:2] for m in maps], min_cell) for _, image, maps in rows]
    small = [s for s, factor in scales if factor >= 1]
    side = max(small) if small else max(s for s, _ in scales)  # photos next to MNIST digits get the digits' cells
    scales = [(s, factor if s <= side else factor * side / s) for s, factor in scales]
    ncols = len(columns) + 1

    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    captions = [_caption(probe, str(label), side, _FONT_PX - 1) for label, _, _ in rows]
    label_h = _FONT_PX + 8
    line_h = _FONT_PX + 2
    caption_h = 4 + line_h * max(len(lines) for lines, _ in captions)
    title_h = label_h if title else 0
    note_h = label_h if note else 0
    width = 2 * _MARGIN + ncols * side + (ncols - 1) * _GAP
    row_h = side + caption_h  # the picture, then the input's name under it
    height = 2 * _MARGIN + title_h + label_h + len(rows) * row_h + (len(rows) - 1) * _GAP + note_h

    colour = any(np.ndim(p) == 3 for _, image, maps in rows for p in [image, *maps])
    sheet = Image.new("RGB" if colour else "L", (width, height), (_BACKGROUND,) * 3 if colour else _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    ink = (_INK,) * 3 if colour else _INK

    def x_of(col: int) -> int:
        return _MARGIN + col * (side + _GAP)

    def centred_text(text: str, left: int, top: int, span: int) -> None:
        text, font = _fit_text(probe, text, span, _FONT_PX)
        x = left + (span - draw.textlength(text, font=font)) / 2
        draw.text((x, top + 2), text, fill=ink, font=font)

    y = _MARGIN
    if title:
        text, font = _fit_text(probe, title, width - 2 * _MARGIN, _FONT_PX)
        draw.text((_MARGIN, y + 2), text, fill=ink, font=font)
        y += title_h
    for col, name in enumerate(["input"] + columns):
        centred_text(name, x_of(col), y, side)
    y += label_h

    for (label, image, maps), (_, factor), (lines, font) in zip(rows, scales, captions):
        for col, picture in enumerate([image] + list(maps)):
            h, w = picture.shape[:2]
            tile = _scaled(np.ascontiguousarray(picture, dtype=np.uint8), factor)
            sheet.paste(tile, (x_of(col) + (side - tile.width) // 2, y + (side - tile.height) // 2))
        for i, line in enumerate(lines):
            x = x_of(0) + (side - draw.textlength(line, font=font)) / 2
            draw.text((x, y + side + 3 + i * line_h), line, fill=ink, font=font)
        y += row_h + _GAP

    if note:
        text, font = _fit_text(probe, note, width - 2 * _MARGIN, _FONT_PX)
        draw.text((_MARGIN, y - _GAP + 2), text, fill=ink, font=font)
    return np.asarray(sheet)


def rows_that_fit(side: int, filters: int, *, limit: int = SHEET_MAX_PIXELS, rows: int = SHEET_MAX_ROWS) -> int:
    """How many rows (at most ``rows``) a sheet with cells of ``side`` pixels and ``filters`` map columns
    may have and stay within ``limit`` pixels; 0 when not even one row fits.

    An upper bound of what :func:`contact_sheet` draws (two-line captions, a
    title and a note), so the sheet of a run with hundreds of filters stays a
    picture that viewers open, drawn in bounded memory.
    """
    label_h, line_h = _FONT_PX + 8, _FONT_PX + 2
    width = 2 * _MARGIN + (filters + 1) * side + filters * _GAP
    row_h = side + 4 + 2 * line_h + _GAP
    fixed = 2 * _MARGIN + 3 * label_h
    return max(0, min(rows, (limit // width - fixed) // row_h))

