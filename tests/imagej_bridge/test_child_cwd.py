"""The Fiji worker child never imports from the caller's working directory (issue 10)."""

from __future__ import annotations

from decongan.imagej_bridge import FijiClient
from tests.poisoned_cwd import make_poisoned_folder


def test_the_worker_starts_from_a_folder_that_shadows_the_packages(system_ij1, tmp_path, monkeypatch):
    monkeypatch.chdir(make_poisoned_folder(tmp_path / "poisoned"))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with FijiClient(system_ij1, display="headless", timeout=120) as client:
        info = client.start()
        assert info, "the worker reported nothing at start"
        assert client.ping() >= 0.0
