"""Safe quoting into ImageJ macros: exact expected text, then the real interpreter as the judge."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tifffile

from decongan.imagej_bridge.macros import (
    assignments,
    format_number,
    macro_literal,
    option_value,
    options_string,
    quote_path,
    quote_string,
    run_command,
)

TRICKY = [
    "",
    "plain",
    'say "hi"',
    "it's",
    "back\\slash\\",
    "C:\\Users\\Ana\\data\\img.tif",
    "two\nlines\r\nand\ttab",
    '"); run("Quit"); x=("',  # an injection attempt stays a string
    "Grüße, µm, 日本語, emoji 🔬",
    "control \x01\x0c\x7f chars",
    "\\\"\\n",  # escapes that must not be interpreted
]


def test_quote_string_escapes_exactly():
    assert quote_string("a") == '"a"'
    assert quote_string('a"b') == '"a\\"b"'
    assert quote_string("a\\b") == '"a\\\\b"'
    assert quote_string("a\nb\rc\td") == '"a\\nb\\rc\\td"'
    assert quote_string("é🔬") == '"é🔬"'  # non-ASCII stays literal (ImageJ has no \\u escape)
    with pytest.raises(TypeError):
        quote_string(3)  # type: ignore[arg-type]


def test_quote_path_refuses_nul_and_accepts_pathlike(tmp_path):
    assert quote_path(tmp_path / "a b.tif") == quote_string(str(tmp_path / "a b.tif"))
    with pytest.raises(ValueError, match="NUL"):
        quote_path("a\0b")


def test_numbers_are_locale_free_and_finite():
    assert format_number(3) == "3"
    assert format_number(2.0) == "2"
    assert format_number(0.1) == "0.1"
    assert format_number(1e-7) == "1e-07"
    assert format_number(True) == "true"
    with pytest.raises(ValueError):
        format_number(float("nan"))
    assert macro_literal(1.5) == "1.5" and macro_literal("x") == '"x"'
    with pytest.raises(TypeError):
        macro_literal([1])


def test_options_string():
    text = options_string({"sigma": 2, "scaled": True, "stack": False, "title": "my image", "path": "/a/b"})
    assert text == "sigma=2 scaled title=[my image] path=/a/b"
    assert option_value("") == "[]"
    assert option_value("a=b") == "[a=b]"
    with pytest.raises(ValueError, match=r"\]"):
        option_value("bad]value")
    with pytest.raises(ValueError, match="line breaks"):
        option_value("two\nlines")
    with pytest.raises(ValueError, match="option key"):
        options_string({"Bad Key": 1})


def test_assignments_and_run_command():
    assert assignments({"n": 3, "name": 'a"b'}) == 'n = 3;\nname = "a\\"b";\n'
    with pytest.raises(ValueError, match="variable name"):
        assignments({"1x": 1})
    assert run_command("Gaussian Blur...", {"sigma": 2}) == 'run("Gaussian Blur...", "sigma=2");'
    assert run_command("TurboReg ") == 'run("TurboReg ");'


# -- the real ImageJ interpreter decides -----------------------------------------------------------------

def test_quoted_strings_evaluate_to_themselves_in_imagej(ij1_client):
    macro = "".join(f"s{i} = {quote_string(text)};\n" for i, text in enumerate(TRICKY))
    separator = quote_string("\x1e")  # a character none of TRICKY contains
    macro += "return " + f" + {separator} + ".join(f"s{i}" for i in range(len(TRICKY))) + ";"
    result = ij1_client.run_macro(macro).result
    assert result.split("\x1e") == TRICKY


def test_assigned_variables_reach_imagej(ij1_client):
    values = {"count": 7, "ratio": 0.25, "label": 'x "y" \\z'}
    result = ij1_client.run_macro(assignments(values) + 'return "" + count + "|" + ratio + "|" + label;').result
    assert result == '7|0.25|x "y" \\z'


@pytest.mark.skipif(sys.platform == "win32", reason="file names with quotes/newlines are POSIX-only")
def test_paths_with_awkward_names_open_in_imagej(ij1_client, tmp_path):
    folder = tmp_path / "dir with space [x] ünï"
    folder.mkdir()
    data = np.arange(20, dtype=np.float32).reshape(4, 5)
    names = ['quote"s.tif', "back\\slash.tif", "new\nline.tif", "emoji🔬.tif", "it's.tif"]
    for name in names:
        path = folder / name
        tifffile.imwrite(path, data, imagej=True)
        exists = ij1_client.run_macro(f"return \"\" + File.exists({quote_path(path)});").result
        assert exists == "1", name
    path = folder / names[0]
    opened = ij1_client.run_macro(f'open({quote_path(path)}); rename("loaded");', outputs=["loaded"])
    np.testing.assert_array_equal(opened.images["loaded"].data, data)
