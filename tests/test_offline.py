"""Offline synthesis and transfer against the baselines, through the library and the real CLI."""
import json

import numpy as np
import soundfile as sf

import main
from engine.analysis.spectral import SpectralConfig
from engine.analysis.stereo import stereo_image
from engine.evaluation.baselines import spectral_noise
from engine.evaluation.metrics import evaluate, heldout_gram_distance
from engine.synthesis.offline import TRANSFER_WEIGHTS, OfflineSettings, synthesize, transfer
from tests.signals import SR, band_split_stereo_noise, bursts_and_drone, tone

FULL_BAND = 44100


def test_texture_synthesis_beats_the_spectral_noise_baseline():
    style = bursts_and_drone(5.0, seed=3)
    result = synthesize([style], seconds=4.0, settings=OfflineSettings(lbfgs_iterations=60, griffin_lim_iterations=32),
                        channels=1)
    assert result.audio.shape == (4 * SR,) and np.max(np.abs(result.audio)) <= 1.0
    assert result.spectral_convergence_db < -10.0
    noise = spectral_noise(style, seconds=4.0, sample_rate=SR, rng=np.random.default_rng(0))
    ours, baseline = evaluate(style, [result.audio, noise], sample_rate=SR)
    assert ours["heldout_gram"] < baseline["heldout_gram"]
    assert ours["envelope_stats"] < baseline["envelope_stats"]


def test_blend_of_two_styles_lies_between_them():
    low, high = tone(4.0, 220.0), bursts_and_drone(4.0, seed=5)
    settings = OfflineSettings(lbfgs_iterations=40, griffin_lim_iterations=16)
    mixed = synthesize([low, high], seconds=3.0, blend_weights=[0.5, 0.5], settings=settings, channels=1).audio
    only_high = synthesize([low, high], seconds=3.0, blend_weights=[0.0, 1.0], settings=settings, channels=1).audio
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
    assert sf.info(out).frames == 3 * FULL_BAND and sf.info(out).channels == 2  # a 22.05 kHz style plays full band
    moved = tmp_path / "moved.wav"
    assert main.main(["transfer", "--content", str(content), "--style", str(style), "--out", str(moved),
                      "--iterations", "10", "--weights", "1,1,0.5,0.1"]) == 0
    assert sf.info(moved).frames == 3 * FULL_BAND and sf.info(moved).channels == 1  # a mono content stays mono
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


def _centres(spectral: SpectralConfig) -> np.ndarray:
    """Centre frequency in Hz of each envelope band."""
    return np.argmax(spectral.envelope_map(), axis=1) * spectral.sample_rate / spectral.n_fft


def test_an_offline_texture_of_a_stereo_style_follows_its_coherence_and_width_0_is_mono():
    spectral = SpectralConfig(sample_rate=FULL_BAND)
    style = band_split_stereo_noise(4.0, 0.9, 0.1, 2000.0, sample_rate=FULL_BAND)
    settings = OfflineSettings(lbfgs_iterations=10, griffin_lim_iterations=16, spectral=spectral)
    wide = synthesize([style], seconds=4.0, settings=settings).audio
    assert wide.shape == (4 * FULL_BAND, 2) and np.max(np.abs(wide)) <= 1.0
    coherence = stereo_image(wide[FULL_BAND // 2:], spectral, spectral.envelope_map())[0].coherence
    centres = _centres(spectral)
    print("texture coherence", np.round(coherence, 2))
    assert coherence[(centres > 80) & (centres < 1400)].min() > 0.75
    assert coherence[centres > 3000].max() < 0.35
    narrow = synthesize([style], seconds=4.0, settings=settings, width=0.0).audio
    assert np.array_equal(narrow[:, 0], narrow[:, 1]) and np.sqrt(np.mean(narrow ** 2)) > 0.01
    assert synthesize([style], seconds=4.0, settings=settings, channels=1).audio.shape == (4 * FULL_BAND,)


def test_cli_offline_work_is_full_band_and_keeps_the_channels(tmp_path):
    """render --offline writes the style's rate and two channels (one with --channels 1); a transfer of a
    stereo content writes its rate, two channels and its side: the left 6 dB louder stays louder."""
    style, content = tmp_path / "style.wav", tmp_path / "content.flac"
    sf.write(style, band_split_stereo_noise(3.0, 0.9, 0.1, 2000.0, sample_rate=FULL_BAND), FULL_BAND)
    sides = band_split_stereo_noise(3.0, 0.5, 0.5, 2000.0, seed=1, sample_rate=FULL_BAND) * np.array([1.0, 0.5])
    sf.write(content, sides, FULL_BAND)
    for channels in ("2", "1"):
        out = tmp_path / f"tex{channels}.wav"
        assert main.main(["render", "--offline", "--style", str(style), "--seconds", "2", "--iterations", "5",
                          "--channels", channels, "--out", str(out)]) == 0
        assert (sf.info(out).samplerate, sf.info(out).channels) == (FULL_BAND, int(channels))
    moved = tmp_path / "moved.wav"
    mono_style = tmp_path / "mono.wav"
    sf.write(mono_style, bursts_and_drone(3.0), SR)
    assert main.main(["transfer", "--content", str(content), "--style", str(mono_style), "--out", str(moved),
                      "--iterations", "5"]) == 0
    audio, rate = sf.read(moved)
    assert rate == FULL_BAND and audio.shape == (3 * FULL_BAND, 2)
    left_over_right = 10 * np.log10(np.mean(audio[:, 0] ** 2) / np.mean(audio[:, 1] ** 2))
    assert 3.0 < left_over_right < 9.0, left_over_right


def test_a_transfer_of_a_source_moving_across_moves_it_across():
    """A stereo content's image is its level difference frame by frame (over 0.25 s), not its mean: a noise panned
    from the left to the right over 4 s gives a transfer loud on the left at the start and on the right at the end
    (the content's mean image alone would put it in the middle all along)."""
    rng = np.random.default_rng(4)
    n = 4 * FULL_BAND
    angle = np.linspace(0.0, np.pi / 2, n)
    source = 0.2 * rng.standard_normal(n)
    content = np.stack([np.cos(angle) * source, np.sin(angle) * source], axis=1).astype(np.float32)
    settings = OfflineSettings(lbfgs_iterations=5, griffin_lim_iterations=16, weights=TRANSFER_WEIGHTS,
                               spectral=SpectralConfig(sample_rate=FULL_BAND))
    out = transfer(content, bursts_and_drone(4.0, seed=2, sample_rate=FULL_BAND), settings=settings).audio
    assert out.shape == content.shape

    def left_over_right_db(x: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(x[:, 0] ** 2) / np.mean(x[:, 1] ** 2)))
    start, end = left_over_right_db(out[:FULL_BAND // 2]), left_over_right_db(out[-FULL_BAND // 2:])
    print("left over right, first / last 0.5 s:", start, end)
    assert start > 6.0 and end < -6.0
