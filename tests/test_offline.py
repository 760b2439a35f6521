"""Offline synthesis and transfer against the baselines, through the library and the real CLI."""
import json

import numpy as np
import soundfile as sf

import main
from engine.evaluation.baselines import spectral_noise
from engine.evaluation.metrics import evaluate, heldout_gram_distance
from engine.synthesis.offline import TRANSFER_WEIGHTS, OfflineSettings, synthesize, transfer
from tests.signals import SR, bursts_and_drone, tone


def test_texture_synthesis_beats_the_spectral_noise_baseline():
    style = bursts_and_drone(5.0, seed=3)
    result = synthesize([style], seconds=4.0, settings=OfflineSettings(lbfgs_iterations=60, griffin_lim_iterations=32))
    assert result.audio.shape == (4 * SR,) and np.max(np.abs(result.audio)) <= 1.0
    assert result.spectral_convergence_db < -10.0
    noise = spectral_noise(style, seconds=4.0, sample_rate=SR, rng=np.random.default_rng(0))
    ours, baseline = evaluate(style, [result.audio, noise], sample_rate=SR)
    assert ours["heldout_gram"] < baseline["heldout_gram"]
    assert ours["envelope_stats"] < baseline["envelope_stats"]


def test_blend_of_two_styles_lies_between_them():
    low, high = tone(4.0, 220.0), bursts_and_drone(4.0, seed=5)
    settings = OfflineSettings(lbfgs_iterations=40, griffin_lim_iterations=16)
    mixed = synthesize([low, high], seconds=3.0, blend_weights=[0.5, 0.5], settings=settings).audio
    only_high = synthesize([low, high], seconds=3.0, blend_weights=[0.0, 1.0], settings=settings).audio
    assert heldout_gram_distance(high, only_high, sample_rate=SR) < heldout_gram_distance(high, mixed, sample_rate=SR)


def test_transfer_keeps_content_length_and_moves_towards_the_style():
    content, style = tone(3.0, 330.0), bursts_and_drone(4.0, seed=1)
    settings = OfflineSettings(lbfgs_iterations=40, griffin_lim_iterations=16, weights=TRANSFER_WEIGHTS)
    out = transfer(content, style, settings=settings).audio
    assert len(out) == len(content) and np.all(np.isfinite(out))
    assert heldout_gram_distance(style, out, sample_rate=SR) < heldout_gram_distance(style, content, sample_rate=SR)


def test_cli_render_offline_transfer_and_evaluate(tmp_path, capsys):
    style, content = tmp_path / "style.wav", tmp_path / "content.flac"
    sf.write(style, bursts_and_drone(4.0), SR)
    sf.write(content, tone(3.0, 440.0), SR)
    out, stats = tmp_path / "tex.wav", tmp_path / "stats.json"
    assert main.main(["render", "--offline", "--style", str(style), "--seconds", "3", "--iterations", "20",
                      "--out", str(out), "--stats", str(stats)]) == 0
    data = json.loads(stats.read_text())
    assert {"realtime_factor", "blocks", "iterations_per_block", "provider", "seconds"} <= set(data)
    assert "spectral convergence" in capsys.readouterr().err
    assert sf.info(out).frames == 3 * SR
    moved = tmp_path / "moved.wav"
    assert main.main(["transfer", "--content", str(content), "--style", str(style), "--out", str(moved),
                      "--iterations", "10", "--weights", "1,1,0.5,0.1"]) == 0
    assert sf.info(moved).frames == 3 * SR
    table = tmp_path / "table.json"
    assert main.main(["evaluate", str(style), str(out), str(moved), "--json", str(table)]) == 0
    printed = capsys.readouterr().out
    assert "tex.wav" in printed and "heldout_gram" in printed
    rows = json.loads(table.read_text())["candidates"]
    assert [r["file"] for r in rows] == [str(out), str(moved)] and rows[0]["heldout_gram"] >= 0


def test_transfer_rejects_malformed_weights(tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, bursts_and_drone(2.0), SR)
    assert main.main(["transfer", "--content", str(wav), "--style", str(wav), "--out", str(tmp_path / "o.wav"),
                      "--weights", "1,2,x"]) == 1
    assert "--weights" in capsys.readouterr().err
