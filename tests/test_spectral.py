import numpy as np
import pytest

from engine.errors import ParameterError
from engine.analysis.overlap_add import OverlapAdd
from engine.analysis.spectral import (SpectralConfig, hann_window, istft, log_magnitude, magnitude_from_log,
                                      pseudo_cqt_inverse, pseudo_cqt_matrix, stft, stft_frames)
from tests.signals import bursts_and_drone


@pytest.mark.parametrize("n_fft,hop", [(1024, 256), (512, 128), (2048, 512)])
def test_stft_round_trip_reconstructs_the_signal(n_fft, hop):
    x = np.random.default_rng(0).standard_normal(10000)
    spec = stft(x, n_fft=n_fft, hop=hop)
    assert spec.shape == (n_fft // 2 + 1, 1 + len(x) // hop)
    y = istft(spec, hop=hop, length=len(x))
    assert np.max(np.abs(y - x)) < 1e-9


def test_stft_rejects_bad_audio():
    with pytest.raises(ParameterError, match="NaN"):
        stft(np.array([0.0, np.nan, 1.0] * 500))
    with pytest.raises(ParameterError, match="mono"):
        stft(np.zeros((2, 1000)))


def test_log_magnitude_inverts():
    spec = stft(bursts_and_drone(1.0))
    assert np.allclose(magnitude_from_log(log_magnitude(spec)), np.abs(spec), rtol=1e-4, atol=1e-5)


def test_pseudo_cqt_map_is_log_spaced_and_normalised():
    m = pseudo_cqt_matrix()
    assert m.shape[1] == 513 and 150 < m.shape[0] < 260
    assert np.allclose(m.sum(axis=1), 1.0, atol=1e-5)
    centres = (m * np.arange(513)).sum(axis=1)
    ratios = centres[-40:][1:] / centres[-40:][:-1]  # high bins: one log step apart
    assert np.allclose(ratios, 2 ** (1 / 24), rtol=0.02)


def test_pseudo_cqt_round_trip_error_is_bounded_for_real_spectra():
    """Map then inverse: relative error on log-magnitude spectrograms of a real mixture stays below 20 %,
    and on the smooth mean spectrum below 5 % (detail above the log resolution is averaged away)."""
    m = pseudo_cqt_matrix()
    inv = pseudo_cqt_inverse(m)
    s = log_magnitude(stft(bursts_and_drone(2.0)))
    err = np.linalg.norm(inv @ (m @ s) - s) / np.linalg.norm(s)
    assert err < 0.20
    mean = s.mean(axis=1)
    assert np.linalg.norm(inv @ (m @ mean) - mean) / np.linalg.norm(mean) < 0.05


def test_config_validates_and_selects_the_axis():
    assert SpectralConfig().n_channels == 513
    assert SpectralConfig(frequency_axis="cqt").n_channels == pseudo_cqt_matrix().shape[0]
    with pytest.raises(ParameterError, match="n_fft"):
        SpectralConfig(n_fft=1000)
    with pytest.raises(ParameterError, match="frequency_axis"):
        SpectralConfig(frequency_axis="mel")


@pytest.mark.parametrize("n", [100, 511, 513, 22050 + 17])
def test_stft_in_pieces_gives_the_very_frames_of_the_whole(n):
    y = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    whole = stft(y)
    for piece in (1, 7, 64):
        parts = np.concatenate([stft_frames(y, a, a + piece) for a in range(0, whole.shape[1], piece)], axis=1)
        assert np.array_equal(parts, whole), piece


def _reference_istft(spec: np.ndarray, hop: int) -> np.ndarray:
    """The inverse STFT written as the plain loop over frames (as istft was before OverlapAdd), padded samples."""
    n_fft = 2 * (spec.shape[0] - 1)
    w = hann_window(n_fft)
    frames = np.fft.irfft(spec.T, n=n_fft, axis=1) * w
    out, norm = np.zeros((spec.shape[1] - 1) * hop + n_fft), np.zeros((spec.shape[1] - 1) * hop + n_fft)
    for i, frame in enumerate(frames):
        out[i * hop:i * hop + n_fft] += frame
        norm[i * hop:i * hop + n_fft] += w ** 2
    return out / np.maximum(norm, 1e-8)


@pytest.mark.parametrize("hop", [256, 200, 512])
def test_overlap_add_gives_the_same_samples_however_the_frames_are_split(hop):
    """Offline = streaming + flush: one push of every frame, pushes of 1, 2, 3, 7 ... frames, and empty
    pushes give the same samples bit for bit, equal to the plain loop over frames."""
    rng = np.random.default_rng(5)
    spec = stft(rng.standard_normal(9000), hop=hop)
    spec = spec * np.exp(2j * np.pi * rng.random(spec.shape))
    w = hann_window(1024)
    frames = np.fft.irfft(spec.T, n=1024, axis=1) * w
    whole = OverlapAdd(w, hop)
    offline = np.concatenate([whole.push(frames), whole.flush()])
    np.testing.assert_array_equal(offline, _reference_istft(spec, hop))
    for sizes in ([1], [2, 3], [7, 0, 1], [len(frames) - 1]):
        ola, chunks, i, k = OverlapAdd(w, hop), [], 0, 0
        while i < len(frames):
            n = sizes[k % len(sizes)]
            chunks.append(ola.push(frames[i:i + n]))
            assert len(chunks[-1]) == len(frames[i:i + n]) * hop  # every pushed frame completes one hop
            i, k = i + n, k + 1
        chunks.append(ola.flush())
        np.testing.assert_array_equal(np.concatenate(chunks), offline)


def test_istft_is_the_overlap_add_of_its_frames():
    rng = np.random.default_rng(3)
    spec = stft(rng.standard_normal(5000)) * np.exp(2j * np.pi * rng.random((513, 20)))
    np.testing.assert_array_equal(istft(spec, hop=256), _reference_istft(spec, 256)[512:512 + 19 * 256])


def test_overlap_add_refuses_frames_of_another_size():
    with pytest.raises(ParameterError, match=r"frames must be \(k, 1024\)"):
        OverlapAdd(hann_window(1024), 256).push(np.zeros((2, 512)))
