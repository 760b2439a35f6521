"""Trained spectrogram CNNs (models/trained.py): committed weights, features, synthesis, ONNX export, the
trained 1D net in the live engine through main.py."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.errors import ParameterError
from engine.synthesis.offline import NETWORKS, OfflineSettings, synthesize, transfer
from engine.analysis.spectral import SpectralConfig, log_magnitude, stft
import main
from models.trained import KINDS, MANIFEST, WEIGHTS_DIR, Trained1DCNN, export_onnx, load_trained, sha256_file
from tests.signals import SR, bursts_and_drone, tone


def _log_spec(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(log_magnitude(stft(y.astype(np.float64))).astype(np.float32))


def test_manifest_matches_committed_files():
    manifest = json.loads(MANIFEST.read_text())
    total = 0
    for kind in KINDS:
        entry = manifest["networks"][kind]
        path = WEIGHTS_DIR / entry["file"]
        assert sha256_file(path) == entry["sha256"]
        assert path.stat().st_size == entry["bytes"]
        assert entry["architecture"] == kind
        assert 0.0 < entry["heldout_accuracy"] <= 1.0
        assert entry["training"]["command"].startswith("python -m models.train ")
        total += path.stat().st_size
    assert total < 10 * 1024 * 1024


@pytest.mark.parametrize("kind", KINDS)
def test_features_are_deterministic_relu_maps(kind):
    net_a, net_b = load_trained(kind), load_trained(kind)
    assert not net_a.training
    assert all(not p.requires_grad for p in net_a.parameters())
    x = _log_spec(bursts_and_drone(1.5, seed=3))
    feats_a, feats_b = net_a(x), net_b(x)
    assert len(feats_a) == len(net_a.weights)
    for a, b in zip(feats_a, feats_b):
        assert a.dim() == 2 and a.shape[1] >= 1
        assert torch.equal(a, b)
        assert float(a.min()) >= 0.0 and torch.isfinite(a).all()
        assert float(a.max()) > 0.0
    desc = net_a.describe()
    assert desc["kind"] == kind and desc["sha256"] == json.loads(MANIFEST.read_text())["networks"][kind]["sha256"]
    json.dumps(desc)


def test_trained1d_needs_linear_bins():
    net = load_trained("trained1d")
    with pytest.raises(ParameterError):
        net(torch.zeros(195, 64))
    with pytest.raises(ParameterError):
        OfflineSettings(network="trained1d", spectral=SpectralConfig(frequency_axis="cqt")).build_network()
    with pytest.raises(ParameterError):
        net(torch.zeros(513, net.max_span - 1))


def test_tampered_weights_are_refused(tmp_path):
    for f in WEIGHTS_DIR.iterdir():
        if f.suffix in (".pt", ".json"):
            shutil.copy(f, tmp_path / f.name)
    entry = json.loads(MANIFEST.read_text())["networks"]["trained1d"]
    data = bytearray((tmp_path / entry["file"]).read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / entry["file"]).write_bytes(bytes(data))
    with pytest.raises(ParameterError, match="SHA-256"):
        load_trained("trained1d", tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_trained_network_in_offline_synthesis(kind):
    assert kind in NETWORKS
    settings = OfflineSettings(network=kind, lbfgs_iterations=10, griffin_lim_iterations=8)
    style = bursts_and_drone(2.0, seed=1)
    result = synthesize([style], seconds=1.0, settings=settings, channels=1)
    assert result.audio.shape == (22050,)
    assert np.all(np.isfinite(result.audio)) and np.abs(result.audio).max() > 1e-3
    assert np.isfinite(result.final_loss) and "style" in result.loss_terms


def test_trained2d_transfer_short():
    settings = OfflineSettings(network="trained2d", lbfgs_iterations=5, griffin_lim_iterations=5,
                               weights=OfflineSettings().weights.__class__(content=1.0, style=1.0, spectral=0.5,
                                                                           temporal=0.1, autocorr=0.0))
    content, style = tone(1.0, 330.0), bursts_and_drone(1.5, seed=2)
    result = transfer(content, style, settings=settings)
    assert result.audio.shape == content.shape
    assert {"content", "style"} <= set(result.loss_terms)


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_export_matches_torch(kind, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    ort.set_default_logger_severity(3)
    net = load_trained(kind)
    path = export_onnx(net, tmp_path / f"{kind}.onnx")
    assert not net.training
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    spec = torch.stack([_log_spec(bursts_and_drone(1.0, seed=s))[:, :80] for s in (4, 5)])
    x = spec if isinstance(net, Trained1DCNN) else spec[:, None]
    outs = session.run(None, {"spectrogram": x.numpy()})
    with torch.no_grad():
        logits = net.classify(x)
        maps = net.feature_maps(x)
    assert len(outs) == 1 + len(maps)
    np.testing.assert_allclose(outs[0], logits.numpy(), rtol=1e-3, atol=1e-3)
    for o, m in zip(outs[1:], maps):
        np.testing.assert_allclose(o, m.numpy(), rtol=1e-3, atol=1e-3)
    # frames are a dynamic axis
    longer = torch.cat([x, x], dim=-1).numpy()
    assert session.run(["logits"], {"spectrogram": longer})[0].shape == (2, net.n_classes)


def test_cli_accepts_trained_networks():
    from main import build_parser
    parser = build_parser()
    args = parser.parse_args(["render", "--style", "a.wav", "--seconds", "1", "--out", "b.wav", "--offline",
                              "--network", "trained2d"])
    assert args.network == "trained2d"
    args = parser.parse_args(["transfer", "--content", "a.wav", "--style", "b.wav", "--out", "c.wav",
                              "--network", "trained1d"])
    assert args.network == "trained1d"


def test_streaming_render_with_trained1d(tmp_path, capsys):
    style, out, stats = tmp_path / "style.wav", tmp_path / "out.wav", tmp_path / "stats.json"
    sf.write(style, bursts_and_drone(3.0, seed=6), SR)
    assert main.main(["render", "--style", str(style), "--seconds", "1.5", "--network", "trained1d",
                      "--out", str(out), "--stats", str(stats)]) == 0
    y, rate = sf.read(out)
    assert rate == SR and len(y) == int(1.5 * SR)
    assert np.all(np.isfinite(y)) and np.abs(y).max() < 1.0
    assert np.sqrt(np.mean(y[SR // 4:] ** 2)) > 1e-3  # not silent
    data = json.loads(stats.read_text())
    assert data["network"] == "trained1d" and data["blocks"] > 0
    assert "network trained1d" in capsys.readouterr().err


@pytest.mark.parametrize("network", ["random2d", "trained2d"])
@pytest.mark.parametrize("command", [["play", "--no-gui"], ["render", "--seconds", "1", "--out"]])
def test_2d_networks_live_are_one_clear_error(network, command, tmp_path, capsys):
    style = tmp_path / "style.wav"
    sf.write(style, bursts_and_drone(3.0), SR)
    out = [str(tmp_path / "out.wav")] if command[0] == "render" else []
    status = main.main([*command, *out, "--style", str(style), "--network", network])
    err = capsys.readouterr().err
    assert status != 0
    assert err.startswith("error: ") and "not available live" in err and "--offline" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
