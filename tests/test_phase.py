"""Tests of engine.synthesis.phase: Fast Griffin-Lim and streaming RTISI-LA.

Bounds come from measurement (2 s signals at 22050 Hz, n_fft 1024, hop 256, default seeds):
FGLA-32 reaches -20.8 dB on the harmonic tone and -18.7 dB on the noise; random phase gives -4 dB;
StreamingPhase (look-ahead 3, 5 iterations) reaches -23.4 dB (harmonic) and -17.8 dB (noise).
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ParameterError
from engine.synthesis.phase import StreamingPhase, fast_griffin_lim
from engine.analysis.spectral import istft, spectral_convergence_db, stft

SR = 22050
HOP = 256


def harmonic_tone(seconds: float = 2.0) -> np.ndarray:
    """220 Hz, 11 harmonics, 5.5 Hz vibrato of +-0.3 semitones, plus faint white noise."""
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 220.0 * 2.0 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t))
    ph = 2 * np.pi * np.cumsum(f0) / SR
    y = 0.3 * sum(np.sin(k * ph) / k for k in range(1, 12))
    return y + 0.01 * rng.standard_normal(len(t))


def noise_texture(seconds: float = 2.0) -> np.ndarray:
    """White noise with a slow (0.7 Hz) amplitude swell."""
    rng = np.random.default_rng(2)
    n = int(seconds * SR)
    return 0.1 * rng.standard_normal(n) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * np.arange(n) / SR))


@pytest.fixture(scope="module")
def mags() -> dict[str, np.ndarray]:
    return {"harmonic": np.abs(stft(harmonic_tone())), "noise": np.abs(stft(noise_texture()))}


def stream(mag: np.ndarray, block: int, **kw) -> tuple[np.ndarray, list[np.ndarray]]:
    """Whole output of a fresh StreamingPhase fed ``block`` frames per call, and the per-call chunks."""
    sp = StreamingPhase(**kw)
    sp.prepare()
    chunks = [sp.process(mag[:, i:i + block]) for i in range(0, mag.shape[1], block)]
    chunks.append(sp.flush())
    sp.release()
    return np.concatenate(chunks), chunks


# --- fast_griffin_lim -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["harmonic", "noise"])
def test_fgla_converges_and_beats_random_phase(mags: dict[str, np.ndarray], name: str) -> None:
    mag = mags[name]
    y = fast_griffin_lim(mag)
    assert y.dtype == np.float64 and y.shape == ((mag.shape[1] - 1) * HOP,)
    assert np.all(np.isfinite(y))
    sc = spectral_convergence_db(y, mag)
    random_phase = istft(mag * np.exp(2j * np.pi * np.random.default_rng(0).random(mag.shape)))
    sc_random = spectral_convergence_db(random_phase, mag)
    assert sc < -16.5
    assert sc < sc_random - 10.0


def test_fgla_momentum_helps_over_plain_griffin_lim(mags: dict[str, np.ndarray]) -> None:
    mag = mags["noise"]
    fast = spectral_convergence_db(fast_griffin_lim(mag, n_iter=16), mag)
    plain = spectral_convergence_db(fast_griffin_lim(mag, n_iter=16, momentum=0.0), mag)
    assert fast < plain - 1.0


def test_fgla_is_deterministic_and_uses_rng(mags: dict[str, np.ndarray]) -> None:
    mag = mags["noise"][:, :40]
    a = fast_griffin_lim(mag, n_iter=2)
    np.testing.assert_array_equal(a, fast_griffin_lim(mag, n_iter=2, rng=np.random.default_rng(0)))
    assert not np.allclose(a, fast_griffin_lim(mag, n_iter=2, rng=np.random.default_rng(1)))


def test_fgla_progress_and_length(mags: dict[str, np.ndarray]) -> None:
    mag = mags["harmonic"][:, :20]
    seen: list[int] = []
    y = fast_griffin_lim(mag, n_iter=3, progress=seen.append)
    assert seen == [1, 2, 3]
    np.testing.assert_array_equal(fast_griffin_lim(mag, n_iter=3, length=100), y[:100])
    longer = fast_griffin_lim(mag, n_iter=3, length=len(y) + 50)
    assert len(longer) == len(y) + 50 and np.all(longer[len(y):] == 0)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"momentum": 1.0}, "1.0"),
    ({"momentum": -0.1}, "-0.1"),
    ({"momentum": float("nan")}, "nan"),
    ({"n_iter": 0}, "0"),
    ({"n_iter": 2.5}, "2.5"),
    ({"hop": 0}, "0"),
    ({"hop": 600}, "600"),
    ({"length": -1}, "-1"),
])
def test_fgla_rejects_bad_settings(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ParameterError, match=fragment):
        fast_griffin_lim(np.ones((513, 4)), **kwargs)


@pytest.mark.parametrize("magnitude, fragment", [
    (np.ones(513), r"\(513,\)"),
    (np.ones((513, 4), dtype=complex), "complex"),
    (np.full((513, 4), -1.0), "-1.0"),
    (np.full((513, 4), np.nan), "NaN"),
    (np.full((513, 4), np.inf), "Inf"),
])
def test_fgla_rejects_bad_magnitude(magnitude: np.ndarray, fragment: str) -> None:
    with pytest.raises(ParameterError, match=fragment):
        fast_griffin_lim(magnitude)


# --- StreamingPhase ---------------------------------------------------------------------------

def test_block_size_does_not_change_the_output(mags: dict[str, np.ndarray]) -> None:
    mag = mags["harmonic"][:, :70]
    one, _ = stream(mag, 1)
    np.testing.assert_array_equal(one, stream(mag, 16)[0])
    np.testing.assert_array_equal(one, stream(mag, 70)[0])
    sp = StreamingPhase()
    sp.prepare()
    mixed = [sp.process(mag[:, a:b]) for a, b in [(0, 0), (0, 5), (5, 6), (6, 39), (39, 39), (39, 70)]]
    np.testing.assert_array_equal(one, np.concatenate(mixed + [sp.flush()]))


@pytest.mark.parametrize("n_fft, hop, look_ahead", [(1024, 256, 3), (1024, 256, 0), (1024, 128, 2),
                                                    (1024, 384, 1), (512, 256, 4)])
def test_latency_and_total_length(n_fft: int, hop: int, look_ahead: int) -> None:
    rng = np.random.default_rng(4)
    sp = StreamingPhase(n_fft=n_fft, hop=hop, look_ahead=look_ahead, iterations=1)
    assert sp.latency_samples == look_ahead * hop + n_fft // 2
    assert sp.latency_frames == sp.latency_samples // hop
    for n_frames in (0, 1, 2, 3, 12):
        sp.prepare()
        total = 0
        for n in range(1, n_frames + 1):
            total += len(sp.process(rng.random((n_fft // 2 + 1, 1))))
            assert total == max(0, n * hop - sp.latency_samples)
        total += len(sp.flush())
        assert total == max(0, (n_frames - 1) * hop)


def test_centre_sample_comes_out_latency_frames_later() -> None:
    sp = StreamingPhase(iterations=1)
    sp.prepare()
    m, total = 7, 0
    for n in range(m + sp.latency_frames + 1):
        total += len(sp.process(np.ones((513, 1))))
        assert (total > m * HOP) == (n >= m + sp.latency_frames)


def test_committed_samples_do_not_depend_on_later_frames(mags: dict[str, np.ndarray]) -> None:
    a, b = mags["harmonic"][:, :60], mags["noise"][:, :60]
    cut = 30
    sp = StreamingPhase()
    sp.prepare()
    early = sp.process(a[:, :cut])
    for other in (a, np.concatenate([a[:, :cut], b[:, cut:]], axis=1)):
        full, _ = stream(other, 1)
        np.testing.assert_array_equal(full[:len(early)], early)


def test_prepare_restarts_the_stream(mags: dict[str, np.ndarray]) -> None:
    mag = mags["noise"][:, :30]
    sp = StreamingPhase()
    runs = []
    for _ in range(2):
        sp.prepare()
        runs.append(np.concatenate([sp.process(mag), sp.flush()]))
    np.testing.assert_array_equal(*runs)


@pytest.mark.parametrize("name, margin_db", [("harmonic", 0.0), ("noise", 1.5)])
def test_streaming_quality_close_to_fgla(mags: dict[str, np.ndarray], name: str, margin_db: float) -> None:
    mag = mags[name]
    y, _ = stream(mag, 16)
    assert np.all(np.isfinite(y))
    sc_stream = spectral_convergence_db(y, mag)
    sc_fgla = spectral_convergence_db(fast_griffin_lim(mag), mag)
    assert sc_stream < sc_fgla + margin_db
    assert sc_stream < -15.0


def test_iterations_improve_streaming(mags: dict[str, np.ndarray]) -> None:
    mag = mags["noise"][:, :80]
    sc = [spectral_convergence_db(stream(mag, 16, iterations=it)[0], mag) for it in (0, 5)]
    assert sc[1] < sc[0] - 3.0


def test_silence_and_sparse_input_stay_finite() -> None:
    mag = np.zeros((513, 20))
    mag[100, 10] = 5.0
    y, _ = stream(mag, 3)
    assert np.all(np.isfinite(y)) and len(y) == 19 * HOP
    assert np.all(stream(np.zeros((513, 10)), 4)[0] == 0)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"n_fft": 1000}, "1000"),
    ({"hop": 0}, "0"),
    ({"hop": 513}, "513"),
    ({"look_ahead": -1}, "-1"),
    ({"iterations": -2}, "-2"),
    ({"momentum": 1.0}, "1.0"),
])
def test_streaming_rejects_bad_settings(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ParameterError, match=fragment):
        StreamingPhase(**kwargs)


def test_streaming_lifecycle_and_block_errors() -> None:
    sp = StreamingPhase()
    with pytest.raises(ParameterError, match="prepare"):
        sp.process(np.ones((513, 1)))
    sp.prepare()
    with pytest.raises(ParameterError, match="513"):
        sp.process(np.ones((512, 1)))
    with pytest.raises(ParameterError, match="-3.0"):
        sp.process(np.full((513, 2), -3.0))
    sp.flush()
    with pytest.raises(ParameterError, match="prepare"):
        sp.flush()
    sp.release()
    sp.release()
    sp.prepare()
    assert len(sp.process(np.ones((513, 8)))) == 8 * HOP - sp.latency_samples
