"""The ImageJ plugins DeconGAN drives, how to recognise them, and how to install them.

Two kinds of check: :func:`scan_plugins` looks into the jar files of a Fiji.app / ImageJ folder
without starting Java (used by ``decongan fiji doctor`` before any JVM starts); the worker then
confirms by loading the classes through ImageJ's plugin class loader.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PluginInfo:
    """One plugin: its marker class (present iff the plugin is installed), command and install hint."""

    key: str
    name: str
    marker_class: str
    command: str
    install: str
    version_source: str = ""  # Java expression the worker evaluates for the version (informational)


PLUGINS: dict[str, PluginInfo] = {
    info.key: info
    for info in (
        PluginInfo(
            "psf_generator", "PSF Generator", "PSFGenerator", "PSF Generator",
            "download PSF_Generator.jar from http://bigwww.epfl.ch/algorithms/psfgenerator/ and copy it into "
            "<Fiji.app or ImageJ>/plugins/, then restart (DeconGAN uses its config-file API, Born & Wolf model)",
            "psfgenerator.About.version()"),
        PluginInfo(
            "deconvolutionlab2", "DeconvolutionLab2", "DeconvolutionLab2_Run", "DeconvolutionLab2 Run",
            "in Fiji: Help > Update... > Manage update sites > enable 'DeconvolutionLab2', apply and restart; "
            "in plain ImageJ: copy DeconvolutionLab_2.jar from http://bigwww.epfl.ch/deconvolution/deconvolutionlab2/ "
            "into plugins/ (with JTransforms in plugins/jars/ for its default FFT)",
            "deconvolutionlab.Constants.version"),
        PluginInfo(
            "turboreg", "TurboReg", "TurboReg_", "TurboReg ",
            "in Fiji: Help > Update... > Manage update sites > enable 'BIG-EPFL', apply and restart; "
            "in plain ImageJ: copy TurboReg_.jar from http://bigwww.epfl.ch/thevenaz/turboreg/ into plugins/"),
        PluginInfo(
            "stackreg", "StackReg", "StackReg_", "StackReg",
            "in Fiji: enable the 'BIG-EPFL' update site (with TurboReg); in plain ImageJ: copy StackReg_.jar "
            "from http://bigwww.epfl.ch/thevenaz/stackreg/ and TurboReg_.jar into plugins/"),
        PluginInfo(
            "sift", "Linear Stack Alignment with SIFT", "SIFT_Align", "Linear Stack Alignment with SIFT",
            "part of every Fiji (mpicbg_ plugin; Help > Update... restores it); in plain ImageJ copy mpicbg_.jar into "
            "plugins/ and mpicbg.jar into plugins/jars/ (it needs a display there: install Xvfb)"),
    )
}


def plugin(key: str) -> PluginInfo:
    """The :class:`PluginInfo` for ``key`` (``psf_generator``, ``deconvolutionlab2``, ``turboreg``, ``stackreg``, ``sift``)."""
    try:
        return PLUGINS[key]
    except KeyError:
        raise KeyError(f"unknown plugin {key!r}; known: {sorted(PLUGINS)}") from None


def _jar_files(folders: Iterable[Path]) -> list[Path]:
    jars: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            jars.extend(sorted(p for p in folder.rglob("*.jar") if p.is_file()))
    return jars


def scan_plugins(folders: Iterable[str | Path]) -> dict[str, Path | None]:
    """Which plugins' marker classes are in the jars (or loose ``.class`` files) under ``folders``.

    Returns
    -------
    dict
        plugin key -> the jar (or class file) that holds it, or None when absent. Unreadable jars
        are skipped.
    """
    folder_paths = [Path(f) for f in folders]
    wanted = {f"{info.marker_class}.class": key for key, info in PLUGINS.items()}
    found: dict[str, Path | None] = dict.fromkeys(PLUGINS)
    for folder in folder_paths:
        if folder.is_dir():
            for name, key in wanted.items():
                loose = folder / name
                if found[key] is None and loose.is_file():
                    found[key] = loose
    for jar in _jar_files(folder_paths):
        try:
            with zipfile.ZipFile(jar) as archive:
                names = set(archive.namelist())
        except (OSError, zipfile.BadZipFile):
            continue
        for name, key in wanted.items():
            if found[key] is None and name in names:
                found[key] = jar
        if all(found.values()):
            break
    return found


def parse_plugins_config(text: str) -> list[tuple[str, str, str]]:
    """Entries of an ImageJ ``plugins.config``: ``(menu path, command, class with optional ("arg"))``.

    Format (ImageJ 1.x): ``Menu>Submenu, "Command label", ClassName("argument")``; ``#`` starts a
    comment. The command is the text between the first two double quotes, the class what follows.
    """
    entries = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        first = line.find('"')
        second = line.find('"', first + 1) if first >= 0 else -1
        comma = line.find(",")
        if first < 0 or second < 0 or comma < 0 or comma > first:
            continue
        menu = line[:comma].strip()
        command = line[first + 1:second]
        target = line[second + 1:].strip().lstrip(",").strip()
        if command and target:
            entries.append((menu, command, target))
    return entries
