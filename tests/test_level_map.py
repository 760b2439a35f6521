"""Each bin's levels: measured as percentiles (engine/analysis/levels.py) and the committed frames mapped to
them (engine/synthesis/level_map.py)."""
from __future__ import annotations

import numpy as np

from engine.analysis.levels import LEVELS, level_percentiles
from engine.synthesis.level_map import LEVEL_SECONDS, LevelMap

FRAME_SECONDS = 512 / 44100


def _style(bins: int = 64, frames: int = 4000, seed: int = 0) -> np.ndarray:
    """Skewed levels, a different scale in each bin."""
    rng = np.random.default_rng(seed)
    return (rng.gamma(2.0, 0.5, (bins, frames)) * np.linspace(0.5, 2.0, bins)[:, None]).astype(np.float32)


def _fed(lm: LevelMap, draw, blocks: int, frames: int = 2) -> np.ndarray:
    """What ``lm`` makes of ``blocks`` blocks of ``draw(frames)``, the blocks side by side."""
    return np.concatenate([lm.process(draw(frames)) for _ in range(blocks)], axis=1)


def test_percentiles_are_each_bins_quietest_to_loudest():
    style = _style()
    q = level_percentiles(style)
    assert q.shape == (style.shape[0], LEVELS)
    np.testing.assert_allclose(q[:, 0], style.min(axis=1))
    np.testing.assert_allclose(q[:, -1], style.max(axis=1))
    np.testing.assert_allclose(q[:, 50], np.median(style, axis=1), rtol=1e-5)
    assert np.all(np.diff(q, axis=1) >= 0)


def test_the_map_starts_as_the_identity():
    """Before it has heard anything, the estimate is the style's own distribution: frames of the style
    come back as they are (up to what hearing them moves, the most in the sparse loudest percentiles)."""
    style = _style()
    lm = LevelMap(FRAME_SECONDS)
    lm.retarget(level_percentiles(style))
    frames = _style(seed=1)[:, :2]
    frames = np.clip(frames, style.min(axis=1, keepdims=True), style.max(axis=1, keepdims=True))
    span = (style.max(axis=1) - style.min(axis=1))[:, None]
    assert np.max(np.abs(lm.process(frames) - frames) / span) < 0.05


def test_frames_of_another_distribution_get_the_styles_levels_in_their_own_order():
    """Frames that are Gaussian about the wrong level, clipped at 0 in a quarter of them (as a narrow band
    under its trend can be), play the style's skewed levels once the estimate has heard them, and a louder
    frame stays the louder one."""
    style = _style()
    q = level_percentiles(style)
    lm = LevelMap(FRAME_SECONDS)
    lm.retarget(q)
    rng = np.random.default_rng(2)
    draw = lambda n: np.maximum(rng.normal(0.3, 0.5, (style.shape[0], n)), 0.0)  # noqa: E731
    blocks = int(3 * LEVEL_SECONDS / FRAME_SECONDS / 2)
    _fed(lm, draw, blocks)
    out = _fed(lm, draw, 1000)
    assert np.mean(out == 0.0) == 0.0  # never below the style's quietest frame
    for p in (5, 25, 50, 75, 95):
        got, want = np.percentile(out, p, axis=1), np.percentile(style, p, axis=1)
        assert np.median(np.abs(got - want) / (q[:, -1] - q[:, 0])) < 0.03, p
    louder = lm.process(np.sort(draw(50), axis=1))  # one block: one state of the estimate
    assert np.all(np.diff(louder, axis=1) >= 0.0)


def test_a_retarget_carries_what_was_heard_over():
    """Retargeted to the same levels the map is unchanged; to levels 0.1 louder, it plays 0.1 louder (what
    it has heard is the frames' distribution, which the new levels do not move)."""
    style = _style()
    q = level_percentiles(style)
    rng = np.random.default_rng(3)
    draw = lambda n: np.maximum(rng.normal(0.3, 0.5, (style.shape[0], n)), 0.0)  # noqa: E731
    maps = []
    for shift in (None, 0.0, 0.1):
        lm = LevelMap(FRAME_SECONDS)
        lm.retarget(q)
        rng = np.random.default_rng(3)
        _fed(lm, draw, 3000)
        if shift is not None:
            lm.retarget(q + shift)
        maps.append(lm.process(np.full((style.shape[0], 1), 0.4)))
    np.testing.assert_allclose(maps[1], maps[0], atol=1e-3)
    np.testing.assert_allclose(maps[2], maps[0] + 0.1, atol=0.01)


def test_a_spread_gain_widens_what_plays():
    """With ``spread_gain`` 1.5 the levels mapped to are the style's widened about each bin's mean by 1.5:
    the spread played is 1.5 times the style's."""
    style = _style()
    q = level_percentiles(style)
    spreads = []
    for gain in (1.0, 1.5):
        lm = LevelMap(FRAME_SECONDS)
        lm.retarget(q)
        rng = np.random.default_rng(4)
        out = np.concatenate([lm.process(rng.normal(1.0, 0.2, (style.shape[0], 2)), gain) for _ in range(6000)], axis=1)
        spreads.append(np.std(out[:, -3000:], axis=1))
    np.testing.assert_allclose(np.median(spreads[0] / np.std(style, axis=1)), 1.0, rtol=0.05)
    np.testing.assert_allclose(np.median(spreads[1] / spreads[0]), 1.5, rtol=0.05)
