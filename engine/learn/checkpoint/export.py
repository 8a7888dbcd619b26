"""Export a trained generator as a TorchScript module usable without DeconGAN.

The exported module maps a normalised image batch ``(B, 1, H, W)`` float32 to ``(B, 1, H*s, W*s)``
for any ``H, W``, exactly like the eager generator. The run's configuration travels with it:

* inside the TorchScript archive as extra files ``decongan_config.json`` (the full
  :class:`engine.learn.checkpoint.layout.RunConfig`) and ``decongan_export.json`` (what a user needs to feed
  the module: scale, stride, normalisation policy and parameters, training pixel size);
* beside it as ``<model>.json`` (the same two documents), for tools that cannot read extra files.

Feeding it: normalise each 2-D plane with the stored policy (``x_n = (x - low) / (high - low)``,
``low``/``high`` the LQ parameters of the channel in ``"dataset"`` mode, the plane's own
``p_low``/``p_high`` percentiles in ``"per_image"`` mode) and invert the output with the HQ
parameters (``dataset``) or the input's own ones (``per_image``); see :mod:`engine.learn.normalization`.

How: :func:`torch.jit.script` when the generator scripts (S3/S4); otherwise the generator is traced
on an input whose sides are multiples of its stride (so no data-dependent padding is frozen into
the trace) and wrapped in a small scripted module that pads any input to that multiple (reflect,
as the eager models do) and crops the output. The export is checked against the eager generator
on two input sizes (one not a multiple of the stride) before it is written.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decongan.engine.errors import DeconganError
from decongan.engine.learn.checkpoint.generator import load_generator
from decongan.engine.learn.inference import generator_multiple
from decongan.engine.outputs import atomic_path, write_json_atomic

EXPORT_FORMAT = "decongan-torchscript/1"


class ExportError(DeconganError, RuntimeError):
    """The generator could not be exported faithfully (the message says how it differed)."""


@dataclass
class ExportResult:
    """What :func:`export_torchscript` wrote.

    Attributes
    ----------
    path : Path
        The TorchScript file.
    sidecar : Path
        The JSON file beside it (``path`` with suffix ``.json``).
    method : {"script", "trace+pad"}
        How the module was made.
    max_abs_difference : float
        Largest absolute difference from the eager generator on the check inputs (normalised units).
    """

    path: Path
    sidecar: Path
    method: str
    max_abs_difference: float


def _padded_wrapper(inner: Any, multiple: int, scale: int) -> Any:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class PadToMultiple(nn.Module):
        """Pad to a multiple of the stride (reflect, edge for tiny inputs), run, crop to H*scale x W*scale."""

        def __init__(self, net: nn.Module, multiple: int, scale: int) -> None:
            super().__init__()
            self.net = net
            self.multiple = multiple
            self.scale = scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = x.shape[-2]
            w = x.shape[-1]
            pad_h = (self.multiple - h % self.multiple) % self.multiple
            pad_w = (self.multiple - w % self.multiple) % self.multiple
            if pad_h > 0 or pad_w > 0:
                if pad_h < h and pad_w < w:
                    x = F.pad(x, [0, pad_w, 0, pad_h], mode="reflect")
                else:
                    x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")
            y = self.net(x)
            return y[:, :, : h * self.scale, : w * self.scale]

    return torch.jit.script(PadToMultiple(inner, multiple, scale))


def _check(exported: Any, generator: Any, sizes: list[tuple[int, int]], *, seed: int = 0) -> float:
    import torch

    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    with torch.no_grad():
        for h, w in sizes:
            x = torch.rand(1, 1, h, w, generator=gen)
            expected = generator(x)
            got = exported(x)
            if tuple(got.shape) != tuple(expected.shape):
                raise ExportError(f"exported module returns shape {tuple(got.shape)} for a {h}x{w} input, "
                                  f"the generator {tuple(expected.shape)}")
            worst = max(worst, float((got - expected).abs().max()))
    return worst


def script_generator(generator: Any, *, scale: int, tolerance: float = 1e-4) -> tuple[Any, str, float]:
    """TorchScript version of ``generator`` (module doc); returns ``(module, method, max |difference|)``.

    Parameters
    ----------
    generator : torch.nn.Module
        Maps (B, 1, H, W) to (B, 1, H * scale, W * scale); put in eval mode on the CPU.
    scale : int
        Output pixels per input pixel (used by the padding wrapper of a traced module).
    tolerance : float
        Largest absolute difference from the eager generator accepted, in normalised intensity units.

    Returns
    -------
    module : torch.jit.ScriptModule
        The exported module, for any H, W.
    method : {"script", "trace+pad"}
        How it was made.
    difference : float
        Largest absolute difference from the eager output on two check sizes.

    Raises
    ------
    ExportError
        When neither scripting nor tracing reproduces the generator within ``tolerance``.
    """
    import torch

    generator = generator.eval().to("cpu")
    multiple = generator_multiple(generator)
    side = max(64, 2 * multiple)
    sizes = [(side, side), (side + multiple // 2 + 3, side + multiple + 5)]
    errors: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer warnings are expected here
        try:
            scripted = torch.jit.script(generator)
            difference = _check(scripted, generator, sizes)
            if difference <= tolerance:
                return scripted, "script", difference
            errors.append(f"script differs by {difference:.3g}")
        except Exception as err:  # torch.jit raises many types for unsupported Python
            errors.append(f"script failed ({type(err).__name__})")
        with torch.no_grad():
            traced = torch.jit.trace(generator, torch.rand(1, 1, side, side), check_trace=False)
        wrapped = _padded_wrapper(traced, multiple, scale)
        difference = _check(wrapped, generator, sizes)
    if difference > tolerance:
        raise ExportError(f"the traced generator differs from the eager one by {difference:.3g} "
                          f"(> {tolerance:g}); {'; '.join(errors)}")
    return wrapped, "trace+pad", difference


def export_torchscript(run_dir: str | Path, out: str | Path, *, which: str = "best") -> ExportResult:
    """Export a run's generator to ``out`` (TorchScript) and ``out`` with suffix ``.json``.

    Both files are written atomically; existing ones are replaced, so the caller decides first
    whether that is wanted.

    Parameters
    ----------
    run_dir : str or Path
        A training run folder (holding ``config.json`` and the weights).
    out : str or Path
        The TorchScript file to write (e.g. ``model.pt``); the sidecar is ``out`` with suffix ``.json``.
    which : {"best", "last"}
        Which saved generator to export.

    Returns
    -------
    ExportResult
        The two paths written, the method (``"script"`` or ``"trace+pad"``) and the largest absolute
        difference from the eager generator on the check inputs (normalised units).

    Raises
    ------
    RunError
        The run folder or its weights are missing.
    ExportError
        The exported module does not reproduce the generator.
    """
    import torch

    generator, config = load_generator(run_dir, which=which, device="cpu")
    module, method, difference = script_generator(generator, scale=config.scale)
    info = {
        "format": EXPORT_FORMAT,
        "preset": config.preset_name,
        "generator": config.generator_spec[0],
        "which": which,
        "method": method,
        "input": "float32 (B, 1, H, W), normalised (see normalization); any H, W",
        "output": f"float32 (B, 1, H*{config.scale}, W*{config.scale}), normalised",
        "scale": config.scale,
        "stride_multiple": generator_multiple(generator),
        "pixel_size_um": config.pixel_size_um,
        "output_pixel_size_um": config.pixel_size_um / config.scale if config.pixel_size_um else None,
        "normalization": config.normalization.model_dump(mode="json"),
        "normalization_policy": ("x_n = (x - low) / (high - low) per plane and channel; output = y_n * (high - low) + low; "
                                 "dataset mode: LQ parameters in, HQ parameters out; per_image mode: the input plane's own "
                                 "p_low/p_high percentiles in and out"),
        "max_abs_difference_vs_eager": difference,
        "torch": torch.__version__,
    }
    out = Path(out)
    extra = {"decongan_config.json": config.model_dump_json(indent=2), "decongan_export.json": json.dumps(info, indent=2)}
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream, still the portable format
        torch.jit.save(module, str(tmp), _extra_files=extra)
    sidecar = out.with_suffix(".json")
    write_json_atomic(sidecar, {"export": info, "run_config": json.loads(config.model_dump_json())})
    return ExportResult(out, sidecar, method, difference)


def load_exported(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load an exported module and its ``decongan_export.json`` (for tests and users)."""
    import torch

    extra = {"decongan_config.json": "", "decongan_export.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module, json.loads(extra["decongan_export.json"])


__all__ = ["EXPORT_FORMAT", "ExportError", "ExportResult", "export_torchscript", "load_exported", "script_generator"]
