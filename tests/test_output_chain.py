"""Output stage and ring buffer: bounded output, DC removal, click-free gain and fades, the SPSC ring."""
import numpy as np
import scipy.signal

from engine.live.output_chain import OutputChain, soft_limit
from engine.live.ringbuffer import RingBuffer


def test_soft_limit_never_reaches_full_scale_and_leaves_quiet_audio_alone():
    x = np.linspace(-50, 50, 100001)
    y = soft_limit(x)
    assert np.max(np.abs(y)) <= 1.0
    assert np.all(np.diff(y) >= 0)  # monotonic: no fold-over distortion
    quiet = np.linspace(-0.8, 0.8, 101)
    assert np.allclose(soft_limit(quiet), quiet, atol=1e-7)


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
