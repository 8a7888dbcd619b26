"""Backend discovery and its reasons, on real folder layouts built in tmp_path (no JVM)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from decongan.imagej_bridge import discovery
from decongan.imagej_bridge.client import choose_display
from decongan.imagej_bridge.discovery import classify_folder, discover, find_java, java_major
from decongan.imagej_bridge.plugins import parse_plugins_config, scan_plugins

DL2_PLUGINS_CONFIG = """# Name: DeconvolutionLab 2
Plugins>DeconvolutionLab2, Lab, "DeconvolutionLab2 Lab", DeconvolutionLab2_Lab
Plugins>DeconvolutionLab2, Run, "DeconvolutionLab2 Run", DeconvolutionLab2_Run
Plugins>PSF, "PSF Generator", PSF_Generator("bw")
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (discovery.FIJI_ENV, discovery.ENDPOINT_ENV, discovery.IJ_JAR_ENV, "DECONGAN_SETTINGS"):
        monkeypatch.delenv(name, raising=False)


def make_jar(path: Path, *entries: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for entry in entries:
            archive.writestr(entry, b"")
    return path


def make_fiji(root: Path) -> Path:
    make_jar(root / "jars" / "ij-1.54f.jar", "ij/IJ.class")
    make_jar(root / "jars" / "imagej-legacy-1.2.1.jar", "net/imagej/legacy/LegacyService.class")
    make_jar(root / "plugins" / "TurboReg_-2.0.0.jar", "TurboReg_.class")
    return root


def make_ij1_folder(root: Path, ij_jar: Path | None = None) -> Path:
    (root / "plugins" / "jars").mkdir(parents=True)
    target = root / "ij.jar"
    if ij_jar is not None:
        target.symlink_to(ij_jar)
    else:
        make_jar(target, "ij/IJ.class")
    return root


def test_classify_folders(tmp_path):
    assert classify_folder(make_fiji(tmp_path / "Fiji.app"))[0] == "fiji"
    kind, reason, jar = classify_folder(make_ij1_folder(tmp_path / "ImageJ"))
    assert kind == "imagej1" and jar == tmp_path / "ImageJ" / "ij.jar" and "plugins" in reason
    kind, reason, _ = classify_folder(tmp_path / "missing")
    assert kind is None and "does not exist" in reason
    (tmp_path / "empty").mkdir()
    kind, reason, _ = classify_folder(tmp_path / "empty")
    assert kind is None and "neither a Fiji.app" in reason
    mac = tmp_path / "ImageJ.app" / "Contents" / "Java"
    make_jar(mac / "ij.jar", "ij/IJ.class")
    assert classify_folder(tmp_path / "ImageJ.app")[0] == "imagej1"


def test_discover_orders_backends_with_reasons(tmp_path):
    found = discover(probe_network=False)
    kinds = [b.kind for b in found.candidates]
    assert kinds == ["fiji", "endpoint", "imagej1"]
    assert "no Fiji folder given" in found.candidates[0].reason
    assert not found.candidates[1].usable and "download" in found.candidates[1].reason


def test_fiji_folder_from_option_env_and_settings(tmp_path, monkeypatch):
    fiji = make_fiji(tmp_path / "Fiji.app")
    found = discover(fiji, probe_network=False)
    first = found.candidates[0]
    assert first.kind == "fiji" and first.source == "--fiji"
    if found.java is not None and discovery.module_available("imagej"):
        assert first.usable and found.active is first
    monkeypatch.setenv(discovery.FIJI_ENV, str(fiji))
    assert discover(probe_network=False).candidates[0].source == f"${discovery.FIJI_ENV}"
    ini = tmp_path / "settings.ini"
    ini.write_text(f"[fiji]\nlocation={fiji}\n")
    monkeypatch.setenv("DECONGAN_SETTINGS", str(ini))
    assert discover(probe_network=False).candidates[0].source == "settings"  # settings before the env variable


def test_plain_imagej_folder_becomes_the_imagej1_backend(tmp_path):
    folder = make_ij1_folder(tmp_path / "ImageJ")
    found = discover(folder, probe_network=False)
    assert not found.candidates[0].usable and "used as ImageJ 1.x" in found.candidates[0].reason
    ij1 = found.candidates[2]
    assert ij1.location == str(folder / "ij.jar") and ij1.ij_folder == str(folder)
    assert ij1.plugin_folders == [folder / "plugins"]


def test_endpoint_disabled_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv(discovery.ENDPOINT_ENV, "none")
    assert "disabled" in discover(probe_network=False).candidates[1].reason
    cache = tmp_path / "jgo"
    make_jar(cache / "envs" / "sc" / "fiji" / "fiji" / "abc123" / "jars" / "fiji-2.15.jar", "x")
    assert discovery.jgo_cached_endpoint("sc.fiji:fiji", cache) == cache / "envs" / "sc" / "fiji" / "fiji"
    assert discovery.jgo_cached_endpoint("net.imagej:imagej", cache) is None


def test_probe_maven_fails_fast_without_network():
    ok, why = discovery.probe_maven(timeout=1.0, repositories=["https://invalid.invalid/"])
    assert not ok and "unreachable" in why


def test_find_java_skips_a_broken_java_home(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    java, reason = find_java()
    if java is None:
        assert "JAVA_HOME" in reason and "never downloads" in reason
    else:
        assert java.home != tmp_path and (java.home / "bin").is_dir() and java.major >= 11


def test_find_java_prefers_a_valid_java_home(tmp_path, monkeypatch):
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text('JAVA_VERSION="21.0.2"\n')
    monkeypatch.setenv("JAVA_HOME", str(home))
    java, reason = find_java()
    assert java is not None and java.home == home and java.version == "21.0.2" and "JAVA_HOME" in reason
    (home / "release").write_text('JAVA_VERSION="1.8.0_392"\n')
    java, _ = find_java()
    assert java is None or java.home != home  # Java 8 is too old


def test_java_major():
    assert java_major("17.0.15") == 17
    assert java_major("1.8.0_392") == 8
    assert java_major("21") == 21
    assert java_major("weird") == 0


def test_scan_plugins_reads_jar_contents(tmp_path):
    fiji = make_fiji(tmp_path / "Fiji.app")
    make_jar(fiji / "plugins" / "DeconvolutionLab_2.jar", "DeconvolutionLab2_Run.class", "plugins.config")
    found = scan_plugins([fiji / "plugins", fiji / "jars"])
    assert found["turboreg"].name == "TurboReg_-2.0.0.jar"
    assert found["deconvolutionlab2"].name == "DeconvolutionLab_2.jar"
    assert found["psf_generator"] is None and found["sift"] is None


def test_parse_plugins_config():
    entries = parse_plugins_config(DL2_PLUGINS_CONFIG)
    assert entries[1] == ("Plugins>DeconvolutionLab2", "DeconvolutionLab2 Run", "DeconvolutionLab2_Run")
    assert entries[2] == ("Plugins>PSF", "PSF Generator", 'PSF_Generator("bw")')
    assert len(entries) == 3


def test_choose_display(monkeypatch):
    assert choose_display("headless") == "headless"
    with pytest.raises(ValueError):
        choose_display("window")
    import decongan.imagej_bridge.client as client_module

    monkeypatch.setattr(client_module.shutil, "which", lambda name: None)  # no Xvfb
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if client_module.sys.platform.startswith("linux"):
        assert choose_display("auto") == "headless"
        monkeypatch.setenv("DISPLAY", ":5")
        assert choose_display("auto") == "desktop"
