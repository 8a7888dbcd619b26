"""The "equivalent command" a report states is runnable as printed and reproduces the report's tables;
compare and demo refuse an --out folder that already holds results (earlier files untouched)."""

from __future__ import annotations

import html
import re
import shlex
from pathlib import Path

import pytest

from decongan.app.cli import main
from tests.app.tagan_folders import NAMES, write_tagan_folders


def report_command(out: Path) -> list[str]:
    """The command stated in ``out/report.html``, split as a shell would split it."""
    page = (out / "report.html").read_text(encoding="utf-8")
    found = re.findall(r"<code>(decongan [^<]*)</code>", page)
    assert found, "the report states no decongan command"
    return shlex.split(html.unescape(found[0]))


def with_out(tokens: list[str], out: Path) -> list[str]:
    i = tokens.index("--out")
    return [*tokens[: i + 1], str(out), *tokens[i + 2:]]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_compare_command_in_the_report_runs_from_another_folder_and_gives_the_same_metrics(
        shared_data, tmp_path, monkeypatch, capsys):
    write_tagan_folders(shared_data, tmp_path, crop=64, psf_sigma_px=2.0, psf_size=15)
    work = tmp_path  # relative paths and a method name with spaces and parentheses, as a user types them
    monkeypatch.chdir(work)
    lq, gt = f"in/{NAMES[0]}.tif", f"gt/{NAMES[0]}.tif"
    argv = ["compare", "--lq", lq, "--gt", gt, "--method", f"my copy (x1)={gt}", "--psf", "psf.tif",
            "--pixel-nm", "20", "--out", "first", "--formats", "png", "--dpi", "72", "--no-noref"]
    assert main(argv) == 0
    tokens = report_command(work / "first")
    assert tokens[:2] == ["decongan", "compare"]
    assert f"my copy (x1)={work / gt}" in tokens and str(work / "psf.tif") in tokens  # quoted, absolute

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(with_out(tokens, elsewhere / "again")[1:]) == 0
    assert (elsewhere / "again" / "metrics.csv").read_bytes() == (work / "first" / "metrics.csv").read_bytes()
    assert (elsewhere / "again" / "summary.csv").read_bytes() == (work / "first" / "summary.csv").read_bytes()

    # the same command into the folder that holds these results refuses and changes nothing
    before = snapshot(work / "first")
    capsys.readouterr()
    assert main(tokens[1:]) == 1
    assert "already holds files" in capsys.readouterr().err
    assert snapshot(work / "first") == before


@pytest.mark.slow
def test_demo_command_in_the_report_reproduces_its_metrics_and_refuses_its_own_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--out", "demo out", "--iterations", "2", "--no-gan", "--formats", "png", "--dpi", "72"]) == 0
    first = tmp_path / "demo out"
    tokens = report_command(first)
    assert tokens == ["decongan", "demo", "--out", str(first), "--iterations", "2", "--no-gan", "--formats", "png",
                      "--dpi", "72"]

    before = snapshot(first)
    capsys.readouterr()
    assert main(tokens[1:]) == 1  # into the folder that holds results: refused, nothing touched
    assert f"--out {first} already holds files" in capsys.readouterr().err
    assert snapshot(first) == before

    clean = tmp_path / "clean"
    clean.mkdir()
    monkeypatch.chdir(clean)
    assert main(with_out(tokens, clean / "again")[1:]) == 0
    assert (clean / "again" / "metrics.csv").read_bytes() == (first / "metrics.csv").read_bytes()
    assert (clean / "again" / "summary.csv").read_bytes() == (first / "summary.csv").read_bytes()
