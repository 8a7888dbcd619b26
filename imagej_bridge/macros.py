"""Safe quoting of values and paths into ImageJ 1.x macro text.

Never build macro text by pasting raw strings: a quote, backslash or newline in a file name would
end the string literal and change the program. Use :func:`quote_string` / :func:`quote_path` for
macro string literals, :func:`format_number` for numbers and :func:`options_string` for the second
argument of ``run("Command", "key=value ...")``.

Facts (checked against ImageJ 1.53t's macro tokenizer, see tests/imagej_bridge/test_macros.py):

* string literals accept the escapes ``\\"``, ``\\'``, ``\\\\``, ``\\n``, ``\\t`` and ``\\r``;
  every other character, including non-ASCII text and other control characters, is taken
  literally (``\\u`` escapes are *not* supported, so none are produced);
* in ``run()`` options a value containing spaces must be written ``key=[value]``; a value that
  contains ``]`` cannot be written at all (ImageJ reads up to the first ``]``), so it is refused.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPTION_KEY = re.compile(r"^[a-z0-9_./\-]+$")


def quote_string(value: str) -> str:
    """Return ``value`` as a double-quoted ImageJ macro string literal that evaluates to ``value``.

    Examples
    --------
    >>> quote_string('say "hi"\\n')
    '"say \\\\"hi\\\\"\\\\n"'
    """
    if not isinstance(value, str):
        raise TypeError(f"quote_string expects a str, got {type(value).__name__}")
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def quote_path(path: str | os.PathLike[str]) -> str:
    """Return a file path as a macro string literal (quotes, backslashes, newlines and Unicode kept).

    Raises
    ------
    ValueError
        If the path contains a NUL character (no file system allows it).
    """
    text = os.fspath(path)
    if "\0" in text:
        raise ValueError(f"a path cannot contain a NUL character: {text!r}")
    return quote_string(text)


def format_number(value: float | int) -> str:
    """A number as macro source text (``repr`` precision, never locale-dependent, finite only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"ImageJ macros have no literal for {number}")
    text = repr(number)
    return text[:-2] if text.endswith(".0") else text


def macro_literal(value: Any) -> str:
    """Macro source text for a str, int, float or bool value."""
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, (bool, int, float)):
        return format_number(value)
    raise TypeError(f"no ImageJ macro literal for a value of type {type(value).__name__}")


def assignments(values: Mapping[str, Any]) -> str:
    """Macro statements ``name = literal;`` (one per line) that define ``values`` as variables."""
    lines = []
    for name, value in values.items():
        if not _IDENTIFIER.match(name):
            raise ValueError(f"{name!r} is not a valid ImageJ macro variable name")
        lines.append(f"{name} = {macro_literal(value)};")
    return "\n".join(lines) + ("\n" if lines else "")


def option_value(value: Any) -> str:
    """One value of a ``run()`` options string: numbers plain, text in ``[...]`` when it has spaces.

    Raises
    ------
    ValueError
        If the text contains ``]`` or a line break (ImageJ's option parser cannot read it back).
    """
    if isinstance(value, (bool, int, float)) and not isinstance(value, bool):
        return format_number(value)
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    if "]" in text or "\n" in text or "\r" in text:
        raise ValueError(f"an ImageJ option value cannot contain ']' or line breaks: {text!r}")
    if text == "" or any(ch.isspace() for ch in text) or "[" in text or "=" in text:
        return f"[{text}]"
    return text


def options_string(options: Mapping[str, Any]) -> str:
    """``run()`` options: ``key=value`` pairs; ``True`` gives a bare ``key`` (checkbox on), ``False``/None are left out.

    Keys are ImageJ's: the first word of a dialog field's label, lower case (e.g. ``sigma``,
    ``expected_transformation``).
    """
    parts = []
    for key, value in options.items():
        if not _OPTION_KEY.match(key):
            raise ValueError(f"{key!r} is not an ImageJ option key (lower case, no spaces)")
        if value is True:
            parts.append(key)
        elif value is False or value is None:
            continue
        else:
            parts.append(f"{key}={option_value(value)}")
    return " ".join(parts)


def run_command(command: str, options: Mapping[str, Any] | str | None = None) -> str:
    """The macro statement ``run("Command", "options");`` with everything quoted."""
    if options is None:
        return f"run({quote_string(command)});"
    text = options if isinstance(options, str) else options_string(options)
    return f"run({quote_string(command)}, {quote_string(text)});"
