"""Published pretrained weights the seeds need: fetched once, checked against their published digest,
kept as safetensors in the user's cache folder and found there automatically afterwards.

The registry (:data:`PUBLISHED_WEIGHTS`) names each file, where it is published, and the SHA-256 that
was published for it. A file is hashed while it downloads and refused *before* it is unpickled when the
digest differs; only then is it read with ``torch.load(weights_only=True)`` (no pickled code runs) and
written as ``<name>.safetensors`` (the state dict the training code uses: ``params_ema`` of a BasicSR
checkpoint, the bare state dict of a torchvision one), with the source URL and digest in its metadata.

Digests and where they come from (``PublishedWeights.digest_source`` says the same per entry):

* ``vgg19``: torchvision publishes the first 8 hex digits of the file's SHA-256 in its name
  (``vgg19-dcbb9e9d.pth``; ``torch.hub`` checks exactly that prefix). No full digest is published, so
  the check is the prefix (32 bits), labelled as such.
* ``realesrgan-x2plus`` / ``realesrgan-x4plus``: the Real-ESRGAN release pages list the files but no
  checksum. The full SHA-256 and size recorded here are those several independent projects pin for
  the same release asset; they are marked "to verify" until checked against a download.

Cache folder: ``$DECONGAN_CACHE`` if set, else ``$XDG_CACHE_HOME/decongan``, else
``~/.cache/decongan``; weights live in its ``weights`` sub-folder.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import urllib.request
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from decongan.engine.errors import DeconganError
from decongan.engine.outputs import atomic_path
from decongan.engine.progress import Progress, drain

__all__ = [
    "CACHE_ENV_VAR",
    "PUBLISHED_WEIGHTS",
    "CachedWeights",
    "PublishedWeights",
    "WeightsFetchError",
    "cache_dir",
    "cached_weights_path",
    "fetch_weights",
    "find_cached_weights",
    "iter_fetch_weights",
    "list_weights",
]

CACHE_ENV_VAR = "DECONGAN_CACHE"
_CHUNK = 1 << 20


class WeightsFetchError(DeconganError, ValueError):
    """A weights file could not be fetched, failed its checksum or holds no state dict."""


@dataclass(frozen=True)
class PublishedWeights:
    """One published weights file.

    Attributes
    ----------
    name : str
        Registry name (``"vgg19"``); the cached file is ``<name>.safetensors``.
    file_name : str
        The file's published name (``"vgg19-dcbb9e9d.pth"``).
    url : str
        Where it is published.
    sha256 : str
        Its SHA-256 in lower-case hex, or a published prefix of it (see ``digest_source``).
    digest_source : str
        Where the digest comes from and how strong the check is.
    size_bytes : int or None
        Published size in bytes, when known.
    used_for : str
        What DeconGAN uses it for.
    licence : str
        The weights' licence.
    """

    name: str
    file_name: str
    url: str
    sha256: str
    digest_source: str
    size_bytes: int | None
    used_for: str
    licence: str


PUBLISHED_WEIGHTS: dict[str, PublishedWeights] = {
    entry.name: entry
    for entry in (
        PublishedWeights(
            name="vgg19",
            file_name="vgg19-dcbb9e9d.pth",
            url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            sha256="dcbb9e9d",
            digest_source="prefix of the SHA-256 published in torchvision's file name (the check torch.hub "
                          "makes; 32 bits; no full digest is published)",
            size_bytes=None,
            used_for="perceptual loss of presets s3, s4 and s5 (VGG19 ImageNet features)",
            licence="BSD-3-Clause (torchvision)",
        ),
        PublishedWeights(
            name="realesrgan-x2plus",
            file_name="RealESRGAN_x2plus.pth",
            url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth",
            sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
            digest_source="no checksum on the release page; SHA-256 pinned for this asset by independent "
                          "projects (to verify)",
            size_bytes=67_061_725,
            used_for="starting point of preset s5 at scale 2 (pretrained generator)",
            licence="BSD-3-Clause (Real-ESRGAN)",
        ),
        PublishedWeights(
            name="realesrgan-x4plus",
            file_name="RealESRGAN_x4plus.pth",
            url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
            sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
            digest_source="no checksum on the release page; SHA-256 pinned for this asset by independent "
                          "projects (to verify)",
            size_bytes=67_040_989,
            used_for="starting point of preset s5 at scale 4 (pretrained generator)",
            licence="BSD-3-Clause (Real-ESRGAN)",
        ),
    )
}


@dataclass(frozen=True)
class CachedWeights:
    """A registry entry and its state in the cache.

    Attributes
    ----------
    entry : PublishedWeights
        The registry entry.
    path : Path
        Where its safetensors copy lives (or would live).
    present : bool
        Whether that file exists.
    size_bytes : int
        Its size in bytes (0 when absent).
    """

    entry: PublishedWeights
    path: Path
    present: bool
    size_bytes: int


def cache_dir() -> Path:
    """The user's DeconGAN cache folder (not created here).

    Parameters
    ----------
    None

    Returns
    -------
    Path
        ``$DECONGAN_CACHE``, else ``$XDG_CACHE_HOME/decongan``, else ``~/.cache/decongan``.
    """
    override = os.environ.get(CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "decongan"


def _entry(name: str | PublishedWeights) -> PublishedWeights:
    if isinstance(name, PublishedWeights):
        return name
    try:
        return PUBLISHED_WEIGHTS[name]
    except KeyError:
        raise WeightsFetchError(
            f"unknown weights {name!r}; known: {', '.join(sorted(PUBLISHED_WEIGHTS))}", value=name
        ) from None


def cached_weights_path(name: str | PublishedWeights) -> Path:
    """Where the safetensors copy of ``name`` lives in the cache (whether or not it exists).

    Parameters
    ----------
    name : str or PublishedWeights
        Registry name (``"vgg19"``) or an entry.

    Returns
    -------
    Path
        ``cache_dir()/weights/<name>.safetensors``.
    """
    return cache_dir() / "weights" / f"{_entry(name).name}.safetensors"


def find_cached_weights(name: str | PublishedWeights) -> Path | None:
    """The cached safetensors copy of ``name``, or None when it has not been fetched.

    Parameters
    ----------
    name : str or PublishedWeights
        Registry name or entry.

    Returns
    -------
    Path or None
        The existing file.
    """
    path = cached_weights_path(name)
    return path if path.is_file() else None


def list_weights() -> list[CachedWeights]:
    """Every registry entry with its cache state, in registry order.

    Parameters
    ----------
    None

    Returns
    -------
    list of CachedWeights
        One per entry of :data:`PUBLISHED_WEIGHTS`.
    """
    rows = []
    for entry in PUBLISHED_WEIGHTS.values():
        path = cached_weights_path(entry)
        present = path.is_file()
        rows.append(CachedWeights(entry, path, present, path.stat().st_size if present else 0))
    return rows


def _source_url(source: str | os.PathLike | None, entry: PublishedWeights) -> str:
    if source is None:
        return entry.url
    text = os.fspath(source)
    if urllib.parse.urlparse(text).scheme in ("http", "https", "file"):
        return text
    path = Path(text).expanduser()
    if not path.is_file():
        raise WeightsFetchError(f"the copy of {entry.file_name} to use, {text!r}, does not exist", path=path)
    return path.resolve().as_uri()


def _download(url: str, target: Path, entry: PublishedWeights) -> Generator[Progress, None, str]:
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:  # noqa: S310
            total = response.headers.get("Content-Length")
            total_mb = int(total) // _CHUNK + 1 if total and total.isdigit() else None
            step = 0
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                step += 1
                yield Progress(step, total_mb, f"downloading {entry.file_name}: {step} MiB")
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise WeightsFetchError(f"cannot download {entry.file_name} from {url}: {exc}", value=url) from exc
    return digest.hexdigest()


def iter_fetch_weights(
    name: str | PublishedWeights,
    *,
    source: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Generator[Progress, None, Path]:
    """Download a published weights file, check its SHA-256, and cache it as safetensors.

    Nothing is unpickled and nothing is left in the cache when the digest differs.

    Parameters
    ----------
    name : str or PublishedWeights
        Registry name (``"vgg19"``, ``"realesrgan-x2plus"``, ...) or an entry.
    source : str or path, optional
        Where to read the file instead of its published URL: an ``http(s)://`` or ``file://`` URL or a
        local path (a copy fetched on another machine). The published digest is checked all the same.
    overwrite : bool
        Fetch again when a cached copy exists (otherwise it is returned as is).

    Yields
    ------
    Progress
        One event per MiB downloaded.

    Returns
    -------
    Path
        The cached ``<name>.safetensors``.

    Raises
    ------
    WeightsFetchError
        Unknown name, download failure, digest mismatch (the message gives both digests), or a file
        that holds no tensors.
    """
    entry = _entry(name)
    dest = cached_weights_path(entry)
    if dest.is_file() and not overwrite:
        return dest
    url = _source_url(source, entry)
    folder = dest.parent
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{entry.file_name}.partial"
    try:
        actual = yield from _download(url, partial, entry)
        if not actual.startswith(entry.sha256.lower()):
            what = "prefix" if len(entry.sha256) < 64 else "SHA-256"
            raise WeightsFetchError(
                f"{entry.file_name} from {url} has SHA-256 {actual}, but its published {what} is "
                f"{entry.sha256} ({entry.digest_source}); the file was deleted unread. The download may be "
                "corrupt or not the published file",
                value=actual,
            )
        yield Progress(1, 1, f"{entry.file_name}: SHA-256 matches; converting to safetensors")
        state = _read_state(partial, entry)
        from safetensors.torch import save_file

        metadata = {"name": entry.name, "file_name": entry.file_name, "source_url": url, "sha256": actual,
                    "digest_source": entry.digest_source}
        with atomic_path(dest) as tmp:
            save_file(state, str(tmp), metadata=metadata)
    finally:
        partial.unlink(missing_ok=True)
        for path in created:  # folders this call made and left empty (a refused download)
            try:
                path.rmdir()
            except OSError:
                break
    return dest


def _read_state(path: Path, entry: PublishedWeights):
    from decongan.engine.learn.checkpoint.published import CheckpointImportError, read_checkpoint_state

    try:
        state, _ = read_checkpoint_state(path)
    except CheckpointImportError as exc:
        raise WeightsFetchError(f"{entry.file_name} matches its digest but {exc}") from exc
    return {key: tensor.detach().contiguous().clone() for key, tensor in state.items()}


def fetch_weights(
    name: str | PublishedWeights,
    *,
    source: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """:func:`iter_fetch_weights` without progress events.

    Parameters
    ----------
    name : str or PublishedWeights
        Registry name or entry.
    source : str or path, optional
        URL or local path to read instead of the published URL (digest still checked).
    overwrite : bool
        Fetch again when a cached copy exists.

    Returns
    -------
    Path
        The cached ``<name>.safetensors``.
    """
    return drain(iter_fetch_weights(name, source=source, overwrite=overwrite))
