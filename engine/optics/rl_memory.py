"""How much memory Richardson-Lucy needs for an image, estimated before it runs (one estimate, every door).

:func:`estimate_rl_memory` follows what :func:`decongan.engine.optics.deconvolution.iter_deconvolve_image`
allocates, from the same block plan (:func:`~decongan.engine.optics.request.plan_blocks`) and the
same FFT grid rule (``engine.optics.fft_conv.fast_shape``):

* for the whole image, held while the blocks run: the input as read (its own dtype), its float32
  copy when an offset is subtracted, and the float32 output;
* for the largest block (blocks run one after the other), in float32 / complex64 as the solver
  works: the estimate, the ratio and the blurred estimate on the FFT grid (3 float32 canvases), the
  block's float32 data, the OTF of every channel's PSF (kept for the whole image, complex64 on the
  real-FFT half grid) and the spectrum of the convolution in progress and its inverse transform's
  copy (2 complex64 half grids); ``padded`` edges add the Bertero-Boccacci weight and, while it is
  computed, two more canvases and three object-sized temporaries; RL-TV adds its gradient buffers.

The padded FFT grid is what the edges cost: ``circular`` works on the block itself, ``zero`` and
``padded`` on the block plus the PSF size (minus one) along every axis, rounded up to a fast FFT
length. The buffers are scaled by :data:`ALLOCATOR_MARGIN` for what the allocator keeps. It is an
upper estimate: on the CPU the measured growth of the peak RSS was about 0.55 to 0.95 times it (2-D
and 3-D, every edge mode, RL and RL-TV; checked in tests/engine/test_rl_memory.py).
:func:`~decongan.engine.optics.deconvolution.iter_deconvolve_image` checks it before it starts, so
every door (command line, batch, GUI, demo) refuses an image that cannot fit, with this estimate.

Numpy-free arithmetic on shapes; torch is never imported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from decongan.engine.optics.fft_conv import fast_shape
from decongan.engine.optics.request import DEFAULT_EDGES, EDGE_MODES, plan_blocks

FLOAT32 = 4
COMPLEX64 = 8
GIB = 1024**3
#: the buffers above are what RL asks for; the allocator and torch's worker threads keep some freed
#: memory mapped (measured: up to ~20 % more peak RSS on the CPU), so the working set is scaled by this
ALLOCATOR_MARGIN = 1.25


@dataclass(frozen=True)
class RlMemoryEstimate:
    """The estimated peak memory of Richardson-Lucy on one image, and what bounds it.

    Attributes
    ----------
    image_bytes : int
        Whole-image arrays held while the blocks run (input as read, float32 offset copy, output).
    working_bytes : int
        Peak of RL on the largest block (FFT-grid buffers, OTFs, spectra, temporaries), bytes.
    block_shape : tuple of int
        The largest block, (Y, X) or (Z, Y, X) pixels.
    canvas : tuple of int
        Its FFT grid, pixels.
    n_blocks : int
        Blocks of the image (planes or volumes, one per time point and channel...).
    block_kind : str
        ``"volume"`` or ``"plane"``.
    edges : str
        Boundary model the grid was sized for.
    """

    image_bytes: int
    working_bytes: int
    block_shape: tuple[int, ...]
    canvas: tuple[int, ...]
    n_blocks: int
    block_kind: str
    edges: str

    @property
    def total_bytes(self) -> int:
        """``image_bytes + working_bytes`` (everything on the CPU)."""
        return self.image_bytes + self.working_bytes

    def bound(self) -> str:
        """What the estimate depends on, in words (for messages)."""
        block = " x ".join(str(n) for n in self.block_shape)
        canvas = " x ".join(str(n) for n in self.canvas)
        edges = {"padded": "padded edges: the block plus the PSF size along every axis",
                 "zero": "zero edges: the block plus the PSF size along every axis",
                 "circular": "circular edges: the block itself"}[self.edges]
        blocks = (f"one {self.block_kind} of {block} px" if self.n_blocks == 1 else
                  f"{self.n_blocks} {self.block_kind}s of {block} px one after the other, each")
        return (f"RL works on {blocks} on a {canvas} FFT grid ({edges}), with "
                f"{_size(self.working_bytes)} of float32/complex64 buffers, plus {_size(self.image_bytes)} for the "
                "whole image in and out")

    def check(self, *, what: str, device: str = "cpu", device_available: int | None = None) -> None:
        """Refuse, before RL starts, an image whose estimate exceeds the available memory.

        Parameters
        ----------
        what : str
            What is deconvolved (the image's path), named in the message.
        device : str
            "cpu": everything is checked against the machine's available memory
            (:func:`decongan.engine.outputs.check_memory`); "cuda...": the whole-image arrays against it
            and the working buffers against ``device_available``.
        device_available : int, optional
            Free bytes on the accelerator (``torch.cuda.mem_get_info``); None skips that part.

        Raises
        ------
        decongan.engine.outputs.MemoryEstimateError
            The message states the estimate, what bounds it and how to make it smaller.
        """
        from decongan.engine.outputs import MemoryEstimateError, check_memory

        fix = ("crop the image or deconvolve fewer planes at once (a 2-D PSF deconvolves a stack plane by plane; "
               "a smaller PSF shrinks the padded grid; circular edges need no padding but wrap structures "
               "around the borders)")
        on_cpu = not str(device).startswith("cuda")
        need = self.total_bytes if on_cpu else self.image_bytes
        check_memory(need, what=f"Richardson-Lucy of {what} ({self.bound()})", fix=fix)
        if not on_cpu and device_available is not None and self.working_bytes > device_available > 0:
            raise MemoryEstimateError(
                f"Richardson-Lucy of {what} needs about {self.working_bytes / GIB:.1f} GiB on {device}, but only "
                f"{device_available / GIB:.1f} GiB is free there ({self.bound()}); {fix}, or use the CPU",
                value=self.working_bytes)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / GIB:.2f} GiB" if n_bytes >= GIB / 10 else f"{n_bytes / 2**20:.1f} MiB"


def _canvas(block: Sequence[int], kernel: Sequence[int], edges: str) -> tuple[int, ...]:
    if edges == "circular":
        return tuple(int(n) for n in block)
    if edges == "zero":
        return fast_shape([n + k - 1 for n, k in zip(block, kernel, strict=True)])
    return fast_shape([max(n + k - 1, n + 2 * (k // 2)) for n, k in zip(block, kernel, strict=True)])


def _block_working_bytes(block: Sequence[int], kernel: Sequence[int], *, edges: str, method: str,
                         tv_variant: str, n_kernels: int, acceleration: str = "none") -> tuple[int, tuple[int, ...]]:
    canvas = _canvas(block, kernel, edges)
    c = math.prod(canvas)
    b = math.prod(block)
    half = math.prod(canvas[:-1]) * (canvas[-1] // 2 + 1)
    spectra = COMPLEX64 * half * (n_kernels + 2)  # cached OTFs, the spectrum in progress, c2r's copy
    if edges == "padded":
        o = math.prod(n + 2 * (k // 2) for n, k in zip(block, kernel, strict=True))
    else:
        o = b
    tv = 0
    if method == "rltv":
        tv = (len(block) + 3) * o if tv_variant == "dey" else 9 * b
    if acceleration != "none":  # Biggs-Andrews: the previous estimate and two update steps (object-sized)
        tv += 3 * o
    # a convolution in progress: its spectrum and the inverse transform's copy of it (complex64, in
    # ``spectra``) and the inverse transform's float32 result before it lands in its buffer (one canvas)
    steps = FLOAT32 * (3 * c + c + 2 * b + (o if edges == "padded" else 0) + tv)  # + the data, the ratio's copy
    setup = 0
    if edges == "padded":  # weight = H^T 1: two more canvases, the start estimate, where()'s temporaries
        setup = FLOAT32 * (5 * c + c + b + 4 * o)
    elif edges == "circular":
        setup = FLOAT32 * (3 * c + 2 * b)  # the start estimate is copied
    return int(ALLOCATOR_MARGIN * (max(steps, setup) + spectra)), canvas


def estimate_rl_memory(axes: str, shape: Sequence[int], psf_shapes: Sequence[Sequence[int]], *,
                       edges: str = DEFAULT_EDGES, method: str = "rl", tv_variant: str = "dey",
                       input_itemsize: int = FLOAT32, offset: bool = False,
                       acceleration: str = "none") -> RlMemoryEstimate:
    """THE estimate of Richardson-Lucy's peak memory for an image, before anything is allocated.

    Parameters
    ----------
    axes : str
        The image's axes (a subset of ``"TZCYX"`` ending with ``"YX"``).
    shape : sequence of int
        The image's shape, one entry per axis (pixels).
    psf_shapes : sequence of shapes
        The PSF's shape, (Y, X) or (Z, Y, X) pixels, once for all channels or once per channel.
    edges : {"padded", "circular", "zero"}
        Boundary model (sets the FFT grid).
    method : {"rl", "rltv"}
    tv_variant : {"dey", "dl2"}
    input_itemsize : int
        Bytes per pixel of the image as read (2 for uint16...).
    offset : bool
        An offset is subtracted first (a float32 copy of the whole image).
    acceleration : {"none", "biggs"}
        "biggs" keeps three more object-sized float32 buffers (engine.optics.rl_acceleration).

    Returns
    -------
    RlMemoryEstimate
        Bytes for the whole image and for the largest block, and the block and grid sizes.
    """
    if edges not in EDGE_MODES:
        raise ValueError(f"edges must be one of {', '.join(EDGE_MODES)}, got {edges!r}")
    shapes = [tuple(int(n) for n in s) for s in psf_shapes]
    plan = plan_blocks(axes, shape, [len(s) for s in shapes])
    n_pixels = math.prod(int(n) for n in shape)
    image_bytes = n_pixels * (int(input_itemsize) + FLOAT32 + (FLOAT32 if offset else 0))
    n_kernels = len({b.channel for b in plan}) if len(shapes) > 1 else 1
    worst, worst_canvas, worst_block = 0, (), ()
    seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    for b in plan:
        kernel = shapes[b.channel if len(shapes) > 1 else 0]
        if b.psf == "focal_plane":
            kernel = kernel[1:]
        block = tuple(int(shape[i]) for i, a in enumerate(axes) if a in b.axes)
        if (block, kernel) in seen:
            continue
        seen.add((block, kernel))
        if edges == "circular":
            kernel = tuple(min(k, n) for k, n in zip(kernel, block, strict=True))
        need, canvas = _block_working_bytes(block, kernel, edges=edges, method=method, tv_variant=tv_variant,
                                            n_kernels=n_kernels, acceleration=acceleration)
        if need > worst:
            worst, worst_canvas, worst_block = need, canvas, block
    kind = "volume" if plan and plan[0].axes == "ZYX" else "plane"
    return RlMemoryEstimate(int(image_bytes), int(worst), worst_block, worst_canvas, len(plan), kind, edges)


__all__ = ["RlMemoryEstimate", "estimate_rl_memory"]
