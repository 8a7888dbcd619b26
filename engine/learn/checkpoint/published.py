"""Import official Real-ESRGAN / BasicSR checkpoints (and our own plain state dicts) into our models.

Official files (e.g. ``RealESRGAN_x4plus.pth``, ``RealESRGAN_x2plus.pth``, ``RealESRNet_x4plus.pth``,
``RealESRGAN_x4plus_netD.pth``) are dicts with ``params_ema`` and/or ``params`` holding the state dict of
a 3-channel (RGB) network. We prefer ``params_ema`` (the EMA weights BasicSR validates with), else
``params``, else treat the file as a bare state dict. ``.pth`` files are read with
``torch.load(weights_only=True)``; ``.safetensors`` files with safetensors.

RGB -> grey adaptation (exact for grey-replicated input)
    * an input conv whose checkpoint kernel has 3x the input channels of ours is folded by *summing*
      the kernels over the colour axis. With pixel-unshuffle (RRDBNet x1/x2) the input channel index is
      ``colour * r**2 + k``, so the sum runs over ``colour`` for each sub-pixel ``k``. A grey image g fed
      to the folded conv gives exactly what the RGB conv gives on (g, g, g).
    * an output conv whose checkpoint has 3x our output channels is folded by *averaging* weights and
      biases over colour, so the grey output is the mean of the RGB outputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from decongan.engine.errors import DeconganError

__all__ = ["CheckpointImportError", "ImportReport", "import_checkpoint", "read_checkpoint_state"]

_PREFERRED_KEYS = ("params_ema", "params", "state_dict", "model")


class CheckpointImportError(DeconganError, ValueError):
    """A checkpoint cannot be read or does not fit the model; the message says which keys and why."""


@dataclass
class ImportReport:
    """What :func:`import_checkpoint` did.

    Attributes
    ----------
    source_key : str
        ``"params_ema"``, ``"params"``, ... or ``"(bare state dict)"``.
    loaded : list of str
        Parameters copied unchanged.
    adapted : dict of str to str
        Parameters folded from RGB to grey, with a description.
    missing : list of str
        Model parameters absent from the checkpoint (left at their initial values).
    unexpected : list of str
        Checkpoint entries the model has no place for (ignored).
    """

    source_key: str
    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One human-readable paragraph."""
        parts = [f"{len(self.loaded) + len(self.adapted)} tensors loaded from {self.source_key!r}"]
        if self.adapted:
            parts.append(f"adapted RGB->grey: {', '.join(sorted(self.adapted))}")
        if self.missing:
            parts.append(f"missing from checkpoint: {', '.join(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected in checkpoint: {', '.join(self.unexpected)}")
        return "; ".join(parts)


def read_checkpoint_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """Read a state dict from ``path``: ``params_ema`` > ``params`` > ``state_dict`` > ``model`` > bare.

    Returns
    -------
    state : dict of str to Tensor
        With a leading ``module.`` (DataParallel) stripped from every key.
    source_key : str
        Which entry was used.

    Raises
    ------
    CheckpointImportError
        Missing or unreadable file, or no tensors inside.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointImportError(f"checkpoint file {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: object = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt files raise many different types
        raise CheckpointImportError(f"cannot read checkpoint {str(path)!r}: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise CheckpointImportError(f"{str(path)!r} holds a {type(raw).__name__}, not a state dict")
    source_key = "(bare state dict)"
    for key in _PREFERRED_KEYS:
        if isinstance(raw.get(key), Mapping):
            raw, source_key = raw[key], key
            break
    state = {str(k).removeprefix("module."): v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointImportError(
            f"{str(path)!r} contains no tensors (top-level keys: {', '.join(map(str, raw)) or 'none'})"
        )
    return state, source_key


def _fold(name: str, theirs: torch.Tensor, ours: torch.Tensor) -> tuple[torch.Tensor, str] | None:
    """Fold an RGB tensor to grey when the shapes say so; None when no rule applies."""
    if theirs.ndim == 4 and ours.ndim == 4 and theirs.shape[0] == ours.shape[0] and theirs.shape[2:] == ours.shape[2:]:
        if theirs.shape[1] == 3 * ours.shape[1]:
            o, i3, kh, kw = theirs.shape
            folded = theirs.reshape(o, 3, i3 // 3, kh, kw).sum(dim=1)
            return folded, f"input kernels summed over RGB ({i3} -> {i3 // 3} input channels)"
    if theirs.ndim >= 1 and theirs.ndim == ours.ndim and theirs.shape[1:] == ours.shape[1:]:
        if theirs.shape[0] == 3 * ours.shape[0]:
            folded = theirs.reshape(3, ours.shape[0], *theirs.shape[1:]).mean(dim=0)
            return folded, f"output {'kernels' if theirs.ndim == 4 else 'biases'} averaged over RGB"
    return None


def import_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    allow_missing: bool = False,
    allow_unexpected: bool = True,
) -> ImportReport:
    """Load an official BasicSR/Real-ESRGAN (or our own) checkpoint into ``model``, folding RGB to grey.

    Parameters
    ----------
    model : nn.Module
        Destination (e.g. ``create_model("s5_rrdbnet", scale=4)``), modified in place.
    path : path
        ``.pth`` (torch.load with ``weights_only=True``) or ``.safetensors``.
    allow_missing : bool
        Accept model parameters absent from the checkpoint (they keep their initial values).
    allow_unexpected : bool
        Accept (and report) checkpoint entries the model has no place for.

    Returns
    -------
    ImportReport

    Raises
    ------
    CheckpointImportError
        Unreadable file; a tensor whose shape neither matches nor folds (e.g. a x4 checkpoint into a
        x2 model: the message names the key and both shapes); missing keys without ``allow_missing``;
        unexpected keys without ``allow_unexpected``.
    """
    state, source_key = read_checkpoint_state(path)
    own = model.state_dict()
    report = ImportReport(source_key=source_key)
    new_state: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    for name, target in own.items():
        if name not in state:
            report.missing.append(name)
            continue
        theirs = state[name]
        if tuple(theirs.shape) == tuple(target.shape):
            new_state[name] = theirs.to(target.dtype)
            report.loaded.append(name)
            continue
        folded = _fold(name, theirs, target)
        if folded is None:
            mismatched.append(f"{name}: checkpoint {tuple(theirs.shape)} vs model {tuple(target.shape)}")
        else:
            new_state[name] = folded[0].to(target.dtype)
            report.adapted[name] = folded[1]
    report.unexpected = sorted(set(state) - set(own))
    where = f"checkpoint {str(path)!r} ({source_key}) -> {type(model).__name__}"
    if mismatched:
        hint = ""
        if any(m.startswith("conv_first.weight") for m in mismatched):
            hint = (
                " (RRDBNet's conv_first input width encodes the scale: 3/12/48 RGB or 1/4/16 grey channels "
                "for x4/x2/x1; build the model with the checkpoint's scale)"
            )
        raise CheckpointImportError(f"{where}: incompatible shapes: {'; '.join(mismatched)}{hint}")
    if report.missing and not allow_missing:
        raise CheckpointImportError(
            f"{where}: {len(report.missing)} model parameter(s) missing from the checkpoint: "
            f"{', '.join(report.missing[:8])}{' ...' if len(report.missing) > 8 else ''}"
            + (f"; checkpoint has instead: {', '.join(report.unexpected[:8])}" if report.unexpected else "")
        )
    if report.unexpected and not allow_unexpected:
        raise CheckpointImportError(f"{where}: unexpected checkpoint entries: {', '.join(report.unexpected)}")
    model.load_state_dict(new_state, strict=False)
    return report
