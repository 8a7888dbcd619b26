"""`decongan predict` checks the input domain before predicting (issue 12 definition of done): the
bundled nucleus model warns on an FMD confocal frame and stays quiet on a plane of its own sample."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from decongan.app.cli import main
from decongan.engine.evaluate.dataset import read_provenance
from decongan.engine.io import read_image, write_tiff
from decongan.resources import __file__ as resources_init
from tests.fmd_pairs import FMD

RESOURCES = Path(resources_init).parent
BUNDLED = RESOURCES / "models" / "s1_neubias_nucleus"
SAMPLE = RESOURCES / "samples" / "neubias_nucleus" / "lq" / "nucleus_widefield.tif"


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _predict(image: Path, out: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["predict", str(BUNDLED), str(image), "--out", str(out), "--device", "cpu", "--threads", "1",
                 "--tile", "0"]) == 0
    return capsys.readouterr().err


def test_predict_warns_before_restoring_an_fmd_frame(shared_data, tmp_path, capsys):
    crop = read_image(shared_data / FMD / "lq" / "fov01.png").data[:128, :128]  # as acquired: 8-bit, no pixel size
    path = write_tiff(tmp_path / "fmd.tif", crop, dtype="uint8")
    err = _predict(path, tmp_path / "out", capsys)
    lines = [line for line in err.splitlines() if "domain warning" in line]
    assert any("100 % of the image's pixels (100 % below" in line for line in lines), err
    assert any("dynamic range" in line for line in lines), err
    assert any("states no pixel size" in line for line in lines), err
    # printed before the result was written
    assert err.index("domain warning") < err.index("note: the input states no pixel size")
    provenance = read_provenance(tmp_path / "out" / "fmd_s1.tif")
    assert provenance.parameters["domain_warnings"] == [line.split("domain warning: ", 1)[1] for line in lines]


def test_predict_is_quiet_on_a_plane_of_the_nucleus_sample(tmp_path, capsys):
    stack = read_image(SAMPLE)
    path = write_tiff(tmp_path / "z20.tif", stack.select(z=20).data, dtype="uint16", pixel_size_um=stack.pixel_size_um)
    err = _predict(path, tmp_path / "out", capsys)
    assert "domain warning" not in err, err
    assert "domain note: the model's training domain is derived from config.json" in err
    assert "domain_warnings" not in read_provenance(tmp_path / "out" / "z20_s1.tif").parameters


def test_batch_and_compare_gan_results_carry_the_domain_warnings(shared_data):
    """app.methods.gan_method (the GAN of batch --model and compare --method NAME=RUN_DIR) checks each image."""
    from decongan.app.methods import gan_method

    spec = gan_method(BUNDLED, device="cpu", tile=0)
    fmd = read_image(shared_data / FMD / "lq" / "fov01.png").select()
    fmd = fmd.with_data(fmd.data[:128, :128])
    _, provenance = spec.run(fmd)
    assert any("100 % of the image's pixels" in w for w in provenance.parameters["domain_warnings"])
    _, provenance = spec.run(read_image(SAMPLE).select(z=20))
    assert "domain_warnings" not in provenance.parameters
