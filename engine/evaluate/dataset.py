"""Folder comparisons: LQ, ground-truth and method folders matched by file name, then evaluated field by field.

Files are matched by their stem (:func:`decongan.engine.io.image_stem`, so ``a.ome.tif`` and ``a.png``
are the same field); a restored TIFF brings back the provenance DeconGAN stored in it. Each field is
then assembled and measured by :mod:`decongan.engine.evaluate.compare`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from decongan.engine.evaluate.compare import (
    ComparisonError,
    SetEvaluation,
    build_comparison_set,
    evaluate_set,
)
from decongan.engine.io import ImageReadError, MicroscopyImage, image_stem, list_images, read_image
from decongan.engine.progress import Cancelled, CancelToken, Progress
from decongan.engine.provenance import Provenance


@dataclass
class FieldFiles:
    """The files of one field of view in a folder comparison."""

    name: str
    lq: Path
    gt: Path | None
    methods: dict[str, Path]


def _by_stem(folder: Path, role: str) -> dict[str, Path]:
    files = list_images(folder)
    out: dict[str, Path] = {}
    for path in files:
        stem = image_stem(path)
        if stem in out:
            raise ComparisonError(f"{role} folder {folder}: two files share the name {stem!r} "
                                  f"({out[stem].name}, {path.name})")
        out[stem] = path
    if not out:
        raise ComparisonError(f"{role} folder {folder} holds no images (TIFF, PNG, JPEG or BMP)")
    return out


def match_dataset(lq_dir: str | Path, *, gt_dir: str | Path | None = None,
                  method_dirs: Mapping[str, str | Path] | None = None) -> tuple[list[FieldFiles], list[str]]:
    """Match the files of an LQ folder with a GT folder and method folders by file name (stem).

    Parameters
    ----------
    lq_dir : str or Path
        Folder of low-quality input images.
    gt_dir : str or Path, optional
        Folder of ground-truth images of the same fields (same stems).
    method_dirs : mapping of str to str or Path, optional
        Method name -> folder of that method's restored images (same stems).

    Returns
    -------
    fields : list of FieldFiles
        Every LQ image that has a file in every given folder, sorted by name.
    skipped : list of str
        One line per LQ image left out, naming the folders that lack it.

    Raises
    ------
    ComparisonError
        A folder is missing or empty, or no LQ image has a partner in every folder.
    """
    lq = _by_stem(Path(lq_dir), "LQ")
    gt = _by_stem(Path(gt_dir), "GT") if gt_dir is not None else None
    methods = {name: _by_stem(Path(folder), f"method {name!r}") for name, folder in (method_dirs or {}).items()}
    fields: list[FieldFiles] = []
    skipped: list[str] = []
    for stem in sorted(lq):
        lacking = [f"GT ({gt_dir})"] if gt is not None and stem not in gt else []
        lacking += [f"{name} ({method_dirs[name]})" for name, files in methods.items()  # type: ignore[index]
                    if stem not in files]
        if lacking:
            skipped.append(f"{stem}: no file of that name in {', '.join(lacking)}")
            continue
        fields.append(FieldFiles(stem, lq[stem], gt[stem] if gt is not None else None,
                                 {name: files[stem] for name, files in methods.items()}))
    if not fields:
        raise ComparisonError(f"no LQ image in {lq_dir} has a file of the same name in every other folder: "
                              + "; ".join(skipped[:5]))
    return fields, skipped


def read_provenance(path: str | Path) -> Provenance | None:
    """The provenance DeconGAN stored in a TIFF's ImageJ Info / description, or None."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            texts = [(tif.imagej_metadata or {}).get("Info")] if tif.is_imagej else []
            texts.append(tif.pages[0].description if tif.pages else None)
    except (OSError, ValueError, tifffile.TiffFileError):
        return None
    for text in texts:
        if not text or "{" not in text:
            continue
        try:
            return Provenance.model_validate_json(text[text.index("{"):])
        except ValueError:
            continue
    return None


def read_restored(path: str | Path, *, name: str, pixel_size_um: float | None = None,
                  z_step_um: float | None = None) -> tuple[MicroscopyImage, Provenance]:
    """A restored image file and its provenance.

    Parameters
    ----------
    path : str or Path
        The restored image (TIFF, PNG, ...).
    name : str
        Method name used when the file carries no DeconGAN provenance.
    pixel_size_um, z_step_um : float, optional
        Calibration overrides in micrometres (else the file's own).

    Returns
    -------
    image : MicroscopyImage
    provenance : Provenance
        Read from the TIFF when DeconGAN wrote it, else ``method=name, backend="file"``; ``parameters["path"]``
        names the file either way.
    """
    image = read_image(path, pixel_size_um=pixel_size_um, z_step_um=z_step_um)
    provenance = read_provenance(path) if str(path).lower().endswith((".tif", ".tiff")) else None
    if provenance is None:
        provenance = Provenance(method=name, backend="file", parameters={"path": str(path)})
    else:
        provenance.parameters.setdefault("path", str(path))
    return image, provenance


def iter_evaluate_fields(
    fields: Sequence[FieldFiles],
    *,
    pixel_size_um: float | None = None,
    z_step_um: float | None = None,
    register_gt: str | None = None,
    consistency: bool = True,
    consistency_psf: Callable[[MicroscopyImage], np.ndarray | None] | None = None,
    no_reference: bool = True,
    cancel: CancelToken | None = None,
    resample: bool = False,
    computed: Mapping[str, Callable[[MicroscopyImage], object]] | None = None,
    split_half: bool | Mapping[str, Callable[[MicroscopyImage], object]] = False,
    ensembles: Sequence[Sequence[str]] = (),
) -> Generator[Progress, None, tuple[list[SetEvaluation], list[str]]]:
    """Read, assemble and evaluate every field; yields a Progress per field.

    Parameters
    ----------
    fields : sequence of FieldFiles
    pixel_size_um, z_step_um : float, optional
        Calibration overrides for every image.
    register_gt : str, optional
        Registration model for the ground truth (see :func:`build_comparison_set`).
    resample : bool
        Allow LQ and ground truth of different sizes (see :func:`build_comparison_set`).
    computed : mapping of str to callable, optional
        Column name -> ``method(lq_image) -> restoration`` run on each field's LQ input as read (e.g. the
        classical baselines), after the restored files; a method that raises a ValueError fails that field.
    consistency : bool
        Compute data-consistency maps.
    consistency_psf : callable, optional
        ``psf(lq_image) -> PSF on the evaluation grid`` (None result: identity forward model).
    split_half : bool or mapping of str to callable
        Also run each ``computed`` method (or, given a mapping, each of these column name -> method, e.g. the
        methods that wrote a batch's restored files) on the two photon halves of the input and attach its
        split-half trust map (:mod:`engine.evaluate.trust_maps`; column ``sh_flagged_fraction``). A map that
        cannot be made (e.g. no gain to estimate) is noted in the field's evaluation, not a failure.
    ensembles : sequence of sequences of str
        Groups of column names (several models, or one model's seeds) whose disagreement beyond noise is
        mapped (:func:`engine.evaluate.trust_maps.attach_ensemble_disagreement`; column ``ens_flagged_fraction``).
    cancel : CancelToken, optional

    Returns
    -------
    evaluations : list of SetEvaluation
    failures : list of str
        One line per field that could not be compared (file named, reason given); the others continue.
    """
    evaluations: list[SetEvaluation] = []
    failures: list[str] = []
    for i, files in enumerate(fields):
        if cancel is not None and cancel.cancelled:
            raise Cancelled("comparison cancelled by the user")
        try:
            lq = read_image(files.lq, pixel_size_um=pixel_size_um, z_step_um=z_step_um)
            gt = read_image(files.gt, pixel_size_um=pixel_size_um, z_step_um=z_step_um) if files.gt else None
            restored = {name: read_restored(path, name=name, pixel_size_um=pixel_size_um, z_step_um=z_step_um)
                        for name, path in files.methods.items()}
            for name, method in (computed or {}).items():
                restored[name] = method(lq)
            cset = build_comparison_set(files.name, lq, gt=gt, restored=restored, register_gt=register_gt,
                                        resample=resample)
            psf = consistency_psf(lq) if (consistency and consistency_psf is not None) else None
            evaluation = evaluate_set(cset, consistency_psf=psf, consistency=consistency, no_reference=no_reference)
            if split_half:
                methods = split_half if isinstance(split_half, Mapping) else (computed or {})
                _attach_split_half(evaluation, lq, methods)
            for group in ensembles:
                from decongan.engine.evaluate.trust_maps import attach_ensemble_disagreement

                attach_ensemble_disagreement(evaluation, group)
            evaluations.append(evaluation)
            message = f"{files.name}: compared"
        except (ComparisonError, ImageReadError, ValueError) as err:
            failures.append(f"{files.name}: {err}")
            message = f"{files.name}: FAILED"
        yield Progress(i + 1, len(fields), message)
    return evaluations, failures


def _attach_split_half(evaluation: SetEvaluation, lq: MicroscopyImage,
                       methods: Mapping[str, Callable[[MicroscopyImage], object]]) -> None:
    from decongan.engine.evaluate.trust_maps import attach_split_half, split_half_image

    for name, method in methods.items():
        try:
            attach_split_half(evaluation, name, split_half_image(lq, method, name=name))
        except ValueError as err:
            evaluation.notes.append(f"{name} split-half map: not computed ({err})")


__all__ = ["FieldFiles", "iter_evaluate_fields", "match_dataset", "read_provenance", "read_restored"]
