"""Shared fixtures: the real data in ../shared/data and the Fiji goldens in ../shared/golden/fiji.

Set ``DECONGAN_SHARED`` to point elsewhere. Tests that need the shared folder skip with a reason
when it is absent (CI always has it beside the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Qt must never try to open a real display in tests (and must not abort without one).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DECONGAN_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_weights_cache(tmp_path_factory):
    """Tests never see (or fill) the user's weights cache: ``DECONGAN_CACHE`` points at an empty folder."""
    previous = os.environ.get("DECONGAN_CACHE")
    os.environ["DECONGAN_CACHE"] = str(tmp_path_factory.mktemp("decongan-cache"))
    yield
    if previous is None:
        os.environ.pop("DECONGAN_CACHE", None)
    else:
        os.environ["DECONGAN_CACHE"] = previous


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set DECONGAN_SHARED to the folder holding data/ and golden/)")
    return path


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    path = SHARED / "golden" / "fiji"
    if not path.is_dir():
        pytest.skip(f"Fiji goldens not found at {path} (set DECONGAN_SHARED)")
    return path


@pytest.fixture
def one_torch_thread():
    """2 shared cores: one torch thread avoids oversubscription (and is faster here); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
