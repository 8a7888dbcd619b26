"""Geometry of a bioimage.io package: valid sizes, halo, scale and pixel size, declared and read back.

Export side (:func:`package_geometry`, :func:`exact_pixel_size`): a DeconGAN generator's sizes are
``min + n * step`` with ``step`` its stride (:func:`engine.learn.inference.generator_multiple`); its halo
is the receptive-field radius the tiler uses (:func:`engine.learn.inference.receptive_field_radius`,
the guard band of :func:`engine.learn.tiling.overlap_for_radius`), rounded up to a multiple of the
stride: consumers (bioimageio.core, deepImageJ's JDLL) pad the image by the halo and cut blocks from
there, so a halo that is not a multiple of the stride shifts every block off the pooling grid and the
blocks no longer equal the whole-image output (measured: up to 33 % of the range inside the image for
a tiny S1 with a 22 px halo, stride 4); ``min`` is the smallest multiple of the stride above twice the
halo. Generators with whole-input operations (S2's Fourier attention,
S3/S4's instance norm) have no finite receptive field: they get the guard band of the tiler's
automatic overlap for :data:`GLOBAL_CONTEXT_TILE` px tiles, and tiles then differ slightly from whole
images (the package README says so).

A decimal pixel size breaks bioimage.io's own size arithmetic (``int(size * in_scale / out_scale)``
is one pixel short for about one size in twenty at 0.2 um); :func:`exact_pixel_size` stores the
nearest multiple of 2**-30 um instead (less than 1e-9 um away) and says so.

Read side (:func:`read_geometry`): min, step, halo (in input px), integer scale and pixel size of an
image-to-image description, or a :class:`GeometryError` naming what is unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decongan.engine.errors import DeconganError

#: tile side whose automatic overlap sets the halo of generators with whole-input operations
GLOBAL_CONTEXT_TILE = 512
#: micrometres per unit of a space axis
_UNIT_UM = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3, "angstrom": 1e-4, "meter": 1e6}


class GeometryError(DeconganError, ValueError):
    """A package's sizes cannot be declared or read exactly (the message says which and why)."""


@dataclass(frozen=True)
class PackageGeometry:
    """Sizes the package declares, in input pixels.

    Attributes
    ----------
    step : int
        Generator stride; valid y/x sizes are ``min + n * step``.
    min : int
        Smallest valid y/x size (a multiple of ``step``, larger than twice the halo).
    halo : int
        Halo per side in input px (the output halo is ``halo * scale``).
    receptive_field : int or None
        Measured receptive-field radius in input px; None for whole-input operations.
    scale : int
        Output px per input px.
    """

    step: int
    min: int
    halo: int
    receptive_field: int | None
    scale: int

    def valid_size(self, limit: int) -> int | None:
        """Largest valid size ``min + n * step`` not above ``limit`` (None when ``limit < min``)."""
        if limit < self.min:
            return None
        return self.min + ((limit - self.min) // self.step) * self.step


def package_geometry(generator: Any, *, scale: int) -> PackageGeometry:
    """Stride, minimum size and halo of a generator (module doc).

    Parameters
    ----------
    generator : torch.nn.Module
        Maps (B, 1, H, W) to (B, 1, H * scale, W * scale), on the CPU.
    scale : int
        Output px per input px.

    Returns
    -------
    PackageGeometry
    """
    from decongan.engine.learn.inference import generator_multiple, receptive_field_radius
    from decongan.engine.learn.tiling import guard_width

    step = generator_multiple(generator)
    radius = receptive_field_radius(generator, device="cpu")
    if radius is None:
        needed = guard_width(max(step, GLOBAL_CONTEXT_TILE // 4))
    else:
        needed = radius
    halo = max(step, -(-needed // step) * step)
    minimum = -(-(2 * halo + step) // step) * step
    return PackageGeometry(step=step, min=minimum, halo=halo, receptive_field=radius, scale=int(scale))


def exact_pixel_size(pixel_size_um: float, geometry: PackageGeometry) -> float:
    """The pixel size as the nearest multiple of 2**-30 um, so the spec's size arithmetic is exact.

    bioimage.io computes an output size as ``int(size * in_scale / out_scale)`` and the input halo as
    ``halo * out_scale / in_scale``: with a decimal pixel size such as 0.2 um, about one size in
    twenty comes out one pixel short (``int(43 * 0.2 / 0.2) == 42``) and some halos are not integers.
    A dyadic pixel size makes every such product and quotient exact for power-of-two scales; it
    differs from the recorded one by less than 1e-9 um.

    Parameters
    ----------
    pixel_size_um : float
        The run's training pixel size, um.
    geometry : PackageGeometry
        Sizes and scale the arithmetic is checked for.

    Returns
    -------
    float
        The stored pixel size, um.

    Raises
    ------
    GeometryError
        When even the dyadic value leaves a size or the halo inexact (a scale that is not a power of two).
    """
    quantum = 2.0 ** -30
    value = round(pixel_size_um / quantum) * quantum
    out = value / geometry.scale
    sizes = range(geometry.min, geometry.min + 4096 * geometry.step, geometry.step)
    halo_out = geometry.halo * geometry.scale
    if any(int(n * value / out) != n * geometry.scale for n in sizes) or halo_out * out / value != geometry.halo:
        raise GeometryError(f"a pixel size of {pixel_size_um:g} um with {geometry.scale} output px per input "
                                    "px cannot be stored so that bioimage.io's size arithmetic is exact",
                                    value=pixel_size_um)
    return value


def read_geometry(descr: Any, source: Path) -> tuple[int, int, int, int, float | None]:
    """Sizes of an image-to-image package description.

    Parameters
    ----------
    descr : bioimageio.spec.model.v0_5.ModelDescr
        The description.
    source : Path
        The package (named in messages).

    Returns
    -------
    (int, int, int, int, float or None)
        ``min`` and ``step`` of the input's y/x sizes (``step`` 0 for a fixed size), the halo per side
        in input px, the integer output px per input px, and the input's pixel size in um (None when
        the axes have no unit).

    Raises
    ------
    GeometryError
        Not one input and one output, more than one channel, z/time/index axes, different y and x
        sizes, a minimum that is not a multiple of the step, or a non-integer scale.
    """
    from bioimageio.spec.model import v0_5

    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise GeometryError(f"{source}: has {len(descr.inputs)} inputs and {len(descr.outputs)} outputs; "
                                   "DeconGAN runs image-to-image models (one input, one output)", path=source)
    for tensor, kind in ((descr.inputs[0], "input"), (descr.outputs[0], "output")):
        for axis in tensor.axes:
            if axis.type == "channel" and len(axis.channel_names) != 1:
                raise GeometryError(f"{source}: the {kind} has {len(axis.channel_names)} channels; DeconGAN "
                                           "feeds one channel at a time", path=source)
            if axis.type == "space" and str(axis.id) not in ("y", "x"):
                raise GeometryError(f"{source}: the {kind} has a space axis {axis.id!s}; 3-D models are not "
                                           "supported (DeconGAN feeds 2-D planes)", path=source)
            if axis.type not in ("batch", "channel", "space"):
                raise GeometryError(f"{source}: the {kind} has a {axis.type} axis ({axis.id!s}); only batch, "
                                           "channel, y and x are supported", path=source)
    inputs = {str(a.id): a for a in descr.inputs[0].axes}
    outputs = {str(a.id): a for a in descr.outputs[0].axes}
    if not {"y", "x"} <= set(inputs) or not {"y", "x"} <= set(outputs):
        raise GeometryError(f"{source}: input and output need y and x axes", path=source)
    sizes = []
    for name in ("y", "x"):
        size = inputs[name].size
        if isinstance(size, v0_5.ParameterizedSize):
            sizes.append((size.min, size.step))
        elif isinstance(size, int):
            sizes.append((size, 0))
        else:
            raise GeometryError(f"{source}: the input's {name} size is not a number or min + n * step", path=source)
    if sizes[0] != sizes[1]:
        raise GeometryError(f"{source}: y sizes {sizes[0]} and x sizes {sizes[1]} differ; DeconGAN tiles with "
                                   "square tiles", path=source)
    minimum, step = sizes[0]
    if step and minimum % step:
        raise GeometryError(f"{source}: minimum size {minimum} is not a multiple of the step {step}; DeconGAN's "
                                   "tiles are multiples of the step", path=source)
    scales, halos = [], []
    for name in ("y", "x"):
        out = outputs[name]
        if not isinstance(out.size, v0_5.SizeReference) or str(out.size.axis_id) != name or out.size.offset:
            raise GeometryError(f"{source}: the output's {name} size does not follow the input's; DeconGAN runs "
                                       "image-to-image models", path=source)
        ratio = inputs[name].scale / out.scale
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise GeometryError(f"{source}: the output's {name} has {ratio:g} px per input px; only integer "
                                       "up-scaling is supported", path=source)
        scales.append(int(round(ratio)))
        halo = getattr(out, "halo", 0) or 0
        halos.append(-(-halo // scales[-1]))
    if scales[0] != scales[1]:
        raise GeometryError(f"{source}: y and x are scaled differently ({scales})", path=source)
    unit = inputs["y"].unit
    pixel = inputs["y"].scale * _UNIT_UM[str(unit)] if unit is not None and str(unit) in _UNIT_UM else None
    return minimum, step, max(halos), scales[0], pixel


__all__ = ["GLOBAL_CONTEXT_TILE", "GeometryError", "PackageGeometry", "exact_pixel_size", "package_geometry",
           "read_geometry"]
