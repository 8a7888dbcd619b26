"""Images as they travel between the caller and the worker: numpy arrays plus plain-number calibration.

An array crosses the process boundary as a raw file in a private transfer folder (on Linux in
``/dev/shm``, i.e. memory): the sender writes the bytes once, the receiver reads them once, and
only a small :class:`ArrayRef` (path, shape, dtype, calibration) goes through the pipe. Nothing
is converted: float32, uint16 and uint8 arrive bit for bit. ImageJ itself stores these three
types (FloatProcessor, ShortProcessor, ByteProcessor), so they are the only ones accepted;
convert other types explicitly (``image.astype(np.float32)``) before sending.
"""

from __future__ import annotations

import math
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: numpy dtype name -> ImageJ bit depth
SUPPORTED_DTYPES: dict[str, int] = {"float32": 32, "uint16": 16, "uint8": 8}


@dataclass
class ImageArray:
    """A 2-D ``(Y, X)`` or 3-D ``(Z, Y, X)`` image with its calibration.

    Parameters
    ----------
    data : ndarray of float32, uint16 or uint8
        Pixel values; 3-D arrays are z-stacks (ImageJ "slices").
    pixel_size_um : float, optional
        Lateral pixel size in micrometres (ImageJ ``pixelWidth`` = ``pixelHeight``, unit "micron").
    z_step_um : float, optional
        Distance between planes in micrometres (ImageJ ``pixelDepth``).
    title : str
        ImageJ window title (macros select images by it).
    """

    data: np.ndarray
    pixel_size_um: float | None = None
    z_step_um: float | None = None
    title: str = ""

    def __post_init__(self) -> None:
        self.data = check_array(self.data, what=self.title or "image")
        for name in ("pixel_size_um", "z_step_um"):
            value = getattr(self, name)
            if value is not None:
                value = float(value)
                if not math.isfinite(value) or value <= 0:
                    raise ValueError(f"{self.title or 'image'}: {name} must be a positive number of micrometres, got {value}")
                setattr(self, name, value)


def check_array(data: Any, *, what: str = "image") -> np.ndarray:
    """Return ``data`` as a C-contiguous array ImageJ can hold exactly, or raise a clear error."""
    array = np.asarray(data)
    if array.dtype.name not in SUPPORTED_DTYPES:
        raise TypeError(f"{what}: ImageJ holds float32, uint16 or uint8 pixels exactly, got {array.dtype}; "
                        "convert explicitly, e.g. image.astype(np.float32)")
    if array.ndim not in (2, 3):
        raise ValueError(f"{what}: expected a 2-D (Y, X) or 3-D (Z, Y, X) array, got shape {array.shape}")
    if min(array.shape) < 1:
        raise ValueError(f"{what}: empty array of shape {array.shape}")
    if array.shape[-1] * array.shape[-2] >= 2**31:
        raise ValueError(f"{what}: a plane of {array.shape[-2]}x{array.shape[-1]} pixels exceeds ImageJ's 2^31 limit")
    return np.ascontiguousarray(array)


def as_image(value: ImageArray | np.ndarray, *, title: str = "") -> ImageArray:
    """Wrap a bare array in an :class:`ImageArray` (keeps an existing one, setting its title if empty)."""
    if isinstance(value, ImageArray):
        if title and not value.title:
            return ImageArray(value.data, value.pixel_size_um, value.z_step_um, title)
        return value
    return ImageArray(np.asarray(value), title=title)


@dataclass(frozen=True)
class ArrayRef:
    """An array stored in the transfer folder: what goes through the pipe instead of the pixels."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    pixel_size_um: float | None = None
    z_step_um: float | None = None
    title: str = ""

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


def make_transfer_dir(base: str | os.PathLike[str] | None = None) -> Path:
    """Create a private folder for array transfers: ``/dev/shm`` when writable, else the temp folder.

    The folder name has no spaces or quotes (plugins such as DeconvolutionLab2 split their
    arguments on spaces), and it is readable only by this user.
    """
    candidates: list[str | None] = [os.fspath(base)] if base is not None else []
    if base is None:
        env = os.environ.get("DECONGAN_FIJI_TMP")
        if env:
            candidates.append(env)
        if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
            candidates.append("/dev/shm")
        candidates.append(None)  # tempfile's default
    last_error: Exception | None = None
    for parent in candidates:
        try:
            path = Path(tempfile.mkdtemp(prefix="decongan-ij-", dir=parent))
        except OSError as err:
            last_error = err
            continue
        return path
    raise OSError(f"cannot create a transfer folder for the Fiji worker: {last_error}")


def new_array_path(folder: str | os.PathLike[str], prefix: str = "a") -> Path:
    """A fresh file name in the transfer folder."""
    return Path(folder) / f"{prefix}-{uuid.uuid4().hex}.raw"


def write_array(folder: str | os.PathLike[str], image: ImageArray | np.ndarray, *, prefix: str = "in") -> ArrayRef:
    """Write ``image``'s pixels (native byte order, C order) to a new file in ``folder``."""
    image = as_image(image)
    path = new_array_path(folder, prefix)
    with open(path, "wb") as handle:
        handle.write(memoryview(image.data).cast("B"))
    return ArrayRef(str(path), tuple(int(n) for n in image.data.shape), image.data.dtype.name,
                    image.pixel_size_um, image.z_step_um, image.title)


def read_array(ref: ArrayRef, *, delete: bool = True) -> ImageArray:
    """Read the array ``ref`` points to (and delete its file unless ``delete`` is False)."""
    path = Path(ref.path)
    try:
        data = np.fromfile(path, dtype=np.dtype(ref.dtype))
    finally:
        if delete:
            path.unlink(missing_ok=True)
    expected = int(np.prod(ref.shape))
    if data.size != expected:
        raise OSError(f"transfer file {path} holds {data.size} values, expected {expected} for shape {ref.shape}")
    return ImageArray(data.reshape(ref.shape), ref.pixel_size_um, ref.z_step_um, ref.title)


def calibration_to_um(value: float, unit: str) -> float | None:
    """Convert an ImageJ calibration value in ``unit`` to micrometres (None for uncalibrated pixels)."""
    unit_key = (unit or "").strip().lower()
    factors = {"micron": 1.0, "microns": 1.0, "um": 1.0, "µm": 1.0, "μm": 1.0, "micrometer": 1.0,
               "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3, "m": 1e6, "meter": 1e6}
    if unit_key in ("", "pixel", "pixels") or unit_key not in factors or not math.isfinite(value) or value <= 0:
        return None
    return float(value) * factors[unit_key]
