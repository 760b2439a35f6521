"""Band movement: each band's level moves in what is played as much as in the style, through the real phase."""
import numpy as np
import pytest

from engine.analysis.spectral import SpectralConfig, StreamMagnitudes, _spectra
from engine.synthesis.band_movement import MAX_MOVEMENT_GAIN, BandMovement
from engine.synthesis.phase import StreamingPhase

SPEC = SpectralConfig()
#: Frames a block in these streams, and the block's duration in seconds.
FRAMES = 4
BLOCK = FRAMES * SPEC.hop / SPEC.sample_rate
#: The band whose level moves, and by how much from frame to frame (log1p units, standard deviation).
BAND, MOVE = 5, 1.0


def _stream(movement: np.ndarray | None, blocks: int = 1200) -> tuple[np.ndarray, BandMovement, float]:
    """Frames of log1p magnitude 3 in every bin, band ``BAND``'s bins all lifted or lowered together by an
    independent N(0, MOVE) each frame, through :class:`BandMovement` towards ``movement`` and the real streaming
    phase; the samples, the movement object and the frames' own movement of band ``BAND`` (before the phase)."""
    emap = SPEC.envelope_map().astype(np.float64)
    rng = np.random.default_rng(1)
    phase = StreamingPhase(n_fft=SPEC.n_fft, hop=SPEC.hop, look_ahead=1, iterations=4)
    phase.prepare()
    moving = BandMovement(emap, n_fft=SPEC.n_fft, hop=SPEC.hop, block_seconds=BLOCK)
    in_band = emap[BAND] > 0
    out, held = [], []
    for _ in range(blocks):
        frames = np.full((SPEC.n_bins, FRAMES), 3.0) + 0.05 * rng.standard_normal((SPEC.n_bins, FRAMES))
        frames[in_band] += MOVE * rng.standard_normal(FRAMES)
        held.append(emap[BAND] @ frames)
        samples = phase.process(np.expm1(np.maximum(moving.process(frames, movement), 0.0)))
        moving.observe(samples, np.ones(SPEC.n_bins))
        out.append(samples)
    return np.concatenate(out), moving, float(np.std(np.concatenate(held)))


def _played_movement(y: np.ndarray) -> np.ndarray:
    """Each band's movement in ``y`` (its envelope's standard deviation over frames), after the first 20 s."""
    emap = SPEC.envelope_map().astype(np.float64)
    y = y[20 * SPEC.sample_rate:]
    count = (len(y) - SPEC.n_fft) // SPEC.hop + 1
    return np.std(emap @ np.log1p(np.abs(_spectra(y, count, n_fft=SPEC.n_fft, hop=SPEC.hop))), axis=1)


def test_a_band_the_phase_plays_moving_less_than_its_style_is_widened_to_it():
    """Band 5's level jumps from frame to frame; the phase's overlap-add plays it moving less than the frames
    do. Asked for the frames' own movement, the band's widening brings the played movement within 10 % of it."""
    plain, _, held = _stream(None)
    wanted = np.zeros(SPEC.envelope_map().shape[0])
    wanted[BAND] = held
    widened, moving, _ = _stream(wanted)
    before, after = _played_movement(plain)[BAND], _played_movement(widened)[BAND]
    print(f"band {BAND} movement: frames {held:.3f}, played {before:.3f}, widened {after:.3f}; "
          f"widening {moving.widening[BAND]:.2f}")
    assert before < 0.9 * held
    assert after == pytest.approx(held, rel=0.1)
    assert 1.0 < moving.widening[BAND] <= MAX_MOVEMENT_GAIN
    assert np.all(np.delete(moving.widening, BAND) == 1.0)  # the still bands are left alone


def test_a_band_that_already_moves_as_much_as_its_style_is_left_alone():
    """Asked for less movement than it plays, band 5 is not narrowed (the widening is never below 1)."""
    wanted = np.zeros(SPEC.envelope_map().shape[0])
    wanted[BAND] = 0.1 * MOVE
    plain, _, _ = _stream(None, blocks=300)
    same, moving, _ = _stream(wanted, blocks=300)
    assert np.all(moving.widening == 1.0)
    np.testing.assert_array_equal(plain, same)


def test_stream_magnitudes_equal_the_whole_signals_frames_whatever_the_blocks():
    """Blocks of any length, one channel or two, give the frames of the whole signal (uncentred, every hop)."""
    rng = np.random.default_rng(2)
    y = rng.standard_normal((20000, 2))
    frames = StreamMagnitudes(n_fft=SPEC.n_fft, hop=SPEC.hop)
    got, start = [[], []], 0
    for size in rng.integers(1, 3000, 40):
        for c, m in enumerate(frames.process(y[start:start + size])):
            got[c].append(m)
        start += size
        if start >= len(y):
            break
    count = (min(start, len(y)) - SPEC.n_fft) // SPEC.hop + 1
    for c in range(2):
        whole = np.abs(_spectra(np.ascontiguousarray(y[:, c]), count, n_fft=SPEC.n_fft, hop=SPEC.hop))
        np.testing.assert_allclose(np.concatenate(got[c], axis=1), whole, rtol=1e-12, atol=1e-9)
    assert frames.process(y[:10, 0]) == []  # a change of channel count starts afresh, short of a frame
