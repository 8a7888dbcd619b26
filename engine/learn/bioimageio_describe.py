"""Read a bioimage.io package's description and refuse, before anything runs, what DeconGAN cannot run.

:func:`describe_bioimageio_model` applies the checks of :mod:`engine.learn.bioimageio_run` (weights,
image-to-image geometry) without loading the weights, so a form can show a package's name, pixel
size and refusal while the user chooses it; :func:`check_bioimageio_pixel_size` is a package's
domain check (a package records its pixel size, not its training statistics).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decongan.engine.errors import DeconganError
from decongan.engine.learn.bioimageio_export import ARCHITECTURE_SHA256, summary_text
from decongan.engine.learn.bioimageio_geometry import GeometryError, read_geometry
from decongan.engine.learn.domain import PIXEL_SIZE_RATIO, DomainCheck

#: file names that make a path a bioimage.io package
PACKAGE_SUFFIXES = (".zip",)
PACKAGE_YAML_NAMES = ("rdf.yaml", "bioimageio.yaml")
PIXEL_SIZE_TOLERANCE = 0.01


class BioimageioModelError(DeconganError, ValueError):
    """A bioimage.io package that DeconGAN cannot run (the message names the package and what is unsupported)."""


def is_bioimageio_source(path: str | Path) -> bool:
    """True for a ``.zip`` file or a file named ``rdf.yaml`` / ``bioimageio.yaml`` (``*.bioimageio.yaml``).

    Parameters
    ----------
    path : str or Path
        What a user gave as the model.

    Returns
    -------
    bool
    """
    p = Path(path)
    name = p.name.lower()
    return p.is_file() and (name.endswith(PACKAGE_SUFFIXES) or name in PACKAGE_YAML_NAMES
                            or name.endswith(".bioimageio.yaml"))


def _pick_weights(descr: Any, source: Path) -> str:
    from bioimageio.spec.model import v0_5

    weights = descr.weights
    present = [name for name, entry in weights if entry is not None]
    if weights.torchscript is not None:
        return "torchscript"
    state = weights.pytorch_state_dict
    if state is not None:
        arch = state.architecture
        ours = (isinstance(arch, v0_5.ArchitectureFromFileDescr) and arch.sha256 == ARCHITECTURE_SHA256) or (
            isinstance(arch, v0_5.ArchitectureFromLibraryDescr) and str(arch.import_from).split(".")[0] == "decongan")
        if ours:
            return "pytorch_state_dict"
        where = getattr(arch, "source", None) or getattr(arch, "import_from", "?")
        raise BioimageioModelError(
            f"{source}: has PyTorch state-dict weights whose architecture ({where}: {arch.callable}) is not one of "
            "DeconGAN's; state dicts run only with DeconGAN's own architectures (their code would have to be "
            "imported from the package). Ask for TorchScript weights of this model", path=source)
    raise BioimageioModelError(f"{source}: has weights {', '.join(present)}; DeconGAN runs TorchScript weights (and "
                               "PyTorch state dicts of its own architectures), not these", path=source)


@dataclass
class BioimageioDescription:
    """What a package declares, read and checked without loading its weights (for a window or a form).

    Attributes
    ----------
    source : Path
        The package file.
    descr : bioimageio.spec.model.v0_5.ModelDescr
        The description (0.4 converted to 0.5).
    weight_format : {"torchscript", "pytorch_state_dict"}
        The weights DeconGAN would run.
    min, step, halo, scale : int
        Input sizes ``min + n * step`` (px), halo per side (input px), output px per input px.
    pixel_size_um : float or None
        The input's declared pixel size (its y axis' scale in micrometres), um; None without a unit.
    """

    source: Path
    descr: Any
    weight_format: str
    min: int
    step: int
    halo: int
    scale: int
    pixel_size_um: float | None

    @property
    def name(self) -> str:
        """The package's name."""
        return str(self.descr.name)

    @property
    def description(self) -> str:
        """The package's one-paragraph description."""
        return str(self.descr.description or "")


def describe_bioimageio_model(source: str | Path) -> BioimageioDescription:
    """Read a package's description and refuse what DeconGAN cannot run, without loading the weights.

    The same checks as :func:`load_bioimageio_model` (which calls this), so a form can show the
    refusal before anything runs.

    Parameters
    ----------
    source : str or Path
        A ``.zip`` package or its ``rdf.yaml`` / ``bioimageio.yaml``.

    Returns
    -------
    BioimageioDescription

    Raises
    ------
    BioimageioModelError
        A missing file, an invalid description, or a model DeconGAN does not run (the message says what).
    """
    from bioimageio.spec import load_description
    from bioimageio.spec.model import v0_5

    path = Path(source)
    if not path.is_file():
        raise BioimageioModelError(f"{path}: no such bioimage.io package", path=path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        descr = load_description(str(path), format_version="latest")
    if not isinstance(descr, v0_5.ModelDescr):
        kind = getattr(descr, "type", "?")
        raise BioimageioModelError(f"{path}: is not a valid bioimage.io model (type {kind}):\n{summary_text(descr)}",
                                   path=path)
    weight_format = _pick_weights(descr, path)
    try:
        minimum, step, halo, scale, pixel = read_geometry(descr, path)
    except GeometryError as err:
        raise BioimageioModelError(str(err), path=path) from err
    return BioimageioDescription(source=path, descr=descr, weight_format=weight_format, min=minimum, step=step,
                                 halo=halo, scale=scale, pixel_size_um=pixel)


def check_bioimageio_pixel_size(model: Any,
                                pixel_size_um: float | None) -> DomainCheck:
    """A package's domain check: the image's pixel size against the one its input axes declare.

    A package records no statistics of its training inputs, so only the pixel size is compared, with
    the same tolerated ratio as :func:`engine.learn.domain.check_domain` for a run folder.

    Parameters
    ----------
    model : BioimageioDescription or engine.learn.bioimageio_run.BioimageioModel
        The package (its ``pixel_size_um``, um, or None when its axes have no unit).
    pixel_size_um : float or None
        The image's lateral pixel size, um (None: unknown).

    Returns
    -------
    DomainCheck
        ``warnings`` when the ratio lies outside the tolerated range or one of the two sizes is
        unknown; ``notes`` saying what was not checked; ``measurements["pixel_size_ratio"]``.
    """
    declared = model.pixel_size_um
    result = DomainCheck(notes=["intensity not checked: a bioimage.io package records no statistics of its "
                                "training inputs"])
    low, high = PIXEL_SIZE_RATIO
    if declared and pixel_size_um:
        ratio = float(pixel_size_um) / float(declared)
        result.measurements["pixel_size_ratio"] = ratio
        if not low <= ratio <= high:
            result.warnings.append(
                f"pixel size {pixel_size_um:.4g} um is {ratio:.2f}x the package's declared pixel size "
                f"{declared:.4g} um (outside {low}-{high}x): the objects' size in pixels differs from what the "
                "model was made for")
        elif abs(ratio - 1.0) > PIXEL_SIZE_TOLERANCE:
            result.notes.append(f"pixel size {pixel_size_um:.4g} um differs from the package's {declared:.4g} um "
                                f"by {100 * abs(ratio - 1.0):.0f} %; run as it is (not resampled)")
    elif declared:
        result.warnings.append(f"the image states no pixel size, so it cannot be compared with the package's "
                               f"declared pixel size {declared:.4g} um; give the pixel size")
    else:
        result.notes.append("the package declares no pixel size (its axes have no micrometre scale), so the "
                            "image's pixel size was not compared with it")
    return result


__all__ = [
    "PACKAGE_SUFFIXES",
    "PACKAGE_YAML_NAMES",
    "PIXEL_SIZE_TOLERANCE",
    "BioimageioDescription",
    "BioimageioModelError",
    "check_bioimageio_pixel_size",
    "describe_bioimageio_model",
    "is_bioimageio_source",
]
