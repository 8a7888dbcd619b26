"""Intensity-based refinement of a transform on one pyramid level (least squares, NCC-equivalent).

At a level, the model is ``p_m = c_m + A (q_f - c_f) + t`` (centres of the level's images) and the
residual over the fixed pixels ``q`` whose source ``p_m`` lies inside the moving image is::

    r(q) = g * moving(p_m(q)) + o - fixed(q)

with a photometric gain ``g`` and offset ``o``. Minimising ``sum r^2`` over ``g, o`` and the
geometric parameters maximises the squared normalised cross-correlation (the minimum over g, o is
``N var(fixed) (1 - NCC^2)``), so the optimum is the NCC optimum for positively correlated
images. ``scipy.optimize.least_squares`` (Levenberg-Marquardt, MINPACK) solves it with the exact
Jacobian: the moving image is a cubic B-spline (``scipy.ndimage.map_coordinates`` on precomputed
coefficients) and its gradient is the spline's derivative by central differences (h = 1e-3 px).

Parameters per model (``A`` = moving pixels per fixed pixel):

* translation: ``(tx, ty)``; ``A`` stays as given (identity, or the pixel-size ratio).
* rigid: ``(tx, ty, theta)``; ``A = s0 R(theta)`` with ``s0`` kept from the start.
* similarity: ``(tx, ty, a, b)``; ``A = [[a, -b], [b, a]]``.
* affine: ``(tx, ty, a00, a01, a10, a11)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from decongan.engine.optics.registration.errors import RegistrationError
from decongan.engine.optics.registration.pyramid import Level
from decongan.engine.optics.registration.quality import normalised_cross_correlation
from decongan.engine.optics.registration.transform import image_centre

_H = 1e-3  # central-difference step for the spline gradient, pixels


@dataclass(frozen=True)
class LevelFit:
    """Outcome of refining on one level."""

    matrix_full: np.ndarray  # 3x3 fixed->moving at full resolution
    ncc: float  # NCC over the points used, at this level
    n_points: int
    iterations: int  # function evaluations of the last pass
    passes: int


class _Model:
    """Geometric parameter vector <-> (A, t) for one transform kind."""

    def __init__(self, kind: str, linear0: np.ndarray) -> None:
        self.kind = kind
        self.linear0 = np.asarray(linear0, dtype=float)
        self.s0 = math.sqrt(abs(float(np.linalg.det(self.linear0))))

    def initial(self, linear: np.ndarray, shift: np.ndarray) -> np.ndarray:
        a = linear
        if self.kind == "translation":
            return np.array(shift, dtype=float)
        if self.kind == "rigid":
            theta = math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])
            return np.array([shift[0], shift[1], theta])
        if self.kind == "similarity":
            return np.array([shift[0], shift[1], (a[0, 0] + a[1, 1]) / 2, (a[1, 0] - a[0, 1]) / 2])
        return np.array([shift[0], shift[1], a[0, 0], a[0, 1], a[1, 0], a[1, 1]])

    def linear(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "translation":
            return self.linear0
        if self.kind == "rigid":
            c, s = math.cos(x[2]), math.sin(x[2])
            return self.s0 * np.array([[c, -s], [s, c]])
        if self.kind == "similarity":
            return np.array([[x[2], -x[3]], [x[3], x[2]]])
        return np.array([[x[2], x[3]], [x[4], x[5]]])

    def coordinate_derivatives(self, x: np.ndarray, u: np.ndarray, v: np.ndarray) -> list[tuple]:
        """For each non-shift parameter, ``(d px / d param, d py / d param)`` at points ``(u, v)``."""
        if self.kind == "translation":
            return []
        if self.kind == "rigid":
            c, s = math.cos(x[2]), math.sin(x[2])
            return [(self.s0 * (-s * u - c * v), self.s0 * (c * u - s * v))]
        if self.kind == "similarity":
            return [(u, v), (-v, u)]
        zero = np.zeros_like(u)
        return [(u, zero), (v, zero), (zero, u), (zero, v)]


def _sample(coeffs: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.map_coordinates(coeffs, [py, px], order=3, mode="reflect", prefilter=False)


def _inside(px: np.ndarray, py: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return (px >= 0) & (px <= shape[1] - 1) & (py >= 0) & (py <= shape[0] - 1)


def refine_on_level(
    level: Level,
    matrix_full: np.ndarray,
    kind: str,
    *,
    max_iterations: int = 50,
    max_points: int = 2**17,
    max_passes: int = 3,
) -> LevelFit:
    """Refine ``matrix_full`` (fixed->moving, full-resolution coordinates) on ``level``.

    The set of fixed pixels used is those whose source lies inside the moving image at the current
    estimate; it is held fixed during one least-squares pass and recomputed after it, until it
    changes by < 0.5 % (at most ``max_passes`` passes). Above ``max_points`` pixels, a regular
    sub-grid (every k-th row and column) is used.

    Parameters
    ----------
    level : Level
        The pyramid level to fit on.
    matrix_full : ndarray, shape (3, 3)
        The starting fixed -> moving matrix in full-resolution pixel coordinates.
    kind : {"translation", "rigid", "similarity", "affine"}
        The transform model fitted (with a photometric gain and offset).
    max_iterations : int
        Cap on least-squares function evaluations per pass.
    max_points : int
        Fixed pixels used at most.
    max_passes : int
        Cap on passes (each with its own set of overlapping pixels).

    Returns
    -------
    LevelFit
        The refined full-resolution matrix, the NCC over the pixels used, their number, the function
        evaluations of the last pass and the number of passes.

    Raises
    ------
    RegistrationError
        When the images barely overlap at the current estimate (too few pixels to fit).
    """
    from scipy.optimize import least_squares

    fixed = level.fixed
    coeffs = level.moving_coeffs
    m_shape = level.moving_shape
    c_f, c_m = image_centre(fixed.shape), image_centre(m_shape)
    stride = max(1, math.ceil(math.sqrt(fixed.size / max_points)))
    gy, gx = np.mgrid[0:fixed.shape[0]:stride, 0:fixed.shape[1]:stride].astype(np.float64)
    gf = fixed[::stride, ::stride]
    u_all, v_all = gx.ravel() - c_f[0], gy.ravel() - c_f[1]
    f_all = gf.ravel()

    m_level = level.to_level(matrix_full)
    linear = m_level[:2, :2]
    shift = linear @ c_f + m_level[:2, 2] - c_m
    model = _Model(kind, linear)
    x_geom = model.initial(linear, shift)

    def coords(xg: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = model.linear(xg)
        return c_m[0] + xg[0] + a[0, 0] * u + a[0, 1] * v, c_m[1] + xg[1] + a[1, 0] * u + a[1, 1] * v

    px, py = coords(x_geom, u_all, v_all)
    use = _inside(px, py, m_shape)
    passes, nfev, ncc = 0, 0, float("nan")
    while passes < max_passes:
        passes += 1
        if use.sum() < max(16, 2 * (x_geom.size + 2)):
            raise RegistrationError("the images barely overlap at the current estimate: too few pixels to register")
        problem = _Problem(model, coeffs, c_m, u_all[use], v_all[use], f_all[use])
        gain, offset = _photometric(problem.warped(np.concatenate([x_geom, [1.0, 0.0]])), problem.f)
        x0 = np.concatenate([x_geom, [gain, offset]])
        sol = least_squares(problem.residual, x0, jac=problem.jacobian, method="lm", x_scale="jac",
                            max_nfev=max_iterations, xtol=1e-8, ftol=1e-9, gtol=1e-10)
        x_geom = sol.x[: x_geom.size]
        nfev = int(sol.nfev)
        ncc = normalised_cross_correlation(problem.warped(sol.x), problem.f)
        px, py = coords(x_geom, u_all, v_all)
        new_use = _inside(px, py, m_shape)
        changed = np.count_nonzero(new_use != use)
        use = new_use
        if changed <= 0.005 * use.size:
            break

    a = model.linear(x_geom)
    m_new = np.eye(3)
    m_new[:2, :2] = a
    m_new[:2, 2] = c_m + x_geom[:2] - a @ c_f
    return LevelFit(matrix_full=level.to_full(m_new), ncc=ncc, n_points=int(use.sum()), iterations=nfev,
                    passes=passes)


class _Problem:
    """Residual and Jacobian of one least-squares pass (fixed point set, see the module docstring)."""

    def __init__(self, model: _Model, coeffs: np.ndarray, c_m: np.ndarray, u: np.ndarray, v: np.ndarray,
                 f: np.ndarray) -> None:
        self.model, self.coeffs, self.c_m = model, coeffs, c_m
        self.u, self.v, self.f = u, v, f
        self.n_geom = {"translation": 2, "rigid": 3, "similarity": 4}.get(model.kind, 6)
        self._last: tuple[bytes, np.ndarray] | None = None

    def coords(self, xg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = self.model.linear(xg)
        u, v = self.u, self.v
        return (self.c_m[0] + xg[0] + a[0, 0] * u + a[0, 1] * v,
                self.c_m[1] + xg[1] + a[1, 0] * u + a[1, 1] * v)

    def warped(self, x: np.ndarray) -> np.ndarray:
        """Moving image sampled at the points for parameters ``x`` (cached for the last ``x``)."""
        key = x[: self.n_geom].tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        qx, qy = self.coords(x[: self.n_geom])
        w = _sample(self.coeffs, qy, qx)
        self._last = (key, w)
        return w

    def residual(self, x: np.ndarray) -> np.ndarray:
        return x[self.n_geom] * self.warped(x) + x[self.n_geom + 1] - self.f

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        n_geom = self.n_geom
        xg, gain = x[:n_geom], x[n_geom]
        qx, qy = self.coords(xg)
        n = qx.size
        s = _sample(self.coeffs, np.concatenate([qy, qy, qy + _H, qy - _H]),
                    np.concatenate([qx + _H, qx - _H, qx, qx]))
        ix = (s[:n] - s[n:2 * n]) / (2 * _H)
        iy = (s[2 * n:3 * n] - s[3 * n:]) / (2 * _H)
        jac = np.empty((n, n_geom + 2))
        jac[:, 0] = gain * ix
        jac[:, 1] = gain * iy
        for k, (dx, dy) in enumerate(self.model.coordinate_derivatives(xg, self.u, self.v), start=2):
            jac[:, k] = gain * (ix * dx + iy * dy)
        jac[:, n_geom] = self.warped(x)
        jac[:, n_geom + 1] = 1.0
        return jac


def _photometric(warped: np.ndarray, fixed: np.ndarray) -> tuple[float, float]:
    """Least-squares gain and offset with ``gain * warped + offset ~ fixed``."""
    var = float(np.var(warped))
    if var <= 0:
        return 1.0, float(np.mean(fixed) - np.mean(warped))
    gain = float(np.mean((warped - warped.mean()) * (fixed - fixed.mean())) / var)
    if gain == 0:
        gain = 1e-6
    return gain, float(fixed.mean() - gain * warped.mean())
