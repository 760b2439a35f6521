"""Fine spread: each bin's movement against its band widened, the band's own movement left as it is, in the
bins where the style is a noise."""
import numpy as np

from engine.analysis.levels import level_percentiles
from engine.analysis.spectral import SpectralConfig, log_magnitude, stft
from engine.synthesis.fine_spread import FINE_SPREAD_GAIN, fine_gains, widened_within_bands
from engine.synthesis.stereo import bins_from_bands

SPEC = SpectralConfig()
EMAP = SPEC.envelope_map().astype(np.float64)
BIN_MAP = bins_from_bands(EMAP)


def _frames(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames (log1p magnitudes about 3) whose bins move on their own and whose bands move together, and
    the bins' mean level."""
    rng = np.random.default_rng(seed)
    centre = np.full((SPEC.n_bins, 1), 3.0)
    bands = BIN_MAP @ rng.standard_normal((EMAP.shape[0], 200))
    return centre + 0.5 * rng.standard_normal((SPEC.n_bins, 200)) + bands, centre


def test_the_bins_move_wider_against_their_bands_and_the_bands_as_before():
    frames, centre = _frames()
    out = widened_within_bands(frames, centre, 1.5, EMAP, BIN_MAP)
    fine = frames - BIN_MAP @ (EMAP @ frames)
    fine_out = out - BIN_MAP @ (EMAP @ out)
    ratio = np.std(fine_out[50:900], axis=1) / np.std(fine[50:900], axis=1)
    assert np.median(ratio) > 1.35
    band_change = np.std(EMAP @ (out - frames), axis=1) / np.std(EMAP @ (frames - centre), axis=1)
    assert np.median(band_change) < 0.2


def test_a_gain_of_one_and_a_level_shared_by_every_bin_are_left_alone():
    frames, centre = _frames(1)
    np.testing.assert_allclose(widened_within_bands(frames, centre, 1.0, EMAP, BIN_MAP), frames, rtol=1e-6)
    shifted = centre + np.linspace(-1.0, 1.0, 200)[None, :]
    np.testing.assert_allclose(widened_within_bands(shifted, centre, 1.7, EMAP, BIN_MAP), shifted, atol=1e-5)


def test_a_steady_noise_gets_the_whole_fine_gain_and_a_swelling_one_none():
    """A white noise's bins spread as a Rayleigh magnitude's log power (5.6 dB): noise-like, the whole gain.
    The same noise in 20 dB swells spreads 8.5 dB: the rest of the deviation's gain."""
    rng = np.random.default_rng(0)
    noise = 0.1 * rng.standard_normal(SPEC.sample_rate * 6)
    swell = 10 ** (-np.abs(np.sin(np.arange(noise.size) * np.pi / SPEC.sample_rate)))  # 0 to -20 dB, twice a second
    for audio, expected in ((noise, FINE_SPREAD_GAIN), (noise * swell, 1.3)):
        gains = fine_gains(level_percentiles(log_magnitude(stft(audio, n_fft=SPEC.n_fft, hop=SPEC.hop))), 1.3)
        assert gains.shape == (SPEC.n_bins, 1)
        assert abs(float(np.median(gains[20:-20])) - expected) < 0.02
