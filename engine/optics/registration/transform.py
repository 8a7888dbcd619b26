"""The 2-D transform of a registration: one matrix, one convention, converters to Fiji's conventions.

Convention (the only one used inside DeconGAN)
----------------------------------------------
Pixel coordinates are ``(x, y)`` with x = column (right), y = row (down), integer values at pixel
*centres* and ``(0, 0)`` the centre of the top-left pixel (the convention of TurboReg, SIFT and
``scipy.ndimage``). :attr:`Transform2D.matrix` is a 3x3 homogeneous matrix that maps a pixel of the
**fixed** (= output, reference) grid to the position in the **moving** image that is sampled
there::

    [x_moving, y_moving, 1]^T = matrix @ [x_fixed, y_fixed, 1]^T

so the aligned image is ``aligned[y, x] = moving(matrix @ (x, y, 1))``. This is TurboReg's
"target -> source" direction; :meth:`Transform2D.to_turboreg_matrix` re-orders it into TurboReg's
2x3 layout and :meth:`Transform2D.to_sift_matrix` inverts it into the "moving -> reference" matrix
that "Linear Stack Alignment with SIFT" prints.

Derived numbers (exact for translation/rigid/similarity, best similarity fit for affine), with
``A = matrix[:2, :2]`` and image centres ``c = ((width - 1) / 2, (height - 1) / 2)``:

* ``angle_deg`` = ``atan2(A[1,0] - A[0,1], A[0,0] + A[1,1])`` in degrees: the rotation that turns
  the fixed content into the moving content in (x right, y down) coordinates, i.e. positive values
  look **clockwise** on screen (TurboReg's "theta").
* ``scale`` = ``1 / sqrt(|det A|)``: the size of one moving pixel in fixed pixels (2.0 when a x2
  low-resolution scan is registered onto its high-resolution scan; the moving image is enlarged by
  this factor).
* ``shift_px`` = ``matrix @ c_fixed - c_moving``: where the centre of the fixed image lands in the
  moving image, relative to the moving image's centre, in **moving pixels** (x, y). For a pure
  translation, ``moving(p) = fixed(p - shift_px)``: the moving content is displaced by ``shift_px``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

TransformKind = Literal["translation", "rigid", "similarity", "affine"]
TRANSFORM_KINDS: tuple[str, ...] = ("translation", "rigid", "similarity", "affine")

JSON_FORMAT = "decongan-transform-2d"
JSON_VERSION = 1
CONVENTION = (
    "matrix (3x3) maps fixed/output pixel coordinates (x right, y down, integer = pixel centre, (0,0) = "
    "top-left pixel centre) to moving-image coordinates: [x_mov, y_mov, 1] = matrix @ [x_fix, y_fix, 1]; "
    "angle_deg > 0 looks clockwise on screen; scale = moving pixel size / fixed pixel size; shift_px = "
    "matrix @ fixed_centre - moving_centre (moving pixels)"
)


def image_centre(shape: tuple[int, int]) -> np.ndarray:
    """Centre ``(x, y)`` of an image of ``shape = (height, width)`` in pixel coordinates."""
    return np.array([(shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0])


@dataclass(frozen=True)
class Transform2D:
    """A 2-D geometric transform from the fixed grid to the moving image (see the module docstring).

    Parameters
    ----------
    matrix : array_like, shape (3, 3)
        Homogeneous matrix, fixed (x, y, 1) -> moving (x, y, 1); last row must be (0, 0, 1).
    kind : {"translation", "rigid", "similarity", "affine"}
        The model the matrix was estimated with.
    fixed_shape, moving_shape : tuple of int
        ``(height, width)`` of the fixed and moving images, needed for ``shift_px`` and to resample.
    """

    matrix: np.ndarray
    kind: TransformKind
    fixed_shape: tuple[int, int]
    moving_shape: tuple[int, int]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        m = np.array(self.matrix, dtype=np.float64)
        if m.shape == (2, 3):
            m = np.vstack([m, [0.0, 0.0, 1.0]])
        if m.shape != (3, 3):
            raise ValueError(f"a 2-D transform matrix must be 3x3 (or 2x3), got shape {m.shape}")
        if not np.all(np.isfinite(m)):
            raise ValueError("the transform matrix contains NaN or Inf")
        if not np.allclose(m[2], [0.0, 0.0, 1.0]):
            raise ValueError(f"the last row of a 2-D affine matrix must be (0, 0, 1), got {m[2].tolist()}")
        if abs(np.linalg.det(m[:2, :2])) < 1e-12:
            raise ValueError("the transform matrix is singular (its 2x2 part has determinant 0)")
        if self.kind not in TRANSFORM_KINDS:
            raise ValueError(f"unknown transform kind {self.kind!r}; choose one of {', '.join(TRANSFORM_KINDS)}")
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)
        object.__setattr__(self, "fixed_shape", _shape2(self.fixed_shape, "fixed_shape"))
        object.__setattr__(self, "moving_shape", _shape2(self.moving_shape, "moving_shape"))

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_parameters(
        cls,
        *,
        kind: TransformKind = "similarity",
        angle_deg: float = 0.0,
        scale: float = 1.0,
        shift_px: tuple[float, float] = (0.0, 0.0),
        fixed_shape: tuple[int, int],
        moving_shape: tuple[int, int],
    ) -> Transform2D:
        """Build ``moving = c_m + shift + R(angle) (fixed - c_f) / scale`` (see the module docstring)."""
        theta = math.radians(angle_deg)
        linear = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]) / scale
        return cls.from_centred(linear, np.asarray(shift_px, dtype=float), kind=kind,
                                fixed_shape=fixed_shape, moving_shape=moving_shape)

    @classmethod
    def from_centred(cls, linear: np.ndarray, shift_px: np.ndarray, *, kind: TransformKind,
                     fixed_shape: tuple[int, int], moving_shape: tuple[int, int]) -> Transform2D:
        """Build the matrix ``p_m = c_m + shift_px + linear @ (p_f - c_f)`` from a 2x2 part and a shift."""
        c_f, c_m = image_centre(fixed_shape), image_centre(moving_shape)
        m = np.eye(3)
        m[:2, :2] = linear
        m[:2, 2] = c_m + np.asarray(shift_px, dtype=float) - np.asarray(linear) @ c_f
        return cls(m, kind, fixed_shape, moving_shape)

    @classmethod
    def identity(cls, fixed_shape: tuple[int, int], moving_shape: tuple[int, int] | None = None, *,
                 kind: TransformKind = "translation") -> Transform2D:
        """Centres on centres, no rotation, scale 1."""
        return cls.from_centred(np.eye(2), np.zeros(2), kind=kind, fixed_shape=fixed_shape,
                                moving_shape=moving_shape or fixed_shape)

    @classmethod
    def same_field_of_view(cls, fixed_shape: tuple[int, int], moving_shape: tuple[int, int]) -> Transform2D:
        """The "naive resize" mapping: both images cover the same field of view, edge to edge.

        ``x_m = (x_f + 0.5) * w_m / w_f - 0.5`` (and likewise in y), the pixel-centre convention of
        ``skimage.transform.resize``. Identity when the shapes are equal.
        """
        sy, sx = moving_shape[0] / fixed_shape[0], moving_shape[1] / fixed_shape[1]
        m = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        kind: TransformKind = "translation" if sx == sy == 1 else ("similarity" if sx == sy else "affine")
        return cls(m, kind, fixed_shape, moving_shape)

    @classmethod
    def from_turboreg_matrix(cls, turboreg: Any, *, kind: TransformKind, fixed_shape: tuple[int, int],
                             moving_shape: tuple[int, int]) -> Transform2D:
        """From TurboReg's 2x3 ``[[tx, a, b], [ty, c, d]]`` (target -> source, ``x = tx + a*u + b*v``)."""
        t = np.asarray(turboreg, dtype=float)
        if t.shape != (2, 3):
            raise ValueError(f"a TurboReg matrix is 2x3, got shape {t.shape}")
        m = np.array([[t[0, 1], t[0, 2], t[0, 0]], [t[1, 1], t[1, 2], t[1, 0]], [0.0, 0.0, 1.0]])
        return cls(m, kind, fixed_shape, moving_shape)

    @classmethod
    def from_sift_matrix(cls, sift: Any, *, kind: TransformKind, fixed_shape: tuple[int, int],
                         moving_shape: tuple[int, int]) -> Transform2D:
        """From the 2x3 matrix SIFT prints (moving -> reference: ``x_ref = m00*x + m01*y + m02``)."""
        s = np.asarray(sift, dtype=float)
        if s.shape != (2, 3):
            raise ValueError(f"a SIFT matrix is 2x3, got shape {s.shape}")
        return cls(np.linalg.inv(np.vstack([s, [0.0, 0.0, 1.0]])), kind, fixed_shape, moving_shape)

    # -- derived numbers -----------------------------------------------------------------------
    @property
    def linear(self) -> np.ndarray:
        """The 2x2 part ``A`` (moving pixels per fixed pixel, with rotation)."""
        return self.matrix[:2, :2].copy()

    @property
    def angle_deg(self) -> float:
        """Rotation in degrees, positive = clockwise on screen (see the module docstring)."""
        a = self.matrix
        return math.degrees(math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1]))

    @property
    def scale(self) -> float:
        """Moving pixel size in fixed pixels, ``1 / sqrt(|det A|)``."""
        return 1.0 / math.sqrt(abs(float(np.linalg.det(self.matrix[:2, :2]))))

    @property
    def shift_px(self) -> tuple[float, float]:
        """``matrix @ c_fixed - c_moving`` as ``(x, y)`` in moving pixels."""
        c_f, c_m = image_centre(self.fixed_shape), image_centre(self.moving_shape)
        s = self.matrix[:2, :2] @ c_f + self.matrix[:2, 2] - c_m
        return float(s[0]), float(s[1])

    # -- use -----------------------------------------------------------------------------------
    def map_fixed_to_moving(self, points_xy: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` fixed-grid points ``(x, y)`` to moving-image coordinates."""
        p = np.asarray(points_xy, dtype=float)
        return p @ self.matrix[:2, :2].T + self.matrix[:2, 2]

    def inverse_matrix(self) -> np.ndarray:
        """3x3 matrix mapping moving coordinates to fixed coordinates."""
        return np.linalg.inv(self.matrix)

    def to_turboreg_matrix(self) -> np.ndarray:
        """TurboReg's 2x3 layout ``[[tx, a, b], [ty, c, d]]``: ``x_src = tx + a*u + b*v`` (target -> source)."""
        m = self.matrix
        return np.array([[m[0, 2], m[0, 0], m[0, 1]], [m[1, 2], m[1, 0], m[1, 1]]])

    def to_sift_matrix(self) -> np.ndarray:
        """SIFT's 2x3 ``[[m00, m01, m02], [m10, m11, m12]]`` mapping moving -> reference (fixed)."""
        return self.inverse_matrix()[:2].copy()

    def max_displacement_error(self, other: Transform2D | np.ndarray, shape: tuple[int, int] | None = None) -> float:
        """Largest distance (moving pixels) between where ``self`` and ``other`` map the fixed grid's pixels.

        ``other`` may be a Transform2D or a 3x3 matrix in the same convention; ``shape`` defaults to
        ``fixed_shape``. Because the maps are affine, the maximum over the grid is at a corner.
        """
        om = other.matrix if isinstance(other, Transform2D) else np.asarray(other, dtype=float)
        h, w = shape or self.fixed_shape
        corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], dtype=float)
        diff = corners @ (self.matrix - om).T
        return float(np.max(np.hypot(diff[:, 0], diff[:, 1])))

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the derived numbers and Fiji matrices are included for people to read."""
        return {
            "format": JSON_FORMAT,
            "version": JSON_VERSION,
            "kind": self.kind,
            "convention": CONVENTION,
            "matrix": self.matrix.tolist(),
            "fixed_shape": list(self.fixed_shape),
            "moving_shape": list(self.moving_shape),
            "angle_deg": self.angle_deg,
            "scale": self.scale,
            "shift_px": list(self.shift_px),
            "turboreg_matrix": self.to_turboreg_matrix().tolist(),
            "sift_matrix": self.to_sift_matrix().tolist(),
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transform2D:
        """Inverse of :meth:`to_dict` (reads ``matrix``, ``kind`` and the shapes; the rest is derived)."""
        if not isinstance(data, dict):
            raise ValueError("a transform JSON document must be an object")
        if data.get("format") != JSON_FORMAT:
            raise ValueError(f"not a DeconGAN transform (format {data.get('format')!r}, expected {JSON_FORMAT!r})")
        if int(data.get("version", 0)) > JSON_VERSION:
            raise ValueError(f"transform version {data.get('version')} is newer than this DeconGAN understands "
                             f"({JSON_VERSION})")
        missing = [k for k in ("matrix", "kind", "fixed_shape", "moving_shape") if k not in data]
        if missing:
            raise ValueError(f"transform JSON lacks {', '.join(missing)}")
        return cls(np.asarray(data["matrix"], dtype=float), data["kind"], tuple(data["fixed_shape"]),
                   tuple(data["moving_shape"]), dict(data.get("extra") or {}))

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Transform2D:
        """Parse :meth:`to_json` output (a registration result's JSON works too: its ``quality`` is ignored)."""
        return cls.from_dict(json.loads(text))


def _shape2(shape: Any, name: str) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (height, width), got {shape!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be positive, got {(h, w)}")
    return h, w


# ---------------------------------------------------------------------------------------------
# resampling
# ---------------------------------------------------------------------------------------------
def sample_coordinates(matrix: np.ndarray, output_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Moving-image coordinates ``(x, y)`` (each of ``output_shape``) sampled at every output pixel.

    Parameters
    ----------
    matrix : ndarray, shape (3, 3)
        Fixed/output (x, y, 1) -> moving (x, y, 1), the module's convention.
    output_shape : (int, int)
        (height, width) of the output (fixed) grid.

    Returns
    -------
    x, y : ndarray, float64, shape ``output_shape``
        Column and row positions in the moving image, in moving px (integers at pixel centres).
    """
    h, w = output_shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x = matrix[0, 0] * xx + matrix[0, 1] * yy + matrix[0, 2]
    y = matrix[1, 0] * xx + matrix[1, 1] * yy + matrix[1, 2]
    return x, y


def valid_mask_for(x: np.ndarray, y: np.ndarray, moving_shape: tuple[int, int]) -> np.ndarray:
    """True where the *rounded* source position lies inside the moving image (TurboReg's rule).

    Rounding is half-up, like Java's ``Math.round``: valid when ``-0.5 <= x < width - 0.5``.

    Parameters
    ----------
    x, y : ndarray, same shape
        Source positions in moving px (e.g. from :func:`sample_coordinates`).
    moving_shape : (int, int)
        (height, width) of the moving image.

    Returns
    -------
    ndarray of bool, shape of ``x``
        True where the rounded position is a pixel of the moving image.
    """
    h, w = moving_shape
    rx, ry = np.floor(x + 0.5), np.floor(y + 0.5)
    return (rx >= 0) & (rx <= w - 1) & (ry >= 0) & (ry <= h - 1)


def apply_transform(
    moving: np.ndarray,
    transform: Transform2D | np.ndarray,
    output_shape: tuple[int, int] | None = None,
    *,
    order: int = 3,
    cval: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``moving`` onto the fixed grid.

    Parameters
    ----------
    moving : ndarray, shape (..., H_m, W_m)
        The image (or a stack of planes sharing one transform: every leading index is resampled
        with the same 2-D transform).
    transform : Transform2D or ndarray (3, 3)
        Fixed -> moving map (module convention).
    output_shape : tuple of int, optional
        ``(height, width)`` of the output (fixed) grid; default ``transform.fixed_shape``.
    order : int
        Spline order (3 = cubic B-spline with "reflect" (half-sample symmetric) boundary, the same
        resampling as TurboReg's output: identical to 2.5e-5).
    cval : float
        Value of output pixels whose rounded source position lies outside the moving image.

    Returns
    -------
    aligned : ndarray, float32, shape (..., *output_shape)
    mask : ndarray, bool, shape output_shape
        True where the output was sampled from inside the moving image (TurboReg's "Mask" slice).
    """
    from scipy import ndimage

    matrix = transform.matrix if isinstance(transform, Transform2D) else np.asarray(transform, dtype=float)
    if output_shape is None:
        if not isinstance(transform, Transform2D):
            raise ValueError("output_shape is required when the transform is a bare matrix")
        output_shape = transform.fixed_shape
    arr = np.asarray(moving)
    if arr.ndim < 2:
        raise ValueError(f"moving must have at least 2 dimensions (Y, X), got shape {arr.shape}")
    output_shape = (int(output_shape[0]), int(output_shape[1]))
    moving_shape = arr.shape[-2:]
    planes = arr.reshape(-1, *moving_shape)
    out = np.empty((planes.shape[0], *output_shape), dtype=np.float32)
    mask = np.empty(output_shape, dtype=bool)
    # rows in blocks of ~1 M output pixels, one plane at a time: memory stays bounded for big stacks
    block = max(1, (1 << 20) // max(1, output_shape[1]))
    for i, plane in enumerate(planes):
        plane64 = plane.astype(np.float64, copy=False)
        coeffs = ndimage.spline_filter(plane64, order=order, mode="reflect") if order > 1 else plane64
        for r0 in range(0, output_shape[0], block):
            r1 = min(output_shape[0], r0 + block)
            shifted = matrix @ np.array([[1.0, 0.0, 0.0], [0.0, 1.0, r0], [0.0, 0.0, 1.0]])
            x, y = sample_coordinates(shifted, (r1 - r0, output_shape[1]))
            inside = valid_mask_for(x, y, moving_shape)
            if i == 0:
                mask[r0:r1] = inside
            sampled = ndimage.map_coordinates(coeffs, [y, x], order=order, mode="reflect", prefilter=False)
            out[i, r0:r1] = np.where(inside, sampled, cval)
    return out.reshape(*arr.shape[:-2], *output_shape), mask
