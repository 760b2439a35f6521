"""Texture metrics (engine.evaluation.metrics) and the baselines they rank (engine.evaluation.baselines).

Signals are generated here: pink noise, band-passed noise bursts over a drone (a bursty texture),
and a sine. "Same process" pairs use different seeds and different durations.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from engine.evaluation import baselines

from engine.evaluation import metrics
from engine.errors import ParameterError
from models.random_banks import DEFAULT_BANKS

SR = 22050
METRICS = {
    "heldout_gram": metrics.heldout_gram_distance,
    "mean_spectrum_db": metrics.mean_spectrum_distance_db,
    "envelope_stats": metrics.envelope_stats_distance,
}
BASELINES = {"spectral_noise": baselines.spectral_noise, "paulstretch": baselines.paulstretch}


def pink_noise(seconds: float, seed: int) -> np.ndarray:
    """Stationary 1/f noise, RMS 0.1."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[0] = 0.0
    spec[1:] /= np.sqrt(np.arange(1, len(spec)))
    y = np.fft.irfft(spec, n)
    return (0.1 * y / np.std(y)).astype(np.float32)


def noise_bursts(seconds: float, seed: int) -> np.ndarray:
    """Poisson (4 per s) bursts of 1.5–4 kHz noise decaying in 30 ms, over a 110 Hz drone; peak 0.5."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    b, a = scipy.signal.butter(2, [1500, 4000], btype="band", fs=SR)
    noise = scipy.signal.lfilter(b, a, rng.standard_normal(n))
    pulses = (rng.random(n) < 4 / SR).astype(np.float64)
    envelope = scipy.signal.lfilter([1.0], [1.0, -np.exp(-1 / (0.03 * SR))], pulses)
    t = np.arange(n) / SR
    y = 0.3 * envelope * noise / np.std(noise) + 0.05 * np.sin(2 * np.pi * 110 * t) + 0.02 * np.sin(2 * np.pi * 220 * t)
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def sine(seconds: float, freq: float = 440.0) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(round(seconds * SR)) / SR)).astype(np.float32)


@pytest.fixture(scope="module")
def sounds() -> dict[str, np.ndarray]:
    return {
        "pink": pink_noise(5.0, seed=1), "pink_b": pink_noise(3.0, seed=2),
        "bursts": noise_bursts(5.0, seed=3), "bursts_b": noise_bursts(3.0, seed=4),
        "sine": sine(5.0),
    }


# --- metrics ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pink", "bursts", "sine"])
def test_distance_of_a_sound_to_itself_is_zero(sounds, name):
    y = sounds[name]
    for key, fn in METRICS.items():
        assert fn(y, y, sample_rate=SR) == pytest.approx(0.0, abs=1e-9), key
    (row,) = metrics.evaluate(y, [y.copy()], sample_rate=SR)
    assert all(row[k] == pytest.approx(0.0, abs=1e-9) for k in metrics.METRIC_KEYS), row


@pytest.mark.parametrize("key", METRICS)
@pytest.mark.parametrize("ref, same, others", [
    ("pink", "pink_b", ("bursts", "sine")),
    ("bursts", "bursts_b", ("pink", "sine")),
])
def test_same_process_is_much_closer_than_another_kind_of_sound(sounds, key, ref, same, others):
    fn = METRICS[key]
    d_same = fn(sounds[ref], sounds[same], sample_rate=SR)
    d_others = [fn(sounds[ref], sounds[o], sample_rate=SR) for o in others]
    assert 5 * d_same < min(d_others), (d_same, d_others)


def test_evaluate_equals_the_pairwise_metrics(sounds):
    cands = [sounds["pink_b"], sounds["bursts"], sounds["sine"]]
    rows = metrics.evaluate(sounds["pink"], cands, sample_rate=SR)
    assert len(rows) == 3
    for row, cand in zip(rows, cands):
        assert tuple(row) == metrics.ROW_KEYS
        for key, fn in METRICS.items():
            assert row[key] == pytest.approx(fn(sounds["pink"], cand, sample_rate=SR), rel=1e-9, abs=1e-12)


def test_mean_spectrum_distance_is_the_level_difference_in_db(sounds):
    y = sounds["pink"]
    assert metrics.mean_spectrum_distance_db(y, 0.5 * y, sample_rate=SR) == pytest.approx(20 * np.log10(2), abs=0.01)


def test_heldout_banks_are_not_the_synthesis_banks():
    assert not set(metrics.HELDOUT_BANKS) & set(DEFAULT_BANKS)
    assert metrics.HELDOUT_SEED != 0


def test_format_table_aligns_one_line_per_candidate():
    row = dict.fromkeys(metrics.ROW_KEYS, 0.5)
    rows = [{**row, "embedding_mmd": None, "top_octave_db": None},
            {**row, "heldout_gram": 1234.5, "envelope_stats": 1e-7, "flatness_error_db": -3.0}]
    lines = metrics.format_table(rows, ["a.wav", "much_longer_name.wav"]).splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["candidate", *metrics.ROW_KEYS]
    assert lines[1].split()[:2] == ["a.wav", "n/a"]
    assert lines[2].split()[:5] == ["much_longer_name.wav", "0.500", "1.23e+03", "0.50", "0.000"]
    assert "-3.0" in lines[2].split()
    assert len({len(line) for line in lines}) == 1
    scaled = metrics.scale_rows(rows, floor=dict(row, heldout_gram=0.0), ceiling=dict(row, heldout_gram=2.0))
    lines = metrics.format_table(scaled, ["a.wav", "b.wav"]).splitlines()
    assert lines[0].split()[:5] == ["candidate", "embedding_mmd(scaled/raw)", "heldout_gram(scaled/raw)",
                                    "mean_spectrum_db", "envelope_stats(scaled/raw)"]
    # embedding: no value; Gram: 0.5 / 2 = 0.25; envelope: no scale (the ceiling is not above the floor)
    assert lines[1].split()[1:5] == ["n/a/n/a", "0.25/0.5", "0.50", "n/a/0.500"]
    with pytest.raises(ParameterError):
        metrics.format_table(rows, ["only_one"])


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 2, SR * 3), np.float32), "shape"),
    (np.zeros(SR * 3, np.int16), "float audio"),
    (np.full(SR * 3, np.nan, np.float32), "NaN"),
    (np.ones(SR, np.float32), "too short"),
])
def test_metrics_reject_bad_audio(sounds, bad, match):
    with pytest.raises(ParameterError, match=match):
        metrics.evaluate(sounds["pink"], [bad], sample_rate=SR)


def test_minimum_durations():
    short = pink_noise(0.5, seed=5)
    with pytest.raises(ParameterError, match="heldout_gram"):
        metrics.heldout_gram_distance(short, short, sample_rate=SR)
    assert metrics.heldout_gram_distance(pink_noise(0.75, seed=5), pink_noise(0.75, seed=6), sample_rate=SR) > 0
    assert metrics.mean_spectrum_distance_db(short, short, sample_rate=SR) == 0.0
    with pytest.raises(ParameterError, match="envelope_stats"):
        metrics.envelope_stats_distance(pink_noise(1.9, seed=5), pink_noise(3.0, seed=6), sample_rate=SR)
    with pytest.raises(ParameterError):
        metrics.evaluate(pink_noise(3.0, seed=5), [], sample_rate=0)


# --- baselines -------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("seconds", [0.5, 1.2345, 7.0])
def test_baselines_have_exact_length_and_are_finite_and_bounded(sounds, method, seconds):
    y = BASELINES[method](sounds["bursts_b"], seconds=seconds, sample_rate=SR, rng=np.random.default_rng(0))
    assert y.dtype == np.float32 and y.shape == (round(seconds * SR),)
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) > 1e-3


@pytest.mark.parametrize("method", BASELINES)
def test_baselines_stay_within_full_scale_for_a_loud_style(method):
    loud = np.sign(sine(2.0, freq=100.0)).astype(np.float32)
    y = BASELINES[method](loud, seconds=2.0, sample_rate=SR, rng=np.random.default_rng(0))
    assert np.max(np.abs(y)) <= 1.0 and np.max(np.abs(y)) > 0.5


@pytest.mark.parametrize("method", BASELINES)
def test_baselines_depend_only_on_the_rng(sounds, method):
    def run(seed):
        return BASELINES[method](sounds["pink_b"], seconds=1.0, sample_rate=SR, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(run(7), run(7))
    assert not np.allclose(run(7), run(8))


def test_spectral_noise_keeps_the_spectrum_but_not_the_temporal_structure(sounds):
    style = sounds["bursts"]
    noise = baselines.spectral_noise(style, seconds=5.0, sample_rate=SR, rng=np.random.default_rng(0))
    assert metrics.mean_spectrum_distance_db(style, noise, sample_rate=SR) < 5.0
    d_noise = metrics.envelope_stats_distance(style, noise, sample_rate=SR)
    d_same = metrics.envelope_stats_distance(style, sounds["bursts_b"], sample_rate=SR)
    assert d_noise > 3 * d_same, (d_noise, d_same)


def test_paulstretch_keeps_the_spectrum(sounds):
    style = sounds["bursts"]
    y = baselines.paulstretch(style, seconds=8.0, sample_rate=SR, rng=np.random.default_rng(0))
    assert metrics.mean_spectrum_distance_db(style, y, sample_rate=SR) < 3.0


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("style, kwargs, match", [
    (np.zeros(SR, np.float32), {}, "silent"),
    (np.ones((2, SR), np.float32), {}, "22050 channels"),  # (channels, samples): transposed
    (np.ones((2, 2, SR), np.float32), {}, "shape"),
    (np.full(SR, np.inf, np.float32), {}, "NaN or Inf"),
    (np.ones(SR, np.float32), {"seconds": 0.0}, "seconds"),
    (np.ones(SR, np.float32), {"seconds": float("nan")}, "seconds"),
    (np.ones(SR, np.float32), {"sample_rate": 100}, "sample_rate"),
])
def test_baselines_reject_bad_arguments(method, style, kwargs, match):
    args = {"seconds": 1.0, "sample_rate": SR, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(ParameterError, match=match):
        BASELINES[method](style, **args)


def test_paulstretch_rejects_a_style_shorter_than_its_window(sounds):
    with pytest.raises(ParameterError, match="window"):
        baselines.paulstretch(sounds["pink"][:1000], seconds=1.0, sample_rate=SR, rng=np.random.default_rng(0))
    with pytest.raises(ParameterError, match="window_seconds"):
        baselines.paulstretch(sounds["pink"], seconds=1.0, sample_rate=SR, rng=np.random.default_rng(0),
                              window_seconds=0.0)


def test_envelope_metric_sees_temporal_structure_that_the_spectrum_misses(sounds):
    style = sounds["bursts"]
    spec = np.fft.rfft(style.astype(np.float64))
    phases = np.exp(2j * np.pi * np.random.default_rng(0).random(len(spec)))
    stationary = np.fft.irfft(np.abs(spec) * phases, len(style)).astype(np.float32)
    assert metrics.mean_spectrum_distance_db(style, stationary, sample_rate=SR) < 1.5
    d_stationary = metrics.envelope_stats_distance(style, stationary, sample_rate=SR)
    d_same = metrics.envelope_stats_distance(style, sounds["bursts_b"], sample_rate=SR)
    assert d_stationary > 3 * d_same, (d_stationary, d_same)
    # Each of the six groups lies in [0, 2), so the level-bearing mean group alone gives less than 1/3:
    # the rest must come from the temporal statistics (moments, correlation, modulation).
    assert d_stationary > 1 / 3


def test_envelope_shape_statistics_ignore_level(sounds):
    y = sounds["bursts"]
    assert metrics.envelope_stats_distance(y, 2 * y, sample_rate=SR) < 0.01


@pytest.mark.parametrize("rate", [8000, 44100])
def test_metrics_work_at_other_sample_rates(rate):
    rng = np.random.default_rng(0)
    ref = (0.1 * rng.standard_normal(4 * rate)).astype(np.float32)
    cand = (0.1 * rng.standard_normal(3 * rate)).astype(np.float32)
    (self_row,) = metrics.evaluate(ref, [ref], sample_rate=rate)
    (row,) = metrics.evaluate(ref, [cand], sample_rate=rate)
    assert all(self_row[k] == 0.0 for k in metrics.METRIC_KEYS)
    assert all(np.isfinite(row[k]) and 0 < row[k] < 1 for k in metrics.METRIC_KEYS), row
