"""Explicit model registry (timm style).

Every model family module registers its constructors with :func:`register_model`; the package
``engine.learn.models`` imports those modules explicitly (no directory scanning), so the registry is
complete as soon as ``engine.learn.models`` is imported.

Examples
--------
>>> from decongan.engine.learn.models import create_model, list_models
>>> "s1_resunet" in list_models()
True
>>> net = create_model("s1_resunet", base_channels=8)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

from decongan.engine.errors import DeconganError

ModelFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=ModelFactory)

_REGISTRY: dict[str, ModelFactory] = {}


class UnknownModelError(DeconganError, KeyError):
    """Raised by :func:`create_model` for a name that was never registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def register_model(name: str) -> Callable[[F], F]:
    """Decorator that registers a model class or factory under ``name``.

    Parameters
    ----------
    name : str
        Registry key, lower case, e.g. ``"s5_rrdbnet"``.

    Raises
    ------
    ValueError
        If ``name`` is empty or already registered (two models may never share a name).
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"model name must be a non-empty string, got {name!r}")

    def decorator(factory: F) -> F:
        if name in _REGISTRY:
            previous = _REGISTRY[name]
            raise ValueError(
                f"model name {name!r} is already registered by "
                f"{previous.__module__}.{previous.__qualname__}; pick another name"
            )
        _REGISTRY[name] = factory
        return factory

    return decorator


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the model registered as ``name`` with keyword arguments ``kwargs``.

    Parameters
    ----------
    name : str
        A registered model name (see :func:`list_models`).
    **kwargs
        Passed to the model's class or factory (channels, widths, scale...).

    Returns
    -------
    nn.Module
        The new, randomly initialised model.

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered; the message lists the available names.
    TypeError
        If ``kwargs`` holds an argument the model does not accept (message names the model).
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; available models: {', '.join(list_models()) or '(none registered)'}"
        ) from None
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise TypeError(f"cannot build model {name!r} with arguments {sorted(kwargs)}: {exc}") from exc


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return sorted(_REGISTRY)


def model_factory(name: str) -> ModelFactory:
    """The class or function registered as ``name`` (e.g. to inspect its signature).

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; available models: {', '.join(list_models())}") from None


def is_registered(name: str) -> bool:
    """True when ``name`` is a registered model."""
    return name in _REGISTRY
