"""One exception base: every error class the engine defines derives from DeconganError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import decongan.engine as engine_pkg
from decongan.engine.errors import DeconganError
from decongan.engine.progress import Cancelled


def _engine_modules():
    for info in pkgutil.walk_packages(engine_pkg.__path__, prefix="decongan.engine."):
        yield importlib.import_module(info.name)


def test_every_engine_exception_derives_from_the_base():
    found, outside = [], []
    for module in _engine_modules():
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, BaseException):
                continue
            if issubclass(cls, Warning) or cls is Cancelled:  # warnings and cancellation are not errors
                continue
            found.append(cls.__qualname__)
            if not issubclass(cls, DeconganError):
                outside.append(f"{module.__name__}.{cls.__qualname__}")
    assert not outside, f"engine errors without the DeconganError base: {outside}"
    assert {"ImageReadError", "RegistrationError", "RunError", "BatchError", "ComparisonError"} <= set(found)


def test_base_carries_path_and_value_and_keeps_builtin_types():
    from decongan.engine.io import ImageReadError
    from decongan.engine.learn.models.registry import UnknownModelError

    err = ImageReadError("/data/a.tif", "not an image")
    assert isinstance(err, ValueError) and isinstance(err, DeconganError)
    assert str(err) == "/data/a.tif: not an image" and err.path.name == "a.tif"
    with pytest.raises(KeyError):
        raise UnknownModelError("unknown model 'x'")
    custom = DeconganError("NA 1.6 exceeds the immersion index 1.515", value=1.6)
    assert custom.value == 1.6 and custom.path is None


def test_cancelled_is_not_an_error():
    assert not issubclass(Cancelled, DeconganError)


@pytest.mark.parametrize("package", ["decongan.engine", "decongan.engine.optics", "decongan.engine.learn",
                                     "decongan.engine.evaluate", "decongan.engine.metrics"])
def test_public_api_names_resolve(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_importing_the_engine_packages_stays_cheap():
    import subprocess
    import sys

    code = ("import sys, decongan.engine, decongan.engine.optics, decongan.engine.learn, decongan.engine.evaluate; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'scipy', 'skimage') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
