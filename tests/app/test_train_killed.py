"""A training child killed with SIGKILL before its first checkpoint continues with one command,
and leaves no temporaries behind (issue 10)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from decongan.app.cli import main
from decongan.engine.learn.checkpoint import LOCK_NAME, acquire_run_lock, has_checkpoint, read_run_lock
from tests.fmd_pairs import TINY_S1_CLI, write_fmd_pairs

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")]

ITERATIONS = 3


def _argv(folders: Path, out: Path) -> list[str]:
    # checkpoints only at the end: a kill during the iterations is always before the first one
    return ["train", "--preset", "s1", "--lq", str(folders / "lq"), "--hq", str(folders / "hq"), "--out", str(out),
            "--iterations", str(ITERATIONS), "--val-every", "1000", "--checkpoint-every", "1000", "--log-every", "1",
            "--val-names", "fov03", *TINY_S1_CLI]


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".partial" in p.name or ".old-" in p.name]


@pytest.fixture(scope="module")
def killed(shared_data, tmp_path_factory):
    """A run folder whose ``decongan train`` child was SIGKILLed during its first iterations."""
    root = tmp_path_factory.mktemp("killed_train")
    write_fmd_pairs(shared_data, root, start=160, size=96)
    out = root / "run"
    argv = [sys.executable, "-m", "decongan.app.cli", *_argv(root, out)]
    argv[argv.index("--iterations") + 1] = "100000"  # it must still be training when killed
    process = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        for line in process.stdout:  # config.json and progress.jsonl are written, iterations under way
            if '"loss_g"' in line or time.monotonic() > deadline:
                break
        pid = process.pid
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert (out / "config.json").is_file() and not has_checkpoint(out)
    assert read_run_lock(out)["pid"] == pid  # the dead process's lock is still there
    # what a kill during a checkpoint / best-model / config write leaves behind (hidden temporaries)
    (out / "checkpoints" / ".last.partial-k1ll3d").mkdir(parents=True)
    (out / "checkpoints" / ".last.partial-k1ll3d" / "g.safetensors").write_bytes(b"\0" * 4096)
    (out / ".best.partial-abc123").mkdir()
    (out / ".config.x1y2z3.partial.json").write_text("{")
    return root, out


def _copy(killed, tmp_path) -> tuple[Path, Path]:
    root, out = killed
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return root, copy


def test_resume_after_a_kill_before_the_first_checkpoint_starts_the_run_again(killed, tmp_path, capsys):
    root, out = _copy(killed, tmp_path)
    assert main([*_argv(root, out), "--resume"]) == 0
    err_and_out = capsys.readouterr()
    assert "no checkpoint to resume from" in err_and_out.err
    assert "removed 3 temporary" in err_and_out.err
    capsys.readouterr()
    state = json.loads((out / "checkpoints" / "last" / "state.json").read_text())
    assert state["iteration"] == ITERATIONS and _temporaries(out) == [] and not (out / LOCK_NAME).exists()


def test_a_plain_start_after_a_kill_before_the_first_checkpoint_restarts_the_run(killed, tmp_path, capsys):
    root, out = _copy(killed, tmp_path)
    assert main(_argv(root, out)) == 0
    err = capsys.readouterr().err
    assert "had no checkpoint" in err and "started again" in err
    state = json.loads((out / "checkpoints" / "last" / "state.json").read_text())
    assert state["iteration"] == ITERATIONS and _temporaries(out) == [] and not (out / LOCK_NAME).exists()
    # now it has a checkpoint: a plain start is refused and names --resume; the run is untouched
    before = (out / "progress.jsonl").read_text()
    assert main(_argv(root, out)) == 1
    assert "(it holds a run: resume the run (--resume) to continue it)" in capsys.readouterr().err
    assert (out / "progress.jsonl").read_text() == before


def test_a_folder_in_use_by_a_live_process_is_refused(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "hostname": socket.gethostname(),
                                             "started": "2025-01-01T00:00:00+00:00"}))
    with pytest.raises(Exception, match=rf"in use by process {os.getppid()} on this machine"):
        acquire_run_lock(out)
    (out / LOCK_NAME).write_text(json.dumps({"pid": 1, "hostname": "elsewhere.example", "started": "x"}))
    with pytest.raises(Exception, match=r"on elsewhere.example .*delete .*\.lock"):
        acquire_run_lock(out)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "hostname": socket.gethostname()}))
    with acquire_run_lock(out):  # a dead process's lock is taken over
        assert read_run_lock(out)["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()
