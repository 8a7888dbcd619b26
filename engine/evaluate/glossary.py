"""What every column of a metric table means, in words: the one glossary the window and the report use.

Short labels and directions stay in :mod:`engine.evaluate.compare` (``METRIC_LABELS``,
``HIGHER_IS_BETTER``); this module adds, per key, a plain name, the unit, one sentence on what it
measures and **where** it is measured. For a Z stack the scope matters: reference metrics and data
consistency cover the whole stack, the no-reference and segmentation scores one plane (the focus
plane, the ground truth's brightest, recorded in ``z_plane``), the plane the figures show.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Where a metric is measured.
WHOLE = "whole"
FOCUS_PLANE = "focus plane"
NOT_A_METRIC = ""


@dataclass(frozen=True)
class Term:
    """One column of a metric table.

    Attributes
    ----------
    key : str
        The column's name in metrics.csv / metrics.json.
    name : str
        Plain-language name.
    unit : str
        Unit ("" for dimensionless numbers).
    meaning : str
        One sentence: what it measures.
    scope : str
        :data:`WHOLE` (the whole image or stack), :data:`FOCUS_PLANE` or :data:`NOT_A_METRIC`.
    """

    key: str
    name: str
    unit: str
    meaning: str
    scope: str = WHOLE


_POLICY = "after the normalisation policy (GT percentile-normalised, each image gain/offset-matched to it)"

TERMS: dict[str, Term] = {t.key: t for t in (
    Term("image", "field of view", "", "The field (image file stem, or plane zNN of a stack) this row measures.",
         NOT_A_METRIC),
    Term("method", "method", "", "The input, a restoration or the ground truth.", NOT_A_METRIC),
    Term("role", "role", "", "input, restored or reference (ground truth).", NOT_A_METRIC),
    Term("backend", "backend", "", "What computed the image (engine/cpu, Fiji, a GAN run, a file).", NOT_A_METRIC),
    Term("channel", "channel", "", "Channel index (0-based, as stored in the file).", NOT_A_METRIC),
    Term("z_plane", "focus plane", "", "For a stack: the plane (0-based index, as in zNN names and the figures) "
         "on which the no-reference and segmentation scores are measured and which the figures show -- the "
         "ground truth's brightest. Reference metrics and data consistency cover the whole stack.", NOT_A_METRIC),
    Term("mse", "mean squared error", "normalised units²", f"Mean squared difference from the ground truth {_POLICY}."),
    Term("nrmse", "normalised RMS error", "", f"||method − GT|| / ||GT|| {_POLICY}."),
    Term("psnr", "peak signal-to-noise ratio", "dB", f"10·log10(1 / MSE) against the ground truth {_POLICY}."),
    Term("ssim", "structural similarity", "", f"Local agreement of brightness, contrast and structure with the "
         f"ground truth (Wang et al. 2004; 1 = identical) {_POLICY}; a stack's SSIM is the mean over its planes."),
    Term("bgstd", "background noise", "", "Standard deviation of the background (pixels below Otsu's threshold) on "
         "the image's own percentile scale; no ground truth needed.", FOCUS_PLANE),
    Term("cuf", "cut-off frequency", "cycles/px", "Radius of the disc holding 95 % of the spectrum's energy "
         "(0.5 = Nyquist); rises with real detail and with noise alike.", FOCUS_PLANE),
    Term("snr", "signal-to-noise ratio", "", "Bright-structure signal above background divided by the background's "
         "noise; no ground truth needed.", FOCUS_PLANE),
    Term("decorrelation_px", "decorrelation resolution", "px", "Smallest resolved period by image decorrelation "
         "analysis (Descloux et al. 2019); rewards any high frequency, invented ones included.", FOCUS_PLANE),
    Term("decorrelation_nm", "decorrelation resolution", "nm", "The decorrelation resolution in nanometres (needs "
         "the pixel size).", FOCUS_PLANE),
    Term("dc_flagged_fraction", "flagged area (data consistency)", "fraction of pixels", "Share of the image where "
         "the restoration, re-imaged through the LQ optics, disagrees with the input beyond noise (outlined in the "
         "consistency map)."),
    Term("dc_unsupported_fraction", "unsupported area", "fraction of pixels", "Part of the flagged area where the "
         "restoration is brighter than the input supports: possibly invented structure."),
    Term("dc_rsp", "resolution-scaled Pearson (RSP)", "", "Correlation of the re-imaged restoration with the input "
         "(SQUIRREL's RSP; 1 = fully consistent)."),
    Term("dc_chi_rms", "normalised residual RMS (chi)", "", "RMS of (input − re-imaged restoration) in units of the "
         "input's own noise: about 1 when the restoration explains the input down to the noise."),
    Term("sh_flagged_fraction", "flagged area (split-half)", "fraction of pixels", "Share of the image where the "
         "method, run on two independent photon halves of the input, gives results that differ beyond noise: "
         "structure it does not reproduce from the same data."),
    Term("ens_flagged_fraction", "flagged area (vs other models/seeds)", "fraction of pixels", "Share of the image "
         "where this model departs from the other models or seeds of its group beyond noise."),
    Term("seg_dice", "segmentation Dice", "", "Overlap of nuclei segmented (Otsu + watershed) in the method and in "
         "the ground truth: 2|A∩B| / (|A|+|B|).", FOCUS_PLANE),
    Term("seg_jaccard", "segmentation Jaccard", "", "Intersection over union of the segmented foregrounds.",
         FOCUS_PLANE),
    Term("seg_f1", "object F1 (IoU 0.5)", "", "F1 of nuclei matched one-to-one with the ground truth's at "
         "intersection over union >= 0.5.", FOCUS_PLANE),
)}


def describe(key: str, *, stack: bool = False, plane: int | None = None) -> str:
    """A tooltip for column ``key``: name, unit, meaning, which direction is better and where it is measured.

    Parameters
    ----------
    key : str
        A metric-table column (unknown keys give the key itself).
    stack : bool
        The rows measure Z stacks (then the scope is stated).
    plane : int, optional
        The focus plane (0-based) of the rows, when they share one.
    """
    from decongan.engine.evaluate.compare import HIGHER_IS_BETTER

    term = TERMS.get(key)
    if term is None:
        return key
    text = term.name + (f" [{term.unit}]" if term.unit else "") + f": {term.meaning}"
    better = HIGHER_IS_BETTER.get(key, "n/a")
    if better is True:
        text += " Higher is better."
    elif better is False:
        text += " Lower is better."
    elif better is None:
        text += " Neither direction is better by itself."
    if stack and term.scope == WHOLE:
        text += " Measured on the whole stack."
    elif stack and term.scope == FOCUS_PLANE:
        text += f" Measured on plane z{plane} only (the focus plane)." if plane is not None else \
            " Measured on the focus plane only (column z_plane)."
    return text


def header(key: str, *, stack: bool = False) -> str:
    """The column header: the short label with its unit (``METRIC_LABELS``) and, for stacks, its scope.

    Parameters
    ----------
    key : str
        A metric-table column.
    stack : bool
        The rows measure Z stacks: "· whole stack" or "· plane z" is appended to metric headers.
    """
    from decongan.engine.evaluate.compare import METRIC_LABELS

    term = TERMS.get(key)
    if key == "z_plane":
        return "focus plane z"
    label = METRIC_LABELS.get(key, key)
    if term is not None and term.unit and term.unit not in label and len(term.unit) <= 10 and term.scope != NOT_A_METRIC:
        label += f" ({term.unit})"
    if stack and term is not None:
        label += {WHOLE: " · whole stack", FOCUS_PLANE: " · plane z"}.get(term.scope, "")
    return label


__all__ = ["FOCUS_PLANE", "NOT_A_METRIC", "TERMS", "WHOLE", "Term", "describe", "header"]
