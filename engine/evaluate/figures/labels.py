"""Text that the installed fonts can draw: file names in Chinese, Japanese ... never become boxes.

Matplotlib draws a missing glyph as an empty box (tofu) and only warns. Before a figure is saved,
:func:`make_drawable` checks every text of the figure (titles, labels, legends, fixed tick labels)
against the fonts matplotlib would use, in their fallback order, and writes each character none of
them has as its code point in brackets (``细胞_01`` -> ``[7EC6 80DE]_01``). The mapping from the real
name to the label drawn is returned (and kept in ``CaptionedFigure.info["relabelled"]``) so that a
report can print both. Where a font with the characters is installed (e.g. Noto Sans CJK, listed by
``fc-list :lang=zh``), matplotlib's font fallback draws the real name and nothing is changed.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=1)
def _font_files() -> tuple[str, ...]:
    """Font files matplotlib's default sans-serif family falls back through (first match per name)."""
    from matplotlib import font_manager, rcParams

    families = [rcParams["font.family"]] if isinstance(rcParams["font.family"], str) else list(rcParams["font.family"])
    names: list[str] = []
    for family in families:
        names.extend(rcParams.get(f"font.{family}", [family]) if family in ("sans-serif", "serif", "monospace")
                     else [family])
    files: list[str] = []
    for name in [*names, "DejaVu Sans"]:
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=name), fallback_to_default=False)
        except ValueError:
            continue
        if path not in files:
            files.append(path)
    return tuple(files)


@functools.lru_cache(maxsize=4096)
def can_draw(char: str) -> bool:
    """Whether one of the fonts matplotlib falls back through has a glyph for ``char``.

    Parameters
    ----------
    char : str
        One character.

    Returns
    -------
    bool
        True for whitespace and control characters (nothing to draw).
    """
    from matplotlib.ft2font import FT2Font

    if char.isspace() or ord(char) < 32:
        return True
    return any(FT2Font(path).get_char_index(ord(char)) != 0 for path in _font_files())


def drawable(text: str) -> str:
    """``text`` with every run of characters no installed font can draw written as code points.

    Parameters
    ----------
    text : str
        A label (file name, method name ...).

    Returns
    -------
    str
        The same text when every character can be drawn; otherwise e.g. ``"[7EC6 80DE]_01"``.
    """
    out: list[str] = []
    run: list[str] = []
    for char in text:
        if can_draw(char):
            if run:
                out.append("[" + " ".join(f"{ord(c):04X}" for c in run) + "]")
                run = []
            out.append(char)
        else:
            run.append(char)
    if run:
        out.append("[" + " ".join(f"{ord(c):04X}" for c in run) + "]")
    return "".join(out)


def make_drawable(figure: Any) -> dict[str, str]:
    """Rewrite every text of a matplotlib figure that holds undrawable characters (module docstring).

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        Changed in place: text artists, legends and fixed tick labels.

    Returns
    -------
    dict of str to str
        Real text -> label drawn, for the texts that changed (empty when none did).
    """
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter

    changed: dict[str, str] = {}

    def fix(text: str) -> str:
        new = drawable(text)
        if new != text:
            changed[text] = new
        return new

    for artist in figure.findobj(Text):
        text = artist.get_text()
        if text and not text.isascii():
            artist.set_text(fix(text))
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, FixedFormatter):
                formatter.seq = [fix(t) if isinstance(t, str) and not t.isascii() else t for t in formatter.seq]
    return changed
