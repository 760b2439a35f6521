"""Fine spread: each bin's fast movement against its band widened, its slow movement against the band and the
band's own movement left as they are, in the bins where the style is a noise; streamed as at once."""
import numpy as np

from engine.analysis.levels import level_percentiles
from engine.analysis.spectral import SpectralConfig, log_magnitude, stft
from engine.synthesis.fine_spread import FINE_SPREAD_GAIN, FineSpread, fine_gains, widened_within_bands
from engine.synthesis.stereo import bins_from_bands

SPEC = SpectralConfig()
EMAP = SPEC.envelope_map().astype(np.float64)
BIN_MAP = bins_from_bands(EMAP)
SLOW = 8.0  # frames


def _widened(frames: np.ndarray, centre: np.ndarray, gain: float) -> np.ndarray:
    return widened_within_bands(frames, centre, gain, EMAP, BIN_MAP, slow_frames=SLOW)[0]


def _fine(frames: np.ndarray) -> np.ndarray:
    return frames - BIN_MAP @ (EMAP @ frames)


def _frames(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames (log1p magnitudes about 3) whose bins move on their own and whose bands move together, and
    the bins' mean level."""
    rng = np.random.default_rng(seed)
    centre = np.full((SPEC.n_bins, 1), 3.0)
    bands = BIN_MAP @ rng.standard_normal((EMAP.shape[0], 200))
    return centre + 0.5 * rng.standard_normal((SPEC.n_bins, 200)) + bands, centre


def test_the_bins_move_wider_against_their_bands_and_the_bands_as_before():
    frames, centre = _frames()
    out = _widened(frames, centre, 1.5)
    ratio = np.std(_fine(out)[50:900], axis=1) / np.std(_fine(frames)[50:900], axis=1)
    assert np.median(ratio) > 1.35
    band_change = np.std(EMAP @ (out - frames), axis=1) / np.std(EMAP @ (frames - centre), axis=1)
    assert np.median(band_change) < 0.2


def test_a_gain_of_one_and_a_level_shared_by_every_bin_are_left_alone():
    frames, centre = _frames(1)
    np.testing.assert_allclose(_widened(frames, centre, 1.0), frames, rtol=1e-6)
    shifted = centre + np.linspace(-1.0, 1.0, 200)[None, :]
    np.testing.assert_allclose(_widened(shifted, centre, 1.7), shifted, atol=1e-5)


def test_a_bin_that_drifts_slowly_against_its_band_is_left_alone_and_one_that_flickers_is_widened():
    """Each bin's level against its band: a sine of 400 frames (4.6 s) in one set of frames, independent
    values every frame in the other; the same gain of 1.5 widens the first by under 3 %, the second by 35 % or more."""
    rng = np.random.default_rng(2)
    centre = np.full((SPEC.n_bins, 1), 3.0)
    t = np.arange(1200)
    drift = 0.5 * np.sin(2 * np.pi * (t[None, :] / 400 + rng.random((SPEC.n_bins, 1))))
    flicker = 0.5 * rng.standard_normal((SPEC.n_bins, t.size))
    for movement, low, high in ((drift, 0.97, 1.03), (flicker, 1.35, 1.6)):
        frames = centre + _fine(movement)
        ratio = np.std(_fine(_widened(frames, centre, 1.5))[50:900, 100:], axis=1) / \
            np.std(_fine(frames)[50:900, 100:], axis=1)
        assert low < np.median(ratio) < high


def test_streamed_two_frames_at_a_time_as_at_once():
    frames, centre = _frames(3)
    stream = FineSpread(SPEC.frame_seconds)
    stream.prepare()
    gain = np.linspace(1.0, 1.8, SPEC.n_bins)[:, None]
    blocks = [stream.process(frames[:, i:i + 2], centre, gain, EMAP, BIN_MAP) for i in range(0, 200, 2)]
    at_once, _ = widened_within_bands(frames, centre, gain, EMAP, BIN_MAP, slow_frames=stream.slow_frames)
    np.testing.assert_allclose(np.concatenate(blocks, axis=1), at_once, atol=1e-5)
    stream.prepare()  # a new stream starts from its own first frame, not the last one's mean
    np.testing.assert_allclose(stream.process(frames[:, 100:102], centre, gain, EMAP, BIN_MAP),
                               widened_within_bands(frames[:, 100:102], centre, gain, EMAP, BIN_MAP,
                                                    slow_frames=stream.slow_frames)[0], atol=1e-5)


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
