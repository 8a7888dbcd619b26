"""What the window is looking at: the dataset (LQ/HQ folders), the current field of view and its layers.

A *layer* is one image of the current field shown in a viewer panel: the LQ input, each restored
version (RL via the engine or Fiji, each GAN) and the ground truth. The session is plain state
plus Qt signals; reading files and computing happen in jobs started by the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from decongan.engine.io import MicroscopyImage, list_images, read_image

LQ_ROLE = "lq"
RESTORED_ROLE = "restored"
GT_ROLE = "gt"


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
    """

    name: str
    image: MicroscopyImage
    role: str = RESTORED_ROLE
    provenance: Any = None


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
        n = len(self.fields)
        kind = "paired" if self.paired and self.hq_dir else ("unpaired" if self.hq_dir else "LQ only")
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
    from decongan.engine.learn.training.data import image_stem, match_pairs

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


class Session(QObject):
    """The dataset, current field and layers of the window.

    Signals
    -------
    dataset_changed(), field_changed(), layers_changed(), pixel_size_changed(object)
    """

    dataset_changed = Signal()
    field_changed = Signal()
    layers_changed = Signal()
    pixel_size_changed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dataset: Dataset | None = None
        self.field: FieldOfView | None = None
        self.layers: list[Layer] = []
        self.pixel_size_override: float | None = None

    # -- dataset / field ---------------------------------------------------------------------------
    def set_dataset(self, dataset: Dataset | None) -> None:
        self.dataset = dataset
        self.dataset_changed.emit()

    def set_field(self, fov: FieldOfView | None, layers: list[Layer]) -> None:
        """Show a newly loaded field (restored layers of the previous field are dropped)."""
        self.field = fov
        self.layers = list(layers)
        self.field_changed.emit()
        self.layers_changed.emit()
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
        """Add ``layer`` (or replace the layer of the same name); restored layers go before GT."""
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

    # -- calibration -------------------------------------------------------------------------------
    @property
    def pixel_size_um(self) -> float | None:
        lq = self.lq
        return lq.image.pixel_size_um if lq is not None else self.pixel_size_override

    def set_pixel_size(self, um: float | None) -> None:
        """Set the lateral pixel size (µm) of every layer on the LQ grid and of later fields."""
        self.pixel_size_override = um
        lq = self.lq
        shape = lq.image.yx_shape if lq is not None else None
        for lay in self.layers:
            if lay.role == LQ_ROLE or lay.image.yx_shape == shape:
                lay.image.pixel_size_um = um
        self.pixel_size_changed.emit(um)
