"""The engine stays a codebase of small modules with one job: none over 700 lines, and none over 500
unless its module docstring says why, under a heading containing "Why this module is long".

Allow-lists record what is *known* to break the rule today (files being edited by others when this
test was written), so the test passes now and fails on any NEW long module. Shrink them; never grow them.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import decongan.engine

HARD_LIMIT = 700
SOFT_LIMIT = 500
MARKER = "Why this module is long"

# modules (relative to engine/) over HARD_LIMIT while they are being extended; split them, then remove them here
KNOWN_OVER_HARD_LIMIT: frozenset[str] = frozenset()
# modules over SOFT_LIMIT whose docstring does not (yet) say why; add the reason or split, then remove them here
KNOWN_LONG_WITHOUT_REASON: frozenset[str] = frozenset({
    "evaluate/tuning.py", "optics/classical.py",
})


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _says_why(path: Path) -> bool:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return MARKER.lower() in doc.lower()


def size_problems(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """``(over the hard limit, over the soft limit without a reason)``: module path -> line count."""
    too_long, unexplained = {}, {}
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        lines = _line_count(path)
        if lines > HARD_LIMIT:
            too_long[name] = lines
        elif lines > SOFT_LIMIT and not _says_why(path):
            unexplained[name] = lines
    return too_long, unexplained


def _engine_root() -> Path:
    return Path(decongan.engine.__file__).parent


def test_no_engine_module_is_over_700_lines():
    too_long, _ = size_problems(_engine_root())
    new = {name: n for name, n in too_long.items() if name not in KNOWN_OVER_HARD_LIMIT}
    assert not new, f"engine modules over {HARD_LIMIT} lines (split them into modules with one job each): {new}"
    fixed = sorted(KNOWN_OVER_HARD_LIMIT - set(too_long))
    if fixed:  # a warning, not a failure: the files are being finished in parallel
        warnings.warn(f"now at most {HARD_LIMIT} lines, remove from KNOWN_OVER_HARD_LIMIT: {fixed}", stacklevel=1)


def test_engine_modules_over_500_lines_say_why():
    _, unexplained = size_problems(_engine_root())
    new = {name: n for name, n in unexplained.items() if name not in KNOWN_LONG_WITHOUT_REASON}
    assert not new, (f"engine modules over {SOFT_LIMIT} lines without a '{MARKER}' paragraph in their "
                     f"docstring (split them, or say why they stay long): {new}")
    fixed = sorted(KNOWN_LONG_WITHOUT_REASON - set(unexplained))
    if fixed:
        warnings.warn(f"short or explained now, remove from KNOWN_LONG_WITHOUT_REASON: {fixed}", stacklevel=1)


def test_the_size_check_would_catch_a_long_module(tmp_path):
    """The checker itself, on a throw-away tree: 501 lines without a reason and 701 lines even with one
    are problems; 501 lines with the marker in the docstring, and 500 lines without, are not."""
    body = "x = 1\n"

    def module(name: str, n_lines: int, doc: str) -> None:
        head = f'"""{doc}"""\n'
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(head + body * (n_lines - 1), encoding="utf-8")

    module("short.py", 500, "Short.")
    module("unexplained.py", 501, "Long, and nobody says why.")
    module("explained.py", 501, "Long.\n\nWhy this module is long\n---\nIt must be.\n")
    module("sub/huge.py", 701, "Why this module is long: no excuse above 700.")
    code_only = tmp_path / "comment_only.py"  # the marker in a comment, not the docstring, does not count
    code_only.write_text('"""Long."""\n# Why this module is long\n' + body * 499, encoding="utf-8")
    assert size_problems(tmp_path) == ({"sub/huge.py": 701}, {"unexplained.py": 501, "comment_only.py": 501})
