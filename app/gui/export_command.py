"""The ``decongan compare`` command equivalent to a window export, and the files it needs (no Qt here).

The window compares images held in memory: a ground truth registered and cropped in the Register
panel, restorations that exist nowhere on disk, a PSF built in the Deconvolve panel. So that the
command a report states reproduces that report's ``metrics.csv`` exactly, the export writes the images
exactly as they were evaluated (the comparison set's float32 columns on the evaluation grid, with their
calibration and provenance) and the consistency PSF into ``OUT/inputs/``, and the command reads them:

    OUT/inputs/lq/<field>.tif          the input as compared (after any crop)
    OUT/inputs/gt/<field>.tif          the ground truth as compared (after registration and crop)
    OUT/inputs/<method>/<field>.tif    each restoration as compared (provenance in the TIFF)
    OUT/inputs/psf.tif                 the PSF of the data-consistency maps, on the evaluation grid

The folder form (``--lq-dir``) serves one field and many alike: files are matched by name.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

INPUTS = "inputs"


@dataclass
class EquivalentCompare:
    """A ``decongan compare`` command line and the files it reads.

    Attributes
    ----------
    args : list of str
        The arguments after ``decongan``.
    files : list of (Path, ndarray, dict)
        Each file to write, its pixels and :func:`engine.io.write_tiff` keywords.
    notes : list of str
        Where the command cannot reproduce the export exactly (said in the report).
    """

    args: list[str]
    files: list[tuple[Path, np.ndarray, dict[str, Any]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The command line, shell-quoted (runnable as printed)."""
        text = shlex.join(["decongan", *self.args])
        return text + "".join(f"  # {note}" for note in self.notes)

    def write(self, cancel: Any = None) -> list[Path]:
        """Write the input files (atomically); ``cancel`` (engine.progress.CancelToken) is checked per file."""
        from decongan.engine.io import write_tiff
        from decongan.engine.progress import Cancelled

        written = []
        for path, data, options in self.files:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("export cancelled by the user")
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(write_tiff(path, data, **options))
        return written


def _line_argument(line: Any) -> list[str]:
    if isinstance(line, (tuple, list)) and len(line) == 2:
        (y0, x0), (y1, x1) = line
        return ["--line", ",".join(repr(float(v)) for v in (y0, x0, y1, x1))]
    return [] if line == "auto" else ["--line", "none"]


def equivalent_compare(evaluations: Sequence[Any], out: Path, *, psf: np.ndarray | None,
                       figure_options: dict[str, Any], formats: Sequence[str], dpi: int) -> EquivalentCompare:
    """The command (and its input files under ``out/inputs``) that recomputes ``evaluations``.

    Parameters
    ----------
    evaluations : sequence of engine.evaluate.compare.SetEvaluation
        What the export writes, the current field first.
    out : Path
        The export folder; the command writes its own results to ``out/rerun`` unless told otherwise.
    psf : ndarray or None
        The PSF of the data-consistency maps on the evaluation grid (None: the maps were not computed).
    figure_options : dict
        ``contrast``, ``cmap`` and ``line`` of the exported figure.
    formats, dpi
        Figure files of the export.
    """
    from decongan.engine.io import safe_stem
    from decongan.engine.outputs import safe_filename

    out = Path(out).absolute()
    inputs = out / INPUTS
    notes: list[str] = []
    files: list[tuple[Path, np.ndarray, dict[str, Any]]] = []
    methods: dict[str, Path] = {}
    has_gt = all(ev.cset.gt is not None for ev in evaluations)
    names = [[c.name for c in ev.cset.restored] for ev in evaluations]
    if any(n != names[0] for n in names) or any((ev.cset.gt is not None) != has_gt for ev in evaluations):
        notes.append("the fields were compared with different methods; the command compares the fields that have all of "
                     "the first field's")
    for ev in evaluations:
        cset = ev.cset
        stem = safe_filename(cset.field)
        if stem != cset.field:
            notes.append(f"field {cset.field!r} is named {stem!r} on disk, so its rows are named so")
        calibration = {"axes": cset.axes, "pixel_size_um": cset.pixel_size_um, "z_step_um": cset.z_step_um}
        files.append((inputs / "lq" / f"{stem}.tif", cset.lq.data, {**calibration,
                      "description": cset.lq.provenance.model_dump_json()}))
        if cset.gt is not None:
            files.append((inputs / "gt" / f"{stem}.tif", cset.gt.data, {**calibration,
                          "description": cset.gt.provenance.model_dump_json()}))
        for col in cset.restored:
            folder = methods.setdefault(col.name, inputs / safe_stem(col.name))
            files.append((folder / f"{stem}.tif", col.data, {**calibration,
                          "description": col.provenance.model_dump_json()}))
    args = ["compare", "--lq-dir", str(inputs / "lq")]
    if has_gt:
        args += ["--gt-dir", str(inputs / "gt")]
    for name, folder in methods.items():
        args += ["--method", f"{name}={folder}"]
    if psf is not None:
        files.append((inputs / "psf.tif", np.asarray(psf, dtype=np.float32),
                      {"pixel_size_um": evaluations[0].cset.pixel_size_um}))
        args += ["--psf", str(inputs / "psf.tif")]
    else:
        args += ["--consistency", "off"]
    args += ["--contrast", figure_options.get("contrast", "shared"), "--cmap", figure_options.get("cmap", "gray"),
             *_line_argument(figure_options.get("line", "auto")),
             "--formats", ",".join(formats), "--dpi", str(dpi), "--out", str(out / "rerun")]
    return EquivalentCompare(args, files, list(dict.fromkeys(notes)))


__all__ = ["INPUTS", "EquivalentCompare", "equivalent_compare"]
