"""Resumable batch: manifest hashes, skip finished work, redo what changed, keep going after a failure."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from scipy import ndimage

from decongan.engine.evaluate.batch import (
    BatchError,
    MethodSpec,
    iter_batch,
    load_manifest,
    output_path,
    sha256_file,
)
from decongan.engine.io import read_image
from decongan.engine.progress import Cancelled, CancelToken, drain, run_with_callbacks
from decongan.engine.provenance import Provenance, Restored

TAGAN = "tagan_confocal_vs_sted"
NAMES = ("axonal_rings_test0", "axonal_rings_train0", "dendritic_factin_train804")


@pytest.fixture()
def folder(shared_data, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in NAMES:
        shutil.copy(shared_data / TAGAN / "lq" / f"{name}.tif", inputs)
    return inputs


def smoothing(sigma: float, calls: list[str] | None = None) -> MethodSpec:
    def run(image):
        if calls is not None:
            calls.append(image.name)
        data = ndimage.gaussian_filter(image.data.astype(np.float32), sigma)
        return Restored(data, Provenance(method=f"Gaussian {sigma}", backend="test", parameters={"sigma": sigma}))

    return MethodSpec("smooth", run, {"sigma": sigma})


def test_outputs_manifest_and_hashes(folder, tmp_path):
    out = tmp_path / "out"
    result = drain(iter_batch(sorted(folder.iterdir()), out, [smoothing(1.0)]))
    assert [i.status for i in result.items] == ["done"] * 3
    manifest = load_manifest(out)
    entry = manifest["entries"]["axonal_rings_test0.tif::smooth"]
    dest = out / entry["output"]
    assert dest == output_path(out, smoothing(1.0), folder / "axonal_rings_test0.tif")
    assert entry["input_sha256"] == sha256_file(folder / "axonal_rings_test0.tif")
    assert entry["output_sha256"] == sha256_file(dest)
    assert entry["provenance"]["parameters"] == {"sigma": 1.0}
    restored = read_image(dest)
    expected = ndimage.gaussian_filter(read_image(folder / "axonal_rings_test0.tif").data.astype(np.float32), 1.0)
    np.testing.assert_array_equal(restored.data, expected)


def test_cancel_then_resume_skips_finished_images(folder, tmp_path):
    out = tmp_path / "out"
    inputs = sorted(folder.iterdir())
    token = CancelToken()
    calls: list[str] = []
    events = iter_batch(inputs, out, [smoothing(1.0, calls)], cancel=token)
    with pytest.raises(Cancelled):
        run_with_callbacks(events, progress=lambda event: token.cancel())  # cancel after the first image
    assert calls == ["axonal_rings_test0"]
    first = output_path(out, smoothing(1.0), inputs[0])
    stamp, digest = first.stat().st_mtime_ns, sha256_file(first)
    assert list(load_manifest(out)["entries"]) == ["axonal_rings_test0.tif::smooth"]

    calls.clear()
    result = drain(iter_batch(inputs, out, [smoothing(1.0, calls)]))
    assert [i.status for i in result.items] == ["skipped", "done", "done"]
    assert calls == ["axonal_rings_train0", "dendritic_factin_train804"]
    assert first.stat().st_mtime_ns == stamp and sha256_file(first) == digest  # not rewritten


def test_changed_parameters_input_or_output_are_redone(folder, tmp_path):
    out = tmp_path / "out"
    inputs = sorted(folder.iterdir())
    drain(iter_batch(inputs, out, [smoothing(1.0)]))
    calls: list[str] = []
    result = drain(iter_batch(inputs, out, [smoothing(2.0, calls)]))  # same name, new parameters
    assert [i.status for i in result.items] == ["done"] * 3
    calls.clear()
    data = read_image(inputs[1]).data.copy()
    data[0, 0] += 1
    from decongan.engine.io import write_tiff

    write_tiff(inputs[1], data, dtype="uint16")  # the user edited one input
    output_path(out, smoothing(2.0), inputs[2]).write_bytes(b"tampered")  # and damaged one output
    result = drain(iter_batch(inputs, out, [smoothing(2.0, calls)]))
    assert [i.status for i in result.items] == ["skipped", "done", "done"]
    assert calls == ["axonal_rings_train0", "dendritic_factin_train804"]


def test_a_broken_file_is_reported_by_name_and_the_rest_continue(folder, tmp_path):
    broken = folder / "broken.tif"
    broken.write_bytes((folder / "axonal_rings_test0.tif").read_bytes()[:500])  # truncated TIFF
    out = tmp_path / "out"

    def failing(image):
        if image.name == "axonal_rings_train0":
            raise RuntimeError("model exploded")
        return smoothing(1.0).run(image)

    inputs = sorted(folder.iterdir())
    result = drain(iter_batch(inputs, out, [MethodSpec("flaky", failing, {})]))
    status = {i.input.name: i for i in result.items}
    assert status["broken.tif"].status == "failed" and "broken.tif" in status["broken.tif"].error
    assert "model exploded" in status["axonal_rings_train0.tif"].error
    assert "axonal_rings_train0.tif" in status["axonal_rings_train0.tif"].error
    assert status["axonal_rings_test0.tif"].status == "done" and status["dendritic_factin_train804.tif"].status == "done"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["entries"]["broken.tif::flaky"]["status"] == "failed"
    # failed steps are retried on the next run; finished ones are not
    result = drain(iter_batch(inputs, out, [MethodSpec("flaky", failing, {})]))
    assert sorted(i.status for i in result.items) == ["failed", "failed", "skipped", "skipped"]


def test_outputs_that_would_overwrite_inputs_are_refused(folder, tmp_path):
    spec = smoothing(1.0)
    clash_out = tmp_path / "weird"
    target = output_path(clash_out, spec, folder / "axonal_rings_test0.tif").parent
    target.mkdir(parents=True)
    shutil.copy(folder / "axonal_rings_test0.tif", target)
    before = sha256_file(target / "axonal_rings_test0.tif")
    with pytest.raises(BatchError, match="overwrite input files"):
        drain(iter_batch([target / "axonal_rings_test0.tif"], clash_out, [spec]))
    assert sha256_file(target / "axonal_rings_test0.tif") == before
    with pytest.raises(BatchError, match="share the output folder"):
        drain(iter_batch(sorted(folder.iterdir()), tmp_path / "o", [smoothing(1.0), smoothing(2.0)]))


def test_a_configuration_error_stops_the_batch_before_any_file(folder, tmp_path):
    """A zero PSF is the method's fault, not the files': one message, nothing read, nothing written."""
    from decongan.engine.io import write_tiff
    from decongan.engine.optics.psf import read_psf

    zero = tmp_path / "zero_psf.tif"
    write_tiff(zero, np.zeros((9, 9), np.float32))
    calls: list[str] = []
    spec = smoothing(1.0, calls)
    spec.check = lambda: read_psf(zero) and None
    other = MethodSpec("other", spec.run, {}, check=spec.check)
    out = tmp_path / "out"
    with pytest.raises(BatchError) as info:
        drain(iter_batch(sorted(folder.iterdir()), out, [spec, other]))
    assert str(info.value) == (f"configuration error, no image was processed: smooth, other: {zero}: has no positive "
                               "values (all zero or negative); it cannot be used as a PSF")
    assert calls == [] and not out.exists()  # no file read, no output folder, no manifest


def test_status_says_complete_only_after_the_front_end_says_so(folder, tmp_path):
    from decongan.engine.evaluate.batch import batch_status, set_status

    out = tmp_path / "out"
    inputs = sorted(folder.iterdir())
    seen: list[str | None] = []
    run_with_callbacks(iter_batch(inputs, out, [smoothing(1.0)]), progress=lambda e: seen.append(batch_status(out)))
    assert seen == ["restoring"] * 3 and batch_status(out) == "restored"
    set_status(out, "reporting")
    assert batch_status(out) == "reporting" and len(load_manifest(out)["entries"]) == 3  # entries kept
    drain(iter_batch(inputs, out, [smoothing(1.0)]))  # a rerun starts over as "restoring" -> "restored"
    assert batch_status(out) == "restored"
    set_status(out, "complete")
    assert batch_status(out) == "complete"


def test_shards_split_by_name_reuse_each_others_work_and_gather(folder, tmp_path):
    from decongan.engine.evaluate.batch import gather_batch, parse_shard, select_shard

    inputs = sorted(folder.iterdir(), reverse=True)  # the split does not depend on the order given
    assert [p.name for p in select_shard(inputs, (1, 2))] == ["axonal_rings_test0.tif", "dendritic_factin_train804.tif"]
    assert [p.name for p in select_shard(inputs, (2, 2))] == ["axonal_rings_train0.tif"]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "1-2", "a/b", "1/0"):
        with pytest.raises(BatchError, match="shard"):
            parse_shard(bad)
    out = tmp_path / "out"
    with pytest.raises(BatchError) as info:
        gather_batch(inputs, out, [smoothing(1.0)])
    assert str(info.value).startswith(f"3 restoration(s) are not recorded as done in the manifests of {out}: "
                                      "dendritic_factin_train804.tif (smooth)")
    assert str(info.value).endswith("; run the shards that hold them (or the whole batch, which restores what is "
                                    "missing) first")  # in words: the engine names no command-line option
    calls: list[str] = []
    first = drain(iter_batch(inputs, out, [smoothing(1.0, calls)], shard=(1, 2)))
    assert calls == ["axonal_rings_test0", "dendritic_factin_train804"] and len(first.done) == 2
    assert sorted(load_manifest(out, "manifest.shard-1-of-2.json")["entries"]) == [
        "axonal_rings_test0.tif::smooth", "dendritic_factin_train804.tif::smooth"]
    with pytest.raises(BatchError, match=r"1 restoration\(s\).*axonal_rings_train0.tif \(smooth\)"):
        gather_batch(inputs, out, [smoothing(1.0)])
    calls.clear()
    again = drain(iter_batch(inputs, out, [smoothing(1.0, calls)], shard=(1, 2)))  # idempotent
    assert calls == [] and [i.status for i in again.items] == ["skipped", "skipped"]
    drain(iter_batch(inputs, out, [smoothing(1.0, calls)], shard=(2, 2)))
    assert calls == ["axonal_rings_train0"]
    gathered = gather_batch(inputs, out, [smoothing(1.0)])
    assert sorted(i.input.name for i in gathered.skipped) == sorted(NAMES_TIF) and not gathered.failed
    calls.clear()
    whole = drain(iter_batch(inputs, out, [smoothing(1.0, calls)]))  # unsharded after the shards: nothing redone
    assert calls == [] and len(whole.skipped) == 3 and len(load_manifest(out)["entries"]) == 3


NAMES_TIF = [f"{n}.tif" for n in NAMES]
