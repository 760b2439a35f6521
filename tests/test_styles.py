"""Style analysis of long sounds: in pieces, equal to the whole, bounded in memory, and a stated limit."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.analysis import statistics as st
from engine.synthesis import styles
from engine.synthesis.step_graph import live_config
from engine.errors import AudioFileError
from engine.analysis.spectral import log_magnitude, stft
from engine.synthesis.styles import StyleLibrary
from engine.analysis.targets import compute_target
from tests.signals import SR, bursts_and_drone, harmonic_tone

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("network, trend_factor", [("random1d", None), ("trained1d", None), ("random1d", 8)])
def test_the_statistics_of_a_style_in_pieces_equal_those_of_the_whole(network, trend_factor):
    """Also with the live trend taken out (``trend_factor``), which the pieces detrend one at a time."""
    config = live_config(network=network)
    net, fmap = config.build_network(), config.spectral.feature_map()
    emap = config.spectral.envelope_map() if trend_factor else None
    s = log_magnitude(stft(bursts_and_drone(20.0).astype(np.float64)))  # 1723 frames
    kw = dict(lags=config.lags, envelope_map=emap, trend_factor=trend_factor)
    whole = compute_target(s, net, fmap, chunk_frames=10 ** 9, **kw)
    for chunk in (50, 333):  # shorter than the longest span + lags, and an uneven split
        part = compute_target(s, net, fmap, chunk_frames=chunk, **kw)
        for a, b in zip(part.grams + part.autocorr, whole.grams + whole.autocorr):
            assert a.shape == b.shape and float((a - b).abs().max()) <= 1e-5 * float(b.abs().max())
        assert float(part.flux) == pytest.approx(float(whole.flux), rel=1e-6)
        for a, b in ((part.mean_spectrum, whole.mean_spectrum), (part.spread, whole.spread),
                     (part.temporal, whole.temporal), (part.persistence, whole.persistence)):
            assert np.allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_persistence_is_high_in_a_held_partial_and_the_overlaps_own_in_noise():
    """A held partial's bins keep their deviations from frame to frame; white noise's bins only share
    what the frames' overlap makes them share (about 0.35 at a quarter-frame hop); silence gives 0."""
    tone = log_magnitude(stft(harmonic_tone(4.0).astype(np.float64)))
    white = log_magnitude(stft(0.1 * np.random.default_rng(0).standard_normal(4 * SR)))
    held = st.persistence(torch.from_numpy(tone))[np.argsort(tone.mean(axis=1))[-10:]]
    noise = st.persistence(torch.from_numpy(white))
    assert float(held.median()) > 0.7
    assert 0.25 < float(noise.median()) < 0.45
    assert np.array_equal(st.persistence(torch.zeros(5, 40)).numpy(), np.zeros(5, np.float32))


def test_a_style_analysed_in_pieces_keeps_the_spectrogram_and_spectrum(monkeypatch):
    y = bursts_and_drone(6.0)
    monkeypatch.setattr(styles, "STFT_CHUNK_FRAMES", 100)  # 517 frames in six pieces
    style = StyleLibrary(live_config()).add_audio(y, "bursts")
    whole = log_magnitude(stft(y.astype(np.float64)))
    assert np.array_equal(style.log_mag, whole) and style.log_mag.strides == whole.strides
    power = np.mean(np.expm1(whole.astype(np.float64)) ** 2, axis=1)
    assert np.allclose(style.spectrum_db, 10 * np.log10(power + 1e-10), atol=1e-9)


def test_a_style_longer_than_the_limit_is_one_line_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, bursts_and_drone(3.0), SR)
    monkeypatch.setattr(styles, "STYLE_MAX_SECONDS", 2.0)
    with pytest.raises(AudioFileError, match=r"long.wav: is 0.1 min long; it may be at most 0.0333333 min"):
        StyleLibrary(live_config()).add_file(path)


@pytest.mark.slow
def test_analysing_a_five_minute_style_stays_within_a_few_times_its_spectrogram():
    """Peak memory growth of a real analysis in its own process: the whole-sound analysis took 1.3 GB of
    feature maps and 1.7 GB of STFT temporaries for 20 minutes; pieces take ~50 MB. The kernel's peak
    (VmHWM) is reset just before the analysis (``5 > /proc/self/clear_refs``), so an earlier peak of the
    start-up (seen at 600 MB on a fresh CI machine) cannot hide or fake the analysis's own."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        import numpy as np
        from engine.synthesis.step_graph import live_config
        from engine.synthesis.styles import StyleLibrary

        def status_kb(key):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

        library = StyleLibrary(live_config())
        rng = np.random.default_rng(0)
        y = (0.1 * rng.standard_normal(300 * 22050)).astype(np.float32)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak resident size starts again from the resident size now
        before = status_kb("VmRSS") * 1024
        style = library.add_audio(y, "five minutes")
        print(json.dumps({{"growth": status_kb("VmHWM") * 1024 - before, "spectrogram": style.log_mag.nbytes}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"peak growth {figures['growth'] / 1e6:.0f} MB for a {figures['spectrogram'] / 1e6:.0f} MB spectrogram")
    assert figures["growth"] > 0.5 * figures["spectrogram"]  # the peak seen is the analysis's (it holds the spectrogram)
    assert figures["growth"] < 3 * figures["spectrogram"] + 100e6
