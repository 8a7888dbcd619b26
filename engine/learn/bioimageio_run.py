"""Run a bioimage.io model package (format 0.4 or 0.5) on microscopy images, tiled with its own halo.

:func:`load_bioimageio_model` reads a package (``.zip``, ``rdf.yaml`` or ``bioimageio.yaml``; 0.4
descriptions are converted to 0.5 by ``bioimageio.spec``) and builds ``bioimageio.core``'s
prediction pipeline. What DeconGAN runs, and what it refuses before any computation:

* **weights**: TorchScript; PyTorch state dicts only when the architecture is DeconGAN's own (the
  ``decongan_architecture.py`` of :mod:`engine.learn.bioimageio_export`, identified by its sha256, or a
  callable imported from the ``decongan`` package): a state dict needs its architecture's Python code,
  and running code from a downloaded package is not something a restoration tool should do silently.
  ONNX, TensorFlow and Keras weights are refused with a message naming what the package has.
* **image to image**: one input and one output tensor with axes among batch, channel (one channel),
  y and x; the output's y/x refer to the input's (an integer up-scaling is allowed). 3-D (``z``),
  time and index axes are refused.

:func:`iter_predict_bioimageio` restores every 2-D plane of a :class:`engine.io.MicroscopyImage`
(every T, Z and channel, like :func:`engine.learn.inference.iter_predict_image`):

1. the package's **preprocessing** runs on the whole plane (``bioimageio.core``'s operators, so
   sample statistics such as percentiles are those of the plane, not of a tile);
2. the model runs on overlapping **tiles** (:mod:`engine.learn.tiling`): tile sides are multiples of
   the input's ``step`` and at least its ``min``, the overlap's zero-weight guard band covers the
   declared **halo** (:func:`engine.learn.tiling.overlap_for_radius`), so for a model whose halo is its
   receptive field the tiled output equals the whole-plane output; a plane smaller than ``min`` is
   padded (reflect) and the output cropped;
3. the package's **postprocessing** runs on the stitched plane.

The output pixel size is the input's divided by the model's scale; a package whose declared pixel
size differs from the image's by more than 1 % is run as it is, with a note in the provenance
(no resampling: a zoo model does not say it was trained for one pixel size only).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decongan.engine.io import MicroscopyImage
from decongan.engine.learn.bioimageio_describe import (
    PIXEL_SIZE_TOLERANCE,
    BioimageioDescription,
    BioimageioModelError,
    check_bioimageio_pixel_size,
    describe_bioimageio_model,
    is_bioimageio_source,
)
from decongan.engine.learn.bioimageio_export import summary_text
from decongan.engine.learn.tiling import iter_tiled, overlap_for_radius, pad_plane
from decongan.engine.progress import CancelToken, Progress, ProgressCallback, run_with_callbacks
from decongan.engine.provenance import Provenance, sha256_file, software_versions


@dataclass
class BioimageioModel:
    """A loaded package: its description, prediction pipeline and the geometry DeconGAN tiles with.

    Attributes
    ----------
    source : Path
        The package file.
    descr : bioimageio.spec.model.v0_5.ModelDescr
        The description (0.4 converted to 0.5).
    pipeline : bioimageio.core.PredictionPipeline
        Pre/postprocessing and the weights, loaded on the device.
    weight_format : {"torchscript", "pytorch_state_dict"}
        The weights used.
    input_dims, output_dims : tuple of str
        Axis ids of the input and output tensors, in the package's order.
    min, step : int
        Valid y/x input sizes are ``min + n * step`` (``step`` 0: only ``min``).
    halo : int
        Declared halo per side in input px (0 when none is declared).
    scale : int
        Output px per input px along y and x.
    pixel_size_um : float or None
        Pixel size the package declares for its input, um.
    sha256 : str
        Of the package file.
    """

    source: Path
    descr: Any
    pipeline: Any
    weight_format: str
    input_dims: tuple[str, ...]
    output_dims: tuple[str, ...]
    min: int
    step: int
    halo: int
    scale: int
    pixel_size_um: float | None
    sha256: str
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Name shown in figure legends: the package's name."""
        return f"{self.descr.name} (bioimage.io)"

    @property
    def decongan(self) -> dict[str, Any]:
        """The run facts DeconGAN stores in ``config.decongan`` (empty for other packages)."""
        extra = getattr(self.descr.config, "model_extra", None) or {}
        value = extra.get("decongan") if isinstance(extra, dict) else None
        return dict(value) if isinstance(value, dict) else {}


def load_bioimageio_model(source: str | Path, *, device: Any = "cpu") -> BioimageioModel:
    """Read a bioimage.io package and prepare it to run (module doc).

    Parameters
    ----------
    source : str or Path
        A ``.zip`` package or its ``rdf.yaml`` / ``bioimageio.yaml``.
    device : str or torch.device
        Where the weights run (``"cpu"``, ``"cuda"``, ``"cuda:N"``).

    Returns
    -------
    BioimageioModel

    Raises
    ------
    BioimageioModelError
        An invalid description, or a model DeconGAN does not run (the message says what).
    """
    from bioimageio.core import create_prediction_pipeline

    path = Path(source)
    info = describe_bioimageio_model(path)
    descr, weight_format = info.descr, info.weight_format
    minimum, step, halo, scale, pixel = info.min, info.step, info.halo, info.scale, info.pixel_size_um
    notes = []
    if (descr.config.model_extra or {}).get("decongan", {}).get("normalization", {}).get("mode") == "per_image":
        notes.append("this DeconGAN package was trained with per-image normalisation: its output is in normalised "
                     "units (0 = the input's low percentile, 1 = its high one), see the package README")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = create_prediction_pipeline(descr, devices=[str(device)], weight_format=weight_format)
    return BioimageioModel(
        source=path, descr=descr, pipeline=pipeline, weight_format=weight_format,
        input_dims=tuple(str(a.id) for a in descr.inputs[0].axes),
        output_dims=tuple(str(a.id) for a in descr.outputs[0].axes),
        min=minimum, step=step, halo=halo, scale=scale, pixel_size_um=pixel, sha256=sha256_file(path), notes=notes)


def package_summary(source: str | Path) -> dict[str, Any]:
    """Name, format, sha256 and DeconGAN run facts of a package, without loading its weights (for reports).

    Parameters
    ----------
    source : str or Path
        A ``.zip`` package or its ``rdf.yaml`` / ``bioimageio.yaml``.

    Returns
    -------
    dict
        ``package``, ``sha256``, ``name``, ``format_version`` and ``decongan`` (the run facts of a
        package DeconGAN exported, else None); ``error`` instead of the last three for an invalid one.
    """
    from bioimageio.spec import load_description

    path = Path(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        descr = load_description(str(path), format_version="latest", perform_io_checks=False)
    out: dict[str, Any] = {"package": str(path), "sha256": sha256_file(path)}
    if not hasattr(descr, "weights"):
        return {**out, "error": summary_text(descr)}
    extra = getattr(descr.config, "model_extra", None) or {}
    return {**out, "name": descr.name, "format_version": descr.format_version, "decongan": extra.get("decongan")}


def _to_dims(array: np.ndarray, dims: tuple[str, ...]) -> np.ndarray:
    """(B, h, w) -> the package's axis order (batch and channel inserted where declared)."""
    have = ["batch", "channel", "y", "x"]
    arr = array[:, None]
    if "batch" not in dims:
        arr, have = arr[0], have[1:]
    if "channel" not in dims:
        arr = arr[:, 0] if have[0] == "batch" else arr[0]
        have.remove("channel")
    return np.ascontiguousarray(np.transpose(arr, [have.index(d) for d in dims]))


def _from_dims(array: np.ndarray, dims: tuple[str, ...]) -> np.ndarray:
    """The package's axis order -> (B, h, w)."""
    order = [d for d in ("batch", "channel", "y", "x") if d in dims]
    arr = np.transpose(array, [dims.index(d) for d in order])
    if "channel" in dims:
        arr = arr[:, 0] if "batch" in dims else arr[0]
    if "batch" not in dims:
        arr = arr[None]
    return arr


def _tensor(array: np.ndarray, dims: tuple[str, ...]) -> Any:
    from bioimageio.core import Tensor

    return Tensor.from_numpy(array, dims=dims)


def _sample(member: str, array: np.ndarray, dims: tuple[str, ...], stat: Any = None) -> Any:
    from bioimageio.core import Sample

    return Sample(members={member: _tensor(array, dims)}, stat={} if stat is None else stat, id="plane")


class _PackageTiles:
    """Tile function of :mod:`engine.learn.tiling` running the package's weights (no pre/postprocessing)."""

    def __init__(self, model: BioimageioModel) -> None:
        self.model = model
        self.input_id = str(model.descr.inputs[0].id)
        self.output_id = str(model.descr.outputs[0].id)

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        model = self.model
        if "batch" not in model.input_dims and tiles.shape[0] > 1:
            return np.concatenate([self(tiles[i:i + 1]) for i in range(tiles.shape[0])])
        sample = _sample(self.input_id, _to_dims(tiles.astype(np.float32), model.input_dims), model.input_dims)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model.pipeline.predict_sample_without_blocking(
                sample, skip_preprocessing=True, skip_postprocessing=True, skip_input_padding=True,
                skip_output_cropping=True)
        tensor = out.members[self.output_id]
        return _from_dims(np.asarray(tensor.data.transpose(*model.output_dims).values, np.float32), model.output_dims)


def tile_plan(model: BioimageioModel, tile: int) -> tuple[int, int, int]:
    """(tile, overlap, multiple) in input px that DeconGAN's tiler uses for a package.

    Parameters
    ----------
    model : BioimageioModel
        The package.
    tile : int
        Requested tile side in px; 0 = whole planes.

    Returns
    -------
    (int, int, int)
        Tile side (0 = whole plane; otherwise a valid size at least twice the overlap), the overlap whose
        guard band covers the halo, and the alignment (the package's step, or 1).
    """
    multiple = model.step or 1
    overlap = overlap_for_radius(model.halo, multiple=multiple) if model.halo else 0
    if model.step == 0:
        return model.min, overlap, 1
    if tile == 0:
        return 0, overlap, multiple
    tile = max(tile, model.min, 2 * overlap + multiple)
    return -(-tile // multiple) * multiple, overlap, multiple


def iter_predict_bioimageio(
    model: BioimageioModel | str | Path,
    image: MicroscopyImage | np.ndarray,
    *,
    tile: int = 512,
    batch: int = 1,
    device: Any = "cpu",
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, tuple[MicroscopyImage, Provenance]]:
    """Generator form of :func:`predict_bioimageio` (yields one event per batch of tiles).

    Parameters
    ----------
    model : BioimageioModel, or the package path
        See :func:`load_bioimageio_model`.
    image : MicroscopyImage or ndarray
        Axes ``YX`` ... ``TZCYX``, any real dtype (not RGB).
    tile : int
        Tile side in input px (rounded to a valid size); 0 = whole planes (padded to a valid size).
    batch : int
        Tiles per forward pass.
    device : str or torch.device
        Where a package given as a path runs.
    cancel : CancelToken, optional
        Checked between tile batches.

    Yields
    ------
    Progress
        One event per batch of tiles.

    Returns
    -------
    restored : MicroscopyImage
        float32, axes of the input, YX ``scale`` times larger, pixel size divided by ``scale``.
    provenance : Provenance
        Package, weights, tiling and notes.

    Raises
    ------
    BioimageioModelError
        A package DeconGAN does not run.
    ValueError
        An RGB image or a negative tile.
    Cancelled
        When ``cancel`` is set.
    """
    if not isinstance(model, BioimageioModel):
        model = load_bioimageio_model(model, device=device)
    if isinstance(image, np.ndarray):
        image = MicroscopyImage(image, {2: "YX", 3: "ZYX", 4: "ZCYX", 5: "TZCYX"}[image.ndim])
    if image.metadata.get("rgb"):
        raise ValueError(f"{image.path or 'image'}: is an RGB colour image; restore each grey channel separately")
    if tile < 0:
        raise ValueError(f"tile must be >= 0 (0 = whole image), got {tile}")
    tile_px, overlap, multiple = tile_plan(model, int(tile))
    notes = list(model.notes)
    in_px = image.pixel_size_um
    if in_px and model.pixel_size_um and abs(in_px / model.pixel_size_um - 1.0) > PIXEL_SIZE_TOLERANCE:
        notes.append(f"the image's pixel size {in_px:g} um differs from the package's {model.pixel_size_um:g} um; "
                     "run as it is (not resampled)")
    s = model.scale
    input_id, output_id = str(model.descr.inputs[0].id), str(model.descr.outputs[0].id)
    runner = _PackageTiles(model)
    planes = list(image.iter_planes())
    out_shape = (image.yx_shape[0] * s, image.yx_shape[1] * s)
    output = np.empty((*image.data.shape[:-2], *out_shape), dtype=np.float32)
    start = time.perf_counter()
    for index, (where, plane) in enumerate(planes):
        data = np.asarray(plane, dtype=np.float32)
        padded = pad_plane(data, (max(data.shape[0], model.min), max(data.shape[1], model.min)))
        sample = _sample(input_id, padded[None, None], ("batch", "channel", "y", "x"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.pipeline.apply_preprocessing(sample)
        x_n = np.asarray(sample.members[input_id].data.transpose("batch", "channel", "y", "x").values[0, 0], np.float32)
        events = iter_tiled(x_n, runner, tile=tile_px, overlap=overlap, multiple=multiple, scale=s, batch=batch,
                            cancel=cancel)
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                y_n = stop.value
                break
            yield Progress(index * event.total + event.step, len(planes) * event.total,
                           f"plane {index + 1}/{len(planes)}, {event.message}")
        result = _sample(output_id, y_n[None, None], ("batch", "channel", "y", "x"), stat=sample.stat)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.pipeline.apply_postprocessing(result)
        y = np.asarray(result.members[output_id].data.transpose("batch", "channel", "y", "x").values[0, 0], np.float32)
        output[tuple(where[a.lower()] for a in image.axes[:-2])] = y[:out_shape[0], :out_shape[1]]
    restored = MicroscopyImage(
        data=output, axes=image.axes, pixel_size_um=(in_px / s) if in_px else None, z_step_um=image.z_step_um,
        time_interval_s=image.time_interval_s, path=None,
        metadata={"source": str(image.path) if image.path else None, "restored_by": model.label})
    parameters = {
        "package": str(model.source), "package_sha256": model.sha256, "name": model.descr.name,
        "format_version": model.descr.format_version, "weight_format": model.weight_format,
        "tile": tile_px, "tile_requested": int(tile), "overlap": overlap, "halo": model.halo, "min": model.min,
        "step": model.step, "scale": s, "input": str(image.path) if image.path else None,
        "input_pixel_size_um": in_px, "package_pixel_size_um": model.pixel_size_um,
        "elapsed_s": round(time.perf_counter() - start, 3),
    }
    provenance = Provenance(method=model.label, backend=f"bioimageio/{model.weight_format}", parameters=parameters,
                            versions=software_versions("torch", "bioimageio.core", "bioimageio.spec"), notes=notes)
    return restored, provenance


def predict_bioimageio(
    model: BioimageioModel | str | Path,
    image: MicroscopyImage | np.ndarray,
    *,
    tile: int = 512,
    batch: int = 1,
    device: Any = "cpu",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[MicroscopyImage, Provenance]:
    """Restore every plane of ``image`` with a bioimage.io package (module doc).

    Parameters
    ----------
    model : BioimageioModel, or the package path
        See :func:`load_bioimageio_model`.
    image : MicroscopyImage or ndarray
        Axes ``YX`` ... ``TZCYX``, any real dtype.
    tile : int
        Tile side in input px; 0 = whole planes.
    batch : int
        Tiles per forward pass.
    device : str or torch.device
        Where a package given as a path runs.
    progress, cancel
        Progress callback and cancel token.

    Returns
    -------
    restored : MicroscopyImage
        float32, axes of the input, YX ``scale`` times larger.
    provenance : Provenance
    """
    events = iter_predict_bioimageio(model, image, tile=tile, batch=batch, device=device, cancel=cancel)
    return run_with_callbacks(events, progress=progress, cancel=cancel)


__all__ = [
    "BioimageioDescription",
    "BioimageioModel",
    "BioimageioModelError",
    "check_bioimageio_pixel_size",
    "describe_bioimageio_model",
    "is_bioimageio_source",
    "iter_predict_bioimageio",
    "load_bioimageio_model",
    "package_summary",
    "predict_bioimageio",
    "tile_plan",
]
