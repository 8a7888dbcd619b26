"""OME-Zarr (NGFF 0.4 and 0.5) images: lazy reading of one scale level, and writing chunk by chunk.

Reading (:func:`open_ome_zarr`) opens the multiscales group without loading pixels: the chosen level
(0 = full resolution) is a zarr array in NGFF axis order (``t, c, z, y, x`` subset), with the lateral
pixel size and z step in micrometres from that level's ``scale`` transformation (times the
multiscale-wide one, when present) and the axes' units. Units other than length/time units with a
known factor are refused naming the file; axes without a unit leave the calibration unset (the caller
must give it) rather than assume micrometres. :func:`read_ome_zarr` loads one level into a
:class:`~decongan.engine.io.MicroscopyImage` (canonical ``TZCYX`` order) after a memory check;
``engine.io.read_image`` calls it for ``.zarr`` / ``.ome.zarr`` folders.

Writing (:class:`OmeZarrWriter`) creates the full-resolution array, takes blocks at any place (so a
tiled restoration writes each tile as it is done), and on :meth:`OmeZarrWriter.finish` builds the
pyramid (each level the 2 x 2 mean of the one above, computed chunk by chunk, rounded for integer
types; recorded as ``"type": "mean"``) and writes the multiscales metadata with ``ome-zarr``. The
store is written into a hidden folder beside the destination and moved into place only on success;
an existing destination is replaced only when asked, and never when it is not an OME-Zarr image.

Why this module is long
-----------------------
Reading and writing share the NGFF axis order, the unit table and the calibration rules, and each
direction is tested as a round trip through the other (and through ome-zarr's own reader); about
half of the lines are the numpydoc docstrings of the public functions. The writer
(:class:`OmeZarrWriter`, :func:`check_zarr_output`) is the piece to move out should the module grow.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.io import ZARR_SUFFIXES, ImageReadError, MicroscopyImage, check_image_memory

__all__ = [
    "ZARR_SUFFIXES",
    "OmeZarrImage",
    "OmeZarrWriter",
    "ZarrWriteError",
    "check_zarr_output",
    "is_zarr_path",
    "iter_yx_chunks",
    "open_ome_zarr",
    "read_ome_zarr",
    "write_ome_zarr",
]

NGFF_AXES = "TCZYX"

#: NGFF (UDUNITS-2) space units -> micrometres; anything else is refused.
_SPACE_TO_UM = {"angstrom": 1e-4, "picometer": 1e-6, "nanometer": 1e-3, "micrometer": 1.0,
                "millimeter": 1e3, "centimeter": 1e4, "meter": 1e6}
_TIME_TO_S = {"microsecond": 1e-6, "millisecond": 1e-3, "second": 1.0, "minute": 60.0, "hour": 3600.0}


class ZarrWriteError(DeconganError, ValueError):
    """An OME-Zarr output cannot be written as asked (exists, is not an OME-Zarr image, bad block)."""


def is_zarr_path(path: str | Path) -> bool:
    """Whether ``path`` names a Zarr store by its suffix (``.zarr`` or ``.ome.zarr``).

    Parameters
    ----------
    path : str or Path
        A path (need not exist).

    Returns
    -------
    bool
        True for ``*.zarr`` names (case-insensitive).
    """
    return str(path).rstrip("/\\").lower().endswith(ZARR_SUFFIXES)


@dataclass
class OmeZarrImage:
    """One scale level of an OME-Zarr image, not loaded.

    Attributes
    ----------
    array : zarr.Array
        The level's pixels, shape in NGFF axis order (``axes``).
    axes : str
        Upper-case NGFF axis letters of ``array`` (subset of ``"TCZYX"`` in that order), e.g. ``"YX"``.
    pixel_size_um : float or None
        Lateral pixel size at this level (micrometres), None when the file gives no length unit.
    z_step_um : float or None
        z step at this level (micrometres).
    time_interval_s : float or None
        Frame interval (seconds).
    level : int
        The level read (0 = full resolution).
    n_levels : int
        How many levels the image has.
    path : Path
        The store.
    metadata : dict
        ``format``, ``ngff_version``, ``level``, ``n_levels``, ``notes`` (what was not taken from the file).
    """

    array: Any
    axes: str
    pixel_size_um: float | None
    z_step_um: float | None
    time_interval_s: float | None
    level: int
    n_levels: int
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the level in NGFF axis order."""
        return tuple(int(n) for n in self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        """Pixel type."""
        return np.dtype(self.array.dtype)

    @property
    def yx_shape(self) -> tuple[int, int]:
        """(rows, columns) of the level."""
        return self.shape[-2], self.shape[-1]

    @property
    def canonical_axes(self) -> str:
        """DeconGAN axes of :meth:`read_yx`'s blocks: ``TZCYX`` order, axes of length 1 dropped (y, x kept)."""
        kept = [a for a, n in zip(self.axes, self.shape, strict=True) if n > 1 or a in "YX"]
        return "".join(sorted(kept, key="TZCYX".index))

    @property
    def canonical_shape(self) -> tuple[int, ...]:
        """Shape in :attr:`canonical_axes` order."""
        size = dict(zip(self.axes, self.shape, strict=True))
        return tuple(size[a] for a in self.canonical_axes)

    def read_yx(self, ys: slice, xs: slice) -> np.ndarray:
        """Read a lateral region (every t, c, z) into memory, in :attr:`canonical_axes` order.

        Parameters
        ----------
        ys, xs : slice
            Rows and columns of the level (pixels).

        Returns
        -------
        ndarray
            Original dtype, shape ``canonical_shape`` with y and x cut to the region.
        """
        block = np.asarray(self.array[(slice(None),) * (len(self.axes) - 2) + (ys, xs)])
        keep = [i for i, (a, n) in enumerate(zip(self.axes, self.shape, strict=True)) if n > 1 or a in "YX"]
        block = block.reshape([block.shape[i] for i in keep])
        axes = "".join(self.axes[i] for i in keep)
        order = sorted(range(len(axes)), key=lambda i: "TZCYX".index(axes[i]))
        return np.ascontiguousarray(np.transpose(block, order))


def _multiscales(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    if "ome" in attrs and isinstance(attrs["ome"], dict):  # NGFF 0.5 (zarr v3)
        ome = attrs["ome"]
        return ome.get("multiscales") or [], str(ome.get("version", "0.5"))
    multiscales = attrs.get("multiscales") or []
    version = str(multiscales[0].get("version", "0.4")) if multiscales else "?"
    return multiscales, version


def _scale_of(transforms: list[dict[str, Any]] | None, ndim: int) -> list[float]:
    scale = [1.0] * ndim
    for transform in transforms or []:
        if transform.get("type") == "scale" and "scale" in transform:
            scale = [a * float(b) for a, b in zip(scale, transform["scale"], strict=True)]
    return scale


def open_ome_zarr(path: str | Path, *, level: int = 0) -> OmeZarrImage:
    """Open one scale level of an OME-Zarr image lazily (no pixels are read).

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` / ``.ome.zarr`` folder holding a multiscales image (NGFF 0.4 or 0.5).
    level : int
        Scale level, 0 = full resolution; ``n_levels - 1`` is the coarsest.

    Returns
    -------
    OmeZarrImage
        The level's array with axes and calibration (micrometres) from the multiscales metadata.

    Raises
    ------
    ImageReadError
        Not a folder, not an OME-Zarr multiscales image, a level that does not exist (the message
        gives the levels), or an axis unit with no known factor (named).
    """
    import zarr

    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "not found")
    if not path.is_dir():
        raise ImageReadError(path, "is a file; an OME-Zarr image is a folder (NAME.ome.zarr)")
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a folder that is not a store
        raise ImageReadError(path, f"is not a Zarr group ({exc})") from None
    multiscales, version = _multiscales(dict(group.attrs))
    if not multiscales:
        raise ImageReadError(path, "has no OME-Zarr 'multiscales' metadata (is it an image of a plate or a "
                                   "labels group? open the image's own folder)")
    ms = multiscales[0]
    datasets = ms.get("datasets") or []
    if not 0 <= level < len(datasets):
        raise ImageReadError(path, f"has scale levels 0..{len(datasets) - 1}; level {level} does not exist")
    axes_meta = ms.get("axes") or [{"name": n} for n in "tczyx"[-group[datasets[level]["path"]].ndim:]]
    names = [(a["name"] if isinstance(a, dict) else str(a)).upper() for a in axes_meta]
    if any(n not in NGFF_AXES for n in names) or "".join(sorted(names, key=NGFF_AXES.index)) != "".join(names):
        raise ImageReadError(path, f"has axes {''.join(names).lower()}; DeconGAN reads a subset of t, c, z, y, x "
                                   "in that order")
    array = group[datasets[level]["path"]]
    if array.ndim != len(names):
        raise ImageReadError(path, f"level {level} has {array.ndim} dimensions but {len(names)} axes")
    scale = _scale_of(datasets[level].get("coordinateTransformations"), len(names))
    scale = [a * b for a, b in zip(scale, _scale_of(ms.get("coordinateTransformations"), len(names)), strict=True)]
    calib: dict[str, float | None] = {"pixel_size_um": None, "z_step_um": None, "time_interval_s": None}
    notes = []
    for name, meta, factor in zip(names, axes_meta, scale, strict=True):
        unit = meta.get("unit") if isinstance(meta, dict) else None
        if name == "C":
            continue
        table = _TIME_TO_S if name == "T" else _SPACE_TO_UM
        if unit is None:
            notes.append(f"axis {name.lower()} has no unit: its scale {factor:g} is not used as a calibration")
            continue
        if str(unit).lower() not in table:
            raise ImageReadError(path, f"axis {name.lower()} has unit {unit!r}, which DeconGAN cannot convert "
                                       f"(known: {', '.join(table)}); fix the unit in the multiscales metadata")
        value = factor * table[str(unit).lower()]
        key = {"T": "time_interval_s", "Z": "z_step_um", "Y": "pixel_y", "X": "pixel_x"}[name]
        calib[key] = value
    py, px = calib.pop("pixel_y", None), calib.pop("pixel_x", None)
    if py is not None and px is not None and not np.isclose(py, px, rtol=1e-6):
        notes.append(f"pixels are not square ({py:g} x {px:g} um); the x size is used")
    calib["pixel_size_um"] = px if px is not None else py
    return OmeZarrImage(
        array=array, axes="".join(names), pixel_size_um=calib["pixel_size_um"], z_step_um=calib["z_step_um"],
        time_interval_s=calib["time_interval_s"], level=level, n_levels=len(datasets), path=path,
        metadata={"format": "ome-zarr", "ngff_version": version, "level": level, "n_levels": len(datasets),
                  "notes": notes},
    )


def read_ome_zarr(path: str | Path, *, level: int = 0) -> MicroscopyImage:
    """Load one scale level of an OME-Zarr image into memory (canonical ``TZCYX`` axes, singletons dropped).

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` / ``.ome.zarr`` folder.
    level : int
        Scale level (0 = full resolution).

    Returns
    -------
    MicroscopyImage
        Original dtype; calibration as :func:`open_ome_zarr` finds it.

    Raises
    ------
    ImageReadError
        As :func:`open_ome_zarr`, or when the level does not fit in memory (use tiled processing or a
        coarser level).
    """
    image = open_ome_zarr(path, level=level)
    check_image_memory(image.path, image.shape, image.dtype)
    data, axes = image.read_yx(slice(None), slice(None)), image.canonical_axes
    return MicroscopyImage(data=data, axes=axes, pixel_size_um=image.pixel_size_um, z_step_um=image.z_step_um,
                           time_interval_s=image.time_interval_s, path=image.path, metadata=dict(image.metadata))


def _is_ome_zarr(path: Path) -> bool:
    return path.is_dir() and ((path / "zarr.json").is_file() or (path / ".zattrs").is_file()
                              or (path / ".zgroup").is_file())


class OmeZarrWriter:
    """Write an OME-Zarr image block by block, then its pyramid and metadata.

    Parameters
    ----------
    path : str or Path
        Destination folder (``NAME.ome.zarr``).
    shape : tuple of int
        Full-resolution shape in canonical ``axes`` order.
    dtype : dtype-like
        Pixel type stored.
    axes : str
        Canonical DeconGAN axes (subset of ``"TZCYX"`` ending in ``YX``); stored in NGFF order.
    pixel_size_um, z_step_um : float or None
        Calibration of the full-resolution level (micrometres); None leaves the axis without a unit.
    levels : int
        Pyramid levels (1 = full resolution only); each further level halves y and x.
    chunks : int
        Chunk edge in y and x (other axes have chunk 1).
    ngff_version : str
        ``"0.4"`` (zarr v2, most widely read) or ``"0.5"`` (zarr v3).
    overwrite : bool
        Replace an existing OME-Zarr image at ``path`` (only on success).

    Raises
    ------
    ZarrWriteError
        ``path`` exists (without ``overwrite``) or is not an OME-Zarr image, or bad arguments.
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: Any, axes: str, *,
                 pixel_size_um: float | None, z_step_um: float | None = None, levels: int = 1,
                 chunks: int = 1024, ngff_version: str = "0.4", overwrite: bool = False) -> None:
        import zarr

        self.path = Path(path)
        check_zarr_output(self.path, overwrite=overwrite)
        if len(shape) != len(axes) or not axes.endswith("YX"):
            raise ZarrWriteError(f"axes {axes!r} do not describe an image of shape {tuple(shape)}", value=axes)
        if levels < 1 or min(shape[-2:]) >> (levels - 1) < 1:
            raise ZarrWriteError(f"{levels} pyramid levels do not fit an image of {shape[-2]} x {shape[-1]} pixels",
                                 value=levels)
        if ngff_version not in ("0.4", "0.5"):
            raise ZarrWriteError(f"NGFF version {ngff_version!r} is not written; choose 0.4 or 0.5", value=ngff_version)
        self.axes, self.shape, self.dtype = axes, tuple(int(n) for n in shape), np.dtype(dtype)
        self.ngff_axes = "".join(a for a in NGFF_AXES if a in axes)
        self._order = [axes.index(a) for a in self.ngff_axes]
        self.pixel_size_um, self.z_step_um, self.levels, self.chunks = pixel_size_um, z_step_um, levels, chunks
        self.ngff_version = ngff_version
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent))
        self._group = zarr.open_group(str(self._tmp), mode="w", zarr_format=2 if ngff_version == "0.4" else 3)
        self._arrays = []
        level_shape = [self.shape[i] for i in self._order]
        for k in range(levels):
            if k:
                level_shape = level_shape[:-2] + [level_shape[-2] // 2, level_shape[-1] // 2]
            chunk_shape = tuple([1] * (len(level_shape) - 2) + [min(chunks, level_shape[-2]), min(chunks, level_shape[-1])])
            self._arrays.append(self._group.create_array(str(k), shape=tuple(level_shape), dtype=self.dtype,
                                                         chunks=chunk_shape, fill_value=0))
        self._done = False

    def write(self, region: tuple[slice, ...], block: np.ndarray) -> None:
        """Store ``block`` at ``region`` of the full-resolution level.

        Parameters
        ----------
        region : tuple of slice
            One slice per canonical axis (``axes`` order), with explicit start and stop.
        block : ndarray
            Values for the region, canonical axis order; must already be representable in the stored
            dtype (integer types: no NaN, inside the type's range) -- nothing is clipped here.
        """
        block = np.asarray(block)
        if self.dtype.kind in "ui":
            info = np.iinfo(self.dtype)
            if block.size and (not np.isfinite(block).all() or block.min() < info.min or block.max() > info.max):
                raise ZarrWriteError(f"values outside {self.dtype}'s range [{info.min}, {info.max}] for "
                                     f"{self.path}; store them as float32 or rescale them first", path=self.path)
            block = np.rint(block) if block.dtype.kind == "f" else block
        self._arrays[0][tuple(region[i] for i in self._order)] = np.transpose(block, self._order).astype(self.dtype)

    def _downsample(self, k: int) -> None:
        source, target = self._arrays[k - 1], self._arrays[k]
        lead = target.shape[:-2]
        ty, tx = target.chunks[-2:]
        for index in product(*(range(n) for n in lead)):
            for y0 in range(0, target.shape[-2], ty):
                for x0 in range(0, target.shape[-1], tx):
                    y1, x1 = min(y0 + ty, target.shape[-2]), min(x0 + tx, target.shape[-1])
                    block = np.asarray(source[index + (slice(2 * y0, 2 * y1), slice(2 * x0, 2 * x1))], dtype=np.float64)
                    mean = block.reshape(y1 - y0, 2, x1 - x0, 2).mean(axis=(1, 3))
                    if self.dtype.kind in "ui":
                        mean = np.rint(mean)
                    target[index + (slice(y0, y1), slice(x0, x1))] = mean.astype(self.dtype)

    def finish(self, provenance: dict[str, Any] | None = None) -> Path:
        """Build the pyramid, write the multiscales metadata and move the store into place.

        Parameters
        ----------
        provenance : dict, optional
            JSON-able record stored in the group's attributes under ``"decongan"``.

        Returns
        -------
        Path
            The destination folder.
        """
        from ome_zarr.format import FormatV04, FormatV05
        from ome_zarr.writer import write_multiscales_metadata

        for k in range(1, self.levels):
            self._downsample(k)
        units = {"T": "second", "Z": "micrometer", "Y": "micrometer", "X": "micrometer"}
        step = {"T": None, "C": None, "Z": self.z_step_um, "Y": self.pixel_size_um, "X": self.pixel_size_um}
        axes_meta = []
        for a in self.ngff_axes:
            entry = {"name": a.lower(), "type": {"T": "time", "C": "channel"}.get(a, "space")}
            if a in "ZYX" and step[a] is not None:
                entry["unit"] = units[a]
            axes_meta.append(entry)
        datasets = []
        for k in range(self.levels):
            scale = [1.0 if a in "TC" or step[a] is None else float(step[a]) * (2 ** k if a in "YX" else 1)
                     for a in self.ngff_axes]
            datasets.append({"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
        fmt = FormatV04() if self.ngff_version == "0.4" else FormatV05()
        extra: dict[str, Any] = {"metadata": {"written_by": "DeconGAN"}}
        if self.levels > 1:
            extra = {"type": "mean", "metadata": {"method": "2x2 mean of the level above (rounded for integer "
                                                            "types)", "written_by": "DeconGAN"}}
        write_multiscales_metadata(self._group, datasets, fmt=fmt, axes=axes_meta, name=self.path.name, **extra)
        if provenance is not None:
            self._group.attrs["decongan"] = provenance
        old = None
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.replaced")
            shutil.rmtree(old, ignore_errors=True)
            self.path.rename(old)
        self._tmp.rename(self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._done = True
        return self.path

    def abort(self) -> None:
        """Remove the partial store (the destination is untouched)."""
        if not self._done:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> OmeZarrWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def check_zarr_output(path: str | Path, *, overwrite: bool, label: str = "the output",
                      allow: str = "allow overwriting") -> Path:
    """Refuse, before computing, an OME-Zarr destination that exists (unless ``overwrite``) or that is a
    file or a folder other than an OME-Zarr image.

    Parameters
    ----------
    path : str or Path
        Destination folder.
    overwrite : bool
        The user asked to replace an existing OME-Zarr image.
    label, allow : str
        How the user named the output and how they allow replacing it (used in the message).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ZarrWriteError
        With a message naming the path and the fix.
    """
    dest = Path(path)
    if not is_zarr_path(dest):
        raise ZarrWriteError(f"{label} {dest} is not named .zarr or .ome.zarr", path=dest)
    if dest.exists() or dest.is_symlink():
        if not dest.is_dir():
            raise ZarrWriteError(f"{label} {dest} is a file; an OME-Zarr image is a folder", path=dest)
        if not _is_ome_zarr(dest):
            raise ZarrWriteError(f"{label} {dest} is a folder that is not a Zarr store; it is never replaced "
                                 "(choose another name)", path=dest)
        if not overwrite:
            raise ZarrWriteError(f"{label} {dest} exists; choose another name or {allow} to replace it", path=dest)
    if not dest.parent.is_dir():
        raise ZarrWriteError(f"the folder of {label} {dest} does not exist", path=dest.parent)
    return dest


def iter_yx_chunks(shape: tuple[int, ...], chunk: int) -> Iterator[tuple[slice, ...]]:
    """Regions covering ``shape`` one (chunk x chunk) lateral block at a time, leading axes one by one.

    Parameters
    ----------
    shape : tuple of int
        Array shape, y and x last.
    chunk : int
        Block edge in pixels.

    Yields
    ------
    tuple of slice
        One region per block.
    """
    lead = shape[:-2]
    for index in product(*(range(n) for n in lead)):
        for y0 in range(0, shape[-2], chunk):
            for x0 in range(0, shape[-1], chunk):
                yield tuple(slice(i, i + 1) for i in index) + (slice(y0, min(y0 + chunk, shape[-2])),
                                                               slice(x0, min(x0 + chunk, shape[-1])))


def write_ome_zarr(path: str | Path, image: MicroscopyImage, *, levels: int = 1, chunks: int = 1024,
                   dtype: Any = None, ngff_version: str = "0.4", overwrite: bool = False) -> Path:
    """Write an in-memory image as OME-Zarr, chunk by chunk, with its axes and calibration.

    Parameters
    ----------
    path : str or Path
        Destination ``NAME.ome.zarr`` folder.
    image : MicroscopyImage
        Data (canonical axes) with ``pixel_size_um`` / ``z_step_um`` in micrometres.
    levels : int
        Pyramid levels (1 = full resolution only).
    chunks : int
        Chunk edge in y and x (pixels).
    dtype : dtype-like, optional
        Stored type (default: the image's); integer types refuse values they cannot hold.
    ngff_version : str
        ``"0.4"`` or ``"0.5"``.
    overwrite : bool
        Replace an existing OME-Zarr image.

    Returns
    -------
    Path
        The written folder.
    """
    data = image.data
    with OmeZarrWriter(path, data.shape, dtype or data.dtype, image.axes, pixel_size_um=image.pixel_size_um,
                       z_step_um=image.z_step_um, levels=levels, chunks=chunks, ngff_version=ngff_version,
                       overwrite=overwrite) as writer:
        for region in iter_yx_chunks(data.shape, chunks):
            writer.write(region, data[region])
        return writer.finish()
