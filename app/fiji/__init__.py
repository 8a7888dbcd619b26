"""App-layer adapters between the Fiji bridge (:mod:`decongan.imagej_bridge`) and the engine's result types.

One job per module:

* :mod:`~decongan.app.fiji.client` -- the shared bridge clients, :class:`FijiUnavailable`, the
  engine fallback (labelled "engine (Fiji unavailable)") and provenance from the bridge;
* :mod:`~decongan.app.fiji.psf` -- PSF Generator's Born & Wolf PSF, or the engine's builder;
* :mod:`~decongan.app.fiji.deconvolve` -- DeconvolutionLab2 RL / RL-TV on the engine's block plan;
* :mod:`~decongan.app.fiji.register` -- TurboReg / SIFT with the engine's pixel-size and quality rules;
* :mod:`~decongan.app.fiji.doctor` -- ``decongan fiji doctor``;
* :mod:`~decongan.app.fiji.crosscheck` -- ``decongan fiji crosscheck`` against the goldens.

They return what the engine returns (``Restored``, ``DeconvolvedImage``, ``RegistrationResult``)
with an engine ``Provenance`` built from the bridge's (backend, plugin and version, exact
macro/config text). Engine modules are imported lazily, inside the functions.
"""
