"""Fixtures for the Fiji bridge tests: a real JVM with Debian's ImageJ 1.x.

JVM starts are the expensive part (~1-2 s each), so the tests share a few clients:

* ``ij_folder``: a plain ImageJ 1.x folder built for the session (ij.jar + plugins/ with two test
  plugins compiled here with javac, whose helper class lives in plugins/jars/);
* ``ij1_client``: a session-wide client on that folder, with a display (Xvfb) when available;
* tests that kill or time out a worker use ``fresh_client`` (module scope) so the shared one stays warm.

Everything skips with a reason that says how to enable it when Java, ImageJ 1.x or javac is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from decongan.imagej_bridge import FijiClient
from decongan.imagej_bridge.discovery import discover, find_java

JAVA_SOURCES = Path(__file__).parent / "java_plugin"


@pytest.fixture(scope="session")
def java():
    found, reason = find_java()
    if found is None:
        pytest.skip(f"no Java: {reason}")
    return found


@pytest.fixture(scope="session")
def system_ij1(java):
    """The ImageJ 1.x backend discovery finds without any folder (Debian's ij.jar)."""
    backend = next(b for b in discover(probe_network=False).candidates if b.kind == "imagej1")
    if not backend.usable:
        pytest.skip(f"ImageJ 1.x not usable: {backend.reason} (CI installs Debian's libij-java)")
    return backend


@pytest.fixture(scope="session")
def ij_folder(tmp_path_factory, java, system_ij1) -> Path:
    """A plain ImageJ 1.x folder: ij.jar, plugins/Test_Plugins.jar, plugins/jars/decongan_helper.jar."""
    javac = java.home / "bin" / "javac"
    jar_tool = java.home / "bin" / "jar"
    if not javac.is_file() or not jar_tool.is_file():
        pytest.skip(f"no javac/jar in {java.home} (install a JDK, not only a JRE) to build the test plugins")
    root = tmp_path_factory.mktemp("ImageJ")
    build = tmp_path_factory.mktemp("plugin-build")
    (root / "plugins" / "jars").mkdir(parents=True)
    shutil.copyfile(system_ij1.location, root / "ij.jar")
    helper_classes, plugin_classes = build / "helper", build / "plugin"

    def run(*args: object) -> None:
        subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=120)

    run(javac, "--release", "8", "-nowarn", "-cp", root / "ij.jar", "-d", helper_classes,
        JAVA_SOURCES / "decongan" / "helper" / "Scaler.java")
    run(javac, "--release", "8", "-nowarn", "-cp", f"{root / 'ij.jar'}:{helper_classes}", "-d", plugin_classes,
        JAVA_SOURCES / "Scale_By_Factor.java", JAVA_SOURCES / "Add_Constant.java")
    shutil.copyfile(JAVA_SOURCES / "plugins.config", plugin_classes / "plugins.config")
    run(jar_tool, "cf", root / "plugins" / "jars" / "decongan_helper.jar", "-C", helper_classes, ".")
    run(jar_tool, "cf", root / "plugins" / "Test_Plugins.jar", "-C", plugin_classes, ".")
    return root


def folder_backend(folder: Path):
    backend = discover(folder, probe_network=False).active
    assert backend is not None and backend.kind == "imagej1", backend
    return backend


@pytest.fixture(scope="session")
def ij1_client(ij_folder):
    """The shared worker: ImageJ 1.x folder with plugins, Xvfb when installed (else headless)."""
    client = FijiClient(folder_backend(ij_folder), display="auto", timeout=120)
    client.start()
    yield client
    client.close()


@pytest.fixture(scope="module")
def fresh_client(ij_folder):
    """A worker that tests may kill, time out or cancel (kept apart from the shared one)."""
    client = FijiClient(folder_backend(ij_folder), display="headless", timeout=120)
    yield client
    client.close()
