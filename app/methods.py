"""Restoration methods for comparisons and batches, built from the engine, a GAN run or the Fiji bridge.

The engine's orchestration (``engine.evaluate.batch``, ``engine.evaluate.compare``) takes restoration methods as plain
callables so that it never imports the Fiji bridge; this module is where the front end builds them:

* :func:`engine_rl_method` -- Richardson-Lucy / RL-TV with the engine (CPU/CUDA);
* :func:`fiji_rl_method` -- DeconvolutionLab2's RL through ``app.fiji`` (raises
  ``FijiUnavailable`` up front when no Fiji/ImageJ backend with the plugin can run);
* :func:`gan_method` -- a trained generator (``engine.learn.inference``), loaded once;
* :func:`baseline_methods` -- the classical baselines of a ``tuned.json`` (``engine.optics.classical``),
  refusing (or labelling as optimistic) a comparison of the fields they were tuned on.

Each returns an :class:`engine.evaluate.batch.MethodSpec` whose ``parameters`` hold everything that determines
the result (PSF description, iterations, the model weights' sha256), so a batch can tell when a
result must be recomputed.

PSFs: :class:`PsfSource` gives the PSF for an image -- a PSF file, or a Born & Wolf PSF computed for
the image's own pixel size (and z step for stacks) from the optics (NA, immersion index, emission
wavelength) by ``engine.optics.request.psf_for_grid`` (the one sizing rule of every door) and cached
per calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decongan.app.commands import CommandError

#: the command-line options for the engine's optics fields (the engine's messages say them in words)
OPTICS_FLAGS: dict[str, str] = {"na": "--na VALUE", "ni": "--ni VALUE", "wavelength_nm": "--wavelength-nm NM",
                                "pixel_nm": "--pixel-nm NM", "z_step_nm": "--z-step-nm NM"}


def optics_command_error(err: Exception) -> CommandError:
    """The engine's ``OpticsError`` for the command line: its message, plus the options for the unknown values.

    Parameters
    ----------
    err : engine.optics.request.OpticsError
        Its ``missing`` field names (possibly empty) choose the options named.

    Returns
    -------
    CommandError
    """
    missing = [OPTICS_FLAGS[n] for n in getattr(err, "missing", ()) if n in OPTICS_FLAGS]
    return CommandError(f"{err}; on the command line: {' '.join(missing)}" if missing else str(err))


@dataclass
class PsfSource:
    """Where a method's PSF comes from: a file, or Born & Wolf optics evaluated on each image's grid.

    Attributes
    ----------
    path : Path or None
        PSF image (2-D or 3-D), sampled on the images' grid.
    na, ni, wavelength_nm : float or None
        Born & Wolf optics (used when ``path`` is None).
    pixel_nm, z_step_nm : float or None
        Override the images' calibration for the Born & Wolf PSF.
    """

    path: Path | None = None
    na: float | None = None
    ni: float | None = None
    wavelength_nm: float | None = None
    pixel_nm: float | None = None
    z_step_nm: float | None = None
    _cache: dict[Any, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.path is None and None in (self.na, self.ni, self.wavelength_nm):
            raise CommandError("a PSF is needed: give --psf PSF.tif, or the optics --na, --ni and --wavelength-nm "
                               "for a Born & Wolf PSF")

    def describe(self) -> dict[str, Any]:
        """The parameters that determine the PSF (for provenance and batch hashes)."""
        if self.path is not None:
            from decongan.engine.evaluate.batch import sha256_file

            return {"psf_file": str(self.path), "psf_sha256": sha256_file(self.path)}
        from decongan.engine.optics.request import DEFAULT_PSF_ENERGY

        return {"psf_model": "born-wolf", "na": self.na, "ni": self.ni, "wavelength_nm": self.wavelength_nm,
                "pixel_nm": self.pixel_nm, "z_step_nm": self.z_step_nm,
                "psf_size_rule": f"psf_for_grid energy {DEFAULT_PSF_ENERGY:g}"}

    def label(self) -> str:
        if self.path is not None:
            return f"PSF {self.path.name}"
        return f"Born & Wolf NA {self.na:g}, ni {self.ni:g}, {self.wavelength_nm:g} nm"

    def optics_for(self, image: Any) -> Any:
        """The optics of ``image`` (``engine.optics.request.Optics``): the given values over its calibration.

        Raises ``CommandError`` naming the image when NA >= ni or a value is impossible.
        """
        from decongan.engine.optics.request import Optics, OpticsError

        try:
            return Optics.for_image(image, na=self.na, ni=self.ni, wavelength_nm=self.wavelength_nm,
                                    pixel_nm=self.pixel_nm, z_step_nm=self.z_step_nm)
        except OpticsError as err:
            raise optics_command_error(err) from None

    def for_image(self, image: Any) -> np.ndarray:
        """The PSF for ``image`` (a MicroscopyImage): the file's, or Born & Wolf on its grid (sum 1).

        Born & Wolf: ``engine.optics.request.psf_for_grid`` (the one sizing rule), cached per calibration.
        """
        if self.path is not None:
            if "file" not in self._cache:
                from decongan.engine.optics.psf import read_psf

                self._cache["file"] = read_psf(self.path).data
            return self._cache["file"]
        from decongan.engine.optics.request import OpticsError, psf_for_grid

        optics = self.optics_for(image)
        nz = image.n_z if "Z" in image.axes else None
        key = (optics.pixel_nm.value, nz, optics.z_step_nm.value if nz and nz > 1 else None, image.yx_shape)
        if key not in self._cache:
            try:
                self._cache[key] = psf_for_grid(optics, yx_shape=image.yx_shape, nz=nz)
            except OpticsError as err:
                raise optics_command_error(err) from None
        return self._cache[key]


def negative_input_error(err: Exception) -> CommandError:
    """The engine's ``NegativeImageError`` for the command line: its message (naming the file) and the option."""
    return CommandError(f"{err} (command line: --offset VALUE, or --offset auto)")


def engine_rl_method(psf: PsfSource, *, iterations: int | None = None, method: str | None = None,
                     tv_lambda: float | None = None, edges: str | None = None, device: str | None = None,
                     name: str | None = None, offset: float | str | None = None,
                     acceleration: str | None = None) -> Any:
    """Richardson-Lucy with the engine, as an ``engine.evaluate.batch.MethodSpec``.

    Unset options take ``engine.optics.request.DEFAULT_SETTINGS`` (the defaults of every door:
    10 iterations, padded edges, the input as first estimate). The provenance of each result holds
    the optics with their sources (``parameters["optics"]``) when the PSF is built from optics.
    ``offset`` (a number or "auto") is subtracted from each image first, as ``deconvolve --offset``
    does; without it an image with negative values is refused before RL, naming the file.
    """
    from dataclasses import replace

    from decongan.engine.evaluate.batch import MethodSpec
    from decongan.engine.optics.request import DEFAULT_SETTINGS

    given = {"iterations": iterations, "method": method, "tv_lambda": tv_lambda, "edges": edges, "device": device,
             "acceleration": acceleration}
    try:
        settings = replace(DEFAULT_SETTINGS, **{k: v for k, v in given.items() if v is not None})
    except ValueError as err:
        raise CommandError(str(err)) from None
    if settings.iterations < 1:
        raise CommandError(f"--iterations must be at least 1, got {settings.iterations}")
    rltv = settings.method == "rltv"
    engine = "engine, Biggs-Andrews" if settings.acceleration == "biggs" else "engine"
    label = name or (f"RL-TV {settings.iterations} it ({engine})" if rltv else f"RL {settings.iterations} it ({engine})")
    described = psf.describe()  # hashes a PSF file once, not once per image

    def run(image: Any) -> Any:
        from decongan.engine.optics.deconvolution import NegativeImageError, deconvolve_image

        try:
            result = deconvolve_image(image, psf.for_image(image), psf_source=psf.label(), offset=offset,
                                      **settings.as_options())
        except NegativeImageError as err:
            raise negative_input_error(err) from None
        result.provenance.parameters.update(described)
        if psf.path is None:
            result.provenance.parameters["optics"] = psf.optics_for(image).provenance()
        return result

    parameters = {"backend": "engine", "iterations": settings.iterations, "method": settings.method,
                  "edges": settings.edges, **({"tv_lambda": settings.tv_lambda} if rltv else {}),
                  **({"offset": offset} if offset is not None else {}),
                  **({"acceleration": settings.acceleration} if settings.acceleration != "none" else {}), **described}
    return MethodSpec(label, run, parameters)


#: the label of every baseline column tuned on fields that are also evaluated (--allow-optimistic)
OPTIMISTIC_LABEL = "optimistic: tuned on the evaluated fields"


def baseline_methods(tuned_path: str | Path, psf: PsfSource | None, *, evaluated: list[Path],
                     allow_optimistic: bool = False) -> tuple[list[Any], list[str]]:
    """The baselines of a ``tuned.json`` (``decongan tune``) as MethodSpecs, refusing peeking.

    Parameters
    ----------
    tuned_path : str or Path
        The file written by ``decongan tune``.
    psf : PsfSource or None
        PSF of the LQ system (needed when a baseline deconvolves).
    evaluated : list of Path
        The LQ files the comparison evaluates: any of them among the calibration files (same sha256)
        is refused, or with ``allow_optimistic`` every baseline column is labelled :data:`OPTIMISTIC_LABEL`.
    allow_optimistic : bool
        Label instead of refusing.

    Returns
    -------
    specs : list of MethodSpec
        One per baseline; ``parameters`` hold the baseline spec, how it was chosen and the tuned file's sha256.
    notes : list of str
        Lines for the report (the calibration fields, the optimistic label, a PSF that differs from tuning).
    """
    from decongan.engine.evaluate.batch import MethodSpec, sha256_file
    from decongan.engine.evaluate.tuning import SOURCES, TuningError, calibration_overlap, load_tuned

    tuned_path = Path(tuned_path)
    try:
        tuned = load_tuned(tuned_path)
    except TuningError as err:
        raise CommandError(f"--baselines {err}") from None
    overlap = calibration_overlap(tuned, evaluated)
    if overlap and not allow_optimistic:
        listed = "; ".join(f"{path} (calibration field {name})" for path, name in overlap[:5])
        raise CommandError(f"--baselines {tuned_path} was tuned on {len(overlap)} of the evaluated field(s): {listed}. "
                           "Baselines scored on the fields they were tuned on are flattered: evaluate other fields, "
                           "tune on other pairs (decongan tune), or pass --allow-optimistic to label every baseline "
                           f"column '{OPTIMISTIC_LABEL}'")
    needing = [b.label for b in tuned.baselines if b.spec.entry.needs_psf]
    if needing and psf is None:
        raise CommandError(f"--baselines {tuned_path}: {', '.join(needing)} deconvolve(s) and need the PSF of the LQ "
                           "system: --psf PSF.tif, or --na, --ni and --wavelength-nm")
    digest = sha256_file(tuned_path)
    notes = []
    if tuned.pairs:
        notes.append(f"baselines of {tuned_path} tuned by median {tuned.metric} on {len(tuned.pairs)} calibration "
                     f"pair(s): {', '.join(p.name for p in tuned.pairs)}")
    if overlap:
        notes.append(f"{OPTIMISTIC_LABEL}: {', '.join(str(p) for p, _ in overlap)} are calibration files of {tuned_path}")
    described = psf.describe() if (psf is not None and needing) else {}
    if needing and tuned.psf is not None and tuned.psf != described:
        notes.append(f"the baselines of {tuned_path} were tuned with another PSF ({tuned.psf}) than this comparison's")
    specs = []
    for baseline in tuned.baselines:
        label = baseline.label + (f" ({OPTIMISTIC_LABEL})" if overlap else "")
        tuning = {"file": str(tuned_path), "sha256": digest, "source": baseline.source, "how": SOURCES[baseline.source],
                  "metric": tuned.metric, "calibration": [p.name for p in tuned.pairs], "optimistic": bool(overlap)}
        parameters = {"backend": "engine", "baseline": baseline.spec.as_dict(), "tuning": tuning,
                      **(described if baseline.spec.entry.needs_psf else {})}
        specs.append(MethodSpec(label, _baseline_runner(baseline, psf, tuning, label, overlap), parameters))
    return specs, notes


def calibration_files(tuned_path: str | Path, files: list[Path]) -> list[tuple[Path, str]]:
    """The ``files`` that are calibration files of a ``tuned.json`` (same sha256), with the field names.

    Parameters
    ----------
    tuned_path : str or Path
        The file written by ``decongan tune``.
    files : list of Path
        LQ files a comparison would evaluate.

    Returns
    -------
    list of (Path, str)
    """
    from decongan.engine.evaluate.tuning import TuningError, calibration_overlap, load_tuned

    try:
        return calibration_overlap(load_tuned(tuned_path), files)
    except TuningError as err:
        raise CommandError(f"--baselines {err}") from None


def _baseline_runner(baseline: Any, psf: PsfSource | None, tuning: dict[str, Any], label: str,
                     overlap: list[Any]) -> Any:
    def run(image: Any) -> Any:
        from decongan.engine.evaluate.discrepancy import discrepancy_spec
        from decongan.engine.optics.classical import restore_image

        spec = baseline.spec
        kernel = psf.for_image(image) if (psf is not None and spec.entry.needs_psf) else None
        record = None
        if baseline.source == "discrepancy":
            spec, record = discrepancy_spec(spec, image, kernel)
        result = restore_image(spec, image, kernel, psf_source=psf.label() if kernel is not None else None)
        provenance = result.provenance
        provenance.method = label
        provenance.parameters["tuning"] = {**tuning, **({"discrepancy": record} if record else {})}
        if kernel is not None and psf is not None and psf.path is None:
            provenance.parameters["optics"] = psf.optics_for(image).provenance()
        if overlap:
            provenance.notes.append(f"{OPTIMISTIC_LABEL} (calibration files: {', '.join(str(p) for p, _ in overlap)})")
        return result

    return run


def fiji_rl_method(psf: PsfSource, *, iterations: int = 10, tv_lambda: float | None = None,
                   fiji_dir: str | None = None, name: str | None = None, check: bool = True,
                   offset: float | str | None = None) -> Any:
    """DeconvolutionLab2's RL (or RLTV with ``tv_lambda``) through the Fiji bridge.

    ``offset``: subtracted first (``engine.optics.deconvolution.subtract_offset``), as with the engine.

    Raises
    ------
    app.fiji.client.FijiUnavailable
        When ``check`` and no Fiji/ImageJ backend can run (the message says why and how to fix it).
    """
    from decongan.app.fiji import client as fiji_client
    from decongan.app.fiji import deconvolve as fiji_deconvolve
    from decongan.engine.evaluate.batch import MethodSpec

    if check:
        fiji_client.get_client(fiji_dir)  # raises FijiUnavailable with the reasons
    label = name or (f"RL {iterations} it (Fiji DL2)" if tv_lambda is None else f"RL-TV {iterations} it (Fiji DL2)")

    def run(image: Any) -> Any:
        from decongan.engine.optics.deconvolution import NegativeImageError

        try:
            return fiji_deconvolve.fiji_deconvolve_image(image, psf.for_image(image), iterations=iterations,
                                                         tv_lambda=tv_lambda, psf_source=psf.label(),
                                                         fiji_dir=fiji_dir, offset=offset)
        except NegativeImageError as err:
            raise negative_input_error(err) from None

    parameters = {"backend": "fiji", "iterations": iterations, "tv_lambda": tv_lambda,
                  **({"offset": offset} if offset is not None else {}), **psf.describe()}
    return MethodSpec(label, run, parameters)


def gan_method(run_dir: str | Path, *, which: str = "best", tile: int = 512, overlap: int = 64,
               device: str = "auto", name: str | None = None) -> Any:
    """A trained generator (a ``decongan train`` run folder, a model folder or a bioimage.io package) as a MethodSpec."""
    from decongan.engine.evaluate.batch import MethodSpec, sha256_file
    from decongan.engine.learn.bioimageio_run import is_bioimageio_source
    from decongan.engine.learn.checkpoint import RunError, generator_weights_path
    from decongan.engine.learn.inference import load_model

    if is_bioimageio_source(run_dir):
        return bioimageio_method(run_dir, tile=tile, device=device, name=name)
    run_dir = Path(run_dir)
    try:
        weights = generator_weights_path(run_dir, which)
        from decongan.engine.device import resolve_device

        model = load_model(run_dir, which=which, device=resolve_device(device))  # "auto" is not a torch device
    except (RunError, FileNotFoundError, ValueError) as err:
        raise CommandError(f"model {run_dir}: {err}") from err

    def run(image: Any) -> Any:
        from decongan.engine.learn.domain import check_domain
        from decongan.engine.learn.inference import predict_image

        warnings = check_domain(model, image).warnings  # before predicting; the result carries them
        restored, provenance = predict_image(model, image, tile=tile, overlap=overlap, device=device)
        if warnings:
            provenance.parameters["domain_warnings"] = list(warnings)
        return restored, provenance

    label = name or model.label
    parameters = {"backend": "gan", "run_dir": str(run_dir), "which": which, "weights_sha256": sha256_file(weights),
                  "tile": tile, "overlap": overlap}
    return MethodSpec(label, run, parameters)


def bioimageio_method(package: str | Path, *, tile: int = 512, device: str = "auto", name: str | None = None) -> Any:
    """A bioimage.io model package run on each LQ image (``engine.learn.bioimageio_run``) as a MethodSpec.

    The package is read and its weights loaded here, so an unsupported one stops the command before
    any image is read; its halo sets the tile overlap.
    """
    from decongan.engine.device import resolve_device
    from decongan.engine.evaluate.batch import MethodSpec
    from decongan.engine.learn.bioimageio_run import (
        BioimageioModelError,
        load_bioimageio_model,
        predict_bioimageio,
    )

    try:
        model = load_bioimageio_model(package, device=resolve_device(device))
    except (BioimageioModelError, ValueError) as err:
        raise CommandError(f"model {package}: {err}") from err

    def run(image: Any) -> Any:
        return predict_bioimageio(model, image, tile=tile)

    parameters = {"backend": "bioimageio", "package": str(package), "package_sha256": model.sha256,
                  "weight_format": model.weight_format, "tile": tile, "halo": model.halo}
    return MethodSpec(name or model.label, run, parameters)


def model_summary(run_dir: str | Path) -> dict[str, Any]:
    """The run configuration of a model folder (or a bioimage.io package's description) as a plain dict (for the report)."""
    from decongan.engine.learn.bioimageio_run import is_bioimageio_source
    from decongan.engine.learn.checkpoint import load_run_config

    if is_bioimageio_source(run_dir):
        from decongan.engine.learn.bioimageio_run import package_summary

        return package_summary(run_dir)

    config = load_run_config(run_dir)
    return {"run_dir": str(run_dir), "config": config.model_dump(mode="json")}
