"""Apply a trained generator to microscopy images: every plane, every channel, tiled, calibrated.

:func:`predict_image` takes a :class:`engine.io.MicroscopyImage` of any axes (``YX`` ... ``TZCYX``)
and restores it plane by plane: every T frame, Z plane and channel is an independent 2-D input (the
generators are 2-D, single-channel), and the results are stacked back with the input's axes.

For each plane:

1. **Pixel-size matching** (S2): when the run recorded its training pixel size and the image states
   a different one (by more than 1 %), the plane is resampled to the training pixel size
   (:func:`skimage.transform.resize`, ``order=3`` cubic by default, ``order=1`` linear on request,
   anti-aliased when shrinking), restored, and the output resampled back to ``scale`` times the
   input grid. When either pixel size is unknown nothing is resampled (and the provenance says so).
2. **Normalisation**: the run's percentile normalisation (:mod:`engine.learn.normalization`) maps the
   plane to network units, and its inverse maps the output back to intensities: float32 output in
   the input's (``per_image``) or the training targets' (``dataset``) intensity units, never
   clipped, no 8-bit step.
3. **Tiling** (:mod:`engine.learn.tiling`): overlapping tiles with raised-cosine blending, aligned to the
   generator's stride. ``tile=0`` processes the whole plane at once. Generators with global
   operations (instance normalisation in S3/S4, the Fourier channel attention of S2) see only a
   tile's statistics, so their tiled output differs slightly from the whole-plane output; the
   provenance notes it and larger tiles reduce it.
4. **Out of memory**: when the device runs out of memory (``torch.OutOfMemoryError``, what CUDA
   raises), the tile size is halved and the plane restarted, down to ``overlap + stride``; the
   smaller tile is kept for the remaining planes and noted in the provenance.

The output pixel size is the input's divided by ``scale``; the z step and frame interval are kept.

Why this module is long
-----------------------
:func:`iter_predict_image` (~220 lines) carries one plane's pipeline (resampling, normalisation,
tiling, the out-of-memory retry) and its provenance notes across every plane of a TZC stack: the
retry restarts a plane with a smaller tile that is then kept for the remaining planes, so the loop
and its state stay together. The helpers beside it (stride multiple, receptive field,
out-of-memory detection, tile shrinking) serve only it; tiling itself is :mod:`engine.learn.tiling`
and loading a run is :mod:`engine.learn.checkpoint`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from decongan.engine.io import MicroscopyImage
from decongan.engine.learn.checkpoint.generator import load_generator
from decongan.engine.learn.checkpoint.layout import RunConfig
from decongan.engine.learn.normalization import NormalizationConfig
from decongan.engine.learn.tiling import iter_tiled, overlap_for_radius, plan_tiles
from decongan.engine.progress import CancelToken, Progress, ProgressCallback, run_with_callbacks
from decongan.engine.provenance import Provenance, software_versions

#: relative pixel-size difference below which no resampling is done
PIXEL_SIZE_TOLERANCE = 0.01
#: default stride assumed for generators that do not state theirs (``.multiple``)
DEFAULT_MULTIPLE = 16
MIN_TILE = 32


@dataclass
class LoadedModel:
    """A generator and the run configuration that says how to feed it."""

    generator: Any  # torch.nn.Module
    config: RunConfig | None = None
    run_dir: Path | None = None
    which: str = "best"

    @property
    def scale(self) -> int:
        if self.config is not None:
            return int(self.config.scale)
        return int(getattr(self.generator, "scale", 1) or 1)

    @property
    def normalization(self) -> NormalizationConfig:
        if self.config is not None:
            return self.config.normalization
        return NormalizationConfig(mode="per_image")

    @property
    def label(self) -> str:
        if self.config is not None:
            return f"{self.config.preset_name.upper()} GAN"
        return f"GAN ({type(self.generator).__name__})"


def load_model(run_dir: str | Path, *, which: str = "best", device: Any = "cpu") -> LoadedModel:
    """Load a run's generator (:func:`engine.learn.checkpoint.load_generator`) as a :class:`LoadedModel`.

    Parameters
    ----------
    run_dir : str or Path
        A training run folder.
    which : {"best", "last"}
        Which saved generator.
    device : str or torch.device
        Where to put the weights.

    Returns
    -------
    LoadedModel
        The generator (eval mode), its run configuration, the run folder and ``which``.
    """
    generator, config = load_generator(run_dir, which=which, device=device)
    return LoadedModel(generator, config, Path(run_dir), which)


def generator_multiple(generator: Any) -> int:
    """Total stride of a generator: its ``multiple`` (or ``unshuffle``) attribute, else 16."""
    for attr in ("multiple", "unshuffle"):
        value = getattr(generator, attr, None)
        if isinstance(value, int) and value >= 1:
            return value
    return DEFAULT_MULTIPLE


def has_global_context(generator: Any) -> bool:
    """True when the generator has operations over the whole input (instance norm, global pooling, FFT attention)."""
    names = {type(m).__name__ for m in generator.modules()} if hasattr(generator, "modules") else set()
    return any("InstanceNorm" in n or "AdaptiveAvgPool" in n or "Fourier" in n for n in names)


_RADIUS_CACHE: weakref.WeakKeyDictionary[Any, int | None] = weakref.WeakKeyDictionary()


def receptive_field_radius(generator: Any, *, device: Any = "cpu", size: int = 256, max_size: int = 512) -> int | None:
    """Receptive-field radius of a generator in input pixels, or None when it sees the whole input.

    Measured like CSBDeep: the gradient of the centre output pixel with respect to a random input of
    ``size`` x ``size`` pixels is non-zero exactly inside the receptive field; its largest distance
    from the centre is the radius. When the field reaches the input border the size doubles (up to
    ``max_size``); a field that still reaches it means whole-input operations (instance norm, global
    attention) and gives None, as does a generator with such operations (:func:`has_global_context`),
    without probing. The result is cached per generator object. Costs one forward and backward pass
    of a ``size`` x ``size`` input (seconds for a full-width generator on a CPU).

    Parameters
    ----------
    generator : torch.nn.Module
        Maps (1, 1, H, W) to (1, 1, H * s, W * s); its train/eval mode is restored afterwards.
    device : str or torch.device
        Where the probe runs (the generator must already be there).
    size : int
        First probe side in input px (rounded up to the generator's stride).
    max_size : int
        Largest probe side in input px.

    Returns
    -------
    int or None
        Radius in input px (one more than the farthest input pixel the centre output depends on),
        or None for a whole-input receptive field.
    """
    import torch

    if generator in _RADIUS_CACHE:
        return _RADIUS_CACHE[generator]
    if has_global_context(generator):
        _RADIUS_CACHE[generator] = None
        return None
    dev = device if isinstance(device, torch.device) else torch.device(str(device))
    multiple = generator_multiple(generator)
    scale = int(getattr(generator, "scale", 1) or 1)
    radius: int | None = None
    was_training = generator.training
    generator.eval()
    try:
        while size <= max_size:
            size = -(-size // multiple) * multiple
            gen = torch.Generator().manual_seed(0)
            x = torch.rand(1, 1, size, size, generator=gen).to(dev).requires_grad_(True)
            out = generator(x)
            cy, cx = out.shape[-2] // 2, out.shape[-1] // 2
            out[0, 0, cy, cx].backward()
            grad = x.grad[0, 0].abs().cpu().numpy()
            rows = np.flatnonzero(grad.max(axis=1) > 0)
            cols = np.flatnonzero(grad.max(axis=0) > 0)
            centre_y, centre_x = cy / scale, cx / scale
            extent = max(centre_y - rows[0], rows[-1] - centre_y, centre_x - cols[0], cols[-1] - centre_x) if rows.size else 0
            touches = rows.size and (rows[0] == 0 or cols[0] == 0 or rows[-1] == size - 1 or cols[-1] == size - 1)
            if not touches:
                radius = int(np.ceil(extent)) + 1
                break
            size *= 2
    finally:
        generator.train(was_training)
        generator.zero_grad(set_to_none=True)
    _RADIUS_CACHE[generator] = radius
    return radius


def is_out_of_memory(err: BaseException) -> bool:
    """``torch.OutOfMemoryError`` (CUDA's out-of-memory error) or a RuntimeError saying 'out of memory'."""
    import torch

    return isinstance(err, torch.OutOfMemoryError) or (isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


def next_smaller_tile(tile: int, shape: tuple[int, int], *, multiple: int) -> int | None:
    """The tile size to retry with after running out of memory, or None when it cannot shrink further.

    ``tile=0`` (whole plane) becomes the largest power of two below the plane's long side; otherwise
    the tile halves; both rounded down to ``multiple`` and at least :data:`MIN_TILE` pixels. (The
    caller shrinks the overlap when it no longer fits; see :func:`iter_predict_image`.)

    Parameters
    ----------
    tile : int
        Current tile side in px; 0 = the whole plane.
    shape : (int, int)
        Plane shape (Y, X) in px.
    multiple : int
        Network stride; the new tile is a multiple of it.

    Returns
    -------
    int or None
        The smaller tile side in px, or None.
    """
    if tile == 0:
        side = max(shape)
        new = 1 << max(0, (side - 1).bit_length() - 1)
    else:
        new = tile // 2
    new = (new // multiple) * multiple
    if new < MIN_TILE or (tile and new >= tile):
        return None
    return new


def _resample(plane: np.ndarray, shape: tuple[int, int], *, order: int) -> np.ndarray:
    from skimage.transform import resize

    if tuple(plane.shape) == tuple(shape):
        return plane
    shrinking = shape[0] < plane.shape[0] or shape[1] < plane.shape[1]
    return resize(plane.astype(np.float32), shape, order=order, mode="reflect", anti_aliasing=shrinking,
                  preserve_range=True).astype(np.float32)


class _TileRunner:
    """Turns a generator into the numpy tile function of :mod:`engine.learn.tiling`."""

    def __init__(self, generator: Any, device: Any, *, amp: bool) -> None:
        import torch

        self.torch = torch
        self.generator = generator
        self.device = device
        self.amp = amp and device.type == "cuda"
        self.channels_last = device.type == "cuda"

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(tiles[:, None], dtype=np.float32)).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.amp:
                with torch.autocast(device_type="cuda", dtype=torch.float16):
                    y = self.generator(x)
            else:
                y = self.generator(x)
        return y.float()[:, 0].cpu().numpy()


def make_tile_function(generator: Any, device: Any, *, amp: bool = False) -> Any:
    """A numpy tile function for :mod:`engine.learn.tiling`: (B, h, w) -> (B, h*s, w*s), no gradients.

    Parameters
    ----------
    generator : torch.nn.Module
        Maps (B, 1, h, w) to (B, 1, h * s, w * s), already on ``device``.
    device : str or torch.device
        Where the tiles are sent.
    amp : bool
        float16 autocast (CUDA only; ignored elsewhere).

    Returns
    -------
    callable
        ``fn(tiles)`` taking a float32 (B, h, w) array and returning float32 (B, h * s, w * s).
    """
    import torch

    dev = device if isinstance(device, torch.device) else torch.device(str(device))
    return _TileRunner(generator, dev, amp=amp)


def iter_predict_image(
    model: LoadedModel | Any,
    image: MicroscopyImage | np.ndarray,
    *,
    tile: int = 512,
    overlap: int | str = 64,
    device: str | Any = "auto",
    which: str = "best",
    batch: int = 1,
    amp: bool = False,
    match_pixel_size: bool = True,
    resample_order: int = 3,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, tuple[MicroscopyImage, Provenance]]:
    """Generator form of :func:`predict_image` (yields one event per tile batch).

    Parameters
    ----------
    model : LoadedModel, run folder path, ``(generator, RunConfig)`` or nn.Module
        See :func:`predict_image`.
    image : MicroscopyImage or ndarray
        Axes ``YX`` ... ``TZCYX``, any real dtype (not RGB).
    tile : int
        Tile side in px of the (resampled) input; 0 = the whole plane.
    overlap : int or "auto"
        Overlap between tiles in px, or "auto" (measured from the receptive field).
    device : {"auto", "cpu", "cuda"} or torch.device
        Where the generator runs.
    which : {"best", "last"}
        Which generator of a run folder.
    batch : int
        Tiles per forward pass.
    amp : bool
        float16 autocast on CUDA (ignored on CPU).
    match_pixel_size : bool
        Resample to the training pixel size when it differs.
    resample_order : {0, 1, 3}
        Spline order of that resampling.
    cancel : CancelToken, optional
        Checked between tile batches.

    Yields
    ------
    Progress
        One event per batch of tiles.

    Returns
    -------
    restored : MicroscopyImage
        float32, axes of the input, YX ``scale`` times larger, pixel size divided by ``scale``
        (the generator's return value, via ``StopIteration.value``).
    provenance : Provenance
        What was run and how (tile, overlap, device, notes such as a smaller tile after running
        out of memory).

    Raises
    ------
    ValueError
        For an RGB image, a negative tile or an unsupported ``resample_order``.
    MemoryError
        When even the smallest tile does not fit on the device.
    Cancelled
        When ``cancel`` is set.
    """
    import torch

    from decongan.engine.device import resolve_device

    dev = device if isinstance(device, torch.device) else resolve_device(str(device))
    if isinstance(model, (str, Path)):
        model = load_model(model, which=which, device=dev)
    elif not isinstance(model, LoadedModel):
        if isinstance(model, tuple) and len(model) == 2:
            model = LoadedModel(model[0], model[1])
        else:
            model = LoadedModel(model)
    generator = model.generator.to(dev).eval()
    if dev.type == "cuda":
        generator = generator.to(memory_format=torch.channels_last)
    if isinstance(image, np.ndarray):
        axes = {2: "YX", 3: "ZYX", 4: "ZCYX", 5: "TZCYX"}[image.ndim]
        image = MicroscopyImage(image, axes)
    if image.metadata.get("rgb"):
        raise ValueError(f"{image.path or 'image'}: is an RGB colour image; restore each grey channel separately")
    if resample_order not in (0, 1, 3):
        raise ValueError(f"resample_order must be 0, 1 or 3, got {resample_order}")

    scale = model.scale
    norm = model.normalization
    multiple = generator_multiple(generator)
    notes: list[str] = []
    tile = int(tile)
    if tile < 0:
        raise ValueError(f"tile must be >= 0 (0 = whole image), got {tile}")
    if isinstance(overlap, str):
        if overlap != "auto":
            raise ValueError(f"overlap must be a number of pixels or 'auto', got {overlap!r}")
        radius = receptive_field_radius(generator, device=dev)
        if radius is None:
            overlap = max(multiple, (tile or 512) // 4)
            notes.append(f"overlap auto: the generator sees its whole input, so no overlap makes tiles exact; "
                         f"using {overlap} px (use tile 0 when memory allows)")
        else:
            overlap = overlap_for_radius(radius, multiple=multiple)
            if tile and tile < 2 * overlap:
                tile = -(-2 * overlap // multiple) * multiple
            notes.append(f"overlap auto: receptive-field radius {radius} px -> overlap {overlap} px, tile {tile or 'whole'}")
    overlap = int(overlap)
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if has_global_context(generator) and tile:
        notes.append("this generator uses whole-input statistics (instance norm / global attention): tiles see "
                     "local statistics, so tiled output differs slightly from whole-image output")

    # -- pixel-size matching ----------------------------------------------------------------------
    in_px = image.pixel_size_um
    train_px = model.config.pixel_size_um if model.config is not None else None
    in_shape = image.yx_shape
    work_shape = in_shape
    resampled = False
    if match_pixel_size and in_px and train_px and abs(in_px / train_px - 1.0) > PIXEL_SIZE_TOLERANCE:
        factor = in_px / train_px
        work_shape = (max(1, int(round(in_shape[0] * factor))), max(1, int(round(in_shape[1] * factor))))
        resampled = True
        notes.append(f"input pixel size {in_px:g} um resampled to the training pixel size {train_px:g} um "
                     f"(x{factor:.4g}, order {resample_order}) and the output resampled back")
    elif train_px and not in_px:
        notes.append(f"the input states no pixel size; assumed equal to the training pixel size {train_px:g} um")
    elif in_px and not train_px and model.config is not None:
        notes.append("the training pixel size is unknown; no pixel-size matching")
    out_shape = (in_shape[0] * scale, in_shape[1] * scale)

    runner = _TileRunner(generator, dev, amp=amp)
    planes = list(image.iter_planes())
    current_tile = int(tile)
    n_tiles = plan_tiles(work_shape, tile=current_tile, overlap=overlap, multiple=multiple).n_tiles
    total = len(planes) * n_tiles
    lead_shape = image.data.shape[:-2]
    output = np.empty((*lead_shape, *out_shape), dtype=np.float32)
    start = time.perf_counter()
    done_steps = 0
    for index, (where, plane) in enumerate(planes):
        channel = int(where.get("c", 0))
        data = np.asarray(plane, dtype=np.float32)
        if resampled:
            data = _resample(data, work_shape, order=resample_order)
        in_norm = norm.input_norm(data, channel=channel)
        x_n = in_norm.normalize(data)
        while True:
            try:
                events = iter_tiled(x_n, runner, tile=current_tile, overlap=overlap, multiple=multiple,
                                    scale=scale, batch=batch, cancel=cancel)
                while True:
                    try:
                        event = next(events)
                    except StopIteration as stop:
                        y_n = stop.value
                        break
                    yield Progress(done_steps + event.step, total,
                                   f"plane {index + 1}/{len(planes)}, {event.message}")
                break
            except Exception as err:
                if not is_out_of_memory(err):
                    raise
                smaller = next_smaller_tile(current_tile, work_shape, multiple=multiple)
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                if smaller is None:
                    raise MemoryError(f"out of memory even with {current_tile or 'whole-image'} tiles on {dev}; "
                                      "use a smaller tile or the CPU device") from err
                notes.append(f"out of memory with tile {current_tile or 'whole'}; continued with tile {smaller}")
                if smaller - overlap < max(multiple, smaller // 2):
                    reduced = -(-(smaller // 4) // multiple) * multiple
                    notes.append(f"overlap reduced from {overlap} to {reduced} px to fit the smaller tile")
                    overlap = reduced
                current_tile = smaller
                n_tiles = plan_tiles(work_shape, tile=current_tile, overlap=overlap, multiple=multiple).n_tiles
                total = done_steps + (len(planes) - index) * n_tiles
        done_steps += plan_tiles(work_shape, tile=current_tile, overlap=overlap, multiple=multiple).n_tiles
        y = norm.output_norm(in_norm, channel=channel).denormalize(y_n)
        if resampled:
            y = _resample(y, out_shape, order=resample_order)
        output[tuple(where[a.lower()] for a in image.axes[:-2])] = y

    restored = MicroscopyImage(
        data=output,
        axes=image.axes,
        pixel_size_um=(in_px / scale) if in_px else (train_px / scale if train_px else None),
        z_step_um=image.z_step_um,
        time_interval_s=image.time_interval_s,
        path=None,
        metadata={"source": str(image.path) if image.path else None, "restored_by": model.label},
    )
    config = model.config
    parameters: dict[str, Any] = {
        "run_dir": str(model.run_dir) if model.run_dir else None,
        "which": model.which,
        "preset": config.preset_name if config else None,
        "generator": config.generator_spec[0] if config else type(generator).__name__,
        "scale": scale,
        "tile": current_tile,
        "tile_requested": tile,
        "overlap": int(overlap),
        "stride_multiple": multiple,
        "normalization": norm.model_dump(mode="json"),
        "input": str(image.path) if image.path else None,
        "input_pixel_size_um": in_px,
        "training_pixel_size_um": train_px,
        "resampled_to_shape": list(work_shape) if resampled else None,
        "resample_order": resample_order if resampled else None,
        "amp": bool(runner.amp),
        "elapsed_s": round(time.perf_counter() - start, 3),
    }
    provenance = Provenance(method=model.label, backend=f"engine/{dev.type}", parameters=parameters,
                            versions=software_versions("torch"), notes=notes)
    return restored, provenance


def predict_image(
    model: LoadedModel | Any,
    image: MicroscopyImage | np.ndarray,
    *,
    tile: int = 512,
    overlap: int | str = 64,
    device: str | Any = "auto",
    which: str = "best",
    batch: int = 1,
    amp: bool = False,
    match_pixel_size: bool = True,
    resample_order: int = 3,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[MicroscopyImage, Provenance]:
    """Restore every plane of ``image`` with a trained generator.

    Parameters
    ----------
    model : LoadedModel, run folder path, ``(generator, RunConfig)`` or nn.Module
        A bare module (no run configuration) is used with per-image normalisation, its own
        ``scale`` attribute (default 1) and no pixel-size matching.
    image : MicroscopyImage or ndarray
        Any axes ``YX`` ... ``TZCYX`` (an ndarray gets ``YX``/``ZYX``/``ZCYX``/``TZCYX``), any real dtype.
    tile : int
        Tile side in pixels of the (resampled) input; ``tile=0`` = whole plane.
    overlap : int or "auto"
        Overlap between tiles in pixels; "auto" measures the generator's receptive-field radius
        (:func:`receptive_field_radius`) and uses the overlap that makes tiled output equal the
        whole-image output (:func:`engine.learn.tiling.overlap_for_radius`), enlarging the tile to at
        least twice the overlap.
    device : {"auto", "cpu", "cuda"} or torch.device
    which : {"best", "last"}
        Which generator of a run folder.
    batch : int
        Tiles per forward pass.
    amp : bool
        float16 autocast on CUDA (ignored on CPU).
    match_pixel_size : bool
        Resample to the training pixel size when it differs (module doc).
    resample_order : {0, 1, 3}
        Spline order of that resampling.
    progress, cancel
        Progress callback and cancel token.

    Returns
    -------
    restored : MicroscopyImage
        float32, axes of the input, YX ``scale`` times larger, pixel size divided by ``scale``.
    provenance : Provenance
    """
    events = iter_predict_image(model, image, tile=tile, overlap=overlap, device=device, which=which, batch=batch,
                                amp=amp, match_pixel_size=match_pixel_size, resample_order=resample_order,
                                cancel=cancel)
    return run_with_callbacks(events, progress=progress, cancel=cancel)


def predict_array(model: LoadedModel | Any, plane: np.ndarray, **kwargs: Any) -> np.ndarray:
    """:func:`predict_image` on one 2-D array; returns the float32 array only.

    Parameters
    ----------
    model : LoadedModel, run folder path, ``(generator, RunConfig)`` or nn.Module
        See :func:`predict_image`.
    plane : ndarray, shape (Y, X)
        Any real dtype, in the intensity units the model was trained on (counts).
    **kwargs
        Passed to :func:`predict_image` (``tile``, ``overlap``, ``device``...).

    Returns
    -------
    ndarray, float32, shape (Y * scale, X * scale)
        The restored plane.
    """
    restored, _ = predict_image(model, MicroscopyImage(np.asarray(plane), "YX"), **kwargs)
    return restored.data


__all__ = [
    "LoadedModel",
    "generator_multiple",
    "has_global_context",
    "is_out_of_memory",
    "iter_predict_image",
    "load_model",
    "make_tile_function",
    "next_smaller_tile",
    "predict_array",
    "predict_image",
    "receptive_field_radius",
]
