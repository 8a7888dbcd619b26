"""The main window's comparison of the current field: it follows the session and the viewer, runs the
engine's evaluation (metrics, error and consistency maps) in a background job and feeds the metrics
table, the maps and the line profile.

A mixin of :class:`app.gui.main_window.MainWindow` (``session``, ``viewer``, ``metrics``, ``profile``
and the evaluation timer are the window's); the numbers come from :mod:`app.gui.analysis`, which
calls the engine.
"""

from __future__ import annotations

import numpy as np

from decongan.app.gui import analysis
from decongan.app.gui.jobs import Job
from decongan.app.gui.line_profile import normalised_engine_profiles


class WindowAnalysisMixin:
    """Evaluation of the field on screen, its maps and the line profile."""

    # -- reacting to the session -----------------------------------------------------------------------
    def _field_changed(self) -> None:
        name = self.session.field.name if self.session.field else ""
        self.setWindowTitle(f"DeconGAN - {name}" if name else "DeconGAN")
        self.evaluation = None
        self._evaluation_key = None

    def _layers_changed(self) -> None:
        self.viewer.set_layers(self.session.layers)
        self.show_compare()  # a new result: show it
        self.schedule_evaluation()

    def _pixel_size_changed(self, um: float | None) -> None:
        self.viewer.pixel_size_um = um
        self.viewer._redraw(full=False)
        self._update_profiles_from_viewer()
        self.schedule_evaluation()

    def _plane_changed(self) -> None:
        self._update_profiles_from_viewer()
        self.metrics.set_viewer_plane(self.viewer.position["z"])  # the table says when its focus plane differs
        if self._evaluation_stale():
            self.schedule_evaluation()  # a new time point is a new comparison set
        else:
            self._show_maps()

    # -- analysis: one engine comparison of the field feeds the table and the maps ---------------------
    def current_planes(self) -> dict[str, np.ndarray]:
        """Layer name -> the 2-D plane on screen (current channel / z / t), for every layer."""
        return {lay.name: self.viewer.plane_of(lay) for lay in self.session.layers}

    def schedule_evaluation(self) -> None:
        """Re-evaluate the field shortly (changes in quick succession give one evaluation)."""
        self._evaluation_timer.start()

    def _evaluation_inputs_key(self):
        """The session's key of the evaluation the screen needs (layer versions, never ``id()``)."""
        return self.session.evaluation_key(t=self.viewer.position["t"], psf_parameters=self.session.psf_parameters())

    def _evaluation_stale(self) -> bool:
        return self._evaluation_key != self._evaluation_inputs_key()

    def compute_evaluation(self) -> Job | None:
        """Compare the current field with the engine (metrics, error maps, consistency maps) in a worker.

        Nothing is recomputed when the field, its layers, the time point and the PSF are unchanged.
        """
        session = self.session
        if session.field is None or session.lq is None:
            self.metrics.set_rows([], "Current field")
            return None
        key = self._evaluation_inputs_key()
        if key == self._evaluation_key and self.evaluation is not None:
            return None
        cached = session.cached_evaluation(key)
        if cached is not None:
            self._show_evaluation(cached, key)
            return None
        lq, gt = session.lq, session.gt
        restored = {lay.name: (lay.image, lay.provenance) for lay in session.restored}
        psf_parameters = session.psf_parameters()
        name = session.field.name
        t = self.viewer.position["t"]

        def work(ctx):
            return analysis.evaluate_field(name, (lq.name, lq.image), gt=(gt.name, gt.image) if gt else None,
                                           restored=restored, psf_parameters=psf_parameters, t=t,
                                           resample=key.resample)

        def done(result: analysis.FieldEvaluation) -> None:
            session.store_evaluation(key, result)
            if key != self._evaluation_inputs_key():
                self.schedule_evaluation()  # the field changed meanwhile
                return
            self._show_evaluation(result, key)

        return self._run_analysis("evaluation", f"Comparing {name}", work, done)

    def _show_evaluation(self, result: analysis.FieldEvaluation, key) -> None:
        """Put ``result`` (the evaluation of ``key``) in the metrics table and the maps."""
        self.evaluation = result
        self._evaluation_key = key
        self._attach_split_half_numbers()
        rows = [dict(r) for r in result.rows]
        t = key.t
        resampled = "; LQ resampled onto the GT grid (asked for)" if any(
            "resampled onto the ground-truth grid" in n for n in result.notes) else ""
        self.metrics.set_rows(rows, "Current field", note=f"{key.field}" + (f", t={t}" if t else "") + resampled)
        if self.dataset_rows_from is None:  # a batch's table is one run: never mixed with the window's rows
            self.metrics.merge_rows(rows, "Dataset")
        self._show_maps()

    def _show_batch_rows(self, rows: list[dict]) -> None:
        """The finished batch's metrics.csv becomes the Dataset table, alone (one run under its own labels)."""
        out = self.batch_panel.out_edit.path()
        self.dataset_rows_from = out
        images = {r.get("image") for r in rows}
        methods = list(dict.fromkeys(str(r.get("method")) for r in rows))
        self.metrics.set_rows(rows, "Dataset", note=f"batch {out}: {len(images)} field{'s' if len(images) != 1 else ''}"
                              f" x {len(methods)} methods ({len(rows)} rows, {out / 'metrics.csv'})")
        self.show_batch_verdict(out)

    def show_batch_verdict(self, out) -> None:
        """The Dataset verdict tab shows the verdict the batch's report states (read from its metrics.json)."""
        from decongan.app.gui.verdict_view import verdict_from_metrics_json

        try:
            verdict = verdict_from_metrics_json(out / "metrics.json")
        except ValueError as err:
            self.verdict_view.show_problem(str(err))
            return
        self.verdict_view.show_verdict(verdict, f"Verdict of batch {out} (as its report.html states it)")

    def show_window_verdict(self) -> None:
        """The Dataset verdict tab shows the engine's paired verdict of the fields compared in this window."""
        from decongan.app.gui.verdict_view import verdict_of_evaluations

        fields = self.evaluations_by_field
        if not fields:
            self.verdict_view.show_problem("No field has been compared in this window yet: open a dataset and "
                                           "compare its fields (or run a batch)")
            return
        verdict = verdict_of_evaluations(fe.evaluation for fe in fields.values())
        self.verdict_view.show_verdict(verdict, f"Verdict of the {len(fields)} field{'s' if len(fields) != 1 else ''}"
                                       f" compared in this window: {', '.join(fields)}")
        self.bottom_tabs.setCurrentWidget(self.verdict_view)

    def _run_analysis(self, key: str, name: str, work, on_success) -> Job:
        old = self._analysis_jobs.get(key)
        if old is not None and old.is_running:
            old.cancel()
        job = self.jobs.start(name, work, on_success=on_success, background=True)
        self._analysis_jobs[key] = job
        return job

    def _map_mode_changed(self, mode: str) -> None:
        if mode == "image":
            return
        self.show_compare()
        if mode == "split_half":
            self.compute_split_half()
            return
        if self.evaluation is None or self._evaluation_stale():
            self.statusBar().showMessage("Comparing the field (metrics and maps)...", 3000)
            self.compute_evaluation()
        else:
            self._show_maps()

    # -- split-half maps: the layers' methods rerun on two photon halves of the input (a worker) ------------
    def _split_half_inputs_key(self):
        return self._evaluation_inputs_key(), self.viewer.position["t"]

    def compute_split_half(self) -> Job | None:
        """Split-half maps of the restored layers the window can rerun (Deconvolve's RL, Predict's GAN), in a worker.

        Nothing is recomputed while the field, its layers and the time point are unchanged.
        """
        from decongan.app.gui.split_half_analysis import split_half_maps

        session = self.session
        if session.lq is None:
            return None
        key = self._split_half_inputs_key()
        if key == self._split_half_key and self.split_half is not None:
            self._show_split_half()
            return None
        running = self._analysis_jobs.get("split_half")
        if key == self._split_half_pending and running is not None and running.is_running:
            return running
        lq, t = session.lq.image, self.viewer.position["t"]
        layers = {lay.name: lay for lay in session.restored}
        self._split_half_pending = key
        self.statusBar().showMessage("Split-half maps: restoring two photon halves with each layer's method...", 10000)

        def done(result) -> None:
            self._split_half_pending = None
            if key != self._split_half_inputs_key():
                if self.viewer.map_mode == "split_half":
                    self.compute_split_half()  # the field or its layers changed meanwhile
                return
            self.split_half, self._split_half_key = result, key
            if self._attach_split_half_numbers():  # the table gets the column, the export the maps
                self._show_evaluation(self.evaluation, self._evaluation_key)
            else:
                self._show_split_half()

        return self._run_analysis("split_half", f"Split-half maps of {session.field.name if session.field else 'field'}",
                                  lambda ctx: split_half_maps(lq, layers, t=t, cancel=ctx.cancel), done)

    def _attach_split_half_numbers(self) -> bool:
        """Add the split-half maps to the evaluation on screen when both are of the same layers (the engine's
        ``attach_split_half``: column ``sh_flagged_fraction``, maps for the exported figure); True if added."""
        from decongan.engine.evaluate.trust_maps import attach_split_half

        ev, result = self.evaluation, self.split_half
        if ev is None or result is None or self._split_half_key is None or self._split_half_key[0] != self._evaluation_key:
            return False
        added = False
        for name, per_channel in result.results.items():
            if name in ev.layer_of and not any(k[0] == name for k in ev.evaluation.split_half):
                attach_split_half(ev.evaluation, name, per_channel)
                added = True
        return added

    def _show_split_half(self) -> None:
        """Give the viewer the split-half maps of the current channel / z and say what they show."""
        result = self.split_half
        if result is None or self._split_half_key != self._split_half_inputs_key():
            if self.viewer.map_mode == "split_half":
                self.compute_split_half()
            return
        c, z = self.viewer.position["c"], self.viewer.position["z"]
        maps, flagged = result.planes(c=c, z=z)
        self.viewer.set_maps("split_half", maps, flagged=flagged, missing=result.missing)
        if self.viewer.map_mode == "split_half":
            parts = [f"{name}: {100 * f[2]:.2f}% flagged" for name, f in flagged.items()]
            parts += [f"{name}: no map ({why})" for name, why in result.missing.items()]
            self.statusBar().showMessage(
                f"Split-half maps (seed {result.seed}; instability at half the photons, not correctness) - "
                + ("; ".join(parts) if parts else "no restored layer: deconvolve or predict first"), 20000)

    def _show_maps(self) -> None:
        """Give the viewer the maps of the current channel / z from the evaluation."""
        if self.viewer.map_mode == "split_half" or self.split_half is not None:
            self._show_split_half()
        ev = self.evaluation
        if ev is None:
            return
        c, z = self.viewer.position["c"], self.viewer.position["z"]
        self.viewer.set_maps("error", ev.maps("error", c=c, z=z))
        self.viewer.set_maps("consistency", ev.maps("consistency", c=c, z=z), note=ev.psf_note,
                             flagged=ev.flagged(c=c, z=z))
        mode = self.viewer.map_mode
        if mode == "error" and self.session.gt is None:
            self.statusBar().showMessage("Error maps need a ground truth (GT) layer", 8000)
        elif mode == "consistency":
            flagged = ev.consistency_summary(c=c)
            if flagged:
                summary = ", ".join(f"{k}: {100 * v:.2f}% flagged" for k, v in flagged.items())
                self.statusBar().showMessage(f"Data consistency vs LQ (purple: brighter than the input supports, "
                                             f"orange: input signal missing; outlines: flagged) - {summary}", 20000)
            else:
                self.statusBar().showMessage(ev.psf_note, 15000)

    def _line_tool_toggled(self, on: bool) -> None:
        if on:
            self.show_compare()
            self.bottom_tabs.setCurrentWidget(self.profile)
        else:
            self.profile.set_profiles({}, {})

    def _update_profiles_from_viewer(self) -> None:
        line = self.viewer.line()
        if line is not None:
            self._update_profiles(*line)
        else:
            self.profile.set_profiles({}, {})

    def _update_profiles(self, start, end) -> None:
        """Profiles of the visible panels on the reference's normalised scale (GT, else LQ), as in the figure."""
        shown = {p.layer.name: p.plane for p in self.viewer.panels if p.plane is not None}
        reference = self.session.gt or self.session.lq
        if not shown or reference is None:
            self.profile.set_profiles({}, {})
            return
        planes = {reference.name: self.viewer.plane_of(reference), **shown}  # a hidden GT stays the reference
        profiles, left_out = normalised_engine_profiles(planes, (start, end), reference.name)
        profiles = {k: profiles[k] for k in shown if k in profiles}  # in the order of the panels
        colours = {p.layer.name: p.colour for p in self.viewer.panels}
        note = f"not on the {reference.name} grid (no profile): {', '.join(left_out)}" if left_out else ""
        self.profile.set_profiles(profiles, colours, line=(start, end), pixel_size_um=self.session.pixel_size_um,
                                  reference=reference.name, note=note)
