"""Worker life cycle: clean shutdown (also at interpreter exit, without close()), out-of-memory recovery,
headless ImageJ 1.x with a reflected command table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from decongan.imagej_bridge import FijiClient, errors

from .conftest import folder_backend

REPO = Path(__file__).resolve().parents[2]


def gone(pid: int, within: float = 10.0) -> bool:
    """True once ``pid`` no longer exists (or is a zombie of an exited process)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().split(")")[-1].split()[0] == "Z":
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks processes through /proc")
def test_interpreter_exit_without_close_does_not_hang(system_ij1):
    """ImageJ leaves non-daemon threads; the worker must still end when the caller exits."""
    script = textwrap.dedent("""
        import json
        from decongan.imagej_bridge import FijiClient
        client = FijiClient(display="auto")
        client.run_macro('run("Gaussian Blur...", "sigma=1");', {"x": __import__("numpy").ones((8, 8), "float32")})
        print(json.dumps({"pid": client.pid, "xvfb": client.info.get("xvfb_pid")}), flush=True)
        # no close(): interpreter exit must shut the worker down
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    pids = json.loads(done.stdout.strip().splitlines()[-1])
    assert time.monotonic() - t0 < 60
    assert gone(pids["pid"]), "the worker survived its caller"
    if pids["xvfb"]:
        assert gone(pids["xvfb"]), "Xvfb survived its worker"


def test_close_ends_the_worker_and_removes_the_transfer_folder(ij_folder):
    client = FijiClient(folder_backend(ij_folder), display="headless")
    info = client.start()
    folder = client.transfer_dir
    assert folder.is_dir() and info["headless"]
    client.close()
    assert gone(info["pid"])
    assert not folder.exists()
    with pytest.raises(errors.BridgeError, match="closed"):
        client.ping()


def test_out_of_memory_is_reported_and_the_worker_replaced(system_ij1):
    client = FijiClient(system_ij1, display="headless", max_heap="48m")
    try:
        client.start()
        assert client.info["max_heap_mb"] <= 64
        with pytest.raises(errors.WorkerOutOfMemory, match="max_heap"):
            client.echo({"big": np.zeros((3, 2048, 2048), np.float32)})  # 48 MB of pixels
        small = np.arange(6, dtype=np.float32).reshape(2, 3)
        np.testing.assert_array_equal(client.echo({"small": small})["small"].data, small)
        assert client.starts == 2
    finally:
        client.close()


def test_headless_imagej1_uses_the_reflected_command_table(ij_folder):
    """Without a display: IJ_Props.txt + built-in commands + plugins.config fill ImageJ's table."""
    client = FijiClient(folder_backend(ij_folder), display="headless")
    try:
        info = client.start()
        assert info["headless"] and info["display"] == "headless"
        assert info["commands"] > 400  # 335 from IJ_Props.txt, 107 built-in, 2 test plugins (1.53t)
        image = np.arange(12, dtype=np.float32).reshape(3, 4)
        # built-in command (not in IJ_Props.txt) and a plugin that reads its own options
        out = client.run_macro('run("Invert"); run("Add Constant", "value=1");', {"x": image}, ["x"])
        np.testing.assert_array_equal(out.images["x"].data, (image.max() + image.min() - image) + 1)
        # a command that opens a dialog: a clear NeedsDisplay error, not a silent no-op
        with pytest.raises(errors.NeedsDisplay, match="Xvfb"):
            client.run_macro('run("Duplicate...", "title=copy");', {"x": image}, ["copy"])
    finally:
        client.close()
