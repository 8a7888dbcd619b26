"""Network weights as safetensors files: written atomically from the CPU, loaded strictly (never pickle)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from decongan.engine.learn.checkpoint.layout import RunError


def _state_dict_for_safetensors(module: Any) -> dict[str, Any]:
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in module.state_dict().items()}


def save_weights(module: Any, path: str | Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``module.state_dict()`` as a safetensors file, atomically (copied to the CPU first).

    Parameters
    ----------
    module : torch.nn.Module
        The network whose parameters and buffers are saved.
    path : str or Path
        The ``.safetensors`` file; an existing file is replaced (callers pass paths inside the run).
    metadata : mapping of str to str, optional
        Stored in the safetensors header.

    Returns
    -------
    Path
        ``path``.
    """
    from safetensors.torch import save_file

    from decongan.engine.outputs import atomic_path

    with atomic_path(path) as tmp:
        save_file(_state_dict_for_safetensors(module), str(tmp), metadata=dict(metadata or {}))
    return Path(path)


def load_weights(module: Any, path: str | Path, *, device: Any = "cpu") -> Any:
    """Load safetensors weights into ``module`` (strict: every key and shape must match).

    Parameters
    ----------
    module : torch.nn.Module
        The network, built with the architecture the weights were saved from.
    path : str or Path
        A ``.safetensors`` file.
    device : str or torch.device
        Where the tensors are loaded before they are copied into ``module``.

    Returns
    -------
    torch.nn.Module
        ``module`` itself, with the weights loaded.

    Raises
    ------
    RunError
        The file is missing or unreadable, or its weights do not fit ``module``.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: weights file not found")
    try:
        state = load_file(str(path), device=str(device))
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise RunError(f"{path}: cannot read the weights ({type(err).__name__}: {err})") from err
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise RunError(f"{path}: weights do not fit the model built from the stored preset ({err})") from err
    return module
