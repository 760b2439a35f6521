"""The live path's streaming resampler: level, image rejection, delay, and block-size independence."""
import numpy as np
import pytest

from engine.errors import ParameterError
from engine.live.resample import StreamResampler


def _through(rates: tuple[int, int], x: np.ndarray, block: int = 512) -> np.ndarray:
    r = StreamResampler(*rates)
    r.prepare()
    return np.concatenate([r.process(x[i:i + block]) for i in range(0, len(x), block)])


@pytest.mark.parametrize("rates", [(22050, 48000), (22050, 44100), (44100, 48000), (48000, 44100)])
@pytest.mark.parametrize("freq", [1000.0, 9000.0])
def test_a_sine_keeps_its_level_and_nothing_else_appears(rates, freq):
    a, b = rates
    x = np.sin(2 * np.pi * freq * np.arange(2 * a) / a)
    y = _through(rates, x)
    assert len(y) == 2 * b
    seg = y[b // 2:b // 2 + 32768]
    w = np.hanning(len(seg))
    power = np.abs(np.fft.rfft(seg * w)) ** 2
    freqs = np.fft.rfftfreq(len(seg), 1 / b)
    near = np.abs(freqs - freq) < 60
    level_db = 10 * np.log10(power[near].sum() / ((w ** 2).sum() * len(seg) / 4))
    other_db = 10 * np.log10(power[~near].sum() / power[near].sum())
    assert abs(level_db) < 0.5
    assert other_db < -80  # images and aliases


def test_any_split_into_blocks_gives_the_same_samples():
    x = np.random.default_rng(0).standard_normal(22050)
    whole = _through((22050, 48000), x, block=len(x))
    for block in (1, 37, 512, 5000):
        assert np.array_equal(_through((22050, 48000), x, block=block), whole)


def test_delay_is_about_a_millisecond_and_equal_rates_pass_through():
    r = StreamResampler(22050, 48000)
    r.prepare()
    impulse = np.zeros(2000)
    impulse[1000] = 1.0
    y = r.process(impulse)
    delay_ms = (np.argmax(y) / 48000 - 1000 / 22050) * 1000
    assert 0.0 <= delay_ms < 2.0
    same = StreamResampler(48000, 48000)
    same.prepare()
    x = np.random.default_rng(1).standard_normal(100)
    assert np.array_equal(same.process(x), x)


def test_bad_settings_are_refused():
    with pytest.raises(ParameterError, match="sample rates"):
        StreamResampler(0, 48000)
    with pytest.raises(ParameterError, match="taps_per_phase"):
        StreamResampler(22050, 48000, taps_per_phase=7)
