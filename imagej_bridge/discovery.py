"""Find Java and the Fiji/ImageJ backends, best first, each with the reason it can or cannot be used.

Order (the first usable one is active):

1. **fiji** - a local Fiji.app (ImageJ2 + legacy ImageJ 1.x) from ``fiji_dir`` (``--fiji DIR``), the
   settings, or ``$DECONGAN_FIJI``; run through a pyimagej gateway.
2. **endpoint** - a pyimagej Maven endpoint (``$DECONGAN_FIJI_ENDPOINT``, default ``sc.fiji:fiji``;
   ``none`` disables it). The first start downloads Fiji's jars (hundreds of MB, minutes) into
   ``~/.jgo``; usable when that cache exists or the Maven repositories answer within a few seconds.
3. **imagej1** - plain ImageJ 1.x: a folder with ``ij.jar`` and ``plugins/`` (from the same
   places as 1., when the folder is not a Fiji.app), else ``$DECONGAN_IJ_JAR`` or Debian's
   ``/usr/share/java/ij.jar`` (no plugins folder). Driven through jpype.
4. none - callers use the engine and label results "engine (Fiji unavailable)".

Nothing here starts Java or downloads anything; a network probe (endpoint only) is a single
HTTP HEAD per repository with a short timeout.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import platform
import re
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from decongan.imagej_bridge.protocol import BackendKind

FIJI_ENV = "DECONGAN_FIJI"
ENDPOINT_ENV = "DECONGAN_FIJI_ENDPOINT"
IJ_JAR_ENV = "DECONGAN_IJ_JAR"
DEFAULT_ENDPOINT = "sc.fiji:fiji"
SYSTEM_IJ_JARS = ("/usr/share/java/ij.jar", "/usr/share/imagej/ij.jar")
SYSTEM_JDKS = ("/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/java-17-openjdk-arm64",
               "/usr/lib/jvm/java-21-openjdk-amd64", "/usr/lib/jvm/java-21-openjdk-arm64",
               "/usr/lib/jvm/default-java")
MAVEN_REPOSITORIES = ("https://repo.maven.apache.org/maven2/", "https://maven.scijava.org/content/groups/public/")
MIN_JAVA = 11


# -- Java ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JavaInstallation:
    """A Java runtime: ``home`` (JAVA_HOME), its ``java`` executable, version and where it was found."""

    home: Path
    java: Path
    version: str
    source: str

    @property
    def major(self) -> int:
        return java_major(self.version)


def java_major(version: str) -> int:
    """Major version from "17.0.15", "1.8.0_392" or "21"; 0 if unreadable."""
    match = re.match(r"^(\d+)(?:\.(\d+))?", version.strip())
    if not match:
        return 0
    first = int(match.group(1))
    return int(match.group(2) or 0) if first == 1 else first


def _java_executable(home: Path) -> Path | None:
    for rel in ("bin/java", "bin/java.exe", "jre/bin/java", "Contents/Home/bin/java"):
        candidate = home / rel
        if candidate.is_file():
            return candidate
    return None


def _release_version(home: Path) -> str:
    release = home / "release"
    if not release.is_file():
        release = home / "Contents" / "Home" / "release"
    try:
        text = release.read_text(errors="replace")
    except OSError:
        return ""
    match = re.search(r'^JAVA_VERSION="([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else ""


def _java_home_of(executable: Path) -> Path:
    home = executable.resolve().parent.parent
    return home.parent if home.name == "jre" and (home.parent / "bin").is_dir() else home


def java_candidates(fiji_dir: str | Path | None = None) -> list[tuple[Path, str]]:
    """Possible Java homes, best first, each with where it came from."""
    candidates: list[tuple[Path, str]] = []
    env = os.environ.get("JAVA_HOME")
    if env:
        candidates.append((Path(env), "JAVA_HOME"))
    if fiji_dir:
        root = Path(fiji_dir)
        for pattern in ("java/*/*", "java/*/*/Contents/Home", "java/*"):
            for hit in sorted(glob.glob(str(root / pattern)), reverse=True):
                candidates.append((Path(hit), f"bundled with {root.name}"))
    for home in SYSTEM_JDKS:
        candidates.append((Path(home), "system JDK"))
    for hit in sorted(glob.glob("/usr/lib/jvm/*"), reverse=True):
        candidates.append((Path(hit), "system JDK"))
    if sys.platform == "darwin":
        for hit in sorted(glob.glob("/Library/Java/JavaVirtualMachines/*/Contents/Home"), reverse=True):
            candidates.append((Path(hit), "system JDK"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append((_java_home_of(Path(on_path)), "java on PATH"))
    return candidates


def find_java(fiji_dir: str | Path | None = None) -> tuple[JavaInstallation | None, str]:
    """The first usable Java (>= 11) and a one-line reason; never downloads anything."""
    tried: list[str] = []
    seen: set[Path] = set()
    for home, source in java_candidates(fiji_dir):
        try:
            key = home.resolve()
        except OSError:
            continue
        if key in seen:
            continue
        seen.add(key)
        executable = _java_executable(home)
        if executable is None:
            if source == "JAVA_HOME":
                tried.append(f"JAVA_HOME={home} has no bin/java")
            continue
        version = _release_version(home) or "unknown"
        major = java_major(version) if version != "unknown" else MIN_JAVA
        if major and major < MIN_JAVA:
            tried.append(f"{home} is Java {version} (< {MIN_JAVA})")
            continue
        java = JavaInstallation(home, executable, version, source)
        return java, f"Java {version} at {home} ({source})"
    detail = "; ".join(tried) if tried else "no JAVA_HOME, no JDK under /usr/lib/jvm, no java on PATH"
    return None, (f"no Java >= {MIN_JAVA} found ({detail}). Install a JDK (e.g. apt-get install "
                  "openjdk-17-jdk-headless) or set JAVA_HOME; DeconGAN never downloads Java.")


# -- folders ---------------------------------------------------------------------------------------

FolderKind = Literal["fiji", "imagej1"]


def _first(paths: Iterable[Path]) -> Path | None:
    for p in paths:
        if p.is_file():
            return p
    return None


def classify_folder(path: str | Path) -> tuple[FolderKind | None, str, Path | None]:
    """What a "Fiji folder" is: ``("fiji", reason, None)``, ``("imagej1", reason, ij_jar)`` or ``(None, reason, None)``.

    A Fiji.app (or any ImageJ2 installation) has ``jars/`` with ``imagej-legacy`` or ImageJ2's
    ``imagej-*.jar`` next to ``ij-*.jar``; a plain ImageJ 1.x folder has ``ij.jar`` at its top
    (macOS: ``ImageJ.app/Contents/Java/ij.jar``) and usually ``plugins/``.
    """
    root = Path(path).expanduser()
    if not root.exists():
        return None, f"{root} does not exist", None
    if not root.is_dir():
        return None, f"{root} is not a folder", None
    jars = root / "jars"
    if jars.is_dir():
        legacy = sorted(jars.glob("imagej-legacy*.jar"))
        ij1 = sorted(jars.glob("ij-*.jar")) + sorted(jars.glob("ij.jar"))
        imagej2 = sorted(p for p in jars.glob("imagej-*.jar") if not p.name.startswith("imagej-legacy"))
        if legacy or (ij1 and imagej2):
            return "fiji", f"Fiji/ImageJ2 installation ({len(list(jars.glob('*.jar')))} jars in jars/)", None
    jar = _first([root / "ij.jar", root / "Contents" / "Java" / "ij.jar", root / "ImageJ.app" / "Contents" / "Java" / "ij.jar"])
    if jar is not None:
        plugins = jar.parent / "plugins" if (jar.parent / "plugins").is_dir() else root / "plugins"
        extra = f", plugins in {plugins}" if plugins.is_dir() else ", no plugins/ folder"
        return "imagej1", f"ImageJ 1.x folder ({jar.name}{extra})", jar
    if jars.is_dir():
        return None, f"{root} has jars/ but no ImageJ2 (imagej-legacy / imagej-*.jar) and no ij.jar", None
    return None, f"{root} is neither a Fiji.app (jars/ with ImageJ2) nor an ImageJ 1.x folder (ij.jar)", None


def ij1_plugins_folder(ij_jar: Path) -> Path | None:
    """The ``plugins/`` folder next to an ImageJ 1.x jar, if any (ImageJ's own rule)."""
    folder = ij_jar.parent / "plugins"
    return folder if folder.is_dir() else None


# -- backends --------------------------------------------------------------------------------------

@dataclass
class Backend:
    """One backend candidate and why it can or cannot be used.

    ``kind`` as :class:`imagej_bridge.protocol.WorkerConfig`; ``location`` the Fiji.app folder,
    the endpoint or ij.jar; ``ij_folder`` the ImageJ folder whose ``plugins/`` is used (IJ1).
    """

    kind: BackendKind
    location: str
    usable: bool
    reason: str
    source: str = ""
    ij_folder: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Short provenance label, e.g. ``fiji:/opt/Fiji.app`` or ``imagej1:/usr/share/java/ij.jar``."""
        return f"{self.kind}:{self.location}"

    @property
    def plugin_folders(self) -> list[Path]:
        """Folders whose jars may hold plugins."""
        if self.kind == "fiji":
            root = Path(self.location)
            return [root / "plugins", root / "jars"]
        if self.kind == "imagej1" and self.ij_folder:
            return [Path(self.ij_folder) / "plugins"]
        return []


@dataclass
class Discovery:
    """Result of :func:`discover`: all candidates in order, the active one, and Java."""

    candidates: list[Backend]
    java: JavaInstallation | None
    java_reason: str

    @property
    def active(self) -> Backend | None:
        return next((b for b in self.candidates if b.usable), None)


def module_available(name: str) -> bool:
    """Whether a Python module can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def jgo_cached_endpoint(endpoint: str, cache_dir: Path | None = None) -> Path | None:
    """A previously resolved jgo environment for ``endpoint`` holding jars, or None.

    jgo 2+ keeps environments in ``~/.jgo/envs/<group path>/<artifact>/<hash>/``; jgo 1 used
    ``~/.jgo/<group>/<artifact>/``. Both are looked at.
    """
    cache = cache_dir or Path.home() / ".jgo"
    parts = endpoint.split("+")[0].split(":")
    if len(parts) < 2 or not cache.is_dir():
        return None
    group, artifact = parts[0], parts[1]
    for base in (cache / "envs" / Path(*group.split(".")) / artifact, cache / group / artifact):
        if base.is_dir() and next(base.rglob("*.jar"), None) is not None:
            return base
    return None


def probe_maven(timeout: float = 3.0, repositories: Iterable[str] = MAVEN_REPOSITORIES) -> tuple[bool, str]:
    """Whether the Maven repositories answer (one HEAD request each, proxies from the environment)."""
    failures = []
    for url in repositories:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "decongan-fiji-doctor"})
        try:
            with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 (fixed https URLs)
                pass
        except urllib.error.HTTPError:
            continue  # the server answered (403/404 on a folder is fine): the network works
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            failures.append(f"{url} unreachable ({reason})")
    if failures:
        return False, "; ".join(failures)
    return True, "Maven repositories reachable"


def settings_fiji_dir() -> str | None:
    """The Fiji location saved in the GUI settings, read without Qt (None when unset or unreadable)."""
    path = os.environ.get("DECONGAN_SETTINGS")
    if not path or not os.path.isfile(path):
        return None
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].lower()
        elif "=" in stripped:
            key, value = (s.strip() for s in stripped.split("=", 1))
            if (section == "fiji" and key == "location") or key == "fiji/location" or key == "fiji%2Flocation":
                return value.strip('"') or None
    return None


def discover(fiji_dir: str | os.PathLike[str] | None = None, *, settings_dir: str | None = None,
             endpoint: str | None = None, ij_jar: str | os.PathLike[str] | None = None,
             probe_network: bool = True, network_timeout: float = 3.0) -> Discovery:
    """List the backends in order with the reason each is (not) usable.

    Parameters
    ----------
    fiji_dir : path, optional
        ``--fiji DIR``: a Fiji.app or a plain ImageJ 1.x folder. Else ``settings_dir`` (the GUI
        setting; read from ``$DECONGAN_SETTINGS`` when None), else ``$DECONGAN_FIJI``.
    endpoint : str, optional
        pyimagej endpoint; default ``$DECONGAN_FIJI_ENDPOINT`` or "sc.fiji:fiji"; "none" disables it.
    ij_jar : path, optional
        An ImageJ 1.x jar; default ``$DECONGAN_IJ_JAR`` or Debian's ``/usr/share/java/ij.jar``.
    probe_network : bool
        Probe the Maven repositories for the endpoint backend (False: report it as not probed).
    network_timeout : float
        Seconds per repository probe.
    """
    folder: str | None = None
    folder_source = ""
    if settings_dir is None and fiji_dir is None:
        settings_dir = settings_fiji_dir()
    for value, source in ((fiji_dir, "--fiji"), (settings_dir, "settings"), (os.environ.get(FIJI_ENV), f"${FIJI_ENV}")):
        if value:
            folder, folder_source = os.fspath(value), source
            break
    java, java_reason = find_java(folder)
    pyimagej = module_available("imagej") and module_available("scyjava")
    jpype_ok = module_available("jpype")
    candidates: list[Backend] = []
    folder_kind, folder_reason, folder_jar = (None, "", None)
    if folder:
        folder_kind, folder_reason, folder_jar = classify_folder(folder)

    # 1. local Fiji.app
    if folder is None:
        candidates.append(Backend("fiji", "", False, f"no Fiji folder given (--fiji DIR, the settings or ${FIJI_ENV})"))
    elif folder_kind == "fiji":
        root = str(Path(folder).expanduser().resolve())
        problems = []
        if java is None:
            problems.append(java_reason)
        if not pyimagej:
            problems.append("pyimagej/scyjava not installed (pip install 'decongan[fiji]')")
        usable = not problems
        reason = folder_reason if usable else "; ".join(problems)
        candidates.append(Backend("fiji", root, usable, reason, source=folder_source))
    else:
        note = folder_reason if folder_kind is None else f"{folder_reason}: used as ImageJ 1.x (below)"
        candidates.append(Backend("fiji", str(folder), False, note, source=folder_source))

    # 2. pyimagej endpoint
    chosen_endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    if chosen_endpoint.lower() == "none":
        candidates.append(Backend("endpoint", "", False, f"disabled (${ENDPOINT_ENV}=none)"))
    elif not pyimagej:
        candidates.append(Backend("endpoint", chosen_endpoint, False, "pyimagej/scyjava not installed"))
    elif java is None:
        candidates.append(Backend("endpoint", chosen_endpoint, False, java_reason))
    else:
        cached = jgo_cached_endpoint(chosen_endpoint)
        if cached is not None:
            candidates.append(Backend("endpoint", chosen_endpoint, True, f"resolved before, cached in {cached}"))
        elif not probe_network:
            candidates.append(Backend("endpoint", chosen_endpoint, False,
                                      "not cached and the network was not probed; the first start downloads Fiji"))
        else:
            ok, why = probe_maven(network_timeout)
            if ok:
                candidates.append(Backend("endpoint", chosen_endpoint, True,
                                          f"{why}; the FIRST start downloads Fiji's jars (hundreds of MB, minutes) into ~/.jgo",
                                          notes=["first start downloads"]))
            else:
                candidates.append(Backend("endpoint", chosen_endpoint, False,
                                          f"not cached in ~/.jgo and cannot download it: {why}"))

    # 3. ImageJ 1.x
    ij_candidates: list[tuple[Path, str, str | None]] = []
    if folder_kind == "imagej1" and folder_jar is not None:
        plugins = ij1_plugins_folder(folder_jar)
        ij_candidates.append((folder_jar, folder_source, str(folder_jar.parent) if plugins else None))
    explicit = ij_jar or os.environ.get(IJ_JAR_ENV)
    if explicit:
        jar = Path(explicit)
        ij_candidates.append((jar, "--ij-jar" if ij_jar else f"${IJ_JAR_ENV}",
                              str(jar.parent) if ij1_plugins_folder(jar) else None))
    for system_jar in SYSTEM_IJ_JARS:
        ij_candidates.append((Path(system_jar), "system (libij-java)", None))
    ij_backend = None
    missing = []
    for jar, source, ij_folder in ij_candidates:
        if not jar.is_file():
            missing.append(str(jar))
            continue
        resolved = str(jar.absolute())
        problems = []
        if java is None:
            problems.append(java_reason)
        if not jpype_ok:
            problems.append("jpype not installed (pip install 'decongan[fiji]')")
        reason = "; ".join(problems) if problems else (
            f"ImageJ 1.x jar {jar}" + (f" with plugins in {ij_folder}/plugins" if ij_folder else " (no plugins folder)"))
        ij_backend = Backend("imagej1", resolved, not problems, reason, source=source, ij_folder=ij_folder)
        break
    if ij_backend is None:
        ij_backend = Backend("imagej1", "", False,
                             "no ImageJ 1.x jar found (looked at " + ", ".join(missing) + "); "
                             "install Debian's libij-java or pass a folder with ij.jar")
    candidates.append(ij_backend)
    return Discovery(candidates, java, java_reason)


def platform_summary() -> str:
    """One line about this machine (for the doctor)."""
    return f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
