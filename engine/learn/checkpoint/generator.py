"""A trained generator back from its run folder: the architecture from the stored preset, the best or last weights."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from decongan.engine.learn.checkpoint.layout import (
    BEST,
    GENERATOR_NAME,
    LAST,
    STATE_NAME,
    RunConfig,
    RunError,
    _recover_dir,
    best_dir,
    checkpoint_dir,
    load_run_config,
)
from decongan.engine.learn.checkpoint.state import has_checkpoint
from decongan.engine.learn.checkpoint.weights import load_weights


def generator_kwargs(name: str, kwargs: Mapping[str, Any], scale: int) -> dict[str, Any]:
    """Constructor arguments of generator ``name``: the preset's kwargs plus ``scale`` when it takes one.

    The presets state the grid change once (``Preset.scale``); the system builder passes it to
    generators whose constructor has a ``scale`` argument, and so does this function.

    Parameters
    ----------
    name : str
        A registered generator name (``engine.learn.models``).
    kwargs : mapping
        The preset's generator arguments (an explicit ``"scale"`` is kept).
    scale : int
        Output pixels per input pixel along Y and X (1 for same-grid restoration).

    Returns
    -------
    dict
    """
    import inspect

    from decongan.engine.learn.models import model_factory

    out = dict(kwargs)
    try:
        accepts = "scale" in inspect.signature(model_factory(name)).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts and "scale" not in out:
        out["scale"] = int(scale)
    return out


def build_generator(config: RunConfig) -> Any:
    """The generator described by ``config`` (untrained weights)."""
    from decongan.engine.learn.models import create_model

    name, kwargs = config.generator_spec
    return create_model(name, **generator_kwargs(name, kwargs, config.scale))


def generator_weights_path(run_dir: str | Path, which: str = BEST) -> Path:
    """The path of the generator weights of ``which``: the best validated model or the last checkpoint.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    which : {"best", "last"}
        ``"best"``: ``best/generator.safetensors``; ``"last"``: the generator file of the last checkpoint.

    Returns
    -------
    Path
        An existing ``.safetensors`` file.

    Raises
    ------
    RunError
        That model does not exist yet (the message says when the other one does), or ``which`` is unknown.
    """
    run_dir = Path(run_dir)
    if which == BEST:
        _recover_dir(best_dir(run_dir))
        path = best_dir(run_dir) / f"{GENERATOR_NAME}.safetensors"
        if not path.is_file():
            hint = " (the run has a 'last' checkpoint: use it instead, which='last')" if has_checkpoint(run_dir) else ""
            raise RunError(f"{run_dir}: no best model yet (no validation has run){hint}")
        return path
    if which == LAST:
        last = checkpoint_dir(run_dir)
        _recover_dir(last)
        if not (last / STATE_NAME).is_file():
            raise RunError(f"{run_dir}: no 'last' checkpoint (training has not saved one yet)")
        state = json.loads((last / STATE_NAME).read_text(encoding="utf-8"))
        key = str(state.get("generator_key", GENERATOR_NAME))
        path = last / f"{key}.safetensors"
        if not path.is_file():
            raise RunError(f"{last}: the generator weights {path.name} are missing")
        return path
    raise RunError(f"unknown model choice {which!r}: use 'best' or 'last'")


def load_generator(run_dir: str | Path, *, which: str = BEST, device: Any = "cpu") -> tuple[Any, RunConfig]:
    """Rebuild a run's generator with its trained weights, in eval mode.

    Parameters
    ----------
    run_dir : path
        A run folder written by training (or a shipped model folder with the same layout).
    which : {"best", "last"}
        The best validated generator or the latest checkpoint.
    device : str or torch.device

    Returns
    -------
    generator : nn.Module
    config : RunConfig
    """
    import torch

    config = load_run_config(run_dir)
    path = generator_weights_path(run_dir, which)
    generator = build_generator(config)
    load_weights(generator, path, device="cpu")
    device = torch.device(device) if not isinstance(device, torch.device) else device
    return generator.to(device).eval(), config

