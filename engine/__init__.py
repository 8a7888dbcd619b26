"""DeconGAN engine: arrays in, arrays out.

The engine never imports Qt, the JVM or the Fiji bridge (checked by import-linter in CI).
Heavy modules (torch, skimage.restoration) are imported by the submodules that need them,
so ``import decongan.engine`` stays cheap.
"""

__version__ = "0.1.0"
