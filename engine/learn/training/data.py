"""Training data: paired and unpaired folders, validation split, synthetic pairs, normalised planes.

Folders and images
------------------
* **Paired** (S1, S2, S5): ``lq/NAME.ext`` is matched with ``hq/NAME.ext'`` by file stem (the
  extension may differ). Names present on one side only are reported (:class:`PairingReport`) and
  left out; no match at all is an error that lists both sides.
* **Unpaired** (S3, S4): the two folders are two domains; nothing is matched.
* **Synthetic**: only HQ images; the LQ input is made by :mod:`engine.learn.degrade`.

Every image is read with :func:`engine.io.read_image` and cut into 2-D planes: each Z plane, T frame
and channel of a stack is an independent 1-channel sample (3-D stacks are used as 2-D planes:
the generators are 2-D). A pair must have the same number of planes on both sides, and an HQ plane
must be ``scale`` times the LQ plane (SR pairs); a mismatch is an error naming the file. RGB
colour images are refused (split the channels first).

Validation
----------
Whole images are held out, never patches of training images: the names given by the user, or a
deterministic choice by name (images sorted by the SHA-1 of their stem, the first
``round(val_fraction * n)``; at least one when there are two or more images), so adding an image
does not reshuffle the others.

Patches are drawn by :class:`engine.learn.training.patches.PatchSampler`.

Why this module is long
-----------------------
:func:`prepare_training_data` is one ~220-line pass over the three kinds of training data (paired,
unpaired, synthetic): it reads every file once and cross-checks pairs, pixel sizes, channel counts,
registration, normalisation and the validation split as it goes, collecting notes for the run's
record. Cut into steps, each step would pass the same dozen half-built lists to the next; kept
together, the order of the checks (and which file a refusal names) reads top to bottom. Patch
sampling, which is independent of it, lives in :mod:`engine.learn.training.patches`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.io import ImageReadError, MicroscopyImage, image_stem, list_images, read_image
from decongan.engine.learn.degrade import DegradationSpec, degrade
from decongan.engine.learn.normalization import ChannelNorm, NormalizationConfig, fit_normalization


class DataError(DeconganError, ValueError):
    """Training data that cannot be used; the message names the folder or file and the problem."""


# ---------------------------------------------------------------------------------------------
# finding files
# ---------------------------------------------------------------------------------------------
@dataclass
class PairingReport:
    """Result of matching an LQ and an HQ folder by file stem."""

    matched: list[tuple[str, Path, Path]]
    lq_only: list[str] = field(default_factory=list)
    hq_only: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{len(self.matched)} pairs matched by name"
        if self.lq_only:
            text += f"; LQ without HQ (left out): {', '.join(self.lq_only)}"
        if self.hq_only:
            text += f"; HQ without LQ (left out): {', '.join(self.hq_only)}"
        return text


def _stems(folder: Path, role: str) -> dict[str, Path]:
    try:
        files = list_images(folder)
    except ImageReadError as err:
        raise DataError(f"{role} folder {folder}: {err.problem}") from err
    stems: dict[str, Path] = {}
    for path in files:
        stem = image_stem(path)
        if stem in stems:
            raise DataError(f"{role} folder {folder}: two files share the name {stem!r} ({stems[stem].name}, {path.name})")
        stems[stem] = path
    if not stems:
        raise DataError(f"{role} folder {folder} holds no images (TIFF, PNG, JPEG or BMP)")
    return stems


def match_pairs(lq_dir: str | Path, hq_dir: str | Path) -> PairingReport:
    """Match ``lq_dir`` and ``hq_dir`` files by stem.

    Parameters
    ----------
    lq_dir, hq_dir : str or Path
        Folders of low- and high-quality images.

    Returns
    -------
    PairingReport
        The matched ``(stem, lq_path, hq_path)`` triples, sorted by stem, and the stems found on one
        side only (left out).

    Raises
    ------
    DataError
        A folder is missing or empty, or no name matches (the message lists both sides).
    """
    lq, hq = _stems(Path(lq_dir), "LQ"), _stems(Path(hq_dir), "HQ")
    common = sorted(set(lq) & set(hq))
    report = PairingReport([(n, lq[n], hq[n]) for n in common], sorted(set(lq) - set(hq)), sorted(set(hq) - set(lq)))
    if not common:
        raise DataError(
            f"no LQ image in {lq_dir} has an HQ image of the same name in {hq_dir} "
            f"(LQ: {', '.join(sorted(lq)[:8])}{' ...' if len(lq) > 8 else ''}; "
            f"HQ: {', '.join(sorted(hq)[:8])}{' ...' if len(hq) > 8 else ''}); pairs are matched by file name"
        )
    return report


def split_validation(names: Sequence[str], *, val_names: Sequence[str] | None = None,
                     val_fraction: float = 0.15) -> tuple[list[str], list[str]]:
    """Split image names into (train, validation); see the module doc for the rule.

    Parameters
    ----------
    names : sequence of str
        Image names (file stems).
    val_names : sequence of str, optional
        Names to hold out explicitly; when given, ``val_fraction`` is ignored.
    val_fraction : float
        Fraction of the images held out otherwise (rounded; at least one when there are two or
        more images and the fraction is > 0; never all). The choice depends only on the names
        (SHA-1 order), so it is the same on every run.

    Returns
    -------
    train, validation : list of str
        Both sorted.

    Raises
    ------
    DataError
        A requested validation name does not exist, or nothing would be left for training.
    """
    names = sorted(names)
    if val_names is not None:
        wanted = list(dict.fromkeys(val_names))
        missing = [n for n in wanted if n not in names]
        if missing:
            raise DataError(f"validation image(s) not found among the training images: {', '.join(missing)} "
                            f"(available: {', '.join(names)})")
        val = sorted(wanted)
    else:
        n_val = int(round(val_fraction * len(names)))
        if len(names) >= 2 and val_fraction > 0:
            n_val = max(1, n_val)
        n_val = min(n_val, len(names) - 1)
        ranked = sorted(names, key=lambda n: hashlib.sha1(n.encode("utf-8")).hexdigest())
        val = sorted(ranked[:n_val])
    train = [n for n in names if n not in val]
    if not train:
        raise DataError("every image was held out for validation; leave at least one for training")
    return train, val


# ---------------------------------------------------------------------------------------------
# planes
# ---------------------------------------------------------------------------------------------
@dataclass
class RawPlane:
    """One 2-D plane of one image, raw intensities (float32)."""

    name: str
    where: dict[str, int]
    channel: int
    data: np.ndarray

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.where.items())
        return f"{self.name}[{extra}]" if extra else self.name


def read_planes(path: Path, *, pixel_size_um: float | None = None) -> tuple[list[RawPlane], MicroscopyImage]:
    """Read an image and cut it into 2-D planes (every T, Z and C).

    Parameters
    ----------
    path : Path
        The image file.
    pixel_size_um : float, optional
        Lateral pixel size in um used when the file does not state it (see
        :func:`engine.io.read_image`).

    Returns
    -------
    planes : list of RawPlane
        One float32 (Y, X) plane per T, Z and C, raw intensities (counts).
    image : MicroscopyImage
        The image as read (axes, pixel size, metadata).

    Raises
    ------
    DataError
        For an RGB colour image.
    engine.io.ImageReadError
        When the file cannot be read.
    """
    image = read_image(path, pixel_size_um=pixel_size_um)
    if image.metadata.get("rgb"):
        raise DataError(f"{path}: is an RGB colour image; training needs grey fluorescence images "
                        "(split the channels first, e.g. Fiji: Image > Color > Split Channels)")
    planes = []
    for where, plane in image.iter_planes():
        planes.append(RawPlane(image.name, where, int(where.get("c", 0)), np.asarray(plane, dtype=np.float32)))
    return planes, image


def _check_pair_shapes(name: str, lq: list[RawPlane], hq: list[RawPlane], scale: int) -> None:
    if len(lq) != len(hq):
        raise DataError(f"pair {name!r}: the LQ image has {len(lq)} planes and the HQ image {len(hq)}; "
                        "a pair needs the same Z planes, T frames and channels on both sides")
    for a, b in zip(lq, hq, strict=True):
        want = (a.data.shape[0] * scale, a.data.shape[1] * scale)
        if b.data.shape != want:
            how = "the same size" if scale == 1 else f"{scale} times the LQ size"
            raise DataError(
                f"pair {name!r}: LQ plane is {a.data.shape[0]}x{a.data.shape[1]} and HQ plane "
                f"{b.data.shape[0]}x{b.data.shape[1]}; the HQ must be {how} ({want[0]}x{want[1]}). "
                "Crop/register the pair first" + (" (or ask for registration)" if scale == 1 else "")
            )


def _register_pair(name: str, lq: list[RawPlane], hq: list[RawPlane], transform: str) -> tuple[list[RawPlane], list[RawPlane], str]:
    """Register the LQ image onto the HQ one (one transform for all planes), crop to the valid area."""
    from decongan.engine.optics.registration import apply_transform, register
    from decongan.engine.optics.registration.quality import largest_valid_rectangle

    lq_stack = np.stack([p.data for p in lq])
    hq_stack = np.stack([p.data for p in hq])
    try:
        result = register(moving=lq_stack.max(axis=0), fixed=hq_stack.max(axis=0), transform=transform)
    except ValueError as err:
        raise DataError(f"pair {name!r}: {err}") from err
    aligned, mask = apply_transform(lq_stack, result.transform)
    y0, y1, x0, x1 = largest_valid_rectangle(mask)
    new_lq = [RawPlane(p.name, p.where, p.channel, np.ascontiguousarray(a[y0:y1, x0:x1])) for p, a in zip(lq, aligned, strict=True)]
    new_hq = [RawPlane(p.name, p.where, p.channel, np.ascontiguousarray(p.data[y0:y1, x0:x1])) for p in hq]
    return new_lq, new_hq, f"{name}: {result.summary()}"


# ---------------------------------------------------------------------------------------------
# the prepared data set
# ---------------------------------------------------------------------------------------------
@dataclass
class Sample:
    """One normalised training or validation plane (float32, network units).

    ``lq`` is None for HQ-domain samples of unpaired data and for on-the-fly synthetic LQ;
    ``hq`` is None for LQ-domain samples of unpaired data.
    """

    label: str
    channel: int
    lq: np.ndarray | None
    hq: np.ndarray | None
    lq_norm: ChannelNorm | None = None
    hq_norm: ChannelNorm | None = None


@dataclass
class TrainingData:
    """Everything training needs from the folders."""

    paired: bool
    scale: int
    normalization: NormalizationConfig
    train: list[Sample]
    val: list[Sample]
    train_hq_domain: list[Sample] = field(default_factory=list)  # unpaired: the HQ domain
    val_hq_domain: list[Sample] = field(default_factory=list)
    train_names: list[str] = field(default_factory=list)
    val_names: list[str] = field(default_factory=list)
    pairing: PairingReport | None = None
    skipped: list[str] = field(default_factory=list)
    pixel_size_um: float | None = None
    hq_pixel_size_um: float | None = None
    n_channels: int = 1
    channel_names: list[str] = field(default_factory=list)
    registration: list[str] = field(default_factory=list)
    synthetic: DegradationSpec | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def on_the_fly_lq(self) -> bool:
        """Synthetic LQ patches are made per patch (Real-ESRGAN style) instead of per image."""
        return self.synthetic is not None and self.synthetic.method == "realesrgan"


def _pixel_size(images: list[MicroscopyImage], notes: list[str], role: str) -> float | None:
    sizes = sorted({round(float(im.pixel_size_um), 6) for im in images if im.pixel_size_um})
    if not sizes:
        return None
    if len(sizes) > 1 and sizes[-1] / sizes[0] > 1.01:
        notes.append(f"{role} images have different pixel sizes ({', '.join(f'{s:g}' for s in sizes)} um); "
                     f"the median is recorded")
    return float(np.median([im.pixel_size_um for im in images if im.pixel_size_um]))


def _seed_for(seed: int, label: str) -> np.random.Generator:
    digest = hashlib.sha1(f"{seed}:{label}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _fit(planes_lq: list[RawPlane], planes_hq: list[RawPlane], n_channels: int, *, mode: str,
         p_low: float, p_high: float) -> NormalizationConfig:
    by_c_lq = [[p.data for p in planes_lq if p.channel == c] for c in range(n_channels)]
    by_c_hq = [[p.data for p in planes_hq if p.channel == c] for c in range(n_channels)]
    by_c_lq = [x for x in by_c_lq if x] or [[p.data for p in planes_lq]]
    by_c_hq = [x for x in by_c_hq if x] or [[p.data for p in planes_hq]]
    return fit_normalization(by_c_lq, by_c_hq, mode=mode, p_low=p_low, p_high=p_high)  # type: ignore[arg-type]


def _normalised(plane: RawPlane, norm: NormalizationConfig, *, target: bool) -> tuple[np.ndarray, ChannelNorm]:
    params = norm.target_norm(plane.data, channel=plane.channel) if target else norm.input_norm(plane.data, channel=plane.channel)
    return params.normalize(plane.data), params


def prepare_training_data(
    *,
    lq_dir: Path | None,
    hq_dir: Path | None,
    paired: bool,
    scale: int = 1,
    patch_size: int,
    seed: int = 0,
    val_names: Sequence[str] | None = None,
    val_fraction: float = 0.15,
    max_val_planes: int = 16,
    pixel_size_um: float | None = None,
    synthetic: DegradationSpec | None = None,
    normalization_mode: str = "dataset",
    p_low: float = 1.0,
    p_high: float = 99.8,
    normalization: NormalizationConfig | None = None,
    register: str | None = None,
) -> TrainingData:
    """Read, split, check and normalise a training set (see the module doc).

    Parameters
    ----------
    lq_dir, hq_dir : Path or None
        The folders (``lq_dir`` unused with ``synthetic``).
    paired : bool
        Paired (match by name) or unpaired (two domains) data.
    scale : int
        HQ pixels per LQ pixel.
    patch_size : int
        LQ patch side; planes smaller than this are skipped from training (reported).
    seed : int
        Seeds the synthetic degradations (per image, by name).
    val_names, val_fraction, max_val_planes
        Validation split (module doc) and its cap on planes.
    pixel_size_um : float, optional
        LQ pixel size in micrometres, overriding the files.
    synthetic : DegradationSpec, optional
        Make LQ from HQ.
    normalization_mode, p_low, p_high
        Normalisation policy when ``normalization`` is not given.
    normalization : NormalizationConfig, optional
        Use these parameters instead of fitting them (resume).
    register : str, optional
        Register LQ onto HQ per pair (paired, scale 1).

    Raises
    ------
    DataError
        Any unusable folder or file (the message names it).
    """
    notes: list[str] = []
    pairing: PairingReport | None = None
    registration: list[str] = []
    if register and (not paired or scale != 1 or synthetic is not None):
        raise DataError("registration works for paired LQ/HQ folders at scale 1 only")

    # -- which images -------------------------------------------------------------------------
    if synthetic is not None:
        if hq_dir is None:
            raise DataError("synthetic LQ needs the HQ folder")
        hq_files = _stems(Path(hq_dir), "HQ")
        names = sorted(hq_files)
        lq_files: dict[str, Path] = {}
    elif paired:
        if lq_dir is None or hq_dir is None:
            raise DataError("paired training needs both an LQ and an HQ folder")
        pairing = match_pairs(lq_dir, hq_dir)
        lq_files = {n: a for n, a, _ in pairing.matched}
        hq_files = {n: b for n, _, b in pairing.matched}
        names = sorted(lq_files)
    else:
        if lq_dir is None or hq_dir is None:
            raise DataError("unpaired training needs an LQ folder and an HQ folder")
        lq_files = _stems(Path(lq_dir), "LQ")
        hq_files = _stems(Path(hq_dir), "HQ")
        names = sorted(lq_files)
    train_names, val_names_out = split_validation(names, val_names=val_names, val_fraction=val_fraction)

    # -- read ---------------------------------------------------------------------------------
    lq_images: list[MicroscopyImage] = []
    hq_images: list[MicroscopyImage] = []
    raw_lq: dict[str, list[RawPlane]] = {}
    raw_hq: dict[str, list[RawPlane]] = {}
    hq_pixel_override = pixel_size_um / scale if pixel_size_um else None
    if paired or synthetic is not None:
        for name in names:
            hq_planes, hq_img = read_planes(hq_files[name], pixel_size_um=hq_pixel_override)
            hq_images.append(hq_img)
            if synthetic is not None:
                px_nm = (hq_img.pixel_size_um or 0) * 1000.0
                params = dict(synthetic.params)
                if synthetic.method == "born_wolf" and "pixel_nm" not in params:
                    if not px_nm:
                        raise DataError(f"{hq_files[name]}: its pixel size is unknown; the Born & Wolf degradation "
                                        "needs it (give the pixel size in nm)")
                    params["pixel_nm"] = px_nm
                spec = DegradationSpec(method=synthetic.method, params=params)
                if synthetic.method == "realesrgan" and name in train_names:
                    lq_planes = []  # made per patch
                else:
                    lq_planes = [RawPlane(p.name, p.where, p.channel,
                                          degrade(p.data, spec, scale=scale, rng=_seed_for(seed, p.label)))
                                 for p in hq_planes]
            else:
                lq_planes, lq_img = read_planes(lq_files[name], pixel_size_um=pixel_size_um)
                lq_images.append(lq_img)
                if register:
                    if len(lq_planes) != len(hq_planes):
                        _check_pair_shapes(name, lq_planes, hq_planes, scale)  # raises: plane counts differ
                    lq_planes, hq_planes, info = _register_pair(name, lq_planes, hq_planes, register)
                    registration.append(info)
                _check_pair_shapes(name, lq_planes, hq_planes, scale)
            raw_lq[name], raw_hq[name] = lq_planes, hq_planes
    else:
        for name in names:
            raw_lq[name], img = read_planes(lq_files[name], pixel_size_um=pixel_size_um)
            lq_images.append(img)
        for name in sorted(hq_files):
            raw_hq[name], img = read_planes(hq_files[name], pixel_size_um=hq_pixel_override)
            hq_images.append(img)

    all_planes = [p for planes in list(raw_lq.values()) + list(raw_hq.values()) for p in planes]
    n_channels = max([p.channel + 1 for p in all_planes] + [1])
    channel_names: list[str] = []
    for img in lq_images + hq_images:
        labels = img.metadata.get("channel_names")
        if labels and len(labels) == n_channels:
            channel_names = [str(x) for x in labels]
            break

    # -- pixel sizes ----------------------------------------------------------------------------
    if pixel_size_um:
        lq_px: float | None = float(pixel_size_um)
    else:
        lq_px = _pixel_size(lq_images, notes, "LQ")
        hq_from_files = _pixel_size(hq_images, notes, "HQ")
        if lq_px is None and hq_from_files is not None:
            lq_px = hq_from_files * scale
    hq_px = lq_px / scale if lq_px else None

    # -- normalisation (training images only) -------------------------------------------------
    train_lq = [p for n in train_names for p in raw_lq.get(n, [])]
    if paired or synthetic is not None:
        train_hq = [p for n in train_names for p in raw_hq[n]]
    else:
        train_hq = [p for planes in raw_hq.values() for p in planes]
    if normalization is None:
        if synthetic is not None and synthetic.method == "realesrgan":
            normalization = _fit(train_hq, train_hq, n_channels, mode=normalization_mode, p_low=p_low, p_high=p_high)
            notes.append("on-the-fly synthetic LQ: the LQ domain shares the HQ normalisation (same intensity units)")
        else:
            normalization = _fit(train_lq, train_hq, n_channels, mode=normalization_mode, p_low=p_low, p_high=p_high)

    # -- samples --------------------------------------------------------------------------------
    skipped: list[str] = []
    train: list[Sample] = []
    train_hq_domain: list[Sample] = []

    def fits(shape: tuple[int, ...], side: int) -> bool:
        return min(shape) >= side

    if paired or synthetic is not None:
        for name in train_names:
            hq_planes = raw_hq[name]
            lq_planes = raw_lq[name] or [None] * len(hq_planes)  # type: ignore[list-item]
            for lq_p, hq_p in zip(lq_planes, hq_planes, strict=True):
                if not fits(hq_p.data.shape, patch_size * scale):
                    skipped.append(f"{hq_p.label} ({hq_p.data.shape[0]}x{hq_p.data.shape[1]} < patch)")
                    continue
                hq_n, hq_params = _normalised(hq_p, normalization, target=True)
                if lq_p is None:  # on-the-fly synthetic: LQ made from the normalised HQ patch
                    train.append(Sample(hq_p.label, hq_p.channel, None, hq_n, hq_params, hq_params))
                else:
                    lq_n, lq_params = _normalised(lq_p, normalization, target=False)
                    train.append(Sample(hq_p.label, hq_p.channel, lq_n, hq_n, lq_params, hq_params))
    else:
        for name in train_names:
            for p in raw_lq[name]:
                if not fits(p.data.shape, patch_size):
                    skipped.append(f"LQ {p.label} ({p.data.shape[0]}x{p.data.shape[1]} < patch)")
                    continue
                lq_n, params = _normalised(p, normalization, target=False)
                train.append(Sample(p.label, p.channel, lq_n, None, params, None))
        for name in sorted(raw_hq):
            for p in raw_hq[name]:
                if not fits(p.data.shape, patch_size * scale):
                    skipped.append(f"HQ {p.label} ({p.data.shape[0]}x{p.data.shape[1]} < patch)")
                    continue
                hq_n, params = _normalised(p, normalization, target=True)
                train_hq_domain.append(Sample(p.label, p.channel, None, hq_n, None, params))
        if not train_hq_domain:
            raise DataError(f"no HQ plane in {hq_dir} is at least {patch_size * scale} px on its short side; "
                            "use a smaller patch size")
    if not train:
        raise DataError(f"no training plane is large enough for patches of {patch_size} px "
                        f"({', '.join(skipped[:5])}); use a smaller patch size")

    # -- validation samples (whole planes, capped) --------------------------------------------
    val: list[Sample] = []
    for name in val_names_out:
        lq_planes = raw_lq[name]
        hq_planes = raw_hq.get(name) if (paired or synthetic is not None) else None
        for i, lq_p in enumerate(lq_planes):
            lq_n, lq_params = _normalised(lq_p, normalization, target=False)
            if hq_planes is not None:
                hq_n, hq_params = _normalised(hq_planes[i], normalization, target=True)
                val.append(Sample(lq_p.label, lq_p.channel, lq_n, hq_n, lq_params, hq_params))
            else:
                val.append(Sample(lq_p.label, lq_p.channel, lq_n, None, lq_params, None))
    if len(val) > max_val_planes:
        keep = np.unique(np.linspace(0, len(val) - 1, max_val_planes).round().astype(int))
        notes.append(f"validation uses {len(keep)} of {len(val)} held-out planes (evenly chosen)")
        val = [val[i] for i in keep]

    return TrainingData(
        paired=paired, scale=scale, normalization=normalization, train=train, val=val,
        train_hq_domain=train_hq_domain, train_names=train_names, val_names=val_names_out,
        pairing=pairing, skipped=skipped, pixel_size_um=lq_px, hq_pixel_size_um=hq_px,
        n_channels=n_channels, channel_names=channel_names, registration=registration,
        synthetic=synthetic, notes=notes,
    )


__all__ = [
    "DataError",
    "PairingReport",
    "RawPlane",
    "Sample",
    "TrainingData",
    "match_pairs",
    "prepare_training_data",
    "read_planes",
    "split_validation",
]
