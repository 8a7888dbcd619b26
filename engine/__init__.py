"""DeconGAN engine: arrays in, arrays out.

Three jobs, one sub-package each, over a ground floor:

- :mod:`decongan.engine.optics`: the optics of the request (NA, immersion, wavelength, pixel size),
  PSFs, Richardson-Lucy and registration;
- :mod:`decongan.engine.learn`: the five GAN systems, their training, checkpoints and tiled inference;
- :mod:`decongan.engine.evaluate`: comparisons, data consistency, statistics, figures, reports and
  batches;
- :mod:`decongan.engine.metrics`: reference and no-reference metrics, used by learn and evaluate;
- ground floor: :mod:`~decongan.engine.io`, :mod:`~decongan.engine.progress`,
  :mod:`~decongan.engine.provenance`, :mod:`~decongan.engine.errors`, atomic writes and devices.

The engine never imports Qt, the JVM or the Fiji bridge, and the jobs only import downwards
(import-linter contracts in pyproject.toml). Public names below resolve lazily, so
``import decongan.engine`` stays cheap.
"""

from decongan.engine._lazy import lazy_api

__version__ = "0.1.0"

_API = {
    "DeconganError": "errors",
    "ImageReadError": "io", "ImageWriteError": "io", "MicroscopyImage": "io", "list_images": "io",
    "read_image": "io", "write_tiff": "io",
    "Cancelled": "progress", "CancelToken": "progress", "Progress": "progress", "drain": "progress",
    "Provenance": "provenance", "Restored": "provenance",
}
__all__ = ["__version__", *sorted(_API)]
__getattr__, __dir__ = lazy_api(__name__, _API, globals())
