"""``decongan weights fetch/list`` and engine.learn.weights: a local HTTP server on 127.0.0.1 serves a
state dict the test makes; the right digest lands as safetensors in the cache, a wrong one is refused
with nothing left behind, and the VGG19 copy is found by training's resolver afterwards."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from decongan.app.cli import main
from decongan.engine.learn import weights
from decongan.engine.learn.models.vgg import (
    build_vgg19_features,
    load_vgg19_state_dict,
    resolve_vgg19_weights,
)


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.RequestHandlerClass.log_message = lambda *a: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("DECONGAN_CACHE", str(folder))
    monkeypatch.delenv("DECONGAN_VGG19", raising=False)
    return folder


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_right_digest_lands_as_safetensors_and_is_listed(server, cache, capsys):
    root, base = server
    # a BasicSR-style checkpoint: params_ema is what gets cached (as the training import reads it)
    ema = {"conv_first.weight": torch.arange(12.0).reshape(1, 3, 2, 2), "conv_first.bias": torch.tensor([0.5])}
    torch.save({"params_ema": ema, "params": {"x": torch.zeros(1)}}, root / "tiny.pth")
    entry = replace(weights.PUBLISHED_WEIGHTS["realesrgan-x2plus"], name="tiny", file_name="tiny.pth",
                    url=f"{base}/tiny.pth", sha256=_sha256(root / "tiny.pth"))
    path = weights.fetch_weights(entry)
    assert path == cache / "weights" / "tiny.safetensors"
    state = load_file(str(path))
    assert set(state) == set(ema) and torch.equal(state["conv_first.weight"], ema["conv_first.weight"])
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    assert meta["sha256"] == entry.sha256 and meta["source_url"] == entry.url
    assert [p.name for p in (cache / "weights").iterdir()] == ["tiny.safetensors"]  # no partial left


def test_wrong_digest_is_refused_and_nothing_is_left(server, cache, capsys):
    root, base = server
    torch.save({"w": torch.ones(3)}, root / "vgg19-dcbb9e9d.pth")  # not the published file
    status = main(["weights", "fetch", "vgg19", "--from", f"{base}/vgg19-dcbb9e9d.pth"])
    err = capsys.readouterr().err
    assert status == 1
    assert "vgg19-dcbb9e9d.pth" in err and _sha256(root / "vgg19-dcbb9e9d.pth") in err
    assert "published prefix is dcbb9e9d" in err and "deleted unread" in err
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_fetched_vgg19_is_found_by_training_and_listed(server, cache, capsys, monkeypatch):
    root, base = server
    with pytest.raises(Exception, match="decongan weights fetch vgg19"):
        resolve_vgg19_weights()
    state = {f"features.{k}": v for k, v in build_vgg19_features().state_dict().items()}
    state["classifier.0.bias"] = torch.zeros(4)
    torch.save(state, root / "vgg19.pth")
    digest = _sha256(root / "vgg19.pth")
    fake = replace(weights.PUBLISHED_WEIGHTS["vgg19"], sha256=digest[:8])  # the prefix check, as published
    monkeypatch.setitem(weights.PUBLISHED_WEIGHTS, "vgg19", fake)
    assert main(["weights", "fetch", "vgg19", "--from", f"{base}/vgg19.pth"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(cache / "weights" / "vgg19.safetensors")
    found = resolve_vgg19_weights()
    assert found == cache / "weights" / "vgg19.safetensors"
    loaded = load_vgg19_state_dict(found)
    assert torch.equal(loaded["34.weight"], state["features.34.weight"])
    # a second fetch does not download again (the server file is gone; the cached copy is kept)
    (root / "vgg19.pth").unlink()
    assert main(["weights", "fetch", "vgg19", "--from", f"{base}/vgg19.pth"]) == 0
    assert "already cached" in capsys.readouterr().err
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "vgg19" in out and "present" in out and "realesrgan-x2plus" in out and "not fetched" in out


def test_registry_digests_are_well_formed():
    for entry in weights.PUBLISHED_WEIGHTS.values():
        assert all(c in "0123456789abcdef" for c in entry.sha256)
        assert len(entry.sha256) == 64 or entry.sha256 in entry.file_name  # full digest or the published prefix
    with pytest.raises(weights.WeightsFetchError, match="unknown weights 'vgg16'"):
        weights.fetch_weights("vgg16")
