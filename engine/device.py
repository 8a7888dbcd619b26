"""Pick the torch device: CUDA when present and asked for, CPU otherwise."""

from __future__ import annotations

from typing import Literal

DeviceName = Literal["auto", "cpu", "cuda"]


def resolve_device(name: str = "auto"):  # -> torch.device
    """Return a ``torch.device`` for ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    ValueError
        If CUDA was asked for explicitly but torch sees no CUDA device.
    """
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} was requested but torch {torch.__version__} sees no CUDA device; "
                "choose the CPU (device 'cpu') or the automatic choice ('auto'), or install a CUDA build of torch"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {name!r}: choose auto, cpu or cuda")
