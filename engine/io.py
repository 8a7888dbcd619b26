"""Microscopy image input/output: TIFF (plain, ImageJ hyperstack, OME-TIFF) and PNG.

Every image is returned as a :class:`MicroscopyImage` whose array axes are a subset of ``"TZCYX"``
in that order (time, depth, channel, rows, columns), with the lateral pixel size and the z step in
micrometres when the file states them (ImageJ or OME metadata) or the caller overrides them.
The original bit depth is kept (uint8, uint16, float32 ...); nothing is rescaled on read.

Writing produces ImageJ-hyperstack TIFFs (float32, uint16 or uint8) that Fiji opens with the
right axes and calibration. Values are never clipped or rescaled silently: asking for uint16 with
data outside [0, 65535] is an error that says so.

Bad input raises :class:`ImageReadError`, whose message names the file and the problem.

Why this module is long
-----------------------
Reading and writing share the canonical ``TZCYX`` axis order, the micrometre calibration and the
value checks, and each direction is tested as a round trip through the other; the TIFF, ImageJ
and OME calibration parsers (~100 lines) exist only for the reader. Another container format gets
its own module rather than growing this one.
"""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.outputs import MemoryEstimateError, atomic_path, check_memory

CANONICAL_AXES = "TZCYX"
TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_SUFFIXES = TIFF_SUFFIXES + RASTER_SUFFIXES
#: OME-Zarr images are folders with these names (read by engine.zarr_io)
ZARR_SUFFIXES = (".ome.zarr", ".zarr")

_UNIT_TO_UM = {
    "um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0,
    "\\u00b5m": 1.0, "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "m": 1e6,
}


class ImageReadError(DeconganError, ValueError):
    """A file could not be used as a microscopy image. ``str(err)`` = ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class ImageWriteError(DeconganError, ValueError):
    """Data could not be written as asked (e.g. uint16 requested for values outside [0, 65535])."""


def image_stem(path: str | Path) -> str:
    """File name without its image suffix, double suffixes included.

    Parameters
    ----------
    path : str or Path
        An image file (need not exist).

    Returns
    -------
    str
        ``a.ome.tif`` -> ``a``, ``b.TIFF`` -> ``b``, ``c.png`` -> ``c``, ``d.ome.zarr`` -> ``d``; other names
        lose their last suffix.
    """
    name = Path(path).name
    for suffix in sorted(IMAGE_SUFFIXES + ZARR_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


@dataclass
class MicroscopyImage:
    """An image array with its axes and physical calibration.

    Attributes
    ----------
    data : ndarray
        Pixel values, shape given by ``axes`` (subset of ``"TZCYX"`` in that order), original dtype.
    axes : str
        Axis letters of ``data``, e.g. ``"YX"``, ``"ZYX"``, ``"CYX"``, ``"TZCYX"``.
    pixel_size_um : float or None
        Lateral pixel size in micrometres (square pixels assumed; see ``pixel_size_yx_um``).
    z_step_um : float or None
        Distance between z planes in micrometres.
    time_interval_s : float or None
        Frame interval in seconds.
    path : Path or None
        File the image came from.
    metadata : dict
        Extra facts (``"rgb": True`` for colour rasters, ``"channel_names"``, source ``"format"``).
    """

    data: np.ndarray
    axes: str
    pixel_size_um: float | None = None
    z_step_um: float | None = None
    time_interval_s: float | None = None
    path: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != len(self.axes):
            raise ValueError(f"axes {self.axes!r} do not match an array of {self.data.ndim} dimensions")
        if any(a not in CANONICAL_AXES for a in self.axes) or "".join(sorted(self.axes, key=CANONICAL_AXES.index)) != self.axes:
            raise ValueError(f"axes {self.axes!r} must be a subset of {CANONICAL_AXES!r} in that order")
        if not self.axes.endswith("YX"):
            raise ValueError(f"axes {self.axes!r} must end with 'YX'")

    # -- shape helpers -------------------------------------------------------------------------
    def size(self, axis: str) -> int:
        """Length of ``axis`` (1 when the image has no such axis)."""
        return self.data.shape[self.axes.index(axis)] if axis in self.axes else 1

    @property
    def n_channels(self) -> int:
        return self.size("C")

    @property
    def n_z(self) -> int:
        return self.size("Z")

    @property
    def n_t(self) -> int:
        return self.size("T")

    @property
    def yx_shape(self) -> tuple[int, int]:
        return int(self.data.shape[-2]), int(self.data.shape[-1])

    @property
    def name(self) -> str:
        """File stem without TIFF/OME suffixes, or ``"image"``."""
        return "image" if self.path is None else image_stem(self.path)

    def select(self, *, t: int | None = None, z: int | None = None, c: int | None = None) -> MicroscopyImage:
        """A view with the given axes fixed at an index (axes that are absent must be None or 0)."""
        index: list[Any] = []
        axes = ""
        for axis in self.axes:
            choice = {"T": t, "Z": z, "C": c}.get(axis)
            if choice is None:
                index.append(slice(None))
                axes += axis
            else:
                index.append(int(choice))
        for axis, choice in (("T", t), ("Z", z), ("C", c)):
            if axis not in self.axes and choice not in (None, 0):
                raise IndexError(f"{self.path or 'image'} has no {axis} axis (asked for {axis}={choice})")
        return replace(self, data=self.data[tuple(index)], axes=axes)

    def plane(self, *, t: int = 0, z: int = 0, c: int = 0) -> np.ndarray:
        """One 2-D (Y, X) plane."""
        return self.select(t=t if "T" in self.axes else None, z=z if "Z" in self.axes else None,
                           c=c if "C" in self.axes else None).data

    def iter_planes(self) -> Iterator[tuple[dict[str, int], np.ndarray]]:
        """Yield ``({"t": .., "z": .., "c": ..}, plane)`` for every 2-D plane, in storage order."""
        lead = self.data.shape[:-2]
        lead_axes = self.axes[:-2]
        for idx in np.ndindex(*lead) if lead else [()]:
            where = {a.lower(): int(i) for a, i in zip(lead_axes, idx, strict=True)}
            yield where, self.data[idx]

    def with_data(self, data: np.ndarray, axes: str | None = None) -> MicroscopyImage:
        """Same calibration and metadata, new pixels (e.g. a restored image)."""
        return replace(self, data=data, axes=axes or self.axes, metadata=dict(self.metadata))

    def require_single_channel(self) -> MicroscopyImage:
        """Raise :class:`ImageReadError` for colour (RGB) or multichannel data; return self otherwise."""
        if self.metadata.get("rgb"):
            raise ImageReadError(
                self.path,
                "is an RGB colour image; a single-channel (grey) fluorescence image is needed here. "
                "Split the channels first (Fiji: Image > Color > Split Channels) or choose a channel.",
            )
        if self.n_channels > 1:
            raise ImageReadError(
                self.path, f"has {self.n_channels} channels; choose one (e.g. channel 0) or process them separately"
            )
        return self


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def read_image(
    path: str | Path,
    *,
    pixel_size_um: float | None = None,
    z_step_um: float | None = None,
    axes: str | None = None,
    allow_nonfinite: bool = False,
    level: int = 0,
) -> MicroscopyImage:
    """Read a TIFF (plain, ImageJ hyperstack, OME), PNG/JPEG/BMP or OME-Zarr microscopy image.

    Parameters
    ----------
    path : str or Path
        The file.
    pixel_size_um, z_step_um : float, optional
        Override the lateral pixel size / z step (micrometres) found in the file.
    axes : str, optional
        Override the axes the file declares, as letters of ``"TZCYX"`` (any order, e.g. ``"ZYX"``
        for an unlabelled stack of planes, or ``"CYX"`` when a 3-D stack is really channels).
    allow_nonfinite : bool
        Accept NaN/Inf values (rejected by default, because every restoration method breaks on them).
    level : int
        Scale level of an OME-Zarr image (``.zarr`` / ``.ome.zarr`` folder; 0 = full resolution), read by
        :func:`decongan.engine.zarr_io.read_ome_zarr`; other formats have only level 0.

    Returns
    -------
    MicroscopyImage
        Data in canonical ``"TZCYX"``-subset order, original dtype.

    Raises
    ------
    ImageReadError
        Missing, empty, truncated or unreadable file; zero-size, more than 5-D or complex data;
        NaN/Inf values. The message names the file and the problem.
    """
    path = Path(path)
    from decongan.engine.zarr_io import is_zarr_path, read_ome_zarr

    if is_zarr_path(path):
        if axes is not None:
            raise ImageReadError(path, "an OME-Zarr image states its own axes; they cannot be overridden")
        image = read_ome_zarr(path, level=level)
        _validate_values(path, image.data, allow_nonfinite=allow_nonfinite)
        return replace(image, pixel_size_um=pixel_size_um if pixel_size_um is not None else image.pixel_size_um,
                       z_step_um=z_step_um if z_step_um is not None else image.z_step_um)
    if level != 0:
        raise ImageReadError(path, f"has a single resolution; scale level {level} exists only in OME-Zarr images")
    if not path.exists():
        raise ImageReadError(path, "file not found")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "is empty (0 bytes)")

    lower = path.name.lower()
    if lower.endswith(TIFF_SUFFIXES):
        data, file_axes, calib, meta = _read_tiff(path)
    elif lower.endswith(RASTER_SUFFIXES):
        data, file_axes, calib, meta = _read_raster(path)
    else:
        # Unknown suffix: try TIFF (many instruments write .lsm/.stk TIFF variants), then raster.
        try:
            data, file_axes, calib, meta = _read_tiff(path)
        except ImageReadError:
            data, file_axes, calib, meta = _read_raster(path)

    if axes is not None:
        axes = axes.upper()
        if len(axes) != data.ndim:
            raise ImageReadError(path, f"axes {axes!r} were given but the data has {data.ndim} dimensions {data.shape}")
        file_axes = axes
    data, canon = _to_canonical(path, data, file_axes)
    _validate_values(path, data, allow_nonfinite=allow_nonfinite)

    return MicroscopyImage(
        data=data,
        axes=canon,
        pixel_size_um=pixel_size_um if pixel_size_um is not None else calib.get("pixel_size_um"),
        z_step_um=z_step_um if z_step_um is not None else calib.get("z_step_um"),
        time_interval_s=calib.get("time_interval_s"),
        path=path,
        metadata=meta,
    )


def _read_tiff(path: Path) -> tuple[np.ndarray, str, dict[str, float], dict[str, Any]]:
    import tifffile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # tifffile warns (instead of failing) on many truncations
            with tifffile.TiffFile(path) as tif:
                if not tif.series:
                    raise ImageReadError(path, "TIFF contains no image data")
                series = tif.series[0]
                check_image_memory(path, tuple(series.shape), series.dtype)
                data = series.asarray()
                file_axes = series.axes
                calib = _tiff_calibration(tif, series)
                meta: dict[str, Any] = {"format": "ome-tiff" if tif.is_ome else ("imagej-tiff" if tif.is_imagej else "tiff")}
                if tif.is_imagej and tif.imagej_metadata:
                    labels = tif.imagej_metadata.get("Labels")
                    if labels:
                        meta["labels"] = list(labels)
    except ImageReadError:
        raise
    except (tifffile.TiffFileError, ValueError, OSError, EOFError, KeyError, IndexError, RuntimeWarning, UserWarning) as err:
        text = str(err) or type(err).__name__
        if "not a TIFF" in text or "invalid TIFF" in text.lower():
            problem = f"is not a TIFF image ({text})"
        else:
            problem = f"TIFF could not be read; the file may be truncated or corrupt ({text})"
        raise ImageReadError(path, problem) from err
    return data, file_axes, calib, meta


def check_image_memory(path: str | Path, shape: tuple[int, ...], dtype: Any, *, copies: float = 1.0) -> None:
    """Refuse, before reading, an image whose pixels (as the header states them) cannot fit in memory.

    Parameters
    ----------
    path : path
        The file (named in the message).
    shape : tuple of int
        Array shape the header declares.
    dtype : dtype-like
        Pixel type the header declares.
    copies : float
        How many arrays of that size the step holds at once.

    Raises
    ------
    ImageReadError
        ``"<path>: reading it (uint16, shape (100000, 100000)) needs about 18.6 GiB of memory, but only
        ... GiB is available (MemAvailable in /proc/meminfo); ..."``.
    """
    itemsize = np.dtype(dtype).itemsize
    need = int(float(np.prod([float(n) for n in shape])) * itemsize * copies)
    try:
        check_memory(need, what=f"reading it ({np.dtype(dtype)}, shape {tuple(int(n) for n in shape)})",
                     fix="crop or bin it first (Fiji: Image > Crop, Image > Scale), or use a machine with more memory")
    except MemoryEstimateError as err:
        raise ImageReadError(path, str(err)) from None


def _read_raster(path: Path) -> tuple[np.ndarray, str, dict[str, float], dict[str, Any]]:
    import imageio.v3 as iio

    try:
        data = np.asarray(iio.imread(path))
    except Exception as err:  # imageio raises many different types for bad files
        raise ImageReadError(path, f"is not a readable image ({type(err).__name__}: {err})") from err
    meta: dict[str, Any] = {"format": path.suffix.lower().lstrip(".")}
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        rgb = data[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0].copy(), "YX", {}, meta  # grey stored as RGB
        meta["rgb"] = True
        return rgb, "YXC", {}, meta
    if data.ndim == 3 and data.shape[-1] == 2:  # grey + alpha
        return data[..., 0].copy(), "YX", {}, meta
    if data.ndim != 2:
        raise ImageReadError(path, f"unexpected raster shape {data.shape}")
    return data, "YX", {}, meta


def _unit_factor(unit: str | None) -> float | None:
    if not unit:
        return None
    return _UNIT_TO_UM.get(str(unit).strip().lower().replace("\\u00b5", "µ"))


def _tiff_calibration(tif: Any, series: Any) -> dict[str, float]:
    calib: dict[str, float] = {}
    if tif.is_ome and tif.ome_metadata:
        try:
            calib.update(_ome_calibration(tif.ome_metadata))
        except ET.ParseError:
            pass
        if calib:
            return calib
    page = series.pages[0] if series.pages else tif.pages[0]
    ij = tif.imagej_metadata if tif.is_imagej else None
    unit = (ij or {}).get("unit")
    tag = page.tags.get("XResolution")
    res_unit_tag = page.tags.get("ResolutionUnit")
    res_unit = int(res_unit_tag.value) if res_unit_tag is not None else 2
    if tag is not None:
        num, den = tag.value
        px_per_unit = num / den if den else 0.0
        factor = _unit_factor(unit) if unit else None
        if factor is None and not ij and res_unit == 3:  # pixels per centimetre
            factor = 1e4
        if factor is not None and px_per_unit > 0 and not (unit is None and res_unit == 2):
            calib["pixel_size_um"] = factor / px_per_unit
    if ij:
        factor = _unit_factor(unit) or 1.0
        spacing = ij.get("spacing")
        if spacing:
            calib["z_step_um"] = float(spacing) * factor
        finterval = ij.get("finterval")
        if finterval:
            calib["time_interval_s"] = float(finterval)
    return calib


def _ome_calibration(xml_text: str) -> dict[str, float]:
    root = ET.fromstring(xml_text)
    pixels = next((el for el in root.iter() if el.tag.endswith("}Pixels") or el.tag == "Pixels"), None)
    if pixels is None:
        return {}
    out: dict[str, float] = {}
    for attr, key in (("PhysicalSizeX", "pixel_size_um"), ("PhysicalSizeZ", "z_step_um")):
        value = pixels.get(attr)
        if value is None:
            continue
        factor = _unit_factor(pixels.get(attr + "Unit", "µm")) or 1.0
        out[key] = float(value) * factor
    if pixels.get("TimeIncrement"):
        out["time_interval_s"] = float(pixels.get("TimeIncrement"))  # type: ignore[arg-type]
    return out


_AXIS_ALIASES = {"S": "C", "Q": "Z", "I": "Z", "E": "C"}


def _to_canonical(path: Path, data: np.ndarray, file_axes: str) -> tuple[np.ndarray, str]:
    """Squeeze singleton axes, map tifffile's letters to TZCYX, and transpose into canonical order."""
    if data.size == 0 or 0 in data.shape:
        raise ImageReadError(path, f"contains no pixels (shape {data.shape})")
    axes = list(file_axes.upper())
    keep = [i for i, (a, n) in enumerate(zip(axes, data.shape, strict=True)) if n > 1 or a in "YX"]
    data = data.reshape([data.shape[i] for i in keep])
    axes = [axes[i] for i in keep]
    mapped: list[str] = []
    for a in axes:
        a = _AXIS_ALIASES.get(a, a)
        if a in mapped and a in "ZC":  # e.g. 'QQYX': two unknown axes
            other = "C" if a == "Z" else "T"
            a = other if other not in mapped else a
        mapped.append(a)
    if len(mapped) > 5:
        raise ImageReadError(path, f"has {len(mapped)} non-trivial dimensions {tuple(data.shape)} (axes {''.join(axes)}); at most 5 (TZCYX) are supported")
    if len(set(mapped)) != len(mapped) or any(a not in CANONICAL_AXES for a in mapped):
        raise ImageReadError(path, f"has axes {''.join(axes)} (shape {tuple(data.shape)}) that cannot be mapped to TZCYX; give the axes explicitly")
    if "Y" not in mapped or "X" not in mapped:
        raise ImageReadError(path, f"is not an image: axes {''.join(axes)} lack Y and X (shape {tuple(data.shape)})")
    order = sorted(range(len(mapped)), key=lambda i: CANONICAL_AXES.index(mapped[i]))
    data = np.transpose(data, order)
    canon = "".join(mapped[i] for i in order)
    return np.ascontiguousarray(data), canon


def _validate_values(path: Path, data: np.ndarray, *, allow_nonfinite: bool) -> None:
    if data.dtype.kind == "c":
        raise ImageReadError(path, f"holds complex values ({data.dtype}); a real-valued intensity image is needed")
    if data.dtype.kind not in "uifb":
        raise ImageReadError(path, f"has unsupported pixel type {data.dtype}")
    if data.dtype.kind == "f" and not allow_nonfinite:
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            n_nan = int(np.count_nonzero(np.isnan(data)))
            raise ImageReadError(
                path, f"contains {bad} non-finite values ({n_nan} NaN, {bad - n_nan} Inf) out of {data.size}; "
                "replace them (e.g. Fiji: Process > Math > Remove NaNs) before restoration"
            )


def list_images(folder: str | Path) -> list[Path]:
    """Image files (TIFF/PNG/JPEG/BMP) and OME-Zarr folders (``*.zarr``) directly inside ``folder``, sorted by
    name; hidden entries skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(folder, "is not a folder")
    return sorted(
        p for p in folder.iterdir()
        if not p.name.startswith(".") and ((p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
                                           or (p.is_dir() and p.name.lower().endswith(ZARR_SUFFIXES)))
    )


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def write_tiff(
    path: str | Path,
    data: np.ndarray | MicroscopyImage,
    *,
    axes: str | None = None,
    pixel_size_um: float | None = None,
    z_step_um: float | None = None,
    time_interval_s: float | None = None,
    dtype: Literal["float32", "uint16", "uint8"] = "float32",
    description: str | None = None,
) -> Path:
    """Write an ImageJ-hyperstack TIFF atomically; Fiji opens it with these axes and calibration.

    Parameters
    ----------
    path : str or Path
        Destination (``.tif``). Written via a temporary file and renamed into place.
    data : ndarray or MicroscopyImage
        Pixels; axes ``axes`` (default: ``"YX"``, ``"ZYX"``, ... inferred for 2-D/3-D arrays, or the
        image's own axes and calibration).
    axes : str, optional
        Subset of ``"TZCYX"`` in order.
    pixel_size_um, z_step_um, time_interval_s : float, optional
        Calibration written to the ImageJ metadata (unit "micron").
    dtype : {"float32", "uint16", "uint8"}
        Output type. Integer types require values inside the type's range (after rounding);
        otherwise :class:`ImageWriteError` is raised instead of clipping.
    description : str, optional
        Stored in the ImageJ "Info" property (e.g. provenance JSON).
    """
    import tifffile

    if isinstance(data, MicroscopyImage):
        image = data
        arr = image.data
        axes = axes or image.axes
        pixel_size_um = pixel_size_um if pixel_size_um is not None else image.pixel_size_um
        z_step_um = z_step_um if z_step_um is not None else image.z_step_um
        time_interval_s = time_interval_s if time_interval_s is not None else image.time_interval_s
    else:
        arr = np.asarray(data)
    if axes is None:
        axes = {2: "YX", 3: "ZYX", 4: "ZCYX", 5: "TZCYX"}.get(arr.ndim)
        if axes is None:
            raise ImageWriteError(f"{path}: cannot infer axes for a {arr.ndim}-D array; pass axes=")
    axes = axes.upper()
    if len(axes) != arr.ndim or "".join(sorted(axes, key=CANONICAL_AXES.index)) != axes or not set(axes) <= set(CANONICAL_AXES):
        raise ImageWriteError(f"{path}: axes {axes!r} must be a subset of TZCYX in order matching shape {arr.shape}")
    if arr.size == 0:
        raise ImageWriteError(f"{path}: refusing to write an empty array (shape {arr.shape})")
    out = _convert_for_writing(Path(path), arr, dtype)

    metadata: dict[str, Any] = {"axes": axes}
    if pixel_size_um or z_step_um:  # without a unit ImageJ (and read_image) treat the file as uncalibrated
        metadata["unit"] = "micron"
    if z_step_um is not None:
        metadata["spacing"] = float(z_step_um)
    if time_interval_s is not None:
        metadata["finterval"] = float(time_interval_s)
    if out.size:
        metadata["min"] = float(np.min(out))
        metadata["max"] = float(np.max(out))
    if description:
        metadata["Info"] = description
    kwargs: dict[str, Any] = {}
    if pixel_size_um:
        kwargs["resolution"] = (1.0 / float(pixel_size_um), 1.0 / float(pixel_size_um))
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, out, imagej=True, metadata=metadata, **kwargs)
    return Path(path)


def _convert_for_writing(path: Path, arr: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "float32":
        if arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
            finite = arr[np.isfinite(arr)]
            if finite.size and np.max(np.abs(finite)) > np.finfo(np.float32).max:
                raise ImageWriteError(f"{path}: values exceed the float32 range")
        return np.ascontiguousarray(arr, dtype=np.float32)
    if dtype not in ("uint16", "uint8"):
        raise ImageWriteError(f"{path}: unsupported output type {dtype!r} (float32, uint16 or uint8)")
    info = np.iinfo(dtype)
    values = np.rint(arr) if arr.dtype.kind == "f" else arr
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ImageWriteError(f"{path}: cannot write NaN/Inf as {dtype}; use float32")
    lo, hi = (float(np.min(values)), float(np.max(values))) if values.size else (0.0, 0.0)
    if lo < info.min or hi > info.max:
        raise ImageWriteError(
            f"{path}: values span [{lo:g}, {hi:g}], outside the {dtype} range [{info.min}, {info.max}]; "
            "write float32 instead, or rescale explicitly (DeconGAN never clips silently)"
        )
    return np.ascontiguousarray(values.astype(dtype))


_SAFE_NAME = re.compile(r"[^\w.-]+")


def safe_stem(name: str) -> str:
    """A label (e.g. a method name ``"RL 20 it (engine)"``) made a file-name stem: letters and digits
    of any script, ``._-``; runs of anything else become ``_`` (``"RL_20_it_engine"``, ``"Kern_日本"``).

    For names that already are file names (input stems) use :func:`engine.outputs.safe_filename`,
    which changes only characters no file name may hold; check planned outputs for collisions with
    :func:`engine.outputs.check_distinct`.
    """
    return _SAFE_NAME.sub("_", name).strip("._") or "image"
