"""Export a trained generator as a bioimage.io model package (format 0.5), tested with bioimageio.core.

What the zip holds (``bioimageio.yaml`` plus the files it names):

* **weights**: ``weights.pt``, the generator's PyTorch state dict, built by ``decongan_architecture.py``
  (which imports the ``decongan`` package), and ``weights_torchscript.pt``, the TorchScript module of
  :func:`engine.learn.checkpoint.script_generator`, whose ``parent`` is the state dict. deepImageJ runs
  the TorchScript weights (it does not run state dicts); bioimage.io tools run either.
* **axes**: input ``batch, channel (1), y, x`` with ``unit: micrometer`` and the training pixel size
  as ``scale``, y and x ``concatenable`` (the model may be run block by block along them); y/x sizes ``min + n * step`` with ``step`` the generator's stride
  (:func:`engine.learn.inference.generator_multiple`) and ``min`` a multiple of it that leaves room for
  the halo. The output's y/x refer to the input's with ``scale / s`` (``s`` output px per input px) and
  carry a **halo**: the receptive-field radius the tiler uses (:func:`engine.learn.inference.receptive_field_radius`,
  the guard of :func:`engine.learn.tiling.overlap_for_radius`), rounded up to a multiple of the stride
  so that blocks cut by a consumer stay on the network's pooling grid (:mod:`engine.learn.bioimageio_geometry`). Generators with whole-input operations (S2's Fourier attention, the
  instance norm of S3/S4) have no finite receptive field; they get the guard of the tiler's automatic
  overlap for 512 px tiles and the README says that tiles then differ slightly from whole images.
* **normalisation**: ``"dataset"`` runs map the input with ``scale_linear`` (gain ``1/(high-low)``,
  offset ``-low/(high-low)`` with the LQ parameters) and the output back with ``scale_linear`` (gain
  ``high-low``, offset ``low`` with the HQ parameters): DeconGAN's normalisation exactly.
  ``"per_image"`` runs map the input with ``scale_range`` (the run's percentiles per sample over y, x),
  which is DeconGAN's map up to the ``eps`` of 1e-6 the spec adds to the span; the inverse (the
  *input's* own percentiles applied to the output) is not an operation of the spec, so the output
  stays in normalised units (0 = the input's low percentile, 1 = its high one) and both the output
  description and the README say so.
* **test tensors** (``.npy``, batch 1) and **sample tensors** (TIFF, y x) cut from the centre of the
  run's first validation field; the test output is DeconGAN's own eager output, so the package test
  checks the package against DeconGAN, not against itself.
* a 2:1 **cover** (LQ | output | GT), the **README** (:mod:`engine.learn.bioimageio_card`), licence,
  the seed paper's citation, authors and tags; ``config.decongan`` keeps the run facts.

:func:`export_bioimageio` writes the zip atomically after ``bioimageio.core``'s own test passed on it
(every weight format, batch 1 and 2, sizes ``min + n * step``); a failing test leaves no file.
"""

from __future__ import annotations

import gc
import hashlib
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.learn.bioimageio_geometry import PackageGeometry, exact_pixel_size, package_geometry

#: the package's architecture source: builds DeconGAN's generator for the state-dict weights
ARCHITECTURE_FILE = "decongan_architecture.py"
ARCHITECTURE_SOURCE = '''"""DeconGAN's generator for this package's pytorch_state_dict weights (needs the decongan package).

The TorchScript weights of the same package need nothing but PyTorch.
"""


def build_generator(model_name, **kwargs):
    from decongan.engine.learn.models import create_model

    return create_model(model_name, **kwargs)
'''
ARCHITECTURE_SHA256 = hashlib.sha256(ARCHITECTURE_SOURCE.encode()).hexdigest()
#: largest side of the test tensor (keeps the zip small)
TEST_SIDE = 256


class BioimageioExportError(DeconganError, ValueError):
    """The run cannot be exported as a bioimage.io package, or the package failed its test."""


@dataclass
class BioimageioExportResult:
    """What :func:`export_bioimageio` wrote and how the package test went.

    Attributes
    ----------
    path : Path
        The zip.
    geometry : PackageGeometry
        Declared sizes and halo.
    test_summary : str
        bioimageio.core's test summary (status and each check).
    size_bytes : int
        Size of the zip in bytes.
    notes : list of str
        What was assumed or could not be expressed.
    """

    path: Path
    geometry: PackageGeometry
    test_summary: str
    size_bytes: int
    notes: list[str] = field(default_factory=list)


def _validation_images(config: Any, sample_image: Path | None) -> tuple[Path, Path | None, str]:
    """LQ file (and its GT when found) to cut the test tensors from, and a sentence saying which."""
    from decongan.engine.io import image_stem, list_images

    if sample_image is not None:
        return Path(sample_image), None, f"the image {Path(sample_image).name} given at export (no ground truth)"
    data = config.data
    names, kind = (data.val_names, "validation") if data.val_names else (data.train_names, "training")
    if data.synthetic_lq is not None and not data.lq_dir:
        raise BioimageioExportError("the run synthesised its LQ images from the HQ ones, so it records no LQ image to "
                                    "cut the test tensors from; give a sample image (an LQ image like the inputs)")
    if not data.lq_dir or not names:
        raise BioimageioExportError("the run records no training or validation images to cut the test tensors from; "
                                    "give a sample image for them")
    lq_dir = Path(data.lq_dir)
    if not lq_dir.is_dir():
        raise BioimageioExportError(f"the run's LQ folder {lq_dir} is gone; the test tensors are cut from its "
                                    f"{kind} images: restore the folder or give a sample image", path=lq_dir)
    lq = {image_stem(p): p for p in list_images(lq_dir)}
    if names[0] not in lq:
        raise BioimageioExportError(f"{kind} image {names[0]!r} is not in {lq_dir}; give a sample image", path=lq_dir)
    hq_dir = Path(data.hq_dir) if data.hq_dir else None
    hq = {image_stem(p): p for p in list_images(hq_dir)} if hq_dir is not None and hq_dir.is_dir() else {}
    sentence = f"the centre of the {kind} field {names[0]!r} ({lq[names[0]].name})"
    if kind == "training":
        sentence += " (the run has no validation fields, so these numbers are not from unseen data)"
    return lq[names[0]], hq.get(names[0]), sentence


def _first_plane(path: Path, channel: int) -> np.ndarray:
    from decongan.engine.io import read_image

    image = read_image(path)
    for where, plane in image.iter_planes():
        if int(where.get("c", 0)) == channel:
            return np.asarray(plane, dtype=np.float32)
    raise BioimageioExportError(f"{path} has no channel {channel}", path=path)


def _normalization(config: Any, channel: int) -> tuple[Any, Any, str, list[str]]:
    """Package pre- and postprocessing (spec objects), the README sentence and notes."""
    from bioimageio.spec.model import v0_5

    norm = config.normalization
    yx = [v0_5.AxisId("y"), v0_5.AxisId("x")]
    if norm.mode == "per_image":
        pre = [v0_5.ScaleRangeDescr(kwargs=v0_5.ScaleRangeKwargs(
            axes=yx, min_percentile=norm.p_low, max_percentile=norm.p_high))]
        text = (f"per-image: `scale_range` maps each input's percentiles p{norm.p_low:g}..p{norm.p_high:g} to 0..1 "
                "(DeconGAN's map; the spec adds 1e-6 to the span). DeconGAN inverts the output with the input's own "
                "percentiles, which no postprocessing operation of the spec expresses, so the output is in "
                "normalised units: multiply by the input's percentile span and add its low percentile to get "
                "intensities (`decongan predict` on this package does not: it labels the output as normalised)")
        return pre, [], text, ["per-image normalisation: the package output is in normalised units (0 = the input's low "
                                 "percentile, 1 = its high one); its README says how to get intensities"]
    lq = norm.input_norm(np.zeros((1, 1), np.float32), channel=channel)
    hq = norm.output_norm(lq, channel=channel)
    pre = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=1.0 / lq.span, offset=-lq.low / lq.span))]
    post = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=hq.span, offset=hq.low))]
    text = (f"dataset: `scale_linear` maps the training inputs' percentiles (p{lq.p_low:g} = {lq.low:g}, "
            f"p{lq.p_high:g} = {lq.high:g}) to 0..1 and the output back with the targets' ({hq.low:g}, {hq.high:g}), "
            "exactly DeconGAN's normalisation; the output is in the training targets' intensity units, not clipped")
    return pre, post, text, []


def _eager_output(generator: Any, config: Any, plane: np.ndarray, channel: int) -> np.ndarray:
    """DeconGAN's own output on one plane (whole, no tiling), in the package's output units."""
    import torch

    norm = config.normalization
    in_norm = norm.input_norm(plane, channel=channel)
    with torch.no_grad():
        y_n = generator(torch.from_numpy(in_norm.normalize(plane))[None, None])[0, 0].numpy()
    if norm.mode == "per_image":
        return y_n.astype(np.float32)
    return norm.output_norm(in_norm, channel=channel).denormalize(y_n)


def _axes(geometry: PackageGeometry, pixel_size_um: float | None) -> tuple[list[Any], list[Any]]:
    from bioimageio.spec.model import v0_5

    unit = "micrometer" if pixel_size_um else None
    scale_in = exact_pixel_size(pixel_size_um, geometry) if pixel_size_um else 1.0
    scale_out = scale_in / geometry.scale
    size = v0_5.ParameterizedSize(min=geometry.min, step=geometry.step)
    inputs = [v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=[v0_5.Identifier("intensity")])]
    outputs = [v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=[v0_5.Identifier("restored")])]
    for name in ("y", "x"):
        axis_id = v0_5.AxisId(name)
        inputs.append(v0_5.SpaceInputAxis(id=axis_id, size=size, unit=unit, scale=scale_in, concatenable=True))
        outputs.append(v0_5.SpaceOutputAxisWithHalo(
            id=axis_id, unit=unit, scale=scale_out, halo=geometry.halo * geometry.scale,
            size=v0_5.SizeReference(tensor_id=v0_5.TensorId("input"), axis_id=axis_id)))
    return inputs, outputs


def _authors(authors: list[str] | None) -> list[Any]:
    import getpass

    from bioimageio.spec.model import v0_5

    names = [a for a in (authors or []) if a.strip()]
    if not names:
        try:
            names = [getpass.getuser()]
        except (KeyError, OSError):
            names = ["unknown"]
    return [v0_5.Author(name=n) for n in names]


def summary_text(descr: Any) -> str:
    """bioimageio's validation summary as plain text: status, then one line per check (errors included).

    Parameters
    ----------
    descr : ValidationSummary, ResourceDescr or InvalidDescr
        What ``bioimageio.core.test_model`` returned, or a tested description.

    Returns
    -------
    str
    """
    summary = getattr(descr, "validation_summary", descr)
    lines = [f"status: {summary.status}"]
    for detail in summary.details:
        lines.append(f"- {detail.status}: {detail.name}")
        lines += [f"    error {'.'.join(map(str, e.loc))}: {e.msg}" for e in detail.errors]
        lines += [f"    warning {'.'.join(map(str, w.loc))}: {w.msg}" for w in detail.warnings if w.severity >= 30]
    return "\n".join(lines)


def export_bioimageio(
    run_dir: str | Path,
    out: str | Path,
    *,
    which: str = "best",
    name: str | None = None,
    authors: list[str] | None = None,
    license: str = "CC-BY-4.0",
    channel: int = 0,
    sample_image: str | Path | None = None,
    torchscript_only: bool = False,
    test: bool = True,
) -> BioimageioExportResult:
    """Write a run's generator as a bioimage.io model zip (module doc) after testing it.

    Parameters
    ----------
    run_dir : str or Path
        A training run folder.
    out : str or Path
        The zip to write (replaced if it exists: the caller decides first).
    which : {"best", "last"}
        Which saved generator.
    name : str, optional
        Model name (default: ``DeconGAN <preset> <run folder name>``).
    authors : list of str, optional
        Author names (default: the user's login name).
    license : str
        SPDX licence id of the weights.
    channel : int
        Channel whose normalisation parameters the package uses, for runs trained on several channels.
    sample_image : str or Path, optional
        Image to cut the test tensors from instead of the run's first validation field (no cover GT).
    torchscript_only : bool
        Leave out the state-dict weights (and their architecture file): half the size, and what
        deepImageJ runs anyway; bioimage.io tools then run the TorchScript weights only.
    test : bool
        Run bioimageio.core's test on the zip before it is moved into place (``False`` only for tests
        of this function's own failure paths).

    Returns
    -------
    BioimageioExportResult

    Raises
    ------
    RunError
        The run folder or its weights are missing.
    BioimageioExportError
        No sample image, an image smaller than the minimum size, a channel the run lacks, or a package
        that fails bioimageio's test (the message holds the test summary; nothing is written).
    """
    import torch
    from bioimageio.spec import ValidationContext, save_bioimageio_package
    from bioimageio.spec.model import v0_5

    from decongan.engine.learn import bioimageio_card as card
    from decongan.engine.learn.checkpoint import (
        generator_kwargs,
        load_generator,
        read_best_metrics,
        script_generator,
    )
    from decongan.engine.outputs import atomic_path

    run_dir = Path(run_dir)
    generator, config = load_generator(run_dir, which=which, device="cpu")
    generator.eval()
    n_channels = config.normalization.n_channels
    if n_channels > 1 and not 0 <= channel < n_channels:
        raise BioimageioExportError(f"{run_dir}: the run has {n_channels} channels; channel {channel} does not exist",
                                    path=run_dir, value=channel)
    geometry = package_geometry(generator, scale=config.scale)
    notes: list[str] = []
    if n_channels > 1:
        notes.append(f"the run has {n_channels} channels with their own normalisation; the package uses channel {channel}'s")
    if not config.pixel_size_um:
        notes.append("the run records no pixel size: the package's axes have no unit and scale 1")
    else:
        notes.append(f"pixel size stored as {exact_pixel_size(config.pixel_size_um, geometry)!r} um, the nearest "
                     f"multiple of 2**-30 um to {config.pixel_size_um!r}, so bioimage.io's size arithmetic is exact")

    lq_path, gt_path, sample_source = _validation_images(config, Path(sample_image) if sample_image else None)
    lq_full = _first_plane(lq_path, channel)
    side = geometry.valid_size(min(TEST_SIDE, *lq_full.shape))
    if side is None:
        raise BioimageioExportError(f"{lq_path} is {lq_full.shape[0]} x {lq_full.shape[1]} px, smaller than the "
                                    f"package's minimum {geometry.min} px; give a larger sample image", path=lq_path)
    y0, x0 = (lq_full.shape[0] - side) // 2, (lq_full.shape[1] - side) // 2
    lq = np.ascontiguousarray(lq_full[y0:y0 + side, x0:x0 + side])
    s = geometry.scale
    gt = None
    if gt_path is not None:
        gt_full = _first_plane(gt_path, channel)
        if gt_full.shape == (lq_full.shape[0] * s, lq_full.shape[1] * s):
            gt = gt_full[y0 * s:(y0 + side) * s, x0 * s:(x0 + side) * s]
    output = _eager_output(generator, config, lq, channel)
    pre, post, norm_text, norm_notes = _normalization(config, channel)
    notes += norm_notes

    model_name, model_kwargs = config.generator_spec
    ctor_kwargs = generator_kwargs(model_name, model_kwargs, config.scale)
    scripted, _method, _difference = script_generator(generator, scale=config.scale)
    metrics = read_best_metrics(run_dir) if which == "best" else None
    extra_card = (run_dir / "MODEL_CARD.md").read_text(encoding="utf-8") if (run_dir / "MODEL_CARD.md").is_file() else None
    title = name or f"DeconGAN {config.preset_name.upper()} {run_dir.resolve().name}"
    inputs_axes, outputs_axes = _axes(geometry, config.pixel_size_um)

    with tempfile.TemporaryDirectory(prefix="decongan-bioimageio-") as tmp_name:
        tmp = Path(tmp_name)
        np.save(tmp / "test_input.npy", lq[None, None].astype(np.float32))
        np.save(tmp / "test_output.npy", output[None, None].astype(np.float32))
        import tifffile

        tifffile.imwrite(tmp / "sample_input.tif", lq.astype(np.float32))
        tifffile.imwrite(tmp / "sample_output.tif", output.astype(np.float32))
        card.cover_image(lq, output, gt, tmp / "cover.png")
        if not torchscript_only:
            torch.save({k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}, tmp / "weights.pt")
            (tmp / ARCHITECTURE_FILE).write_text(ARCHITECTURE_SOURCE, encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream, still deepImageJ's format
            torch.jit.save(scripted, str(tmp / "weights_torchscript.pt"))
        (tmp / "README.md").write_text(card.readme(
            name=title, config=config, which=which, metrics=metrics, normalization_text=norm_text,
            sample_source=sample_source, notes=notes, extra_card=extra_card, state_dict=not torchscript_only,
            geometry={"min": geometry.min, "step": geometry.step, "halo_px": geometry.halo,
                      "receptive_field_px": geometry.receptive_field, "scale": s}), encoding="utf-8")
        out_units = ("normalised units (0 = the input's low percentile, 1 = its high one)"
                     if config.normalization.mode == "per_image" else "the training targets' intensity units")
        torch_version = v0_5.Version(torch.__version__.split("+")[0])
        weights: dict[str, Any] = {"torchscript": v0_5.TorchscriptWeightsDescr(
            source=tmp / "weights_torchscript.pt", pytorch_version=torch_version,
            **({} if torchscript_only else {"parent": "pytorch_state_dict"}))}
        if not torchscript_only:  # fields set to None would be written as nulls: leave them out
            weights["pytorch_state_dict"] = v0_5.PytorchStateDictWeightsDescr(
                source=tmp / "weights.pt", pytorch_version=torch_version,
                architecture=v0_5.ArchitectureFromFileDescr(
                    source=tmp / ARCHITECTURE_FILE, callable=v0_5.Identifier("build_generator"),
                    kwargs={"model_name": model_name, **ctor_kwargs}))
        with ValidationContext(root=tmp, perform_io_checks=True):
            descr = v0_5.ModelDescr(
                name=title,
                description=(f"DeconGAN {config.preset_name.upper()} GAN restoration of fluorescence microscopy "
                             f"images; output in {out_units}"),
                authors=_authors(authors),
                cite=[v0_5.CiteEntry(**c) for c in card.citations(config.preset_name)],
                license=license,
                tags=card.tags(config.preset_name, scale=s),
                documentation=v0_5.FileDescr(source=tmp / "README.md"),
                covers=[v0_5.FileDescr(source=tmp / "cover.png")],
                inputs=[v0_5.InputTensorDescr(
                    id=v0_5.TensorId("input"), axes=inputs_axes, preprocessing=pre,
                    description="LQ fluorescence image plane, intensity units of the training inputs",
                    test_tensor=v0_5.FileDescr(source=tmp / "test_input.npy"),
                    sample_tensor=v0_5.FileDescr(source=tmp / "sample_input.tif"),
                    data=v0_5.IntervalOrRatioDataDescr(type="float32"))],
                outputs=[v0_5.OutputTensorDescr(
                    id=v0_5.TensorId("output"), axes=outputs_axes, postprocessing=post,
                    description=f"restored plane in {out_units}"[:128],
                    test_tensor=v0_5.FileDescr(source=tmp / "test_output.npy"),
                    sample_tensor=v0_5.FileDescr(source=tmp / "sample_output.tif"),
                    data=v0_5.IntervalOrRatioDataDescr(type="float32"))],
                weights=v0_5.WeightsDescr(**weights),
                config=v0_5.Config(decongan=card.run_facts(config, metrics)),
            )
        out = Path(out)
        with atomic_path(out) as partial:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)  # the packager leaves file handles to the collector
                save_bioimageio_package(descr, output_path=partial)
                gc.collect()
            summary = check_package(partial) if test else "status: not tested"
            if test and not summary.startswith("status: passed"):
                raise BioimageioExportError(f"the bioimage.io package of {run_dir} failed bioimageio's test; nothing "
                                            f"was written:\n{summary}", path=run_dir)
    return BioimageioExportResult(out, geometry, summary, out.stat().st_size, notes)


def check_package(path: str | Path) -> str:
    """bioimageio.core's test of a package (every weight format, batch 1 and 2, sizes min + n*step), as text.

    Parameters
    ----------
    path : str or Path
        The zip or ``bioimageio.yaml``.

    Returns
    -------
    str
        :func:`summary_text` of the tested description; starts with ``status: passed`` when it passed.
    """
    import torch
    from bioimageio.core import test_model

    # the test seeds numpy's and torch's global generators and switches torch's deterministic mode:
    # put the caller's state back afterwards
    numpy_state, torch_state = np.random.get_state(), torch.get_rng_state()  # noqa: NPY002 (the legacy global state is what the test seeds)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # upstream deprecation and tracer warnings
            tested = test_model(str(path))
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        torch.set_rng_state(torch_state)
        torch.use_deterministic_algorithms(deterministic)
    return summary_text(tested)


__all__ = [
    "ARCHITECTURE_FILE",
    "ARCHITECTURE_SHA256",
    "ARCHITECTURE_SOURCE",
    "BioimageioExportError",
    "BioimageioExportResult",
    "export_bioimageio",
    "summary_text",
    "check_package",
]
