"""The streaming engine: real playback through PortAudio on the JACK dummy server, captured through a
JACK connection; renders to real files; seams between blocks; a long run with random changes."""
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from engine.analysis import statistics as st
from engine.analysis.audio_io import resample
from engine.synthesis import block_synth, fine_spread
from engine.synthesis.block_synth import BlockSynth, adapt_cap, continuation_probability
from engine.evaluation.metrics import envelope_stats_distance
from engine.evaluation.novelty import collage_index, copied_share
from engine.synthesis.step_graph import live_config
from engine.params import ParamStore
from engine.synthesis.runtime import BlockStepper
from engine.live.sinks import LEAD_STEP_SECONDS, FileSink, NullSink
from engine.live.device_sink import SoundDeviceSink
from engine.analysis.spectral import SpectralConfig, log_magnitude, stft
from engine.synthesis.step_graph import BlockConfig
from engine.live.stream import Engine
from engine.synthesis.styles import StyleLibrary
from tests.jack_capture import JackCapture
from tests.played import played
from tests.signals import SR, bursts_and_drone, click_train, crackle, harmonic_tone, swells

CONFIG = live_config()


def _noise(band: tuple[float, float], seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sos = signal.butter(6, [band[0] / (SR / 2), band[1] / (SR / 2)], "band", output="sos")
    y = signal.sosfilt(sos, rng.standard_normal(int(seconds * SR)))
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def stepper():
    return BlockStepper(CONFIG)


def _high_fraction(y: np.ndarray, rate: int, frame: int) -> np.ndarray:
    """Per-frame share of energy above 2.5 kHz."""
    n = len(y) // frame
    spec = np.abs(np.fft.rfft(y[: n * frame].reshape(n, frame), axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1 / rate)
    return spec[:, freqs > 2500].sum(axis=1) / (spec.sum(axis=1) + 1e-12)


def _band_spectrum_distance_db(ref: np.ndarray, other: np.ndarray) -> float:
    """RMS difference in dB of the mean power in log-spaced bands (50 Hz - 10 kHz, 24 edges apart) holding energy
    within 50 dB of the reference's loudest band. Bands, not bins: a played texture reshuffles the
    fine tonal detail of a style, and single bins near the resamplers' noise floor say nothing."""
    edges = np.geomspace(50, 10000, 25)
    freqs = np.arange(513) * SR / 1024
    masks = [m for m in ((freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])) if m.any()]

    def bands_db(y: np.ndarray) -> np.ndarray:
        power = np.mean(np.abs(stft(y.astype(np.float64))) ** 2, axis=1)
        return np.array([10 * np.log10(power[m].mean() + 1e-12) for m in masks])
    r, o = bands_db(ref), bands_db(other)
    keep = r > r.max() - 50
    return float(np.sqrt(np.mean((r[keep] - o[keep]) ** 2)))


def test_plays_five_seconds_of_two_channels_through_jack_without_underruns(jack_server, stepper):
    library = StyleLibrary(CONFIG)
    style = library.add_default()
    sink = SoundDeviceSink(None)
    assert sink.rate == 48000  # the device's own rate; the engine runs at 22050 and is resampled
    engine = Engine(library, ParamStore(), stepper, sink)
    capture = JackCapture(7.0, rate=sink.rate, channels=2)
    engine.start()
    capture.start()
    capture.wait_until(5 * sink.rate, timeout=15)
    underruns = sink.underruns
    engine.stop()
    both = capture.stop()
    assert engine.telemetry().error is None
    assert underruns == 0
    left, right = both[sink.rate:, 0], both[sink.rate:, 1]
    correlation = np.corrcoef(left, right)[0, 1]
    assert min(np.std(left), np.std(right)) > 0.01 and correlation < 0.5, correlation  # two channels that differ
    played = both[:, 0]  # each channel has the style's spectrum (their mean is up to 3 dB lower where they differ)
    assert len(played) >= 5 * sink.rate
    assert np.max(np.abs(played)) <= 1.0
    assert np.sqrt(np.mean(played[sink.rate:] ** 2)) > 0.01  # not silent
    heard = resample(played[sink.rate:], sink.rate, SR)
    from engine.analysis.default_style import default_style
    ref = default_style()
    near = _band_spectrum_distance_db(ref, heard)
    far = _band_spectrum_distance_db(ref, _noise((3000, 9000)))
    print(f"band spectrum distance to the style {near:.2f} dB, to other noise {far:.2f} dB")
    assert near < 6.0 and near < far / 2, (near, far, style.name)


def _play_with_a_change(library, params, stepper, change, *, after: float):
    """Play through JACK for 2 s, call ``change()``, play ``after`` s more; returns the captured samples,
    the capture position of the change, and the (stopped) engine."""
    sink = SoundDeviceSink(None)
    engine = Engine(library, params, stepper, sink)
    capture = JackCapture(2.0 + after + 2.0, rate=sink.rate)
    engine.start()
    capture.start()
    capture.wait_until(2 * sink.rate, timeout=10)
    changed_at = capture.count
    change()
    capture.wait_until(changed_at + int(after * sink.rate), timeout=10)
    engine.stop()
    return capture.stop(), changed_at, engine


def _low_then_high() -> tuple[StyleLibrary, ParamStore, Callable[[], None]]:
    """A library of a low (100-800 Hz) and a high (4-9 kHz) noise style, a store playing the low one, and the
    change that switches the blend to the high one."""
    library = StyleLibrary(CONFIG)
    low = library.add_audio(_noise((100, 800)), "low")
    high = library.add_audio(_noise((4000, 9000), seed=1), "high")
    params = ParamStore()
    params.set_blend(low.slot_id, 1.0)
    params.set_blend(high.slot_id, 0.0)
    def change() -> None:
        params.set_blend(low.slot_id, 0.0)
        params.set_blend(high.slot_id, 1.0)
    return library, params, change


def test_a_style_change_is_heard_within_the_stated_latency(jack_server, stepper):
    library, params, change = _low_then_high()
    played, changed_at, engine = _play_with_a_change(library, params, stepper, change, after=2.0)
    sink = engine.sink
    stated = engine.control_latency_seconds
    frame = sink.rate // 100  # 10 ms frames
    share = _high_fraction(played, sink.rate, frame)
    start = changed_at // frame
    before = share[start - 50:start].mean()
    assert before < 0.2
    crossed = np.nonzero(share[start:] > 0.5)[0]
    assert len(crossed), "the change never became audible"
    latency = crossed[0] * frame / sink.rate
    print(f"style change audible after {latency * 1000:.0f} ms (stated bound {stated * 1000:.0f} ms)")
    assert latency <= stated


def test_a_style_change_reaches_both_channels_in_the_block_that_makes_it(stepper):
    """The offline twin of the latency test, without the device's timing: from the block that moves the blend,
    both channels (the decorrelated part included, which plays frames of up to 116 ms before) have most of
    their energy in the new style's band. Without re-levelling the decorrelator's delay line the old band
    kept half the power for up to five blocks: this share was 0.18-0.68 in the four blocks after the change."""
    library, params, change = _low_then_high()
    synth = BlockSynth(library, stepper, adaptive=False)
    synth.prepare(0)
    synth.warm_up(params.snapshot())
    before = np.concatenate([synth.process_block(params.snapshot()) for _ in range(8)])
    change()
    after = np.concatenate([synth.process_block(params.snapshot()) for _ in range(9)])
    synth.release()
    # the samples of the frames committed with the change start after the phase's latency
    start = synth.latency_samples
    block = synth.block_samples
    chunks = after[start:start + 5 * block].reshape(5, block, 2).transpose(0, 2, 1)
    spec = np.abs(np.fft.rfft(chunks * np.hanning(block), axis=-1)) ** 2
    share = spec[..., np.fft.rfftfreq(block, 1 / SR) > 2500].sum(-1) / spec.sum(-1)
    old = np.abs(np.fft.rfft(before[-block:].T * np.hanning(block), axis=-1)) ** 2
    assert np.all(old[:, np.fft.rfftfreq(block, 1 / SR) > 2500].sum(-1) < 0.05 * old.sum(-1))
    print("share above 2.5 kHz, per block after the change (left, right):", np.round(share, 2).tolist())
    assert np.all(share[1:] > 0.9), share


def test_the_producer_is_paced_to_the_lead_and_an_underrun_lengthens_it_for_a_while(jack_server, monkeypatch):
    import engine.live.device_sink
    sink = SoundDeviceSink(None)
    sink.prepare()
    try:
        lead = sink.lead_seconds
        sink.write(np.zeros(int(0.3 * sink.rate), np.float32))  # more than the lead and the start cushion
        t0 = time.monotonic()
        sink.wait_for_room()
        assert sink.queued_samples <= lead * sink.rate
        assert time.monotonic() - t0 > 0.1  # it waited while the device played the queue down
        deadline = time.monotonic() + 3.0  # now nothing is written: the device runs dry (a real underrun)
        while sink.underruns == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.underruns > 0
        sink.wait_for_room()
        assert sink.lead_seconds == pytest.approx(lead + LEAD_STEP_SECONDS)
        monkeypatch.setattr(engine.live.device_sink, "LEAD_RETURN_SECONDS", 0.3)  # 5 s in the program
        deadline = time.monotonic() + 10.0  # a quiet spell (fed in time) brings the lead back down
        while sink.lead_seconds > lead and time.monotonic() < deadline:
            sink.wait_for_room()
            sink.write(np.zeros(int(0.01 * sink.rate), np.float32))
        assert sink.lead_seconds == pytest.approx(lead), (sink.lead_seconds, sink.underruns)
    finally:
        sink.release()


def _render(tmp_path, library, params, seconds, *, config=CONFIG, stepper=None, name="out.wav"):
    """Render with the mono engine (these tests look at the texture itself; tests/test_stereo.py at its two channels)."""
    stepper = stepper or BlockStepper(config)
    sink = FileSink(tmp_path / name, config.spectral.sample_rate, channels=1)
    stats = Engine(library, params, stepper, sink, adaptive=False, channels=1).render(seconds)
    audio, rate = sf.read(tmp_path / name, dtype="float32")
    return stats, audio, rate


def test_render_is_seeded_reproducible_and_exact_length(tmp_path, stepper):
    runs = []
    for i, seed in enumerate((3, 3, 4)):
        library = StyleLibrary(CONFIG)
        library.add_audio(bursts_and_drone(4.0), "bursts")
        params = ParamStore()
        params.set("variation", seed)
        stats, audio, rate = _render(tmp_path, library, params, 3.0, stepper=stepper, name=f"r{i}.wav")
        assert rate == SR and len(audio) == 3 * SR
        assert stats.underruns == 0 and stats.blocks >= 3 * SR // (CONFIG.block_frames * 256)
        runs.append(audio)
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_engine_rate_44100_works(tmp_path):
    config = BlockConfig(spectral=SpectralConfig(sample_rate=44100))
    library = StyleLibrary(config)
    library.add_default()
    stats, audio, rate = _render(tmp_path, library, ParamStore(), 2.0, config=config)
    assert rate == 44100 and len(audio) == 88200 and np.sqrt(np.mean(audio ** 2)) > 0.01


def test_block_seams_are_no_rougher_than_the_inside_of_blocks(tmp_path, stepper):
    library = StyleLibrary(CONFIG)
    library.add_audio(bursts_and_drone(6.0), "bursts")
    _, audio, _ = _render(tmp_path, library, ParamStore(), 12.0, stepper=stepper)
    s = log_magnitude(stft(audio.astype(np.float64)))
    flux = np.sum(np.diff(s, axis=1) ** 2, axis=0)  # flux[j] is between frames j and j+1
    b = CONFIG.block_frames
    j = np.arange(len(flux))
    keep = (j > 4 * b) & (j < len(flux) - 4)
    seam = flux[keep & ((j + 1) % b == 0)].mean()
    inside = flux[keep & ((j + 1) % b != 0)].mean()
    print(f"boundary flux ratio {seam / inside:.3f}")
    assert seam / inside <= 1.2


def test_adaptive_quality_drops_steps_under_real_load_and_counts_it(stepper):
    library = StyleLibrary(CONFIG)
    library.add_default()
    params = ParamStore()
    params.set("iterations", 32)  # 32 steps a block take several times the block's 23 ms on a CPU
    engine = Engine(library, params, stepper, NullSink(SR), adaptive=True)
    steps = []
    engine.taps.append(lambda y: steps.append(engine.synth.latest.steps))
    engine.render(2.0)
    t = engine.telemetry()
    print(f"steps per block at the end {steps[-5:]}, quality drops {t.quality_drops}")
    assert steps[0] == 32 and t.quality_drops >= 1
    assert max(steps[-20:]) < 32  # it stays below what was asked while the load is high
    params.set("iterations", 0)
    engine.render(0.5)
    assert engine.telemetry().quality_drops == 0  # a bypassed optimiser leaves nothing to drop


@pytest.mark.parametrize("block_seconds", [0.0116, 0.0232, 0.0929])
def test_segments_last_as_long_as_the_receptive_field_asks_whatever_the_block(block_seconds):
    for rf, seconds in ((0.0, 0.25), (0.5, 1.0), (1.0, 4.0)):
        p = continuation_probability(rf, block_seconds)
        assert block_seconds / (1.0 - p) == pytest.approx(seconds, rel=1e-6)  # mean of a geometric run
    assert continuation_probability(0.5, block_seconds / 1e-9) == 0.0  # a style at blend weight 0 jumps away


def _melody(seconds: float) -> np.ndarray:
    """Eight harmonic notes a second with decaying envelopes (a structured, tonal style)."""
    rng = np.random.default_rng(7)
    note = int(SR / 8)
    t = np.arange(note) / SR
    notes = [sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3)) * np.exp(-t * 12.0)
             for f in rng.choice([220.0, 247.0, 277.0, 330.0, 370.0, 440.0], size=int(seconds * 8))]
    return (0.3 * np.concatenate(notes) / 1.8).astype(np.float32)


STRUCTURED = {"bursts": bursts_and_drone, "melody": _melody, "crackle": crackle}


@pytest.mark.parametrize("name", list(STRUCTURED))
def test_the_stream_copies_nothing_from_a_structured_style(tmp_path, stepper, name):
    style = STRUCTURED[name](6.0)
    library = StyleLibrary(CONFIG)
    library.add_audio(style, name)
    _, audio, _ = _render(tmp_path, library, ParamStore(), 10.0, stepper=stepper)
    share = copied_share(style, audio, sample_rate=SR)
    print(f"{name}: copied share {share:.3f}")
    assert share < 0.02


def test_the_copy_measure_sees_the_opt_in_granular_replay(tmp_path, stepper):
    """The measure finds replay where every frame of the style is unique (on a repeated melody the nearest
    frame is ambiguous, and it cannot)."""
    style = crackle(6.0)
    library = StyleLibrary(CONFIG)
    library.add_audio(style, "crackle")
    params = ParamStore()
    params.set("material", 1.0)  # frames read from the recording, not optimised: a replay
    params.set("iterations", 0)
    params.set("receptive_field", 1.0)  # 4 s segments
    _, replay, _ = _render(tmp_path, library, params, 10.0, stepper=stepper, name="replay.wav")
    replayed = copied_share(style, replay, sample_rate=SR)
    print(f"copied share of the material-1 replay {replayed:.3f}")
    assert replayed > 0.3


def _bypassed_and_optimised(stepper, style: np.ndarray, seconds: float, *,
                            clicks: bool = True) -> tuple[StyleLibrary, dict]:
    """The library holding ``style`` (without its click layer when ``clicks`` is False), and
    ``{iterations: (audio, render stats, telemetry)}`` of ``seconds`` from it at 0 and 1 steps a block."""
    library = StyleLibrary(CONFIG)
    added = library.add_audio(style, "style")
    if not clicks:
        library.slots = (replace(added, clicks=None),)
    runs = {}
    for iterations in (0, 1):
        params = ParamStore()
        params.set("iterations", iterations)
        audio, stats, engine = played(library, params, stepper, seconds)
        runs[iterations] = (audio, stats, engine.telemetry())
    return library, runs


def test_iterations_zero_plays_the_initialisation_and_the_network_does_the_rest(stepper):
    """The bypass plays the initialisation; the optimiser brings the texture closer to unseen material of
    the same process. Since new frames carry each bin's distribution and the bins' shared moves
    (docs/EXPERIMENTS.md section 19) the initialisation alone is about twice as close as before (0.14
    against 0.29 here), and the network's share is smaller: 0.10 against 0.14, where it was 0.20
    against 0.29. The bound asks for a clear share of the work, not the old ratio.

    The crackle's drops are clicks over a steady bed, and the click layer (engine.synthesis.click_layer,
    tests/test_clicks.py) plays them in the bypass as in the stream: with it both came closer (0.091 and
    0.078) and the optimiser's share fell to 14 %. That layer is not the network's work, so this test
    measures the frames without it."""
    style, fresh = crackle(6.0), crackle(6.0, seed=1)  # the style, and unseen material of the same process
    library, runs = _bypassed_and_optimised(stepper, style, 8.0, clicks=False)
    audio0, stats0, t0 = runs[0]
    assert stats0.iterations_per_block == 0 and t0.steps == 0 and np.isnan(t0.last.loss)
    # the initialisation: per-bin noise around the style's mean log spectrum, nothing of its structure
    mean0 = log_magnitude(stft(audio0[SR:-SR].astype(np.float64))).mean(axis=1)
    assert np.abs(mean0 - library.slots[0].target.mean_spectrum.numpy()).mean() < 0.15
    assert runs[1][1].iterations_per_block == 1
    bypassed, optimised = (envelope_stats_distance(fresh, runs[i][0], sample_rate=SR) for i in (0, 1))
    print(f"envelope statistics distance to unseen material: bypassed {bypassed:.3f}, optimised {optimised:.3f}")
    assert optimised < 0.85 * bypassed


def test_new_frames_keep_a_held_partial_held_and_noise_noisy(stepper):
    """The initialisation alone (iterations 0): each bin's noise carries the style's persistence, so a
    tone's partials move slowly from frame to frame (0.76; independent new frames gave 0.59) while a
    noise stays about as restless as the noise itself (0.43 against its 0.36; independent frames 0.25).
    The widening of the levels for the phase (PHASE_SPREAD_GAIN) plays a noise a little more persistent than
    its frames: 0.39 at 1.0, 0.42 at 1.2, 0.43 at 1.3, the default, which the learned ear and the level
    spread (the test below) prefer (docs/EXPERIMENTS.md section 30); the bins' movement within their bands
    widened further where the style is a noise (engine.synthesis.fine_spread, section 36) makes it 0.47: a
    little more persistent again, which the learned ear prefers on rain and night_mediterran; still far from the
    partials', and independent frames' 0.25 stays out."""
    tone, white = harmonic_tone(4.0), _noise((50, 10000), 4.0)
    persistence = {}
    for name, style in (("tone", tone), ("noise", white)):
        library = StyleLibrary(CONFIG)
        library.add_audio(style, name)
        params = ParamStore()
        params.set("iterations", 0)
        audio = played(library, params, stepper, 5.0)[0]
        persistence[name] = st.persistence(torch.from_numpy(log_magnitude(stft(audio[SR:].astype(np.float64)))))
    partials = np.argsort(log_magnitude(stft(tone.astype(np.float64))).mean(axis=1))[-10:]
    own = float(st.persistence(torch.from_numpy(log_magnitude(stft(white.astype(np.float64))))).median())
    print(f"persistence played: partials {float(persistence['tone'][partials].median()):.2f}, "
          f"noise {float(persistence['noise'].median()):.2f} (its own {own:.2f})")
    assert float(persistence["tone"][partials].median()) > 0.66
    assert own - 0.08 < float(persistence["noise"].median()) < own + 0.12


def _channel_spread(y: np.ndarray) -> float:
    """Median over sixth-octave channels (200 Hz - 8 kHz) of the standard deviation of their level (natural
    log of mean power) from frame to frame."""
    power = np.abs(stft(y.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(1024, 1 / SR)
    edges = 200 * 2 ** (np.arange(0, 5.5, 1 / 6))
    levels = [np.log(power[(freqs >= lo) & (freqs < hi)].mean(axis=0) + 1e-12) for lo, hi in zip(edges[:-1], edges[1:])]
    return float(np.median(np.std(levels, axis=1)))


def _played_noise(measure: Callable[[np.ndarray], float], stepper, monkeypatch, *, phase: float | None = None,
                  fine: float | None = None) -> float:
    """``measure`` of a band noise (50 Hz - 10 kHz) played for 6 s (the first second left out), its levels widened
    by ``phase`` (PHASE_SPREAD_GAIN) and its noise-like bins' movement within their bands by ``fine``
    (fine_spread.FINE_SPREAD_GAIN); None keeps the default."""
    if phase is not None:
        monkeypatch.setattr(block_synth, "PHASE_SPREAD_GAIN", phase)
    if fine is not None:
        monkeypatch.setattr(fine_spread, "FINE_SPREAD_GAIN", fine)
    library = StyleLibrary(CONFIG)
    library.add_audio(_noise((50, 10000), 6.0), "noise")
    return measure(played(library, ParamStore(), stepper, 6.0)[0][SR:])


def test_a_noise_plays_its_channels_level_spread(stepper, monkeypatch):
    """The phase makes a signal near frames no signal has and plays a narrower spread of levels than they
    hold; the levels the committed frames are mapped to are widened for it (PHASE_SPREAD_GAIN), so a band
    noise's channels move about as much as the style's (0.553 against 0.525 here, with the bins' movement within
    their bands widened further, engine.synthesis.fine_spread; nothing widened, 0.448)."""
    own = _channel_spread(_noise((50, 10000), 6.0))
    default = _played_noise(_channel_spread, stepper, monkeypatch)
    as_made = _played_noise(_channel_spread, stepper, monkeypatch, phase=1.0, fine=1.0)
    print(f"channel level spread: style {own:.3f}, played {default:.3f}, nothing widened {as_made:.3f}")
    assert abs(default / own - 1.0) < 0.08
    assert as_made < 0.94 * own


def test_the_envelope_weight_holds_at_the_start_then_eases_to_its_own():
    """Over the first seconds the band-envelope statistics hold a stream harder (at the lighter weight, from the
    start, the band noise above played 0.62 against its style's 0.525), then ease to the lighter weight."""
    start, ease, own = block_synth.START_SECONDS, block_synth.EASE_SECONDS, float(block_synth.LIVE_LOSS_WEIGHTS[5])
    assert own < block_synth.START_ENVELOPE_WEIGHT
    assert block_synth.envelope_weight(0.0) == block_synth.envelope_weight(start) == block_synth.START_ENVELOPE_WEIGHT
    assert block_synth.envelope_weight(start + ease / 2) == pytest.approx((block_synth.START_ENVELOPE_WEIGHT + own) / 2)
    assert block_synth.envelope_weight(start + ease) == pytest.approx(own) == block_synth.envelope_weight(1e6)


def _fine_spread(y: np.ndarray) -> float:
    """Median over the bins from 200 Hz to 9 kHz of the standard deviation, from frame to frame, of each bin's
    level (natural log of its power) about its half-octave band's mean level: how much the bins move against
    their band."""
    level = np.log(np.abs(stft(y.astype(np.float64))) ** 2 + 1e-12)
    freqs = np.fft.rfftfreq(1024, 1 / SR)
    edges = 200 * 2 ** (np.arange(0, 5.5, 0.5))
    spreads = [np.std(level[m] - level[m].mean(axis=0), axis=1)
               for m in ((freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:]))]
    return float(np.median(np.concatenate(spreads)))


def test_a_noise_plays_its_bins_movement_against_their_bands(stepper, monkeypatch):
    """The phase plays the bins of a band moving against each other less than the frames hold them, more so
    than the bands' own movement; in a noise's bins that part is widened further (engine.synthesis.fine_spread),
    so a band noise's bins move against their bands as much as the style's (1.230 against 1.236 here; widened only
    as much as the rest, 1.138)."""
    own = _fine_spread(_noise((50, 10000), 6.0))
    widened = _played_noise(_fine_spread, stepper, monkeypatch)
    as_rest = _played_noise(_fine_spread, stepper, monkeypatch, fine=block_synth.PHASE_SPREAD_GAIN)
    print(f"bins' spread about their bands: style {own:.3f}, played {widened:.3f}, widened as the rest {as_rest:.3f}")
    assert abs(widened / own - 1.0) < 0.06
    assert as_rest < 0.94 * own


def _click_prominence_db(y: np.ndarray) -> float:
    """How far clicks stand out of the floor: the 95th percentile of the frames' level (dB of power)
    over its median."""
    level = 10 * np.log10((np.abs(stft(y.astype(np.float64))) ** 2).sum(axis=0) + 1e-12)
    return float(np.percentile(level, 95) - np.median(level))


def test_a_click_train_keeps_its_clicks(stepper):
    """Clicks over a quiet floor stand out of it in the texture too: new frames start from each bin's
    own distribution (quiet mostly, loud at times) and the bins' shared moves (a click lifts them all),
    :mod:`engine.synthesis.frame_noise`. Per-bin Gaussian noise played 4 dB against the style's 27."""
    style = click_train(6.0)
    library = StyleLibrary(CONFIG)
    library.add_audio(style, "clicks")
    audio = played(library, ParamStore(), stepper, 8.0)[0]
    heard, own = _click_prominence_db(audio[SR:]), _click_prominence_db(style)
    print(f"clicks over the floor: played {heard:.1f} dB, the style {own:.1f} dB")
    assert heard > own / 3


def _swell_depth_db(y: np.ndarray) -> float:
    """Standard deviation over time of the frame level (dB of mean power) smoothed over 0.25 s."""
    level = 10 * np.log10((np.abs(stft(y.astype(np.float64))) ** 2).mean(axis=0) + 1e-12)
    return float(np.std(np.convolve(level, np.ones(22) / 22, mode="valid")))


def test_the_trend_makes_slow_swells_that_frames_alone_cannot(stepper):
    """Swells of seconds (the seashore case): frames are in flight for 0.28 s, so only the slow
    trend can plan them. The bypass (noise frames under a noise trend) has almost none."""
    style = swells(8.0)
    depth = {i: _swell_depth_db(run[0][SR:]) for i, run in _bypassed_and_optimised(stepper, style, 12.0)[1].items()}
    print(f"swell depth: style {_swell_depth_db(style):.2f} dB, bypassed {depth[0]:.2f} dB, optimised {depth[1]:.2f} dB")
    assert depth[1] > 3.0 * depth[0]
    assert depth[1] > 0.5 * _swell_depth_db(style)


def test_a_moving_morph_rebuilds_the_blend_every_second_block_and_at_once_when_it_starts_and_rests(
        monkeypatch, stepper):
    """A rebuild of the blend costs about as much as the rest of a block (docs/EXPERIMENTS.md section 60), so while
    the weights move it is rebuilt every second block (``BLEND_REBUILD_BLOCKS``). The first block of a move rebuilds at once
    (no added latency), and so does the block the smoothed weights come to rest in (the final blend is the exact
    one). The real ``blend`` runs; the spy only records the weights it is given."""
    library = StyleLibrary(CONFIG)
    library.add_audio(_noise((200, 2000), 3.0), "low")
    library.add_audio(_noise((3000, 8000), 3.0, seed=2), "high")
    built: list[float] = []
    real_blend = block_synth.blend

    def spy(targets, weights):
        built.append(float(np.asarray(weights)[1]))
        return real_blend(targets, weights)

    monkeypatch.setattr(block_synth, "blend", spy)
    synth = BlockSynth(library, stepper, adaptive=False)
    synth.prepare(0)
    params = ParamStore()
    params.set("morph", 0.0)
    synth.warm_up(params.snapshot())
    rebuilt = []
    for block in range(40):
        if 5 <= block < 17:  # a fader moved over 12 blocks (0.14 s), then held
            params.set("morph", (block - 4) / 12)
        count = len(built)
        synth.process_block(params.snapshot())
        rebuilt.append(len(built) > count)
    synth.release()
    moving = np.nonzero(rebuilt[5:17])[0]  # blocks of the move that rebuilt, from its first
    print("rebuilt in blocks", np.nonzero(rebuilt)[0].tolist(), "weights", np.round(built, 4).tolist())
    assert not any(rebuilt[1:5])  # still: nothing to rebuild
    assert rebuilt[5] and moving.tolist() == [0, 2, 4, 6, 8, 10]  # every second block of the twelve
    assert 1 <= sum(rebuilt[17:]) <= 4 and not any(rebuilt[30:])  # the smoothing's tail, then rest
    assert built[-1] == pytest.approx(1.0, abs=1e-4)


def test_a_half_half_blend_is_one_hybrid_not_alternating_pieces(tmp_path, stepper):
    low, high = _noise((100, 800), 4.0), _noise((3000, 8000), 4.0, seed=1)
    library = StyleLibrary(CONFIG)
    a, b = library.add_audio(low, "low"), library.add_audio(high, "high")
    params = ParamStore()
    params.set_blend(a.slot_id, 0.5)
    params.set_blend(b.slot_id, 0.5)
    _, audio, _ = _render(tmp_path, library, params, 8.0, stepper=stepper)
    index = collage_index(audio[SR:-SR], low, high, 0.5, sample_rate=SR)
    print(f"collage index of a 50/50 blend {index:.2f}")
    assert index < 0.4
    params.set("material", 1.0)  # reading pieces of the two recordings is a collage, and the index says so
    params.set("iterations", 0)
    _, pieces, _ = _render(tmp_path, library, params, 8.0, stepper=stepper, name="pieces.wav")
    assert collage_index(pieces[SR:-SR], low, high, 0.5, sample_rate=SR) > 0.6


@pytest.mark.parametrize("load, wanted, cap, expected", [
    (0.95, 1, 32, (0, True)),   # overloaded at one step a block: down to the bare initialisation
    (0.8, 1, 32, (32, False)),  # busy, but one step a block still keeps real time
    (0.9, 0, 32, (32, False)),  # nothing left to drop
    (0.9, 8, 3, (2, True)),
    (0.1, 8, 0, (1, False)),    # recovers one step at a time
    (0.45, 8, 4, (4, False)),
])
def test_adaptive_quality_policy(load, wanted, cap, expected):
    assert adapt_cap(cap, wanted, load) == expected


@pytest.mark.slow
def test_minutes_with_random_changes_stay_finite_and_bounded(tmp_path, stepper):
    library = StyleLibrary(CONFIG)
    library.add_default()
    pool = [bursts_and_drone(3.0, seed=1), _noise((200, 2000), 3.0), _noise((3000, 8000), 3.0, seed=2)]
    params = ParamStore()
    rng = np.random.default_rng(0)
    peaks, bad = [], []
    engine = Engine(library, params, stepper, NullSink(SR), adaptive=False)

    def check(y: np.ndarray) -> None:
        if not np.all(np.isfinite(y)):
            bad.append(len(peaks))
        peaks.append(float(np.max(np.abs(y))) if len(y) else 0.0)

    def change(_: int) -> None:
        r = rng.random()
        if r < 0.05 and len(library.slots) < 4:
            library.add_audio(pool[int(rng.integers(len(pool)))], "pool")
        elif r < 0.08 and len(library.slots) > 1:
            library.remove(library.ids()[int(rng.integers(len(library.slots)))])
        elif r < 0.4:
            params.set_blend(int(rng.choice(library.ids())), float(rng.random()))
        elif r < 0.6:
            params.set("morph", float(rng.random()))
        elif r < 0.8:
            params.set("receptive_field", float(rng.random()))
        elif r < 0.85:
            params.set("freeze", float(rng.random() < 0.5))
        elif r < 0.9:
            params.set("variation", int(rng.integers(1000)))
        else:
            params.set("iterations", int(rng.integers(0, 5)))  # up to 4 steps a block keeps the run short

    # As much audio as this machine renders in about 4 minutes, at most 10 minutes of it: the length
    # follows from the engine's measured speed, not from a fast machine's.
    probe = engine.render(5.0)
    seconds = float(np.clip(240.0 * probe.realtime_factor, 60.0, 600.0))
    print(f"probe real-time factor {probe.realtime_factor:.2f}: soaking {seconds:.0f} s of audio")
    engine.taps.append(check)
    stats = engine.render(seconds, progress=change)
    assert stats.seconds == pytest.approx(seconds, abs=1e-3)
    assert not bad
    assert max(peaks) <= 1.0 and np.mean(peaks) > 0.01
    assert np.isfinite(stats.mean_loss)


def test_a_gain_move_is_heard_after_the_device_latency_only(jack_server, stepper):
    library = StyleLibrary(CONFIG)
    library.add_default()
    params = ParamStore()
    params.set("gain", 1.0)
    played, changed_at, engine = _play_with_a_change(library, params, stepper, lambda: params.set("gain", 0.1),
                                                     after=1.0)
    sink = engine.sink
    stated = sink.device_latency_seconds + 0.05  # device latency, 10 ms measurement frames, scheduling jitter
    frame = sink.rate // 100
    n = len(played) // frame
    rms = np.sqrt(np.mean(played[:n * frame].reshape(n, frame) ** 2, axis=1))
    start = changed_at // frame
    level = 0.55 * rms[start - 50:start].mean()  # half-way between the old and the new level
    dropped = np.nonzero(rms[start:] < level)[0]
    assert len(dropped), "the gain change never became audible"
    latency = dropped[0] * frame / sink.rate
    print(f"gain change audible after {latency * 1000:.0f} ms (stated bound {stated * 1000:.0f} ms)")
    assert latency <= stated


class _StuckSink(NullSink):
    """A null sink whose ``write`` hangs, deaf to the stop, until ``free`` is set (a device that does not return)."""

    def __init__(self) -> None:
        super().__init__()
        self.free, self.entered = threading.Event(), threading.Event()
        self.released = False

    def write(self, samples, stop=None) -> None:
        self.entered.set()
        self.free.wait(60)
        super().write(samples, stop)

    def release(self, *, complete: bool = True) -> None:
        self.released = True
        super().release(complete=complete)


def test_stop_releases_nothing_a_producer_that_has_not_ended_still_uses(stepper):
    """A stop whose wait runs out leaves the sink and the synthesiser to the running producer: it
    finishes its blocks and fade without an error, and a later stop releases them."""
    library = StyleLibrary(CONFIG)
    library.add_default()
    sink = _StuckSink()
    engine = Engine(library, ParamStore(), stepper, sink)
    engine.start()
    assert sink.entered.wait(30)
    assert engine.stop(timeout=0.2) is False
    assert engine.running and not sink.released
    sink.free.set()
    assert engine.stop(timeout=30) is True
    assert not engine.running and sink.released and engine.telemetry().error is None
