"""The human side of a bioimage.io package: citations, README (model card), cover image, tags.

:mod:`engine.learn.bioimageio_export` builds the package; this module writes what a person reads in
it. The README states the training data, preset, iterations, the validation metrics stored with the
run, how the package normalises (and what it cannot express), the tiling halo, and the caveats of a
GAN restoration; the run's own ``MODEL_CARD.md`` (written for shipped models) is appended when present.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: the seed papers of the presets (../shared/docs/SEEDS.md), as bioimage.io citations
SEED_CITATIONS: dict[str, list[dict[str, str]]] = {
    "s1": [{"text": "Panek et al., Cross-system biological image quality enhancement based on the generative adversarial "
                    "network as a foundation for establishing a multi-institute microscopy cooperative network",
            "url": "https://www.paperswithcode.com/paper/cross-system-biological-image-quality"}],
    "s2": [{"text": "Huang et al., Enhancing image resolution of confocal fluorescence microscopy with deep learning "
                    "(TCAN), PhotoniX 2023", "doi": "10.1186/s43074-022-00077-x"}],
    "s3": [{"text": "Trujillo et al., Opt. Lett. 2024 (cycleGAN super-resolution from unpaired confocal); cycleGAN: "
                    "Zhu et al., Unpaired image-to-image translation using cycle-consistent adversarial networks, ICCV 2017",
            "url": "https://arxiv.org/abs/1703.10593"}],
    "s4": [{"text": "Li et al., Unsupervised content-preserving transformation for optical microscopy, Light Sci Appl 2021",
            "doi": "10.1038/s41377-021-00484-y"}],
    "s5": [{"text": "Cooper et al. (real-world LR/HR confocal benchmark, Real-ESRGAN fine-tuning); Real-ESRGAN: Wang "
                    "et al., Training real-world blind super-resolution with pure synthetic data, ICCVW 2021",
            "url": "https://arxiv.org/abs/2107.10833"}],
}

CAVEATS = (
    "A GAN restoration is a prediction, not a measurement: structures can be invented or removed where the input "
    "does not determine them. Compare it with the ground truth or a classical deconvolution (DeconGAN's compare "
    "command) before quantifying anything.",
    "Use it only on data like its training data (microscope, objective, pixel size, labelling, signal level); "
    "outside that domain the output can look plausible and be wrong.",
    "Intensities are mapped back to the training targets' units with the stored percentile parameters; they are "
    "not photon counts and are not clipped.",
)


def citations(preset_name: str) -> list[dict[str, str]]:
    """Citation entries (``text`` and ``doi`` or ``url``) of a preset's seed paper.

    Parameters
    ----------
    preset_name : str
        ``"s1"`` ... ``"s5"``; any other name gives DeconGAN's own design notes.

    Returns
    -------
    list of dict
        Entries for the ``cite`` field of a bioimage.io description.
    """
    return [dict(entry) for entry in SEED_CITATIONS.get(preset_name.lower(), [
        {"text": "DeconGAN: GAN restoration compared with Richardson-Lucy deconvolution",
         "url": "https://bioimage.io/docs/#/guides/developers-guide"}])]


def tags(preset_name: str, *, scale: int) -> list[str]:
    """bioimage.io tags of a DeconGAN generator (lower case, as the zoo lists them).

    Parameters
    ----------
    preset_name : str
        ``"s1"`` ... ``"s5"``.
    scale : int
        Output pixels per input pixel (adds ``super-resolution`` when above 1).

    Returns
    -------
    list of str
    """
    out = ["decongan", preset_name.lower(), "gan", "restoration", "deconvolution", "fluorescence-light-microscopy",
           "2d", "pytorch", "torchscript", "image-to-image"]
    if scale > 1:
        out.append("super-resolution")
    return out


def _display(plane: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    low, high = limits
    span = high - low if high > low else 1.0
    return (np.clip((plane.astype(np.float64) - low) / span, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def cover_image(lq: np.ndarray, output: np.ndarray, gt: np.ndarray | None, path: str | Path) -> Path:
    """Write a 2:1 PNG cover: LQ | network output | ground truth (or output twice when no GT), grey.

    Every panel shows the same field; the LQ is enlarged (nearest) to the output grid. The output and
    the GT share one display range (1st..99.8th percentile of the GT, else of the output), the LQ has
    its own (it is in other intensity units). Each panel is cut to two thirds of its width so the
    three side by side are twice as wide as high, the aspect bioimage.io shows.

    Parameters
    ----------
    lq : ndarray, shape (h, w)
        Input crop, intensity units.
    output : ndarray, shape (h * s, w * s)
        Network output on that crop.
    gt : ndarray, shape (h * s, w * s), or None
        Ground truth of that crop.
    path : str or Path
        PNG file to write.

    Returns
    -------
    Path
    """
    from PIL import Image

    out_h, out_w = output.shape
    scale = out_h // lq.shape[0]
    lq_big = np.repeat(np.repeat(lq, scale, axis=0), scale, axis=1)[:out_h, :out_w]
    reference = gt if gt is not None else output
    limits = tuple(float(v) for v in np.percentile(reference, [1.0, 99.8]))
    lq_limits = tuple(float(v) for v in np.percentile(lq_big, [1.0, 99.8]))
    width = max(1, (2 * out_h) // 3)
    left = (out_w - width) // 2
    panels = [_display(lq_big, lq_limits), _display(output, limits), _display(gt if gt is not None else output, limits)]
    row = np.concatenate([p[:, left:left + width] for p in panels], axis=1)
    Image.fromarray(row, mode="L").convert("RGB").save(str(path), format="PNG")
    return Path(path)


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    values = metrics.get("metrics", {}) if isinstance(metrics.get("metrics"), Mapping) else {}
    rows = []
    for key in ("ssim", "psnr", "mse", "nrmse"):
        if key in values:
            lq = values.get(f"lq_{key}")
            rows.append(f"| {key.upper()} | {values[key]:.4g} | {'' if lq is None else f'{lq:.4g}'} |")
    if not rows:
        return "No validation metrics were stored with the run.\n"
    head = "| metric | network output vs GT | input (LQ) vs GT |\n|---|---|---|\n"
    where = metrics.get("val_names") or []
    return (head + "\n".join(rows) + f"\n\nComputed by DeconGAN at iteration {metrics.get('iteration')} on the "
            f"validation field(s) {', '.join(map(str, where)) or '(unnamed)'} in normalised units (criterion "
            f"{metrics.get('criterion', 'ssim')}).\n")


def readme(*, name: str, config: Any, which: str, metrics: Mapping[str, Any] | None, geometry: Mapping[str, Any],
           normalization_text: str, sample_source: str, notes: list[str] | None = None,
           extra_card: str | None = None, state_dict: bool = True) -> str:
    """Markdown README of the package (the model card bioimage.io shows).

    Parameters
    ----------
    name : str
        Package name.
    config : RunConfig
        The run's configuration (preset, data, normalisation, pixel size, training settings).
    which : {"best", "last"}
        Which generator was exported.
    metrics : mapping or None
        ``best/metrics.json`` of the run.
    geometry : mapping
        ``min``, ``step``, ``halo_px`` (input px), ``receptive_field_px`` (or None) and ``scale``.
    normalization_text : str
        How the package's pre- and postprocessing reproduce DeconGAN's normalisation.
    sample_source : str
        Where the test and sample tensors were cut from.
    notes : list of str, optional
        What the export assumed or could not express (listed under "Notes").
    extra_card : str, optional
        The run's ``MODEL_CARD.md`` text, appended.
    state_dict : bool
        Whether the package also holds the PyTorch state-dict weights.

    Returns
    -------
    str
    """
    preset = config.preset or {}
    iterations = (config.train or {}).get("iterations")
    data = config.data
    px = f"{config.pixel_size_um:g} um" if config.pixel_size_um else "not recorded"
    rf = geometry.get("receptive_field_px")
    halo_text = (f"{geometry['halo_px']} input px (the measured receptive-field radius is {rf} px, rounded up to a "
                 f"multiple of the stride {geometry['step']}): blocks cropped by the halo equal the whole-image output, except "
                 "within the halo of the image border, where a consumer's padding (mirror) replaces the network's "
                 "zero padding" if rf
                 else f"{geometry['halo_px']} input px. This generator has whole-input operations (global attention "
                 "or instance normalisation), so no halo makes tiled output exactly equal the whole-image output; "
                 "process whole images when memory allows")
    lines = [
        f"# {name}", "",
        f"{preset.get('title') or config.preset_name.upper()} generator trained with DeconGAN and exported as a "
        "bioimage.io model (format 0.5) with TorchScript weights (run by deepImageJ, bioimage.io tools and plain "
        "PyTorch)" + (" and the PyTorch state dict they were made from." if state_dict else "."), "",
        "## Training", "",
        f"- preset: `{config.preset_name}` ({preset.get('reference', '')})",
        f"- iterations: {iterations if iterations is not None else 'not recorded'}; exported generator: `{which}`",
        f"- training data: LQ `{data.lq_dir}`, HQ `{data.hq_dir}`; {len(data.train_names)} training and "
        f"{len(data.val_names)} validation field(s) ({data.n_train_planes} / {data.n_val_planes} planes); {data.planes}",
        f"- pixel size of the training inputs: {px}; output pixels per input pixel: {config.scale}",
        f"- seed {config.seed}; created {config.created}",
        "",
        "## Input and output", "",
        f"- input `input`: float32, axes batch, channel (1), y, x; y and x sizes `{geometry['min']} + n * "
        f"{geometry['step']}` px (the network's stride); pixel size as scale, unit micrometer",
        f"- output `output`: float32, y and x {config.scale} times the input's; halo {halo_text}.",
        f"- normalisation: {normalization_text}", "",
        "## Validation", "",
        _metrics_table(metrics or {}),
        f"The test and sample tensors are cut from {sample_source}; the test output is DeconGAN's own output "
        "on the test input (the package passes `bioimageio test` with every weight format).", "",
        "## Caveats", "",
        *[f"- {c}" for c in CAVEATS], "",
        "## Use", "",
        "- Fiji: Plugins > deepImageJ > deepImageJ Install Model (this zip), then Plugins > deepImageJ > deepImageJ Run.",
        "- Python / napari: `bioimageio predict` or `bioimageio.core.predict(model=\"<this zip>\", inputs=...)`.",
        "- DeconGAN: give this zip to `decongan predict` in place of a run folder, or to `decongan compare` as a "
        "method (it restores the LQ images).",
        "",
        ("The PyTorch state-dict weights are built by `decongan_architecture.py`, which needs the `decongan` "
         "package; the TorchScript weights need only PyTorch." if state_dict else
         "The TorchScript weights need only PyTorch."), "",
    ]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    if extra_card:
        lines += ["## Model card of the run", "", extra_card.strip(), ""]
    return "\n".join(lines)


def run_facts(config: Any, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run facts stored in the package's ``config.decongan`` (JSON-safe).

    Parameters
    ----------
    config : RunConfig
        The run's configuration.
    metrics : mapping or None
        ``best/metrics.json`` of the run.

    Returns
    -------
    dict
    """
    return json.loads(json.dumps({
        "preset": config.preset_name,
        "generator": config.generator_spec[0],
        "scale": config.scale,
        "pixel_size_um": config.pixel_size_um,
        "normalization": config.normalization.model_dump(mode="json"),
        "validation": dict(metrics or {}),
    }))


__all__ = ["CAVEATS", "SEED_CITATIONS", "citations", "cover_image", "readme", "run_facts", "tags"]
