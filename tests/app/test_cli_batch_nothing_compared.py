"""`decongan batch` where one method fails on every image: the error counts the outputs of the others that are
on disk instead of saying that no image was restored (issue 13 item 6)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from decongan.app.cli import main
from decongan.resources import resource_path


@pytest.mark.slow
def test_outputs_on_disk_are_counted_when_nothing_can_be_compared(shared_data, tmp_path, capsys):
    from PIL import Image

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("fov01", "fov02"):  # FMD crops: no calibration at all, so RL's Born & Wolf PSF cannot be made
        plane = np.asarray(Image.open(shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "lq" / f"{name}.png"))
        tifffile.imwrite(inputs / f"{name}.tif", plane[:64, :64])
    model = resource_path("models", "s1_neubias_nucleus")
    out = tmp_path / "out"
    code = main(["batch", str(inputs), "--out", str(out), "--decon", "engine", "--iterations", "2", "--device", "cpu",
                 "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "520", "--model", str(model), "--formats", "png",
                 "--dpi", "72"])
    assert code == 1
    captured = capsys.readouterr()
    assert "2 restored, 0 already done (skipped), 2 failed" in captured.out
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith(f"decongan batch: error: no image was restored by every method, so there is nothing to "
                           f"compare (2 outputs of the other methods are in {out / 'restored'}; first failure: "
                           f"{inputs / 'fov01.tif'}: a Born & Wolf PSF needs the lateral pixel size")
    assert len(list((out / "restored").rglob("*.tif"))) == 2

    # with no output at all, the message says so plainly
    out2 = tmp_path / "out2"
    assert main(["batch", str(inputs), "--out", str(out2), "--decon", "engine", "--iterations", "2", "--device", "cpu",
                 "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "520", "--formats", "png"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("decongan batch: error: no image was restored, so there is nothing to compare (first "
                           f"failure: {inputs / 'fov01.tif'}: a Born & Wolf PSF needs the lateral pixel size")
