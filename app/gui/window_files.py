"""Files in and out of the main window: opening images, folders, datasets and the bundled sample, and
saving a layer.

A mixin of :class:`app.gui.main_window.MainWindow` (``session``, ``jobs``, ``errors``, ``settings``,
``metrics`` and ``data_panel`` are the window's). Reading happens in jobs; the session holds what
was read.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QInputDialog

from decongan.app.gui.error_dialog import ErrorReport, describe_error
from decongan.app.gui.jobs import Job
from decongan.app.gui.session import RESTORED_ROLE, Dataset, FieldOfView, Layer, build_dataset, load_field
from decongan.engine.io import IMAGE_SUFFIXES, read_image

IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
#: the bundled sample (resources/samples/<SAMPLE>: lq/ widefield, hq/ confocal of one nucleus), as `decongan demo` uses it
SAMPLE = "neubias_nucleus"
SAMPLE_FILES = ("lq/nucleus_widefield.tif", "hq/nucleus_confocal.tif")
#: what to do when a folder's LQ and HQ files share no name (added to the pairing error in the window)
PAIRING_HINT = ("To compare one LQ image with a ground truth of another name: open the LQ image (File > Open "
                "image...), then File > Open ground truth for this field... To try the window on the bundled "
                "widefield/confocal pair: File > Open sample. Or rename the files so each LQ image and its HQ "
                "image have the same name.")


def sample_field() -> FieldOfView:
    """The bundled nucleus sample as one field: the widefield stack (LQ) and the confocal stack (GT).

    Raises
    ------
    FileNotFoundError
        The sample is not part of this installation.
    """
    from decongan.resources import resource_path

    lq, hq = (resource_path("samples", SAMPLE, *name.split("/")) for name in SAMPLE_FILES)
    return FieldOfView("nucleus", lq, hq)


def _is_sample_folder(folder: Path) -> bool:
    try:
        return Path(folder).resolve() == sample_field().lq.parent.parent.resolve()
    except FileNotFoundError:
        return False


class WindowFilesMixin:
    """Opening and saving (File menu, drag and drop, the Data panel's requests)."""

    # -- dialogs -------------------------------------------------------------------------------------
    def _start_dir(self) -> str:
        return self.settings.get("last_dir") or str(Path.home())

    def _ask_open_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self._start_dir(), IMAGE_FILTER)
        if paths:
            self.open_paths([Path(p) for p in paths])

    def _ask_open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder (or a dataset with lq/ and hq/)",
                                                self._start_dir())
        if path:
            self.open_paths([Path(path)])

    def _ask_open_gt(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Ground truth for this field", self._start_dir(), IMAGE_FILTER)
        if path:
            self.open_ground_truth(Path(path))

    def _ask_open_method(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A restored image of this field", self._start_dir(), IMAGE_FILTER)
        if path:
            name, ok = QInputDialog.getText(self, "Method name", "Name shown for this method:",
                                            text=Path(path).stem)
            if ok and name:
                self.open_method(Path(path), name)

    def _ask_save_layer(self) -> None:
        names = [lay.name for lay in self.session.layers]
        if not names:
            return
        name, ok = QInputDialog.getItem(self, "Save layer", "Layer:", names, 0, False)
        if not ok:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save as TIFF", f"{name}.tif", "TIFF (*.tif)")
        if path:
            self.save_layer(name, Path(path))

    # -- opening -------------------------------------------------------------------------------------
    def open_paths(self, paths: list[Path]) -> None:
        """Open files (each a field) or a folder (a dataset; ``lq/`` + ``hq/`` inside = paired)."""
        paths = [Path(p) for p in paths]
        folders = [p for p in paths if p.is_dir()]
        if folders:
            folder = folders[0]
            if _is_sample_folder(folder):  # its two files have different names: open them as the pair they are
                self.open_sample()
                return
            if (folder / "lq").is_dir() and (folder / "hq").is_dir():
                self.open_dataset(folder / "lq", folder / "hq", True)
            else:
                self.open_dataset(folder, None, True)
            return
        files = [p for p in paths if p.exists() or p.suffix]
        if not files:
            return
        from decongan.engine.io import image_stem

        fields = [FieldOfView(image_stem(p), p, None) for p in files]
        self._show_dataset(Dataset(None, None, False, fields))
        for path in reversed(files):
            if path.exists():
                self.settings.add_recent(path)
        self._refresh_recent_menu()

    def open_sample(self) -> Job | None:
        """Open the bundled nucleus sample as a pair, ready to compare: widefield (LQ) and confocal (GT).

        The confocal is offset from the widefield by a few pixels (separate light paths): it is
        registered onto the widefield grid and both are cropped to their common area with the function
        ``decongan demo`` uses (:func:`app.commands.demo.align_confocal`); the GT layer's provenance and
        the Data panel say so. The bundled model trained on this sample is chosen in the Predict panel
        (shown there), so the first comparison is Deconvolve, Predict, Export.
        """
        try:
            fov = sample_field()
        except FileNotFoundError as err:
            self.errors.present(err, context="Open sample")
            return None
        self._show_dataset(Dataset(fov.lq.parent, None, False, [fov]), load=False)
        dataset_number = self.session.dataset_number

        def work(ctx):
            from decongan.app.commands.demo import align_confocal
            from decongan.engine.provenance import Provenance

            lq_layer, gt_layer = load_field(fov)
            lq, gt, registration, crop = align_confocal(lq_layer.image, gt_layer.image)
            note = (f"registered onto the widefield grid as decongan demo does ({registration.summary()}); "
                    f"both cropped to rows {crop[0]}-{crop[1]}, columns {crop[2]}-{crop[3]}")
            provenance = Provenance(method="registered (translation, engine)", backend="engine",
                                    parameters={"matrix": registration.transform.matrix.tolist(), "crop": list(crop),
                                                "ncc_before": registration.ncc_before,
                                                "ncc_after": registration.ncc_after})
            return [Layer("LQ", lq, lq_layer.role), Layer("GT", gt, gt_layer.role, provenance)], note

        def done(result) -> None:
            if self.session.dataset_number != dataset_number:
                return
            layers, note = result
            self.session.set_field(fov, layers)
            self.data_panel.select_field(fov)
            self.data_panel.show_notice(f"Bundled sample: the confocal (GT) was {note}.")
            self._choose_sample_model()
            self.statusBar().showMessage("Bundled sample (widefield vs confocal nucleus, GT registered): "
                                         "Deconvolve, then Predict, then Export.", 30000)

        return self.jobs.start("Opening the bundled sample", work, on_success=done)

    def _choose_sample_model(self) -> None:
        """Choose the bundled model trained on the sample in the Predict panel (when it is installed)."""
        from decongan.app.gui.panels.predict import bundled_models

        model = next((p for p in bundled_models() if SAMPLE in p.name), None)
        if model is not None and not self.predict_panel.run_edit.text():
            self.predict_panel.set_run_dir(model)

    def open_dataset(self, lq_dir: Path | None, hq_dir: Path | None = None, paired: bool = True) -> Dataset | None:
        """List a dataset's fields and show the first one."""
        if not lq_dir and not hq_dir:
            self.errors.present(ValueError("choose at least an LQ folder"), context="Open dataset")
            return None
        try:
            dataset = build_dataset(lq_dir, hq_dir, paired=paired)
        except (OSError, ValueError) as err:
            report = describe_error(err, context="Open dataset")
            if paired and lq_dir and hq_dir and "same name" in str(err):
                report = ErrorReport(report.title, f"{report.message}\n\n{PAIRING_HINT}", report.details,
                                     report.context, err)
            self.errors.present(report)
            return None
        self._show_dataset(dataset)
        # the recent list gets the dataset: its parent when it holds lq/ and hq/ (reopens paired)
        base = Path(lq_dir or hq_dir)
        if hq_dir is not None and paired and Path(hq_dir).parent == base.parent \
                and {base.name, Path(hq_dir).name} == {"lq", "hq"}:
            base = base.parent
        self.settings.add_recent(base)
        self._refresh_recent_menu()
        return dataset

    def _show_dataset(self, dataset: Dataset, *, load: bool = True) -> Job | None:
        """Make ``dataset`` the session's (nothing of the previous one survives) and load its first field."""
        self.session.set_dataset(dataset)  # drops the previous dataset's layers, optics and evaluations
        self.metrics.set_rows([], "Dataset")
        self.metrics.set_rows([], "Current field")
        self.dataset_rows_from = None  # the next fields compared fill the Dataset table again
        self.show_compare()
        return self.load_field(dataset.fields[0]) if load and dataset.fields else None

    def load_field(self, fov: FieldOfView) -> Job:
        """Read the field's files in a worker thread and show them."""
        override = self.session.pixel_size_override
        dataset_number = self.session.dataset_number

        def work(ctx):
            return load_field(fov, pixel_size_um=override)

        def done(layers: list[Layer]) -> None:
            if self.session.dataset_number != dataset_number:
                return  # another dataset was opened meanwhile: this field is no longer part of what is shown
            self.session.set_field(fov, layers)
            self.data_panel.select_field(fov)

        return self.jobs.start(f"Opening {fov.name}", work, on_success=done)

    def open_ground_truth(self, path: Path) -> Job:
        def done(image) -> None:
            self.session.attach_ground_truth(path, image)
            self.settings.add_recent(path)

        return self.jobs.start(f"Opening {path.name}", lambda ctx: read_image(path), on_success=done)

    def open_method(self, path: Path, name: str) -> Job:
        """Add a restored image from disk as a method layer (e.g. an output of another tool)."""
        def done(image) -> None:
            from decongan.engine.provenance import Provenance

            self.session.set_layer(Layer(name, image, RESTORED_ROLE,
                                         Provenance(method=name, backend="file", parameters={"path": str(path)})))

        return self.jobs.start(f"Opening {path.name}", lambda ctx: read_image(path), on_success=done)

    # -- drag and drop ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # -- saving --------------------------------------------------------------------------------------
    def save_layer(self, name: str, path: Path) -> Job:
        """Write a layer as a calibrated float32 TIFF with its provenance (never over its own input)."""
        from decongan.engine.io import write_tiff

        layer = self.session.layer(name)
        if layer is None:
            raise KeyError(name)
        if layer.image.path is not None and Path(path).resolve() == Path(layer.image.path).resolve():
            raise ValueError(f"{path} is the layer's own input file; choose another name (inputs are never overwritten)")
        description = layer.provenance.model_dump_json() if layer.provenance is not None else None
        return self.jobs.start(f"Saving {name}",
                               lambda ctx: write_tiff(path, layer.image, dtype="float32", description=description))
