"""``decongan train`` under ``torchrun --standalone --nproc-per-node 2`` (gloo, CPU, tiny S1): the first
iteration's losses equal one process's with the same seed and global batch, only rank 0 writes the run
folder, and the run resumes with one process, continuing its iteration count; the launcher variables."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from decongan.app.cli import main
from decongan.engine.learn.training import distributed
from tests.fmd_pairs import TINY_S1_CLI, write_fmd_pairs


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _events(run, kind):
    lines = (json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines())
    return [e for e in lines if e.get("event") == kind]


@pytest.mark.slow  # two torchrun processes importing torch, plus two single-process runs (~30-60 s on 2 cores)
def test_torchrun_two_processes_match_one_write_once_and_resume_with_one(shared_data, tmp_path, repo_root):
    write_fmd_pairs(shared_data, tmp_path, start=160, size=128)
    common = ["train", "--preset", "s1", "--lq", str(tmp_path / "lq"), "--hq", str(tmp_path / "hq"), "--seed", "3",
              "--val-every", "100", "--log-every", "1", "--val-names", "fov03", *TINY_S1_CLI]
    assert TINY_S1_CLI[TINY_S1_CLI.index("--batch-size") + 1] == "2"  # a global batch of 2: one patch per process
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert main([*common, "--out", str(single), "--iterations", "2"]) == 0

    logs = tmp_path / "writes"
    logs.mkdir()
    launched = subprocess.run(
        [sys.executable, "-P", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(repo_root / "tests" / "ddp_train_audit.py"), str(logs), str(ddp), *common, "--out", str(ddp),
         "--iterations", "3", "--checkpoint-every", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stderr[-3000:]
    # the log: one process prints (one "done" line), and it states the world size and the global batch
    assert launched.stdout.count('"event": "done"') == 1
    assert "2 process(es), global batch 2 (1 per process)" in launched.stdout
    # one checkpoint writer: rank 1 never wrote into the run folder; rank 0 wrote its checkpoints
    assert (logs / "writes-rank1.txt").read_text() == ""
    rank0 = (logs / "writes-rank0.txt").read_text()
    for written in ("/checkpoints/last\n", "/config.json\n", "/best\n", "/progress.jsonl\n"):
        assert written in rank0, written

    first_single, first_ddp = _events(single, "train")[0], _events(ddp, "train")[0]
    assert first_single["iteration"] == first_ddp["iteration"] == 1
    for key in ("loss_g", "loss_d", "mse", "ssim", "adv_g", "d_real", "d_fake"):
        assert abs(first_ddp[key] - first_single[key]) <= 1e-5, (key, first_ddp[key], first_single[key])
    config = json.loads((ddp / "config.json").read_text())
    assert config["distributed"] == {"world_size": 2, "global_batch_size": 2, "per_process_batch_size": 1,
                                     "backend": "gloo", "segments": [{"start_iteration": 0, "world_size": 2}]}
    assert _events(ddp, "distributed") == [{"event": "distributed", "iteration": 0, "world_size": 2,
                                            "global_batch_size": 2, "per_process_batch_size": 1, "backend": "gloo"}]

    # resume the 2-process run with 1 process: the iterations continue (4, 5) and the losses stay finite
    assert main(["train", "--out", str(ddp), "--resume", "--iterations", "5", "--device", "cpu", "--threads", "1"]) == 0
    train = _events(ddp, "train")
    assert [e["iteration"] for e in train] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(e[k]) for e in train for k in ("loss_g", "loss_d"))
    config = json.loads((ddp / "config.json").read_text())
    assert config["distributed"]["world_size"] == 1 and config["distributed"]["per_process_batch_size"] == 2
    assert config["distributed"]["segments"] == [{"start_iteration": 0, "world_size": 2},
                                                 {"start_iteration": 3, "world_size": 1}]
    state = json.loads((ddp / "checkpoints" / "last" / "state.json").read_text())
    assert state["iteration"] == 5


@pytest.mark.slow  # two torchrun processes importing torch (~20-40 s on 2 cores)
def test_ctrl_c_in_one_process_stops_both_at_the_same_iteration_with_one_checkpoint(shared_data, tmp_path,
                                                                                     repo_root):
    import os
    import signal
    import time

    write_fmd_pairs(shared_data, tmp_path, start=160, size=128)
    run, logs = tmp_path / "run", tmp_path / "writes"
    logs.mkdir()
    command = [sys.executable, "-P", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(repo_root / "tests" / "ddp_train_audit.py"), str(logs), str(run), "train", "--preset", "s1",
               "--lq", str(tmp_path / "lq"), "--hq", str(tmp_path / "hq"), "--out", str(run), "--iterations", "100000",
               "--val-every", "100000", "--log-every", "1", "--val-names", "fov03", *TINY_S1_CLI]
    launched = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "progress.jsonl").exists() or len(_events(run, "train")) < 2:
            assert launched.poll() is None and time.monotonic() < deadline, launched.communicate()[1][-3000:]
            time.sleep(0.5)
        os.kill(int((logs / "pid-rank1").read_text()), signal.SIGINT)  # only process 1 is asked to stop
        _, err = launched.communicate(timeout=300)  # process 0 stops too instead of waiting for it forever
    finally:
        if launched.poll() is None:
            launched.kill()
    assert "stopping after the current iteration" in err
    last = _events(run, "train")[-1]["iteration"]
    assert _events(run, "cancelled") == [{"event": "cancelled", "iteration": last}]
    assert json.loads((run / "checkpoints" / "last" / "state.json").read_text())["iteration"] == last
    assert (logs / "writes-rank1.txt").read_text() == ""
    assert main(["train", "--out", str(run), "--resume", "--iterations", str(int(last) + 1), "--device", "cpu",
                 "--threads", "1"]) == 0
    assert [e["iteration"] for e in _events(run, "train")][-2:] == [last, last + 1]


def test_the_launcher_variables_and_what_is_refused_before_any_group_is_made():
    assert distributed.launch_from_environment({}) is None
    assert distributed.launch_from_environment({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) is None
    assert distributed.launch_from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == \
        distributed.Launch(3, 4, 1, "torchrun")
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"}
    assert distributed.launch_from_environment(slurm) == distributed.Launch(5, 8, 1, "srun")
    assert distributed.launch_from_environment({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) is None  # one sbatch task
    with pytest.raises(distributed.DistributedError, match="give rank 4 of 4 processes"):
        distributed.launch_from_environment({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(distributed.DistributedError, match="the torchrun variables are not whole numbers"):
        distributed.launch_from_environment({"RANK": "a", "WORLD_SIZE": "2"})
    with pytest.raises(distributed.DistributedError) as info:
        distributed.init_from_environment("cpu", slurm)
    assert str(info.value) == ("8 processes were launched (srun) but MASTER_ADDR and MASTER_PORT are not set: set "
                               "MASTER_ADDR to the first task's host name and MASTER_PORT to a free port (torchrun "
                               "sets both itself)")
    assert not torch.distributed.is_initialized()
    context = distributed.DistributedContext(1, 2, 1, "gloo", "cpu")
    with pytest.raises(distributed.DistributedError, match="the batch size 3 cannot be split evenly over 2 processes"):
        distributed.check_batch_split(3, context)
    batch = {"lq": torch.arange(8.0).reshape(4, 1, 1, 2).numpy()}
    assert distributed.shard_batch(batch, context)["lq"].ravel().tolist() == [4.0, 5.0, 6.0, 7.0]  # rows 2-3
    assert distributed.describe(None, 4) == {"world_size": 1, "global_batch_size": 4, "per_process_batch_size": 4,
                                             "backend": None}
