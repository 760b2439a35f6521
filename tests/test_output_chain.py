"""Output stage and ring buffer: bounded output, DC removal, click-free gain and fades, the SPSC ring."""
import numpy as np
import scipy.signal

from engine.live.limiter import CEILING, Limiter
from engine.live.output_chain import OutputChain
from engine.live.ringbuffer import RingBuffer


def _limited(x: np.ndarray, rate: int, blocks: int) -> np.ndarray:
    limiter = Limiter(rate, 0 if x.ndim == 1 else x.shape[1])
    return np.concatenate([limiter.process(b) for b in np.array_split(x, blocks)])


def test_the_limiter_keeps_peaks_under_its_ceiling_and_quiet_audio_as_it_was_only_later():
    rate = 48000
    rng = np.random.default_rng(1)
    loud = rng.standard_normal((3 * rate, 2)) * np.linspace(0.05, 3.0, 3 * rate)[:, None]  # up to 10 dB over 0 dBFS
    y = _limited(loud, rate, 37)
    assert y.shape == loud.shape and np.abs(y).max() <= CEILING + 1e-12
    quiet = 0.2 * rng.standard_normal(rate) / 4.5  # peaks under -1 dBFS
    assert np.abs(quiet).max() < CEILING
    delay = Limiter(rate).lookahead
    out = _limited(quiet, rate, 11)
    assert np.array_equal(out[:delay], np.zeros(delay)) and np.allclose(out[delay:], quiet[:-delay], atol=1e-15)
    # Seconds after the last peak the gain has let go entirely: quiet audio passes bit for bit again.
    signal = np.concatenate([loud[:, 0], np.tile(quiet, 4)])
    after = _limited(signal, rate, 300)
    assert np.array_equal(after[-rate:], signal[-rate - delay:-delay])


def test_the_limiter_in_blocks_is_the_limiter_over_the_whole_signal():
    rate = 44100
    x = np.random.default_rng(2).standard_normal((2 * rate, 2)) * 1.5
    whole = _limited(x, rate, 1)
    assert np.allclose(_limited(x, rate, 173), whole, atol=1e-9)
    assert np.allclose(np.concatenate([Limiter(rate, 2).process(x)]), whole)


def _knee(x: np.ndarray, threshold: float = 0.8) -> np.ndarray:
    """The memoryless tanh knee the limiter replaced (above -1.9 dBFS), for comparison."""
    a = np.abs(x)
    knee = 1.0 - threshold
    return np.where(a > threshold, np.sign(x) * (threshold + knee * np.tanh((a - threshold) / knee)), x)


def _distortion_db(y: np.ndarray, rate: int, freqs: tuple[float, ...]) -> float:
    """Power more than 15 Hz from every one of ``freqs`` over all of it, dB (Hann-windowed spectrum)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    f = np.fft.rfftfreq(len(y), 1 / rate)
    near = np.any(np.abs(f[:, None] - np.array(freqs)[None, :]) < 15.0, axis=1)
    return float(10 * np.log10(spectrum[~near].sum() / spectrum.sum()))


def test_a_loud_chord_is_turned_down_not_bent():
    """A C major triad peaking 3.5 dB over full scale: the old knee added harmonics and intermodulation, the
    limiter's gain moves with the chord's beating envelope only."""
    rate = 48000
    t = np.arange(2 * rate) / rate
    freqs = (261.63, 329.63, 392.0)
    chord = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    chord *= 1.5 / np.abs(chord).max()
    bent, limited = _knee(chord)[rate // 2:], _limited(chord, rate, 20)[rate // 2:]
    print(f"outside the chord's partials: knee {_distortion_db(bent, rate, freqs):.1f} dB, "
          f"limiter {_distortion_db(limited, rate, freqs):.1f} dB")
    assert np.abs(limited).max() <= CEILING + 1e-12
    assert _distortion_db(limited, rate, freqs) < _distortion_db(bent, rate, freqs) - 10.0


def test_dc_blocker_matches_the_reference_filter_across_blocks():
    chain = OutputChain(22050, 22050)
    chain.prepare()
    x = np.random.default_rng(0).standard_normal(30000) + 0.7
    y = np.concatenate([chain._dc_block(b) for b in np.array_split(x, 9)])
    d = np.diff(np.concatenate([[0.0], x]))
    ref = scipy.signal.lfilter([1.0], [1.0, -chain._r], d)
    assert np.max(np.abs(y - ref)) < 1e-9
    assert abs(y[-10000:].mean()) < 0.02  # the 0.7 offset is gone


def test_chain_resamples_fades_and_ramps_gain_without_jumps():
    chain = OutputChain(22050, 48000, fade_ms=50)
    chain.prepare()
    t = np.arange(22050 * 2) / 22050
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    blocks = np.array_split(tone, 20)
    out = [chain.process(b, 1.0 if i < 10 else 0.2) for i, b in enumerate(blocks)]
    y = np.concatenate(out)
    assert abs(len(y) - 96000) < 2000 and y.dtype == np.float32
    assert np.max(np.abs(y[:50])) < 0.01  # fade-in starts from silence
    assert np.max(np.abs(np.diff(y))) < 0.1  # no step: gain changes are ramps (440 Hz at 48 kHz moves < 0.03)
    late = np.sqrt(np.mean(y[-20000:] ** 2))
    early = np.sqrt(np.mean(y[30000:40000] ** 2))
    assert 0.15 < late / early < 0.25
    chain.start_fade_out()
    tail = np.concatenate([chain.process(b, 0.2) for b in blocks[:3]])
    assert chain.faded_out and np.max(np.abs(tail[-1000:])) == 0.0


def test_ring_buffer_wraps_and_never_overfills():
    ring = RingBuffer(100)
    data = np.arange(1000, dtype=np.float32)
    out = np.zeros(37, dtype=np.float32)
    written = read = 0
    collected = []
    while read < 1000:
        written += ring.write(data[written:written + 45])
        assert 0 <= ring.available <= 100 and ring.free == 100 - ring.available
        n = ring.read_into(out)
        collected.append(out[:n].copy())
        read += n
    assert np.array_equal(np.concatenate(collected), data)
    assert ring.read_into(out) == 0
