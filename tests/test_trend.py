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
    weighted = tr.level_spread_map(emap, level)
    bands = np.arange(1.0, emap.shape[0] + 1)
    np.testing.assert_allclose(emap @ weighted @ bands, bands, rtol=1e-4)
    np.testing.assert_allclose(emap @ even @ bands, bands, rtol=1e-4)
    top = emap.shape[0] - 1
    assert np.abs(even[-300:, top]).max() > 0.5  # the even spread lifts the silent bins as much as the rest
    assert np.abs(weighted[-300:, top]).max() < 1e-3 * np.abs(weighted[:-300, top]).max()


def test_a_level_spread_needs_one_level_per_bin():
    emap = live_config(22050).spectral.envelope_map()
    with pytest.raises(ParameterError, match="one per bin"):
        tr.level_spread_map(emap, np.ones(10))


def test_spread_coupling_measures_how_the_residual_widens_with_its_trend():
    rng = np.random.default_rng(5)
    n = 20000
    u = np.sin(np.arange(n) * 2 * np.pi / 400)[None, :].repeat(4, axis=0) * 0.3  # the trend's offsets, log1p
    unit = u / u.std(axis=1, keepdims=True)
    gamma = np.array([0.3, -0.2, 0.0, 0.0])
    g = rng.standard_normal((4, n)) * np.exp(gamma[:, None] * unit - gamma[:, None] ** 2)
    u[3] = 0.0  # a bin the trend never moves
    measured, sd = tr.spread_coupling(g, u)
    assert abs(measured[0] - 0.3) < 0.05 and abs(measured[1] + 0.2) < 0.05, measured
    assert abs(measured[2]) < 0.03 and measured[3] == 0.0 and sd[3] == 0.0
    assert np.allclose(sd[:3], 0.3 / np.sqrt(2), rtol=0.01)
    wild = tr.spread_coupling(g * np.exp(3.0 * unit), u)[0]  # far beyond the model: held at the bound
    assert wild[0] == pytest.approx(tr.MAX_SPREAD_COUPLING)
    # the factor the engine spreads new frames by keeps unit power on average, and 1 where the trend is still
    factor = tr.coupled_spread(measured, sd, u)
    assert abs(float((factor[0] ** 2).mean()) - 1.0) < 0.05 and np.all(factor[3] == 1.0)
    assert factor[0, 100] > 1.2 > 0.8 > factor[0, 300]  # the trend's crest (t = 100) and trough (t = 300)


def test_a_level_spread_of_the_fine_bands_moves_each_band_and_stays_bounded_where_bands_share_bins():
    """The twelfth-octave bands share bins below a few hundred Hz (the map is not of full rank): with
    ``rcond`` every move the bands can make comes back exactly, and no bin moves more than a few times its band's
    change, even where a style is silent; the sparse map gives the same spread."""
    fine = live_config(44100).spectral.fine_envelope_map().astype(np.float64)
    assert np.linalg.matrix_rank(fine) < fine.shape[0]
    level = np.full(fine.shape[1], 2.0)
    level[:8] = 0.0  # a style silent under 170 Hz
    spread = tr.level_spread_map(fine, level, rcond=tr.RANK_DEFICIENT_RCOND).astype(np.float64)
    moves = fine @ np.random.default_rng(4).standard_normal((fine.shape[1], 5))  # what bins moving can do to bands
    np.testing.assert_allclose(fine @ spread @ moves, moves, atol=1e-4)
    assert np.abs(spread).max() < 10.0
    # the engine passes the map sparse (each band reads a few bins): the same spread
    np.testing.assert_allclose(tr.level_spread_map(tr.sparse_map(fine), level, rcond=tr.RANK_DEFICIENT_RCOND), spread,
                               rtol=1e-5, atol=1e-5)
