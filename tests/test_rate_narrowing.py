"""Rate narrowing: a band envelope's movement split by rate, and each rate narrowed to the style's in what is
played, through the real phase, on the half-octave bands and on the twelfth-octave ones (only their slow parts over
2 kHz); the split streams as at once."""
import numpy as np

from engine.analysis import trend as tr
from engine.analysis.envelope_rates import RATE_SECONDS, RateSplit, rate_movement
from engine.analysis.spectral import SpectralConfig, _spectra
from engine.synthesis.phase import StreamingPhase
from engine.synthesis.rate_narrowing import FINE_FAST_PARTS, MIN_RATE_GAIN, RateNarrowing, fine_parts

SPEC = SpectralConfig()
EMAP, FINE = SPEC.envelope_map().astype(np.float64), SPEC.fine_envelope_map().astype(np.float64)
FRAME = SPEC.hop / SPEC.sample_rate
#: Frames a block in these streams, and the block's duration in seconds.
FRAMES = 4
BLOCK = FRAMES * FRAME
#: The band whose level flickers, and by how much from frame to frame (log1p units, standard deviation).
BAND, MOVE = 5, 1.0
#: Each bin's share of the flicker: band ``BAND``'s bins all of it.
LIFT = (EMAP[BAND] > 0).astype(np.float64)
#: Two pairs of neighbouring twelfth-octave bands, at 1.0 and 1.06 kHz and at 2.26 and 2.40 kHz.
LOW_PAIR, HIGH_PAIR = [52, 53], [66, 67]


def _opposed(pair: list[int]) -> tuple[np.ndarray, int]:
    """Each bin's share of a flicker in which ``pair``'s bins (those each band weighs most) move in opposition, scaled
    so that the half-octave band holding them does not move; and that band."""
    owner = np.argmax(FINE, axis=0)
    lift = (owner == pair[0]) - (owner == pair[1]) * 1.0
    half = int(np.argmax(EMAP @ np.abs(lift)))
    lift[lift < 0] *= EMAP[half] @ (lift > 0) / (EMAP[half] @ (lift < 0))
    return lift, half


def test_the_parts_add_up_to_the_envelope_less_its_slowest_mean_and_stream_as_at_once():
    rng = np.random.default_rng(0)
    envelopes = rng.standard_normal((3, 500)).cumsum(axis=1)
    whole = RateSplit(FRAME).process(envelopes)
    assert whole.shape == (len(RATE_SECONDS), 3, 500)
    slowest = envelopes.copy()
    for seconds in RATE_SECONDS:  # the cascade written out frame by frame
        alpha, mean = 1.0 / (1.0 + seconds / FRAME), slowest[:, 0].copy()
        for t in range(500):
            mean += alpha * (slowest[:, t] - mean)
            slowest[:, t] = mean
    np.testing.assert_allclose(whole.sum(axis=0), envelopes - slowest, atol=1e-9)
    split, pieces, start = RateSplit(FRAME), [], 0
    for size in (1, 7, 100, 3, 389):
        pieces.append(split.process(envelopes[:, start:start + size]))
        start += size
    np.testing.assert_allclose(np.concatenate(pieces, axis=2), whole, atol=1e-12)
    split.reset()
    np.testing.assert_allclose(split.process(envelopes), whole, atol=1e-12)


def test_a_flicker_moves_the_fast_parts_and_a_drift_the_slow_ones():
    """A band whose level is a sine of 8 Hz has most of its movement in the two fastest parts; one of 0.4 Hz has
    more in the slowest than twice any other's (one-pole means overlap); a still band has none."""
    t = np.arange(4000) * FRAME
    envelopes = np.stack([np.sin(2 * np.pi * 8.0 * t), np.sin(2 * np.pi * 0.4 * t), np.zeros_like(t)])
    movement = rate_movement(envelopes, FRAME)
    assert movement.shape == (len(RATE_SECONDS), 3)
    assert movement[:2, 0].sum() > 3 * movement[2:, 0].sum()
    assert movement[-1, 1] > 2 * movement[:-1, 1].max()
    np.testing.assert_array_equal(movement[:, 2], 0.0)


def _stream(movement: np.ndarray | None, blocks: int = 1000, bands: np.ndarray = EMAP, lift: np.ndarray = LIFT,
            spread_map: np.ndarray | None = None, parts: np.ndarray | None = None) -> tuple[np.ndarray, RateNarrowing]:
    """Frames of log1p magnitude 3 in every bin, each bin lifted or lowered by its ``lift`` times an independent
    N(0, MOVE) each frame, through :class:`RateNarrowing` on ``bands`` (narrowing ``parts``) towards ``movement``
    (spread by ``spread_map``) and the real streaming phase."""
    rng = np.random.default_rng(1)
    phase = StreamingPhase(n_fft=SPEC.n_fft, hop=SPEC.hop, look_ahead=1, iterations=4)
    phase.prepare()
    narrowing = RateNarrowing(bands, n_fft=SPEC.n_fft, hop=SPEC.hop, block_seconds=BLOCK, frame_seconds=FRAME,
                              parts=parts)
    out = []
    for _ in range(blocks):
        frames = np.full((SPEC.n_bins, FRAMES), 3.0) + 0.05 * rng.standard_normal((SPEC.n_bins, FRAMES))
        frames += lift[:, None] * MOVE * rng.standard_normal(FRAMES)
        samples = phase.process(np.expm1(np.maximum(narrowing.process(frames, movement, 1.0, spread_map), 0.0)))
        narrowing.observe(samples, np.ones(SPEC.n_bins))
        out.append(samples)
    return np.concatenate(out), narrowing


def _played(y: np.ndarray, bands: np.ndarray = EMAP) -> np.ndarray:
    """Each of ``bands``' movement per rate part in ``y`` after its first 20 s, ``(rates, bands)``."""
    y = y[20 * SPEC.sample_rate:]
    count = (len(y) - SPEC.n_fft) // SPEC.hop + 1
    return rate_movement(bands @ np.log1p(np.abs(_spectra(y, count, n_fft=SPEC.n_fft, hop=SPEC.hop))), FRAME)


def test_a_band_that_flickers_more_than_its_style_is_narrowed_to_it_rate_by_rate():
    """Asked for half the movement the flickering band plays in its two fastest parts, and for what it plays in the
    slower ones, the two fastest come within 20 % of that; the slower ones are not narrowed (their gains stay 1) and
    play no more than before (less: some of their movement was the flicker's, through the log of the overlap-add);
    every other band is left alone."""
    plain, _ = _stream(None)
    before = _played(plain)
    wanted = np.full_like(before, 10.0)  # the other bands' styles move more than they play: no narrowing
    wanted[:, BAND] = before[:, BAND] * np.array([0.5, 0.5, 1.0, 1.0])
    narrowed, narrowing = _stream(wanted)
    after = _played(narrowed)
    print("band", BAND, "played per part", before[:, BAND].round(3), "narrowed", after[:, BAND].round(3),
          "gains", narrowing.gains[:, BAND].round(2))
    np.testing.assert_allclose(after[:2, BAND], wanted[:2, BAND], rtol=0.2)
    assert np.all(after[2:, BAND] < 1.02 * before[2:, BAND])
    assert np.all(narrowing.gains[:2, BAND] < 0.8) and np.all(narrowing.gains[2:, BAND] == 1.0)
    assert np.all(np.delete(narrowing.gains, BAND, axis=1) == 1.0)


def test_a_band_that_moves_less_than_its_style_is_left_alone_and_prepare_starts_afresh():
    """Asked for more movement than anything plays, nothing is widened: the samples are those of no narrowing at all.
    After :meth:`prepare` the narrowing waits for what is played again."""
    plain, _ = _stream(None, blocks=300)
    wanted = np.full((len(RATE_SECONDS), SPEC.envelope_map().shape[0]), 10.0)
    same, narrowing = _stream(wanted, blocks=300)
    np.testing.assert_array_equal(plain, same)
    assert np.all(narrowing.gains == 1.0)
    narrowing.prepare()
    frames = np.full((SPEC.n_bins, FRAMES), 3.0)
    np.testing.assert_array_equal(narrowing.process(frames, np.zeros_like(wanted)), frames.astype(np.float32))


def test_nothing_is_narrowed_where_the_engine_keeps_none_of_the_frames():
    """``keep`` 0 (frames all partials or all material): the frames pass as they are, however much more they move
    than the style; at ``keep`` 1 the same frames are narrowed."""
    wanted = np.full((len(RATE_SECONDS), SPEC.envelope_map().shape[0]), 0.01)
    _, narrowing = _stream(wanted, blocks=100)
    frames = 3.0 + np.random.default_rng(3).standard_normal((SPEC.n_bins, FRAMES))
    np.testing.assert_allclose(narrowing.process(frames, wanted, 0.0), frames, rtol=1e-6)
    assert np.all(narrowing.gains == 1.0)
    assert not np.allclose(narrowing.process(frames, wanted, 1.0), frames, rtol=1e-3)
    assert narrowing.gains[0, BAND] == MIN_RATE_GAIN


def test_twelfth_octave_bands_that_flicker_in_opposition_are_narrowed_where_their_half_octave_band_is_still():
    """Two pairs of neighbouring twelfth-octave bands that flicker in opposition leave their half-octave bands still
    (what the half-octave stage measures hardly moves). Asked for half their fast movement, the fine stage brings the
    pair under 2 kHz to 0.4-0.7 of it through the fine map's level spread (not of full rank; neighbouring bands share
    bins); the pair over it keeps its fast parts (their gains stay 1), and no other band is narrowed."""
    (low, low_half), (high, high_half) = _opposed(LOW_PAIR), _opposed(HIGH_PAIR)
    spread = tr.level_spread_map(FINE, np.full(SPEC.n_bins, 3.0), rcond=tr.RANK_DEFICIENT_RCOND)
    plain, _ = _stream(None, blocks=800, bands=FINE, lift=low + high)
    before, halves = _played(plain, FINE), _played(plain)
    for pair, half in ((LOW_PAIR, low_half), (HIGH_PAIR, high_half)):
        assert np.all(halves[:2, half] < 0.3 * before[:2, pair].min(axis=1))
    wanted = np.full_like(before, 10.0)
    both = LOW_PAIR + HIGH_PAIR
    wanted[:, both] = before[:, both] * np.array([0.5, 0.5, 1.0, 1.0])[:, None]
    narrowed, narrowing = _stream(wanted, blocks=800, bands=FINE, lift=low + high, spread_map=spread,
                                  parts=fine_parts(SPEC.fine_centres_hz()))
    after = _played(narrowed, FINE)
    print("pairs played", before[:2, both].round(3), "narrowed", after[:2, both].round(3),
          "gains", narrowing.gains[:, both].round(2))
    assert np.all(after[:2, LOW_PAIR] < 0.7 * before[:2, LOW_PAIR])  # asked for 0.5: the bands share bins
    assert np.all(after[:2, LOW_PAIR] > 0.4 * before[:2, LOW_PAIR])
    assert np.all(narrowing.gains[:2, LOW_PAIR] < 0.8)
    assert np.all(narrowing.gains[:FINE_FAST_PARTS, HIGH_PAIR] == 1.0)
    assert np.all(after[:2, HIGH_PAIR] > 0.8 * before[:2, HIGH_PAIR])
    assert np.all(np.delete(narrowing.gains, both, axis=1) == 1.0)
