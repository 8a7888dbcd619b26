"""``decongan fiji crosscheck``: PSF, RL and registration by Fiji and by the engine vs the golden plugin outputs."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from decongan.app.fiji.client import FijiUnavailable, call_bridge, plugin_label, resolve_client
from decongan.app.fiji.deconvolve import engine_richardson_lucy, fiji_richardson_lucy
from decongan.app.fiji.psf import engine_psf, fiji_psf
from decongan.imagej_bridge import errors as bridge_errors
from decongan.imagej_bridge.client import FijiClient


def default_golden_dir() -> Path:
    """``$DECONGAN_SHARED/golden/fiji``, else ``../shared/golden/fiji`` next to the repository."""
    shared = os.environ.get("DECONGAN_SHARED")
    base = Path(shared) if shared else Path(__file__).resolve().parents[3] / "shared"
    return base / "golden" / "fiji"


@dataclass
class CheckLine:
    """One line of ``decongan fiji crosscheck``: an operation run by ``runner`` compared with its golden."""

    operation: str
    runner: str  # "fiji" or "engine"
    status: str  # "ok", "DIFFERS", "missing" (plugin not installed), "unavailable", "error", "info"
    max_abs_diff: float | None = None
    detail: str = ""

    def text(self) -> str:
        diff = f"max|diff| {self.max_abs_diff:.3g}" if self.max_abs_diff is not None else ""
        parts = [p for p in (diff, self.detail) if p]
        return f"{self.operation:<38} {self.runner:<7} {self.status:<11} " + "; ".join(parts)


PSF_CASES = (
    ("PSF 2-D NA1.4 ni1.515 159nm 520nm", "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif",
     {"na": 1.4, "ni": 1.515, "wavelength_nm": 520.0, "pixel_nm": 159.0, "size": 65, "nz": None, "z_step_nm": None}),
    ("PSF 3-D NA1.4 33x200nm 520nm", "psf_bw_3d_na1.4_ni1.515_dxy159_dz200_lambda520_65x65x33.tif",
     {"na": 1.4, "ni": 1.515, "wavelength_nm": 520.0, "pixel_nm": 159.0, "size": 65, "nz": 33, "z_step_nm": 200.0}),
    ("PSF 2-D NA0.3 ni1.0 650nm 520nm", "psf_bw_2d_na0.3_ni1.0_dxy650_lambda520_65x65.tif",
     {"na": 0.3, "ni": 1.0, "wavelength_nm": 520.0, "pixel_nm": 650.0, "size": 65, "nz": None, "z_step_nm": None}),
)
RL_CASES = (("DL2 RL 10", "dl2_rl10.tif", 10, None), ("DL2 RL-TV 10 lambda 0.01", "dl2_rltv10_l0.01.tif", 10, 0.01))
REG_CASES = (("TurboReg translation", "translation", "translation"), ("TurboReg rigid", "rigid", "rigidBody"),
             ("TurboReg affine", "affine", "affine"))
#: registration ground truth of the golden pair (README), TurboReg convention
REG_TRUTH = np.array([[14.3475687398, 0.9986295348, -0.0523359562], [-10.7481001022, 0.0523359562, 0.9986295348]])
TOLERANCE = {"psf": 1e-5, "rl_relative": 1e-4, "reg_px_fiji": 0.01, "reg_px_engine": 0.05}


def read_turboreg_transform(path: Path) -> np.ndarray:
    """The 2x3 matrix of a golden ``turboreg_*_transform.txt`` (the first two 3-number lines)."""
    rows = []
    for line in path.read_text().splitlines():
        values = line.split()
        if line and not line.startswith("#") and len(values) == 3:
            rows.append([float(v) for v in values])
    if len(rows) < 2:
        raise ValueError(f"{path}: no 2x3 matrix found")
    return np.array(rows[:2])


def max_displacement(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> float:
    """Largest distance (px) between where two TurboReg matrices send the corners of a ``shape`` grid."""
    h, w = shape
    corners = np.array([[1.0, 0, 0], [1.0, w - 1, 0], [1.0, 0, h - 1], [1.0, w - 1, h - 1]])
    return float(np.linalg.norm(corners @ np.asarray(a).T - corners @ np.asarray(b).T, axis=1).max())


def iter_crosscheck(golden_dir: str | os.PathLike[str], *, fiji_dir: str | os.PathLike[str] | None = None,
                    run_fiji: bool = True, run_engine: bool = True,
                    client: FijiClient | None = None) -> Generator[CheckLine, None, None]:
    """Run PSF, RL and registration on the golden inputs with Fiji and with the engine; yield one line each."""
    import tifffile

    golden = Path(golden_dir)
    if not (golden / "README.md").is_file():
        raise FileNotFoundError(f"{golden} does not hold the Fiji goldens (README.md missing); use --golden DIR")
    fiji: FijiClient | None = None
    fiji_problem = ""
    if run_fiji:
        try:
            fiji = resolve_client(client, fiji_dir)
            fiji.start()
        except (FijiUnavailable, bridge_errors.BridgeError) as err:
            fiji_problem = str(err).splitlines()[0]

    def attempt(operation: str, runner: str, compute: Callable[[], CheckLine]) -> CheckLine:
        if runner == "fiji" and fiji is None:
            return CheckLine(operation, runner, "unavailable", None, fiji_problem)
        try:
            return compute()
        except (FijiUnavailable, bridge_errors.PluginMissing) as err:
            missing = err if isinstance(err, bridge_errors.PluginMissing) else err.__cause__
            if isinstance(missing, bridge_errors.PluginMissing):
                return CheckLine(operation, runner, "missing", None,
                                 f"{missing.plugin} is not installed (how to install it: decongan fiji doctor)")
            return CheckLine(operation, runner, "unavailable", None, str(err).splitlines()[0])
        except Exception as err:  # noqa: BLE001 - one line per failure, the others still run
            return CheckLine(operation, runner, "error", None, f"{type(err).__name__}: {err}".splitlines()[0])

    runners = [r for r, on in (("fiji", run_fiji), ("engine", run_engine)) if on]

    # PSF
    for name, filename, params in PSF_CASES:
        expected = tifffile.imread(golden / filename).astype(np.float32)
        for runner in runners:
            def psf_line(name=name, params=params, expected=expected, runner=runner) -> CheckLine:
                restored = fiji_psf(client=fiji, **params) if runner == "fiji" else engine_psf(**params)
                diff = float(np.abs(restored.image - expected).max())
                status = "ok" if diff <= TOLERANCE["psf"] else "DIFFERS"
                return CheckLine(name, runner, status, diff, f"{restored.provenance.method}; peak 1")
            yield attempt(name, runner, psf_line)

    # Richardson-Lucy
    image = tifffile.imread(golden / "input_filaments_256_blurred_poisson.tif").astype(np.float32)
    psf = tifffile.imread(golden / "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif").astype(np.float32)
    for name, filename, iterations, tv_lambda in RL_CASES:
        expected = tifffile.imread(golden / filename).astype(np.float32)
        scale = float(np.abs(expected).max())
        for runner in runners:
            def rl_line(iterations=iterations, tv_lambda=tv_lambda, expected=expected, scale=scale,
                        runner=runner, name=name) -> CheckLine:
                if runner == "fiji":
                    restored = fiji_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda, client=fiji)
                else:
                    restored = engine_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda)
                diff = float(np.abs(restored.image - expected).max())
                status = "ok" if diff <= TOLERANCE["rl_relative"] * scale else "DIFFERS"
                return CheckLine(name, runner, status, diff, f"relative {diff / scale:.2g} of max {scale:.4g}; "
                                 f"{restored.provenance.method}")
            yield attempt(name, runner, rl_line)

    # registration
    moving = tifffile.imread(golden / "reg_moving_rot3deg_shift7.5_-4.25_256.tif").astype(np.float32)
    fixed = tifffile.imread(golden / "reg_target_256.tif").astype(np.float32)
    for name, kind, golden_name in REG_CASES:
        expected = read_turboreg_transform(golden / f"turboreg_{golden_name}_transform.txt")
        golden_stack = tifffile.imread(golden / f"turboreg_{golden_name}_aligned.tif")
        aligned_golden, mask_golden = golden_stack[0], golden_stack[1] > 0
        for runner in runners:
            def reg_line(kind=kind, expected=expected, aligned_golden=aligned_golden, mask_golden=mask_golden,
                         runner=runner, name=name) -> CheckLine:
                if runner == "fiji":
                    output = call_bridge(lambda: fiji.register(moving=moving, fixed=fixed, transform=kind))
                    aligned, mask, matrix = output.aligned, output.mask, output.matrix
                    label = f"registered ({plugin_label(output)})"
                    tolerance = TOLERANCE["reg_px_fiji"]
                else:
                    from decongan.engine.optics.registration import register

                    result = register(moving=moving, fixed=fixed, transform=kind)
                    aligned, mask, matrix = result.aligned, result.mask, result.transform.to_turboreg_matrix()
                    label = "engine registration"
                    tolerance = TOLERANCE["reg_px_engine"]
                vs_golden = max_displacement(matrix, expected, fixed.shape)
                vs_truth = max_displacement(matrix, REG_TRUTH, fixed.shape)
                common = mask_golden & mask
                diff = float(np.abs(aligned - aligned_golden)[common].max()) if common.any() else None
                if kind == "translation" and runner == "engine":
                    status = "info"  # a translation cannot model the 3-degree rotation: optimum depends on the criterion
                else:
                    status = "ok" if vs_golden <= tolerance else "DIFFERS"
                return CheckLine(name, runner, status, diff,
                                 f"matrix vs TurboReg golden {vs_golden:.3g} px, vs ground truth {vs_truth:.3g} px "
                                 f"(image diff where both are valid); {label}")
            yield attempt(name, runner, reg_line)
