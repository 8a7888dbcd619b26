"""`decongan batch --cluster dask`: the same restored pixels and metrics.csv as one serial batch, one task per
file with the manifest written by the client alone, resuming, refusals, and the SLURM configuration file."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from scipy import ndimage

from decongan.app.cli import main
from decongan.engine.evaluate import cluster
from decongan.engine.evaluate.batch import MethodSpec, iter_batch, load_manifest
from decongan.engine.io import read_image
from decongan.engine.progress import Cancelled, CancelToken, drain
from decongan.engine.provenance import Provenance, Restored
from tests.app.tagan_folders import NAMES, write_tagan_folders

FAST = ["--iterations", "3", "--device", "cpu", "--formats", "png", "--dpi", "72"]


@pytest.fixture()
def dataset(shared_data, tmp_path):
    """Three real confocal inputs (64x64 crops, 20 nm pixels), their STED ground truths and a Gaussian PSF."""
    return write_tagan_folders(shared_data, tmp_path, crop=64, psf_sigma_px=2.0, psf_size=15)


def _pixels(out, name):
    image = read_image(out / "restored" / "RL_3_it_engine" / f"{name}.tif")
    assert image.data.dtype == np.float32
    return image.data.tobytes()


@pytest.mark.slow  # two batches with their reports (~20-40 s on 2 shared cores)
def test_a_local_dask_cluster_writes_the_same_files_as_one_serial_batch(dataset, monkeypatch, capsys):
    # 2 workers as threads of this process (processes=False): starting 2 worker processes that each import
    # torch takes ~15 s on 2 cores; the task, its pickling and the client-side manifest are the same
    monkeypatch.setattr(cluster, "LOCAL_PROCESSES", False)
    common = ["--gt", str(dataset / "gt"), "--psf", str(dataset / "psf.tif"), *FAST]
    serial, on_dask = dataset / "serial", dataset / "dask"
    assert main(["batch", str(dataset / "in"), "--out", str(serial), *common]) == 0
    capsys.readouterr()
    assert main(["batch", str(dataset / "in"), "--out", str(on_dask), *common, "--cluster", "dask", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "batch: restoring on a dask LocalCluster, 2 worker threads of this process, 1 thread each" in out
    assert "3 restored, 0 already done (skipped), 0 failed" in out
    for name in NAMES:
        assert _pixels(serial, name) == _pixels(on_dask, name)
    assert (serial / "metrics.csv").read_bytes() == (on_dask / "metrics.csv").read_bytes()
    manifest = json.loads((on_dask / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["entries"]) == 3
    assert {e["status"] for e in manifest["entries"].values()} == {"done"}
    # the serial batch reuses what the cluster made, and the cluster what the serial batch made
    assert main(["batch", str(dataset / "in"), "--out", str(on_dask), *common, "--no-compare"]) == 0
    assert "0 restored, 3 already done (skipped)" in capsys.readouterr().out
    assert main(["batch", str(dataset / "in"), "--out", str(serial), *common, "--no-compare",
                 "--cluster", "dask=synchronous"]) == 0
    assert "0 restored, 3 already done (skipped)" in capsys.readouterr().out


@pytest.mark.slow  # 2 worker processes that each import torch (~15-30 s on 2 shared cores)
def test_worker_processes_write_the_same_pixels_as_the_serial_batch(dataset, capsys):
    common = ["--psf", str(dataset / "psf.tif"), "--no-compare", *FAST]
    serial, on_dask = dataset / "serial", dataset / "dask"
    assert main(["batch", str(dataset / "in"), "--out", str(serial), *common]) == 0
    assert cluster.LOCAL_PROCESSES  # the default: worker processes (methods and reader pickled to them)
    assert main(["batch", str(dataset / "in"), "--out", str(on_dask), *common, "--cluster", "dask", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "dask LocalCluster, 2 worker processes, 1 thread each" in out and "3 restored, 0 already done" in out
    for name in NAMES:
        assert _pixels(serial, name) == _pixels(on_dask, name)


def smoothing(sigma: float, fail_on: str | None = None) -> MethodSpec:
    def run(image):
        if image.name == fail_on:
            raise RuntimeError("this method cannot restore it")
        data = ndimage.gaussian_filter(image.data.astype(np.float32), sigma)
        return Restored(data, Provenance(method=f"Gaussian {sigma}", backend="test", parameters={"sigma": sigma}))

    return MethodSpec(f"smooth {sigma}", run, {"sigma": sigma})


def _entries_without_times(out):
    entries = load_manifest(out)["entries"]
    drop = {"finished", "seconds", "provenance"}
    return {k: {f: v for f, v in e.items() if f not in drop} for k, e in entries.items()}


def test_synchronous_dask_runs_the_serial_steps_and_records_failures_by_file(dataset, tmp_path):
    inputs = sorted((dataset / "in").iterdir())
    (dataset / "in" / "broken.tif").write_bytes(inputs[0].read_bytes()[:300])
    inputs = sorted((dataset / "in").iterdir())
    methods = [smoothing(1.0), smoothing(2.0, fail_on=NAMES[1])]
    serial = drain(iter_batch(inputs, tmp_path / "serial", methods))
    on_dask = drain(iter_batch(inputs, tmp_path / "dask", methods, runner=cluster.synchronous_runner))
    statuses = [(i.input.name, i.method, i.status) for i in serial.items]
    assert statuses == [(i.input.name, i.method, i.status) for i in on_dask.items]
    assert [s for s in statuses if s[2] == "failed"] == [
        ("axonal_rings_train0.tif", "smooth 2.0", "failed"),
        ("broken.tif", "smooth 1.0", "failed"), ("broken.tif", "smooth 2.0", "failed")]
    assert _entries_without_times(tmp_path / "serial") == _entries_without_times(tmp_path / "dask")
    failed = load_manifest(tmp_path / "dask")["entries"]["axonal_rings_train0.tif::smooth 2.0"]
    assert failed["error"] == "axonal_rings_train0.tif: RuntimeError: this method cannot restore it"
    for name in NAMES:
        for method in ("smooth_1.0", "smooth_2.0"):
            a, b = (tmp_path / run / "restored" / method / f"{name}.tif" for run in ("serial", "dask"))
            assert a.exists() == b.exists() and (not a.exists() or read_image(a).data.tobytes()
                                                 == read_image(b).data.tobytes())


def test_a_task_that_never_ran_is_recorded_as_failed_and_a_cancelled_batch_resumes(dataset, tmp_path):
    inputs = sorted((dataset / "in").iterdir())

    def lost_worker(tasks):
        for index, task in enumerate(tasks):
            yield index, (OSError("worker lost") if index == 1 else cluster.synchronous_runner([task]).__next__()[1])

    result = drain(iter_batch(inputs, tmp_path / "out", [smoothing(1.0)], runner=lost_worker))
    assert [i.status for i in result.items] == ["done", "failed", "done"]
    assert result.failed[0].error == ("axonal_rings_train0.tif: the cluster could not run this file "
                                      "(OSError: worker lost)")
    again = drain(iter_batch(inputs, tmp_path / "out", [smoothing(1.0)], runner=cluster.synchronous_runner))
    assert [(i.input.name, i.status) for i in again.items] == [  # only the lost file is redone (finished ones first)
        ("axonal_rings_test0.tif", "skipped"), ("dendritic_factin_train804.tif", "skipped"),
        ("axonal_rings_train0.tif", "done")]

    cancel = CancelToken()
    closed = []

    def cancelling(tasks):
        try:
            for index, outcome in cluster.synchronous_runner(tasks):
                cancel.cancel()  # the user stops after the first file has finished
                yield index, outcome
        finally:
            closed.append(True)

    with pytest.raises(Cancelled):
        drain(iter_batch(inputs, tmp_path / "cancelled", [smoothing(1.0)], runner=cancelling, cancel=cancel))
    assert closed == [True]  # the runner was told to stop (a dask runner cancels the other tasks)
    assert list(load_manifest(tmp_path / "cancelled")["entries"]) == ["axonal_rings_test0.tif::smooth 1.0"]
    resumed = drain(iter_batch(inputs, tmp_path / "cancelled", [smoothing(1.0)], runner=cluster.synchronous_runner))
    assert [(i.input.name, i.status) for i in resumed.items] == [
        ("axonal_rings_test0.tif", "skipped"), ("axonal_rings_train0.tif", "done"),
        ("dendritic_factin_train804.tif", "done")]


def test_cluster_options_that_cannot_work_are_refused_before_anything_runs(dataset, capsys):
    base = ["batch", str(dataset / "in"), "--psf", str(dataset / "psf.tif"), *FAST]
    cases = [
        (["--workers", "2"], "--workers sizes the local cluster of --cluster dask; add --cluster dask"),
        (["--cluster", "dask", "--report-only"], "--cluster restores images; --report-only restores none"),
        (["--cluster", "spark"], "--cluster: cluster 'spark': the only cluster engine is dask"),
        (["--cluster", "dask", "--workers", "0"], "--cluster: the number of workers must be at least 1, got 0"),
        (["--cluster", "dask=tcp://h:8786", "--workers", "2"], "applies to a local cluster only"),
        (["--cluster", "dask=nowhere"], "is neither a scheduler address (tcp://HOST:PORT) nor a SLURM configuration"),
        (["--cluster", "dask", "--decon", "fiji"], "--cluster cannot run --decon fiji"),
        (["--cluster", f"dask={dataset / 'missing.toml'}"], f"{dataset / 'missing.toml'}: cannot read the SLURM"),
    ]
    for extra, message in cases:
        out = dataset / "out"
        assert main([*base, "--out", str(out), *extra]) == 1, extra
        assert message in capsys.readouterr().err, extra
        assert not out.exists()


def test_a_method_that_cannot_be_sent_to_workers_is_refused_before_the_cluster_starts():
    import threading

    lock = threading.Lock()  # an object no pickler can send

    def run(image):
        with lock:
            return image

    with pytest.raises(cluster.ClusterError) as info:
        cluster.check_portable([smoothing(1.0), MethodSpec("locked", run, {})])
    assert str(info.value).startswith("the method 'locked' cannot be sent to cluster workers (TypeError: ")
    assert str(info.value).endswith("; restore it without a cluster")
    cluster.check_portable([smoothing(1.0)], read=read_image)  # a plain method and reader go


def test_a_slurm_configuration_file_is_checked_and_passed_to_dask_jobqueue(tmp_path, monkeypatch):
    config = tmp_path / "slurm.toml"
    config.write_text('[slurm]\njobs = 4\ncores = 8\nmemory = "32GB"\nwalltime = "04:00:00"\n'
                      'job_extra_directives = ["--gres=gpu:1"]\n')
    spec = cluster.parse_cluster(f"dask={config}")
    assert spec.kind == "slurm" and spec.slurm == {"jobs": 4, "cores": 8, "memory": "32GB", "walltime": "04:00:00",
                                                    "job_extra_directives": ["--gres=gpu:1"], "processes": 8}
    assert cluster.describe(spec) == (f"dask-jobqueue SLURMCluster from {config}: 4 job(s) of 8 cores, 32GB, "
                                      "8 worker process(es) each")
    made = {}

    class FakeSLURMCluster:  # dask-jobqueue is not installed here: the options it would receive are checked
        def __init__(self, **kwargs):
            made["kwargs"] = kwargs

        def scale(self, *, jobs):
            made["jobs"] = jobs

    monkeypatch.setitem(sys.modules, "dask_jobqueue", types.SimpleNamespace(SLURMCluster=FakeSLURMCluster))
    assert isinstance(cluster.start_slurm_cluster(spec.slurm, config=config), FakeSLURMCluster)
    assert made == {"kwargs": {"cores": 8, "memory": "32GB", "walltime": "04:00:00",
                               "job_extra_directives": ["--gres=gpu:1"], "processes": 8}, "jobs": 4}
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # not installed
    with pytest.raises(cluster.ClusterError, match=r"slurm.toml: needs dask-jobqueue, which is not installed "
                                                   r"\(pip install 'decongan\[hpc\]'\)"):
        cluster.start_slurm_cluster(spec.slurm, config=config)
    for text, message in [
        ('[slurm]\njobs = 2\ncores = 4\nmemory = "8GB"\nwaltime = "1:00:00"\n', "unknown key(s) waltime in [slurm]"),
        ('[slurm]\ncores = 4\nmemory = "8GB"\n', "[slurm] jobs must be a whole number of at least 1, got None"),
        ('[slurm]\njobs = 2\ncores = 0\nmemory = "8GB"\n', "[slurm] cores must be a whole number of at least 1"),
        ('[slurm]\njobs = 2\ncores = 4\n', '[slurm] memory must be given as text, e.g. memory = "32GB"'),
        ('[pbs]\njobs = 2\n', "expected one [slurm] table, found ['pbs']"),
        ('[slurm\n', "not a valid TOML file"),
    ]:
        config.write_text(text)
        with pytest.raises(cluster.ClusterError) as info:
            cluster.read_slurm_config(config)
        assert str(info.value).startswith(f"{config}: ") and message in str(info.value), text
