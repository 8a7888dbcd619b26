"""Pure helpers for the plugin operations: the exact config/macro text each plugin gets, and the
conversion of what the plugins return (landmarks, printed matrices) into numbers.

Nothing here starts Java; the worker calls these functions and the tests check them against
../shared/golden/fiji (README.md there documents every convention used below).

Registration matrix convention (TurboReg's, "target -> source")
---------------------------------------------------------------
A 2x3 matrix ``M`` in TurboReg's layout ``[[tx, a, b], [ty, c, d]]``: for an output (target, fixed)
pixel ``(u, v)`` the source (moving) image is sampled at::

    x = M[0,0] + M[0,1]*u + M[0,2]*v        y = M[1,0] + M[1,1]*u + M[1,2]*v

with x = column (right), y = row (down), integer coordinates at pixel centres, (0, 0) the centre of
the top-left pixel. :func:`turboreg_to_homogeneous` gives the 3x3 ``[[a, b, tx], [c, d, ty], [0, 0, 1]]``
form (the engine's ``Transform2D.matrix``), :func:`sift_to_turboreg` converts SIFT's printed
"moving -> reference" matrix into this convention.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from decongan.imagej_bridge.macros import format_number, quote_string

# -- PSF Generator ---------------------------------------------------------------------------------

PSF_ACCURACY = {"good": "Good", "better": "Better", "best": "Best"}
#: PSF Generator refuses fewer planes ("nz should be greater than 3"); 2-D PSFs are the middle plane.
PSF_GENERATOR_MIN_NZ = 3


def psf_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``(ny, nx)`` from an int or a pair; each at least 3 pixels."""
    if isinstance(size, (int, np.integer)):
        ny = nx = int(size)
    else:
        values = [int(v) for v in size]
        if len(values) != 2:
            raise ValueError(f"size must be an int or (ny, nx), got {size!r}")
        ny, nx = values
    if ny < 3 or nx < 3:
        raise ValueError(f"PSF size must be at least 3x3 pixels, got {ny}x{nx}")
    return ny, nx


def psf_generator_planes(nz: int | None, z_step_nm: float | None) -> tuple[int, float]:
    """Planes and z-step (nm) to ask PSF Generator for: ``nz`` planes, or 3 for a 2-D PSF (then
    the middle, in-focus plane is kept); a 2-D PSF's z-step does not matter (default 200 nm)."""
    if nz is None or nz == 1:
        return PSF_GENERATOR_MIN_NZ, float(z_step_nm or 200.0)
    if nz < 1:
        raise ValueError(f"nz must be >= 1, got {nz}")
    if nz < PSF_GENERATOR_MIN_NZ:
        raise ValueError(f"PSF Generator computes at least {PSF_GENERATOR_MIN_NZ} planes, asked for nz={nz}; "
                         "use nz=None (or 1) for a 2-D PSF")
    if z_step_nm is None or not z_step_nm > 0:
        raise ValueError(f"z_step_nm must be a positive number of nanometres for a 3-D PSF, got {z_step_nm}")
    return int(nz), float(z_step_nm)


def psf_generator_config(*, na: float, ni: float, wavelength_nm: float, pixel_nm: float,
                         size: int | Sequence[int], nz: int | None, z_step_nm: float | None,
                         accuracy: str = "good") -> str:
    """The Java properties file PSF Generator's ``computeImagePlus(configPath)`` reads (Born & Wolf).

    Lengths in nanometres; ``Type=32-bits`` (float values as computed) and ``Scale=Linear`` (peak of
    the whole volume = 1), as in the goldens. ``nz`` None/1 asks for 3 planes (see
    :func:`psf_generator_planes`).
    """
    for name, value in (("na", na), ("ni", ni), ("wavelength_nm", wavelength_nm), ("pixel_nm", pixel_nm)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if na >= ni:
        raise ValueError(f"na ({na}) must be smaller than the immersion index ni ({ni})")
    key = accuracy.lower()
    if key not in PSF_ACCURACY:
        raise ValueError(f"accuracy must be one of {sorted(PSF_ACCURACY)}, got {accuracy!r}")
    ny, nx = psf_size(size)
    nz_run, dz = psf_generator_planes(nz, z_step_nm)
    lines = [
        "#PSFGenerator (written by DeconGAN)",
        "PSF-shortname=BW",
        f"NX={nx}",
        f"NY={ny}",
        f"NZ={nz_run}",
        f"ResLateral={format_number(float(pixel_nm))}",
        f"ResAxial={format_number(dz)}",
        f"NA={format_number(float(na))}",
        f"Lambda={format_number(float(wavelength_nm))}",
        "Type=32-bits",
        "Scale=Linear",
        "LUT=Grays",
        f"psf-BW-NI={format_number(float(ni))}",
        f"psf-BW-accuracy={PSF_ACCURACY[key]}",
    ]
    return "\n".join(lines) + "\n"


def kernel_diffraction_arguments(*, na: float, ni: float, wavelength_nm: float, pixel_nm: float,
                                 z_step_nm: float) -> dict[str, float]:
    """Arguments of ImageJ Ops ``create.kernelDiffraction`` (Gibson-Lanni) in **metres**.

    The specimen index equals the immersion index and the particle sits at the coverslip
    (``pZ = 0``), i.e. no spherical aberration: the closest Gibson-Lanni gets to Born & Wolf.
    """
    return {"NA": float(na), "lambda": wavelength_nm * 1e-9, "ns": float(ni), "ni": float(ni),
            "resLateral": pixel_nm * 1e-9, "resAxial": z_step_nm * 1e-9, "pZ": 0.0}


# -- DeconvolutionLab2 -----------------------------------------------------------------------------

DL2_COMMAND = "DeconvolutionLab2 Run"
_DL2_SAFE_TOKEN = re.compile(r"^[^\s\"'\]\[]+$")


def dl2_token(text: str, what: str) -> str:
    """A DeconvolutionLab2 command-line token: DL2 splits its options on spaces, so no whitespace."""
    if not _DL2_SAFE_TOKEN.match(text):
        raise ValueError(f"DeconvolutionLab2 cannot read a {what} containing spaces, quotes or brackets: {text!r} "
                         "(set DECONGAN_FIJI_TMP to a folder without such characters)")
    return text


def dl2_algorithm(iterations: int, tv_lambda: float | None) -> str:
    """``RL n`` or ``RLTV n lambda`` (DL2's own spelling)."""
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    if tv_lambda is None:
        return f"RL {int(iterations)}"
    if not (math.isfinite(tv_lambda) and tv_lambda >= 0):
        raise ValueError(f"tv_lambda must be a finite number >= 0, got {tv_lambda!r}")
    return f"RLTV {int(iterations)} {format_number(float(tv_lambda))}"


def dl2_options(*, image_path: str, psf_path: str, iterations: int, tv_lambda: float | None,
                out_name: str, out_dir: str) -> str:
    """The options string of ``run("DeconvolutionLab2 Run", ...)`` exactly as in the goldens.

    ``-monitor console`` (else DL2 needs a display and computes nothing headless) and
    ``-multithreading no`` (else the call returns before the output file exists) are required.
    DL2 writes ``out_dir/out_name.tif`` (float32, unscaled).
    """
    return (f" -image file {dl2_token(image_path, 'image path')}"
            f" -psf file {dl2_token(psf_path, 'PSF path')}"
            f" -algorithm {dl2_algorithm(iterations, tv_lambda)}"
            f" -out stack {dl2_token(out_name, 'output name')} noshow"
            f" -path {dl2_token(out_dir, 'output folder')}"
            " -monitor console -multithreading no")


def dl2_macro(options: str) -> str:
    """The one-line macro that runs DL2 with ``options``."""
    return f"run({quote_string(DL2_COMMAND)}, {quote_string(options)});"


# -- TurboReg ---------------------------------------------------------------------------------------

#: DeconGAN / engine transform name -> TurboReg flag
TURBOREG_FLAGS = {"translation": "-translation", "rigid": "-rigidBody", "similarity": "-scaledRotation",
                  "affine": "-affine"}
_ALIASES = {"rigidbody": "rigid", "rigid_body": "rigid", "rigid body": "rigid", "scaledrotation": "similarity",
            "scaled_rotation": "similarity", "scaled rotation": "similarity"}
TURBOREG_COMMAND = "TurboReg "  # the trailing space is part of the command name


def transform_name(transform: str) -> str:
    """Normalise a transform name ("rigid", "rigidBody", "scaledRotation", ...) to the engine's."""
    key = transform.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in TURBOREG_FLAGS:
        raise ValueError(f"unknown transform {transform!r}; choose one of {sorted(TURBOREG_FLAGS)}")
    return key


def turboreg_landmarks(transform: str, width: int, height: int) -> list[tuple[float, float]]:
    """StackReg's initial landmarks (integer division, as in its source) for an image ``width x height``.

    Source and target landmarks start at the same positions; TurboReg refines the source ones.
    """
    kind = transform_name(transform)
    w, h = int(width), int(height)
    if kind == "translation":
        points = [(w // 2, h // 2)]
    elif kind == "rigid":
        points = [(w // 2, h // 2), (w // 2, h // 4), (w // 2, (3 * h) // 4)]
    elif kind == "similarity":
        points = [(w // 4, h // 2), ((3 * w) // 4, h // 2)]
    else:
        points = [(w // 2, h // 4), (w // 4, (3 * h) // 4), ((3 * w) // 4, (3 * h) // 4)]
    return [(float(x), float(y)) for x, y in points]


def turboreg_options(*, source_path: str, target_path: str, transform: str,
                     source_shape: tuple[int, int], target_shape: tuple[int, int]) -> str:
    """``-align`` options of TurboReg, exactly as in the goldens (crops ``0 0 w-1 h-1``, StackReg landmarks).

    Paths are double-quoted (TurboReg's tokenizer accepts quoted paths with spaces; it does not
    interpret escapes, so a path containing a double quote is refused).
    """
    kind = transform_name(transform)
    for path in (source_path, target_path):
        if '"' in path or "\n" in path:
            raise ValueError(f"TurboReg cannot read a path containing a double quote or newline: {path!r}")
    (sh, sw), (th, tw) = source_shape, target_shape
    source_points = turboreg_landmarks(kind, sw, sh)
    target_points = turboreg_landmarks(kind, tw, th)
    pairs = " ".join(f"{format_number(sx)} {format_number(sy)} {format_number(tx)} {format_number(ty)}"
                     for (sx, sy), (tx, ty) in zip(source_points, target_points, strict=True))

    def quoted(path: str) -> str:
        return f'"{path}"' if any(ch.isspace() for ch in path) else path

    return (f"-align -file {quoted(source_path)} 0 0 {sw - 1} {sh - 1}"
            f" -file {quoted(target_path)} 0 0 {tw - 1} {th - 1}"
            f" {TURBOREG_FLAGS[kind]} {pairs} -hideOutput")


def turboreg_macro(options: str) -> str:
    """The macro line equivalent to the worker's ``IJ.runPlugIn("TurboReg_", options)`` call."""
    return f"run({quote_string(TURBOREG_COMMAND)}, {quote_string(options)});"


def turboreg_matrix(source_points: Sequence[Sequence[float]], target_points: Sequence[Sequence[float]],
                    transform: str) -> np.ndarray:
    """TurboReg's 2x3 target -> source matrix from refined landmarks (``(x, y)`` rows).

    translation: shift of landmark 0; rigid: angle from landmarks 1 -> 2, translation so that
    target landmark 0 maps onto source landmark 0 (TurboReg's own rule); similarity: the exact
    scaled rotation through both landmark pairs; affine: the exact affine map of the three pairs.
    """
    kind = transform_name(transform)
    s = np.asarray(source_points, dtype=float)[:, :2]
    t = np.asarray(target_points, dtype=float)[:, :2]
    if kind == "translation":
        shift = s[0] - t[0]
        return np.array([[shift[0], 1.0, 0.0], [shift[1], 0.0, 1.0]])
    if kind == "rigid":
        ds, dt = s[2] - s[1], t[2] - t[1]
        angle = math.atan2(ds[1], ds[0]) - math.atan2(dt[1], dt[0])
        c, si = math.cos(angle), math.sin(angle)
        rot = np.array([[c, -si], [si, c]])
        shift = s[0] - rot @ t[0]
        return np.array([[shift[0], c, -si], [shift[1], si, c]])
    if kind == "similarity":
        zs = complex(*s[1]) - complex(*s[0])
        zt = complex(*t[1]) - complex(*t[0])
        a = zs / zt
        b = complex(*s[0]) - a * complex(*t[0])
        return np.array([[b.real, a.real, -a.imag], [b.imag, a.imag, a.real]])
    design = np.column_stack([np.ones(3), t[:3]])  # rows (1, u, v)
    coeffs = np.linalg.solve(design, s[:3])  # (3, 2): columns x, y
    return coeffs.T.copy()


def turboreg_to_homogeneous(matrix: np.ndarray) -> np.ndarray:
    """TurboReg's ``[[tx, a, b], [ty, c, d]]`` -> 3x3 ``[[a, b, tx], [c, d, ty], [0, 0, 1]]`` (same direction)."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (2, 3):
        raise ValueError(f"a TurboReg matrix is 2x3, got shape {m.shape}")
    return np.array([[m[0, 1], m[0, 2], m[0, 0]], [m[1, 1], m[1, 2], m[1, 0]], [0.0, 0.0, 1.0]])


def homogeneous_to_turboreg(matrix: np.ndarray) -> np.ndarray:
    """Inverse of :func:`turboreg_to_homogeneous`."""
    m = np.asarray(matrix, dtype=float)
    return np.array([[m[0, 2], m[0, 0], m[0, 1]], [m[1, 2], m[1, 0], m[1, 1]]])


# -- Linear Stack Alignment with SIFT ----------------------------------------------------------------

SIFT_COMMAND = "Linear Stack Alignment with SIFT"
SIFT_MODELS = {"translation": "Translation", "rigid": "Rigid", "similarity": "Similarity", "affine": "Affine"}
_SIFT_MATRIX = re.compile(r"AffineTransform\[\[([^\]]+)\],\s*\[([^\]]+)\]\]")


def sift_options(transform: str) -> str:
    """Options of ``run("Linear Stack Alignment with SIFT", ...)`` as in the goldens (plugin defaults)."""
    kind = transform_name(transform)
    return ("initial_gaussian_blur=1.60 steps_per_scale_octave=3 minimum_image_size=64 maximum_image_size=1024 "
            "feature_descriptor_size=4 feature_descriptor_orientation_bins=8 closest/next_closest_ratio=0.92 "
            f"maximal_alignment_error=25 inlier_ratio=0.05 expected_transformation={SIFT_MODELS[kind]} "
            "interpolate show_transformation_matrix")


def parse_sift_matrix(log: str) -> np.ndarray:
    """The last ``AffineTransform[[m00, m01, m02], [m10, m11, m12]]`` printed by SIFT (moving -> reference).

    Raises
    ------
    ValueError
        If the log holds no matrix (SIFT found no model: too few matching features).
    """
    found = _SIFT_MATRIX.findall(log)
    if not found:
        raise ValueError("SIFT printed no transformation matrix (no model found: too few corresponding features)")
    rows = [[float(v) for v in row.split(",")] for row in found[-1]]
    return np.array(rows)


def sift_to_turboreg(sift: np.ndarray) -> np.ndarray:
    """SIFT's moving -> reference 2x3 matrix -> TurboReg's target -> source layout (its inverse)."""
    s = np.asarray(sift, dtype=float)
    if s.shape != (2, 3):
        raise ValueError(f"a SIFT matrix is 2x3, got shape {s.shape}")
    inverse = np.linalg.inv(np.vstack([s, [0.0, 0.0, 1.0]]))
    return homogeneous_to_turboreg(inverse)


def valid_mask(matrix: np.ndarray, output_shape: tuple[int, int], source_shape: tuple[int, int], *,
               rounded: bool = True) -> np.ndarray:
    """Where the output samples the inside of the source (TurboReg's rule: the *rounded* position).

    ``rounded=False`` gives SIFT/ImageJ's rule (the exact position within ``[0, w-1] x [0, h-1]``).
    """
    h, w = output_shape
    sh, sw = source_shape
    v, u = np.mgrid[0:h, 0:w].astype(float)
    m = np.asarray(matrix, dtype=float)
    x = m[0, 0] + m[0, 1] * u + m[0, 2] * v
    y = m[1, 0] + m[1, 1] * u + m[1, 2] * v
    if rounded:
        x, y = np.floor(x + 0.5), np.floor(y + 0.5)
    return (x >= 0) & (x <= sw - 1) & (y >= 0) & (y <= sh - 1)
