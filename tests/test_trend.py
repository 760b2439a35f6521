"""The trend's spread map: a band's move reaches its bins by their level (pure numpy)."""
import numpy as np
import pytest

from engine.analysis import trend as tr
from engine.errors import ParameterError
from engine.synthesis.step_graph import live_config


def test_a_level_spread_moves_each_band_exactly_and_leaves_silent_bins_alone():
    emap = live_config(44100).spectral.envelope_map()
    even = tr.band_spread_map(emap)
    level = np.ones(emap.shape[1])
    level[-300:] = 0.0  # a style silent in the top 300 bins (above 15.6 kHz at 44.1 kHz)
    weighted = tr.level_spread_map(even, emap, level)
    bands = np.arange(1.0, emap.shape[0] + 1)
    np.testing.assert_allclose(emap @ weighted @ bands, bands, rtol=1e-4)
    np.testing.assert_allclose(emap @ even @ bands, bands, rtol=1e-4)
    top = emap.shape[0] - 1
    assert np.abs(even[-300:, top]).max() > 0.5  # the even spread lifts the silent bins as much as the rest
    assert np.abs(weighted[-300:, top]).max() < 1e-3 * np.abs(weighted[:-300, top]).max()


def test_a_level_spread_needs_one_level_per_bin():
    emap = live_config(22050).spectral.envelope_map()
    with pytest.raises(ParameterError, match="one per bin"):
        tr.level_spread_map(tr.band_spread_map(emap), emap, np.ones(10))
