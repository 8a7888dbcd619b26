"""What the window is looking at: the dataset (LQ/HQ folders), the current field of view and its layers.

A *layer* is one image of the current field shown in a viewer panel: the LQ input, each restored
version (RL via the engine or Fiji, each GAN) and the ground truth. The session is plain state
plus Qt signals; reading files and computing happen in jobs started by the window.

The session is the one place that holds per-dataset state, so nothing leaks from one dataset to
the next: the optics of the current dataset (each value with its source), the PSF choice of the
Deconvolve panel and the evaluation cache. Opening another dataset resets all of it
(:meth:`Session.set_dataset`); panels read and write optics through the session, never through
each other's widgets.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from decongan.engine.io import MicroscopyImage, list_images, read_image
from decongan.engine.optics.request import Optics, Quantity

LQ_ROLE = "lq"
RESTORED_ROLE = "restored"
GT_ROLE = "gt"

#: how the window labels where an optics value comes from (the engine's ``Quantity.source`` in words)
FROM_FILE = "file metadata"
FROM_USER = "user"
ASSUMED = "assumption"
UNKNOWN = "unknown"
SOURCE_LABELS = {"metadata": FROM_FILE, "user": FROM_USER, "assumption": ASSUMED}
#: the optics of a dataset: numerical aperture, immersion refractive index, emission wavelength (nm),
#: lateral pixel size (nm) and z step (nm) -- the fields of the engine's ``Optics``
OPTICS_KEYS = ("na", "ni", "wavelength_nm", "pixel_nm", "z_step_nm")
#: assumed when neither the file nor the user says otherwise (oil immersion, green emission); the pixel
#: size and z step are never assumed: unknown stays unknown and what needs them refuses
ASSUMED_OPTICS: dict[str, float] = {"na": 1.4, "ni": 1.515, "wavelength_nm": 520.0}
ASSUMPTION_NOTE = "DeconGAN GUI default"
#: evaluations kept per dataset (each holds error and consistency maps)
EVALUATION_CACHE_SIZE = 8


def optics_of(image: MicroscopyImage | None) -> Optics:
    """The optics a dataset starts with: the image's calibration (file metadata), stated assumptions for the rest.

    Returns the engine's typed :class:`~decongan.engine.optics.request.Optics` (each value carries its
    source: "metadata", "user" or "assumption"; the pixel size and z step stay unknown without
    calibration). ``origin`` is the image's path, so the engine's refusals name the file.
    """
    assumed = {k: Quantity(v, "nm" if k.endswith("_nm") else "", "assumption", ASSUMPTION_NOTE)
               for k, v in ASSUMED_OPTICS.items()}
    return Optics.for_image(image, **assumed)


@dataclass
class Layer:
    """One image of the current field.

    Attributes
    ----------
    name : str
        Panel title and metrics-table method name ("LQ", "RL 10 it (engine)", "GT").
    image : MicroscopyImage
        Pixels with axes and calibration.
    role : {"lq", "restored", "gt"}
    provenance : engine.provenance.Provenance or None
        How a restored layer was made.
    version : int
        Stamped by the session each time the layer is set (never reused within a session): the
        evaluation cache keys on it, never on ``id()`` of an array (ids are reused after garbage
        collection).
    rerun : callable or None
        The exact call that made a restored layer, ``rerun(image) -> restoration`` (set by the
        Deconvolve panel), so split-half maps can run it on photon halves (app.gui.split_half_analysis).
    """

    name: str
    image: MicroscopyImage
    role: str = RESTORED_ROLE
    provenance: Any = None
    version: int = 0
    rerun: Any = field(default=None, compare=False, repr=False)


@dataclass
class FieldOfView:
    """One field: an LQ file and, for paired data, the HQ (ground-truth) file of the same name."""

    name: str
    lq: Path | None = None
    hq: Path | None = None


@dataclass
class Dataset:
    """LQ / HQ folders. Paired: files matched by name; unpaired: two independent domains."""

    lq_dir: Path | None
    hq_dir: Path | None = None
    paired: bool = True
    fields: list[FieldOfView] = field(default_factory=list)
    unmatched: list[Path] = field(default_factory=list)

    @property
    def description(self) -> str:
        """``"10 fields (paired)"``, ``"1 field (LQ + GT)"``, ``"3 fields (1 with GT)"``, ``"2 fields (LQ only)"``."""
        n = len(self.fields)
        with_gt = sum(1 for f in self.fields if f.hq is not None)
        if self.hq_dir and not self.paired:
            kind = "unpaired"
        elif self.paired and self.hq_dir:
            kind = "paired"
        elif with_gt == 0:
            kind = "LQ only"
        elif with_gt == n:
            kind = "LQ + GT"
        else:
            kind = f"{with_gt} with GT"
        extra = f", {len(self.unmatched)} without a partner" if self.unmatched else ""
        return f"{n} field{'s' if n != 1 else ''} ({kind}{extra})"


def build_dataset(lq_dir: str | Path | None, hq_dir: str | Path | None = None, *, paired: bool = True) -> Dataset:
    """List the fields of a dataset.

    Parameters
    ----------
    lq_dir, hq_dir : path or None
        Folders of low-quality inputs and high-quality (ground-truth / target-domain) images.
    paired : bool
        Match LQ and HQ files by name with the engine's rule (:func:`engine.learn.training.data.match_pairs`,
        the one ``decongan train`` uses); LQ files without a partner are listed without ground truth.
        When False the HQ folder is a separate domain (unpaired training) and fields hold LQ files only.

    Raises
    ------
    ValueError
        A folder is missing or holds no images, or (paired) no name matches; the message says which.
    """
    from decongan.engine.io import image_stem
    from decongan.engine.learn.training.data import match_pairs

    lq_files = list_images(lq_dir) if lq_dir else []
    hq_files = list_images(hq_dir) if hq_dir else []
    if not lq_files and not hq_files:
        raise FileNotFoundError(f"no images (TIFF/PNG) found in {lq_dir or hq_dir}")
    if paired and lq_dir and hq_dir:
        report = match_pairs(lq_dir, hq_dir)
        hq_of = {name: hq for name, _lq, hq in report.matched}
        fields = [FieldOfView(image_stem(p), p, hq_of.get(image_stem(p))) for p in lq_files]
        unmatched = [p for p in lq_files if image_stem(p) in report.lq_only]
        unmatched += [p for p in hq_files if image_stem(p) in report.hq_only]
        return Dataset(Path(lq_dir), Path(hq_dir), True, fields, unmatched)
    if lq_files:
        fields = [FieldOfView(image_stem(p), p, None) for p in lq_files]
    else:
        fields = [FieldOfView(image_stem(p), None, p) for p in hq_files]
    return Dataset(Path(lq_dir) if lq_dir else None, Path(hq_dir) if hq_dir else None, False, fields)


def load_field(fov: FieldOfView, *, pixel_size_um: float | None = None) -> list[Layer]:
    """Read the files of ``fov`` (runs in a worker thread). Raises ``ImageReadError`` naming the file."""
    layers: list[Layer] = []
    if fov.lq is not None:
        layers.append(Layer("LQ", read_image(fov.lq, pixel_size_um=pixel_size_um), LQ_ROLE))
    if fov.hq is not None:
        gt = read_image(fov.hq)
        if pixel_size_um is not None and (not layers or gt.yx_shape == layers[0].image.yx_shape):
            gt.pixel_size_um = pixel_size_um
        if not layers:
            layers.append(Layer("LQ", gt, LQ_ROLE))
        else:
            layers.append(Layer("GT", gt, GT_ROLE))
    return layers


@dataclass(frozen=True)
class EvaluationKey:
    """What an evaluation of the current field depends on (stable values only, never ``id()``).

    Attributes
    ----------
    dataset : int
        The session's number for the dataset (a new one for every dataset opened).
    field : str or None
    layers : tuple of (name, role, version, pixel size in µm or None)
    t : int
        Time point.
    psf : str
        ``repr`` of the PSF parameters (consistency maps).
    resample : bool
        The LQ may be resampled onto a ground truth of another size (:attr:`Session.resample_lq`).
    """

    dataset: int
    field: str | None
    layers: tuple[tuple[str, str, int, float | None], ...]
    t: int
    psf: str
    resample: bool = False


class Session(QObject):
    """The dataset, current field, layers, optics and evaluations of the window.

    Signals
    -------
    dataset_changed(), field_changed(), layers_changed(), pixel_size_changed(object), optics_changed(),
    comparison_changed()
    notice(str)
        Something the user must know about a change the session made (e.g. a calibration not taken over).
    """

    dataset_changed = Signal()
    field_changed = Signal()
    layers_changed = Signal()
    pixel_size_changed = Signal(object)
    optics_changed = Signal()
    comparison_changed = Signal()
    notice = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dataset: Dataset | None = None
        self.field: FieldOfView | None = None
        self.layers: list[Layer] = []
        #: lateral pixel size (µm) the user set for this dataset; applied to every field read later
        self.pixel_size_override: float | None = None
        #: the engine's typed optics of the current dataset (each value with its source)
        self.optics: Optics = optics_of(None)
        #: the Deconvolve panel's PSF choice (model; Gaussian size, fwhm_nm, fwhm_z_nm, nz; file path); optics
        #: come from ``optics``, a Born & Wolf PSF's size from the engine's rule for the LQ grid
        self.psf_choice: dict[str, Any] = {"model": "born-wolf", "size": 65}
        self.dataset_number = 0
        self._versions = itertools.count(1)
        self._evaluations: dict[EvaluationKey, Any] = {}
        #: the latest evaluation of every field compared in this dataset (the export's "all fields")
        self.evaluations_by_field: dict[str, Any] = {}
        #: compare an LQ and a ground truth of different sizes by resampling the LQ onto the ground truth's
        #: grid (asked for explicitly, per dataset, and labelled in the results); off: such a pair is refused
        self.resample_lq = False

    # -- dataset / field ---------------------------------------------------------------------------
    def set_dataset(self, dataset: Dataset | None) -> None:
        """Switch to ``dataset``: nothing of the previous one survives.

        The field, layers, evaluations and the user's pixel size are dropped and the optics go back
        to assumptions with an unknown pixel size and z step until the first field of ``dataset`` is
        read (:meth:`set_field` takes them from its metadata).
        """
        self.dataset = dataset
        self.dataset_number += 1
        self.field = None
        self.layers = []
        self.pixel_size_override = None
        self._evaluations = {}
        self.evaluations_by_field = {}
        self.optics = optics_of(None)
        self.resample_lq = False
        self.dataset_changed.emit()
        self.field_changed.emit()
        self.layers_changed.emit()
        self.optics_changed.emit()
        self.pixel_size_changed.emit(None)

    def set_field(self, fov: FieldOfView | None, layers: list[Layer]) -> None:
        """Show a newly loaded field (restored layers of the previous field are dropped).

        Pixel size and z step come from the LQ file's metadata (or the pixel size the user set for
        this dataset); a file without them leaves them unknown, never the previous field's.
        """
        self.field = fov
        self.layers = list(layers)
        for layer in self.layers:
            layer.version = next(self._versions)
        lq = self.lq
        fresh = optics_of(lq.image if lq is not None else None)
        kept: dict[str, Quantity] = {k: getattr(self.optics, k) for k in ("na", "ni", "wavelength_nm")
                                     if getattr(self.optics, k).source == "user"}  # this dataset's microscope
        if self.pixel_size_override is not None:
            kept["pixel_nm"] = Quantity(self.pixel_size_override * 1000.0, "nm", "user")
        self.optics = replace(fresh, **kept)
        self.field_changed.emit()
        self.layers_changed.emit()
        self.optics_changed.emit()
        self.pixel_size_changed.emit(self.pixel_size_um)

    # -- layers ------------------------------------------------------------------------------------
    def layer(self, name: str) -> Layer | None:
        return next((lay for lay in self.layers if lay.name == name), None)

    @property
    def lq(self) -> Layer | None:
        return next((lay for lay in self.layers if lay.role == LQ_ROLE), None)

    @property
    def gt(self) -> Layer | None:
        return next((lay for lay in self.layers if lay.role == GT_ROLE), None)

    @property
    def restored(self) -> list[Layer]:
        return [lay for lay in self.layers if lay.role == RESTORED_ROLE]

    def set_layer(self, layer: Layer) -> None:
        """Add ``layer`` (or replace the layer of the same name); restored layers go before GT.

        A restored layer on the LQ grid gets the dataset's pixel size (unknown stays unknown: a GAN's
        training pixel size is not this image's).
        """
        layer.version = next(self._versions)
        lq = self.lq
        if layer.role == RESTORED_ROLE and lq is not None and layer.image.yx_shape == lq.image.yx_shape:
            brought = layer.image.pixel_size_um
            layer.image.pixel_size_um = self.pixel_size_um
            if brought and not self.pixel_size_um:
                self.notice.emit(f"{layer.name}: its {brought:.4g} µm/px (from the model or file that made it) is not "
                                 "taken over: the pixel size of this dataset is unknown, so the layer has no "
                                 "calibration either; enter it in Pixel size (Data or Deconvolve panel)")
        for i, old in enumerate(self.layers):
            if old.name == layer.name:
                self.layers[i] = layer
                break
        else:
            if layer.role == GT_ROLE or self.gt is None:
                self.layers.append(layer)
            else:
                self.layers.insert(self.layers.index(self.gt), layer)
        self.layers_changed.emit()

    def remove_layer(self, name: str) -> None:
        self.layers = [lay for lay in self.layers if lay.name != name]
        self.layers_changed.emit()

    def attach_ground_truth(self, path: Path, image: MicroscopyImage) -> None:
        """Show ``image`` as the GT of the current field and record ``path`` as the field's HQ file."""
        if self.field is not None:
            self.field.hq = Path(path)
        self.set_layer(Layer("GT", image, GT_ROLE))
        self.dataset_changed.emit()

    # -- calibration and optics --------------------------------------------------------------------
    @property
    def pixel_size_um(self) -> float | None:
        """Lateral pixel size (µm) of the current dataset, None when unknown."""
        nm = self.optics.pixel_nm.value
        return nm / 1000.0 if nm else None

    @property
    def z_step_um(self) -> float | None:
        nm = self.optics.z_step_nm.value
        return nm / 1000.0 if nm else None

    def set_pixel_size(self, um: float | None) -> None:
        """Set the lateral pixel size (µm; None: unknown) of every layer on the LQ grid and of later fields."""
        um = um if um else None
        self.pixel_size_override = um
        self.optics = replace(self.optics, pixel_nm=Quantity(um * 1000.0 if um else None, "nm", "user" if um else None))
        lq = self.lq
        shape = lq.image.yx_shape if lq is not None else None
        for lay in self.layers:
            if lay.role == LQ_ROLE or lay.image.yx_shape == shape:
                lay.image.pixel_size_um = um
        self.optics_changed.emit()
        self.pixel_size_changed.emit(um)

    def set_optic(self, key: str, value: float | None, source: str = "user", note: str = "") -> None:
        """Set one optics value (:data:`OPTICS_KEYS`; None or 0: unknown). The pixel size goes to the layers too.

        Parameters
        ----------
        key : str
            One of :data:`OPTICS_KEYS`.
        value : float or None
            In the key's unit (nm for ``*_nm``); None or 0: unknown.
        source : {"user", "metadata", "assumption"}
            Where the value comes from (the engine's ``Quantity.source``).
        note : str
            Why, for an assumption.

        Raises
        ------
        engine.optics.request.OpticsError
            The new value makes the optics impossible (NA >= ni, ni < 1); the optics are left unchanged.
        """
        if key not in OPTICS_KEYS:
            raise KeyError(f"unknown optics value {key!r}; one of {', '.join(OPTICS_KEYS)}")
        if key == "pixel_nm":
            if (value or None) != self.optics.pixel_nm.value:
                self.set_pixel_size(value / 1000.0 if value else None)
            return
        unit = "nm" if key.endswith("_nm") else ""
        new = Quantity(float(value), unit, source, note) if value else Quantity(None, unit)  # type: ignore[arg-type]
        if new != getattr(self.optics, key):
            self.optics = replace(self.optics, **{key: new})  # validated: NA < ni
            self.optics_changed.emit()

    def set_psf_choice(self, choice: dict[str, Any]) -> None:
        """The Deconvolve panel's PSF model and sampling (model, size, fwhm_nm, fwhm_z_nm, path, nz)."""
        if choice != self.psf_choice:
            self.psf_choice = dict(choice)
            self.optics_changed.emit()

    def psf_parameters(self) -> dict[str, Any]:
        """The PSF of the LQ system: the panel's choice with this dataset's optics.

        Born & Wolf: the optics and the LQ image's grid (``yx_shape``, ``nz`` planes of a stack), for
        the engine's ``psf_for_grid`` (the size comes from its rule, as in ``decongan batch``).
        Gaussian: the panel's size, FWHM, planes and axial FWHM. ``pixel_nm`` (and ``z_step_nm`` for a
        3-D PSF) is None when unknown; building a PSF from it refuses
        (:func:`app.gui.panels.deconvolve.psf_from_parameters`).
        """
        from decongan.engine.optics.request import DEFAULT_PSF_ENERGY

        c = self.psf_choice
        model = c.get("model", "born-wolf")
        p: dict[str, Any] = {"model": model}
        if model == "file":
            p["path"] = c.get("path", "")
            return p
        p.update(pixel_nm=self.optics.pixel_nm.value)
        if model == "born-wolf":
            image = self.lq.image if self.lq is not None else None
            nz = image.n_z if image is not None and "Z" in image.axes and image.n_z > 1 else None
            p.update(na=self.optics.na.value, ni=self.optics.ni.value, wavelength_nm=self.optics.wavelength_nm.value,
                     yx_shape=tuple(image.yx_shape) if image is not None else None, origin=self.optics.origin,
                     size_rule=f"psf_for_grid energy {DEFAULT_PSF_ENERGY:g}")
            if nz:
                p.update(nz=nz, z_step_nm=self.optics.z_step_nm.value)
            return p
        p.update(size=c.get("size", 65), fwhm_nm=c.get("fwhm_nm"))
        if c.get("nz") and c["nz"] > 1:
            p.update(nz=c["nz"], z_step_nm=self.optics.z_step_nm.value, fwhm_z_nm=c.get("fwhm_z_nm"))
        return p

    def optics_request(self) -> Optics:
        """The session's optics: the engine's typed ``Optics`` (unknown stays unknown), named after the LQ file.

        The session holds them as such (:attr:`optics`); this is kept for callers that ask for the request.
        """
        return self.optics

    def optics_sources(self) -> dict[str, str]:
        """Key -> "value (source)" for reports: ``{"pixel_nm": "unknown", "na": "1.4 (assumption)"}``."""
        out = {}
        for k in OPTICS_KEYS:
            q = getattr(self.optics, k)
            out[k] = f"{q.value:g} ({SOURCE_LABELS[q.source]})" if q.known else UNKNOWN
        return out

    # -- evaluations -------------------------------------------------------------------------------
    def set_resample_lq(self, on: bool) -> None:
        """Allow (True) or refuse (False, the default) comparing an LQ and a ground truth of different sizes.

        When allowed, the LQ is resampled onto the ground truth's grid for display and metrics, as
        ``decongan compare --resample`` does, and the results say so.
        """
        if bool(on) != self.resample_lq:
            self.resample_lq = bool(on)
            self.comparison_changed.emit()

    def evaluation_key(self, *, t: int = 0, psf_parameters: Any = None) -> EvaluationKey:
        """The key of an evaluation of the current field and layers at time point ``t``."""
        layers = tuple((lay.name, lay.role, lay.version, lay.image.pixel_size_um) for lay in self.layers)
        return EvaluationKey(self.dataset_number, self.field.name if self.field else None, layers, int(t),
                             repr(psf_parameters), self.resample_lq)

    def cached_evaluation(self, key: EvaluationKey) -> Any:
        """The evaluation stored under ``key``, or None."""
        return self._evaluations.get(key)

    def store_evaluation(self, key: EvaluationKey, evaluation: Any) -> None:
        """Keep ``evaluation`` (only if ``key`` is still about the current dataset)."""
        if key.dataset != self.dataset_number:
            return
        self._evaluations[key] = evaluation
        while len(self._evaluations) > EVALUATION_CACHE_SIZE:  # oldest first (maps are large)
            del self._evaluations[next(iter(self._evaluations))]
        if key.field is not None:
            self.evaluations_by_field[key.field] = evaluation
