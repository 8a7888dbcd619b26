"""Output safety: refuse, before any computation, outputs that would be lost, clobbered or fail late.

Ground floor of the engine (no job module). Every front end (``decongan psf``,
``deconvolve``, ``register``, ``predict``, ``compare``, ``batch``, ``demo``) calls these checks
before it starts working, so a problem is reported with the file and the fix instead of as an
"unexpected OSError" after the whole computation:

* :func:`check_new_file` -- a destination file must not exist unless ``overwrite=True``;
* :func:`check_not_inside` -- an output folder must not be an input folder or lie inside one;
* :func:`check_results_folder` -- an output folder that already holds files is refused unless
  ``overwrite=True``;
* :func:`check_writable` -- the destination folder (or its nearest existing ancestor) must be
  writable (``os.access`` and a probe file) and have room for the estimated number of bytes;
* :func:`safe_filename` / :func:`check_distinct` -- Unicode-keeping file names, and a collision
  between two planned outputs is an error, never an overwrite;
* :func:`check_memory` -- an estimated allocation must fit in the available memory.

Atomic writes (:func:`atomic_path`, :func:`atomic_open`, :func:`write_text_atomic`,
:func:`write_json_atomic`): a reader never sees a half-written file, and a crash leaves the old one.
The data go to a temporary file in the destination folder, flushed and fsynced, then ``os.replace``
moves it over the destination (atomic on POSIX and Windows for same-volume renames).

All checks raise :class:`OutputError` (or :class:`MemoryEstimateError`), whose message names the
path and how to fix the problem. The caller says how its user allows an overwrite
(``allow="pass --overwrite"`` on the command line, a checkbox in the window) and how it names
the output (``label="--out"``); the engine's defaults say it in words.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from decongan.engine.errors import DeconganError

GIB = 1024**3

#: characters that can never appear in a file name (POSIX: "/" and NUL; Windows adds the rest)
_ILLEGAL_POSIX = frozenset("/\0")
_ILLEGAL_WINDOWS = frozenset('<>:"\\|?*')


class OutputError(DeconganError, ValueError):
    """An output that cannot or must not be written; ``str(err)`` names the path and the fix."""


class MemoryEstimateError(DeconganError, ValueError):
    """An estimated allocation larger than the available memory; the message says what bounds it."""


# ---------------------------------------------------------------------------------------------
# files and folders
# ---------------------------------------------------------------------------------------------
def check_new_file(path: str | os.PathLike[str], *, overwrite: bool = False, label: str = "the output",
                   allow: str = "allow overwriting") -> Path:
    """Refuse to replace an existing file unless ``overwrite``; refuse a folder in its place.

    Parameters
    ----------
    path : path
        Destination file.
    overwrite : bool
        Replace an existing file (the user asked for it explicitly, e.g. ``--overwrite``).
    label : str
        How the user named this output (``"--out"``; used in the message).
    allow : str
        How the user allows replacing it (``"pass --overwrite"``).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputError
        ``path`` is a folder, or an existing file and ``overwrite`` is False.
    """
    dest = Path(path)
    if dest.is_dir():
        raise OutputError(f"{label} {dest} is a folder; give a file name", path=dest)
    if (dest.exists() or dest.is_symlink()) and not overwrite:
        raise OutputError(f"{label} {dest} exists; choose another name or {allow} to replace it", path=dest)
    return dest


def is_inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """True when ``path`` is ``folder`` or lies (after resolving symlinks) inside it.

    Parameters
    ----------
    path : str or os.PathLike
        A file or folder (need not exist).
    folder : str or os.PathLike
        The folder it might lie in.

    Returns
    -------
    bool
    """
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or f in p.parents


def check_not_inside(out_dir: str | os.PathLike[str], input_dirs: Iterable[str | os.PathLike[str] | None], *,
                     label: str = "the output folder") -> None:
    """Refuse an output folder that is an input folder or lies inside one.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The planned output folder (need not exist).
    input_dirs : iterable of str, os.PathLike or None
        Input folders; None entries and paths that are not existing folders are skipped.
    label : str
        How the output folder is named in the message.

    Raises
    ------
    OutputError
        Naming both folders.
    """
    for folder in input_dirs:
        if folder is None or not Path(folder).is_dir():
            continue
        if is_inside(out_dir, folder):
            where = "is the input folder" if Path(out_dir).resolve() == Path(folder).resolve() else \
                "lies inside the input folder"
            raise OutputError(f"{label} {out_dir} {where} {folder}; choose an output folder outside it "
                              "(inputs are never written)", path=out_dir)


def check_results_folder(out_dir: str | os.PathLike[str], *, overwrite: bool = False,
                         label: str = "the output folder", allow: str = "allow overwriting") -> Path:
    """Refuse an existing, non-empty output folder (earlier results) unless ``overwrite``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The planned output folder (a missing or empty one is accepted).
    overwrite : bool
        True when the user explicitly allowed replacing earlier results.
    label : str
        How the folder is named in the message.
    allow : str
        How the caller's user allows overwriting, in words (the end of "choose a new folder or ...").

    Returns
    -------
    Path
        ``out_dir`` as a Path (not created).

    Raises
    ------
    OutputError
        ``out_dir`` is a file, or a folder that already holds files and ``overwrite`` is False.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{label} {out} exists and is not a folder; choose a folder", path=out)
    if out.is_dir() and not overwrite and any(out.iterdir()):
        raise OutputError(f"{label} {out} already holds files (earlier results?); choose a new folder or {allow} "
                          "to replace them", path=out)
    return out


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: str | os.PathLike[str], *, need_bytes: int = 0, what: str = "the output") -> None:
    """Refuse a destination folder that cannot be written or lacks room for ``need_bytes``.

    The folder need not exist yet: its nearest existing ancestor is checked (the folder will be
    created there). Three checks: ``os.access`` (write + search), creating and removing a probe
    file (catches read-only mounts and root-squashed shares), ``shutil.disk_usage`` free bytes.

    Parameters
    ----------
    folder : path
        Folder that will receive the output(s).
    need_bytes : int
        Estimated size of everything that will be written there, bytes (0: no room check).
    what : str
        What will be written (used in the message).

    Raises
    ------
    OutputError
        Naming the folder and the fix.
    """
    target = _existing_ancestor(Path(folder))
    if not target.is_dir():
        raise OutputError(f"{target} is a file, so {what} cannot be written into {folder}; choose another folder",
                          path=target)
    hint = "choose a writable folder (e.g. in your home folder) or fix its permissions"
    if not os.access(target, os.W_OK | os.X_OK):
        raise OutputError(f"{target} is not writable, so {what} cannot be written there; {hint}", path=target)
    try:
        fd, probe = tempfile.mkstemp(prefix=".decongan-probe.", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"{target} is not writable ({err.strerror or err}), so {what} cannot be written "
                          f"there; {hint}", path=target) from None
    if need_bytes > 0:
        free = shutil.disk_usage(target).free
        if free < need_bytes:
            raise OutputError(f"{target} has {free / GIB:.2f} GiB free but {what} needs about "
                              f"{need_bytes / GIB:.2f} GiB; free some space or choose another folder", path=target)


# ---------------------------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------------------------
def safe_filename(name: str, *, windows: bool | None = None, default: str = "image") -> str:
    """``name`` made usable as one file name, keeping every Unicode letter.

    Only characters that no file name may hold are replaced by ``_``: ``/`` and NUL, control
    characters, and on Windows (``windows=None``: the running system) also ``<>:"\\|?*``;
    leading dots (hidden files) and spaces, and trailing dots and spaces, are removed.
    ``"Kern 日本"`` stays ``"Kern 日本"``.

    Parameters
    ----------
    name : str
        A label (file stem, method name ...).
    windows : bool, optional
        Apply the Windows rules (default: when running on Windows).
    default : str
        Returned when nothing usable is left.
    """
    win = sys.platform.startswith("win") if windows is None else windows
    illegal = _ILLEGAL_POSIX | _ILLEGAL_WINDOWS if win else _ILLEGAL_POSIX
    cleaned = "".join("_" if (ch in illegal or unicodedata.category(ch) == "Cc") else ch for ch in name)
    cleaned = cleaned.lstrip(". ").rstrip(". ")
    if cleaned in ("", ".", ".."):
        return default
    return cleaned


def _collision_key(path: str | os.PathLike[str]) -> str:
    # case-insensitive (macOS, Windows) and Unicode-normalising (macOS stores NFD) file systems
    return unicodedata.normalize("NFC", os.path.abspath(path)).casefold()


def check_distinct(planned: Iterable[tuple[str, str | os.PathLike[str]]], *, what: str = "outputs") -> None:
    """Refuse two sources that would be written to the same file.

    Parameters
    ----------
    planned : iterable of (source, destination)
        ``source`` describes what is written (an input file, a method name); ``destination`` is the
        planned output path. Names differing only in case or Unicode normalisation collide too (they
        are the same file on macOS and Windows).

    Raises
    ------
    OutputError
        Naming both sources and the shared destination.
    """
    seen: dict[str, tuple[str, str]] = {}
    for source, dest in planned:
        key = _collision_key(dest)
        if key in seen and seen[key][0] != str(source):
            first, first_dest = seen[key]
            raise OutputError(f"{first} and {source} would both be written to {first_dest}; one result would be "
                              f"lost -- rename one of them (two {what} must not share a file name)", path=dest)
        seen.setdefault(key, (str(source), str(dest)))


# ---------------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------------
def available_memory() -> tuple[int, str]:
    """Bytes of memory available to a new allocation, and where the number comes from.

    Linux: ``MemAvailable`` of ``/proc/meminfo``; elsewhere the physical memory
    (``os.sysconf('SC_PHYS_PAGES') * SC_PAGE_SIZE``). ``(0, "unknown")`` when neither is known.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE")), "physical memory"
    except (AttributeError, ValueError, OSError):
        return 0, "unknown"


def check_memory(need_bytes: int, *, what: str, fix: str) -> None:
    """Refuse an allocation of about ``need_bytes`` that does not fit in the available memory.

    Parameters
    ----------
    need_bytes : int
        Estimated peak memory of the step, bytes.
    what : str
        What needs it (e.g. ``"reading /data/a.tif (uint16, 100000 x 100000)"``).
    fix : str
        How to make it fit (crop, fewer planes, smaller size ...).

    Raises
    ------
    MemoryEstimateError
        ``"<what> needs about X GiB of memory, but only Y GiB is available (<bound>); <fix>"``.
    """
    available, bound = available_memory()
    if available <= 0 or need_bytes <= available:
        return
    raise MemoryEstimateError(f"{what} needs about {need_bytes / GIB:.1f} GiB of memory, but only "
                              f"{available / GIB:.1f} GiB is available ({bound}); {fix}", value=need_bytes)




# ---------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``destination``; on success move it into place.

    The temporary file keeps the destination's suffix, so libraries that pick a format from the
    extension (tifffile, matplotlib) behave the same. On an exception the temporary file is removed
    and the destination is untouched.
    """
    dest = Path(destination)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".partial{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        # mkstemp creates 0600 (and some writers, e.g. safetensors, replace the file with 0600 again):
        # outputs get the permissions of any new file
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(destination: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open`` replacement whose result appears at ``destination`` only when the block succeeds.

    An existing ``destination`` is replaced; callers that must not overwrite check first
    (:mod:`engine.outputs`).

    Parameters
    ----------
    destination : str or path-like
        The final file; its folder is created when missing.
    mode : str
        A writing mode of :func:`open` (``"w"``, ``"wb"``...).
    **kwargs
        Passed to :func:`open` (``encoding``, ``newline``...).

    Yields
    ------
    file object
        Open on a temporary file in the destination folder.
    """
    with atomic_path(destination) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_text_atomic(destination: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; return the destination path.

    Parameters
    ----------
    destination : str or path-like
        The file to write (replaced when it exists; its folder is created when missing).
    text : str
        Written as is, encoded as UTF-8 (platform newline translation applies).

    Returns
    -------
    Path
        ``destination``.
    """
    with atomic_open(destination, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(destination)


def write_json_atomic(destination: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically; return the destination path.

    Parameters
    ----------
    destination : str or path-like
        The file to write (replaced when it exists; its folder is created when missing).
    obj : object
        JSON-serialisable; other values (paths, numpy scalars...) are written as ``str(value)``, and
        non-finite floats (NaN, infinities; JSON has none) as ``null``.
    indent : int
        Spaces per indentation level; the file ends with a newline.

    Returns
    -------
    Path
        ``destination``.
    """
    text = json.dumps(_finite_json(obj), indent=indent, sort_keys=False, default=str, allow_nan=False)
    return write_text_atomic(destination, text + "\n")


def _finite_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) as None: JSON has no NaN, and strict readers refuse it."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_json(v) for v in obj]
    return obj


__all__ = [
    "MemoryEstimateError",
    "OutputError",
    "atomic_open",
    "atomic_path",
    "available_memory",
    "check_distinct",
    "check_memory",
    "check_new_file",
    "check_not_inside",
    "check_results_folder",
    "check_writable",
    "is_inside",
    "safe_filename",
    "write_json_atomic",
    "write_text_atomic",
]
