"""A spectrogram's copula (each bin's distribution, the bins' shared factors: engine.analysis.copula) and
the new frames drawn from it (engine.synthesis.frame_noise)."""
import numpy as np
import torch
from scipy.stats import skew

from engine.analysis import copula as cp
from engine.analysis import targets
from engine.analysis.spectral import log_magnitude, stft
from engine.analysis.targets import StyleTarget, compute_target
from engine.synthesis.frame_noise import FrameNoise, carried_factor_persistence, carried_persistence
from engine.synthesis.step_graph import live_config
from tests.signals import bursts_and_drone, harmonic_tone


def _ar1(rng: np.random.Generator, rho: float, n: int) -> np.ndarray:
    x = rng.standard_normal(n)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + np.sqrt(1 - rho * rho) * x[t]
    return x


def test_quantiles_keep_a_skewed_bins_shape_standardised():
    rng = np.random.default_rng(0)
    z = np.stack([rng.exponential(size=4000), rng.standard_normal(4000), np.full(4000, 3.0)])
    q = cp.marginal_quantiles(z)
    assert q.shape == (3, cp.QUANTILE_LEVELS)
    assert np.allclose(q.mean(axis=1), 0.0, atol=1e-5) and np.allclose(q.std(axis=1), 1.0, atol=1e-5)
    mid = q[:, cp.QUANTILE_LEVELS // 2]
    assert q[0, -1] - mid[0] > 2.0 * (mid[0] - q[0, 0])  # a long upper tail: quiet mostly, loud at times
    assert abs((q[1, -1] - mid[1]) - (mid[1] - q[1, 0])) < 0.3  # a Gaussian bin stays symmetric
    assert np.allclose(q[2], q[1], atol=0.2)  # a bin that never moves has no shape of its own: Gaussian


def test_gaussian_scores_are_unit_gaussian_and_the_quantiles_map_them_back():
    rng = np.random.default_rng(1)
    z = rng.exponential(size=(2, 3000))
    z[:, :600] = 0.0  # a fifth of the frames at the floor: ties share their rank
    z = (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)
    q = cp.marginal_quantiles(z)
    g = cp.gaussian_scores(z)
    assert abs(g.mean()) < 0.05 and 0.9 < g.std() <= 1.0  # the tied fifth at one score takes a little spread
    assert np.allclose(g[:, :600], g[0, 0]) and abs(g[0, 0] - (-1.28)) < 0.05  # the floor: its mean rank, 10 %
    inside = (z > q[:, :1]) & (z < q[:, -1:])
    assert inside.mean() > 0.95
    back = cp.from_gaussian(g, q)
    # back to the values, up to the interpolation between quantiles (coarse in the long upper tail)
    assert np.median(np.abs(back - z)[inside]) < 0.03 and np.corrcoef(back.ravel(), z.ravel())[0, 1] > 0.99


def test_requantile_moves_values_to_other_distributions_keeping_their_order():
    """What a blend change does to the in-flight frames (engine.synthesis.block_synth.restandardise)."""
    rng = np.random.default_rng(4)
    skewed = cp.marginal_quantiles(rng.exponential(size=(3, 5000)))
    gauss = cp.marginal_quantiles(rng.standard_normal((3, 5000)))
    z = cp.from_gaussian(rng.standard_normal((3, 4000)), skewed)
    moved = cp.requantile(z, skewed, gauss)
    assert np.all(skew(z, axis=1) > 1.0) and np.all(np.abs(skew(moved, axis=1)) < 0.2)
    assert np.allclose(moved.std(axis=1), 1.0, atol=0.1)
    assert np.all(np.diff(moved[0][np.argsort(z[0])]) >= -1e-6)  # the order of the values stays
    assert np.allclose(cp.requantile(z, skewed, skewed), z, atol=1e-4)


def test_shared_factors_find_what_bins_share_and_how_long_it_lasts():
    rng = np.random.default_rng(2)
    n = 20000
    common = _ar1(rng, 0.9, n)
    share = np.linspace(0.1, 0.8, 40)  # bins 0-39 share one slow factor, bins 40-79 share nothing
    g = np.vstack([np.sqrt(share)[:, None] * common + np.sqrt(1 - share)[:, None] * rng.standard_normal((40, n)),
                   rng.standard_normal((40, n))])
    loadings, persistence = cp.shared_factors(g, rank=3)
    assert loadings.shape == (80, 3) and persistence.shape == (3,)
    assert np.allclose(loadings[:40, 0] ** 2, share, atol=0.05)
    assert np.abs(loadings[40:, 0]).max() < 0.1
    assert abs(persistence[0] - 0.9) < 0.1
    assert (loadings[:, 1:] ** 2).sum(axis=1).mean() < 0.05  # the rest is the estimate's noise
    same = np.repeat(rng.standard_normal((1, 2000)), 5, axis=0)  # bins that always move together
    loadings, _ = cp.shared_factors(same, rank=2)
    assert np.allclose((loadings ** 2).sum(axis=1), cp.MAX_SHARED, atol=1e-4)  # each keeps some noise of its own


def test_silent_bins_take_no_part_in_the_shared_factors(monkeypatch):
    """A 22.05 kHz style at 44.1 kHz: the top half of its bins holds only numerical noise, which by rank weighs
    as much as the sounding bins' values (two of rain's 16 factors lived there)."""
    config = live_config(44100)
    net, fmap = config.build_network(), config.spectral.feature_map()
    rng = np.random.default_rng(3)
    bins, n = config.spectral.n_bins, 600
    half = bins // 2
    s = np.empty((bins, n), np.float32)
    s[:half] = 1.0 + 0.3 * (0.6 * _ar1(rng, 0.5, n) + 0.8 * rng.standard_normal((half, n)))
    s[half:] = 1e-5 * (1.0 + 0.5 * _ar1(rng, 0.98, n) + 0.1 * rng.standard_normal((bins - half, n)))

    def shares(level: float) -> tuple[float, float]:
        monkeypatch.setattr(cp, "SILENT_LEVEL", level)
        squared = compute_target(s, net, fmap, lags=config.lags).loadings.numpy() ** 2
        return squared[:half].sum(axis=1).mean(), squared[half:].sum(axis=1).mean()

    sounding, silent = shares(cp.SILENT_LEVEL)
    assert silent == 0.0 and sounding > 0.25  # the sounding bins' shared move is found, the silence has none
    assert shares(0.0)[1] > 0.5  # what it would be without the rule: the numerical noise's common drift


def _target(quantiles: np.ndarray, loadings: np.ndarray, persistence: np.ndarray, factor_persistence: np.ndarray) -> StyleTarget:
    bins = quantiles.shape[0]
    f = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
    return StyleTarget(grams=[], autocorr=[], mean_spectrum=f(np.full(bins, 2.0)), temporal=f(np.zeros(2)),
                       flux=f(0.0), spread=f(np.full(bins, 0.5)), persistence=f(persistence),
                       quantiles=f(quantiles), loadings=f(loadings), factor_persistence=f(factor_persistence))


def test_new_frames_have_each_bins_distribution_its_persistence_and_the_shared_moves():
    rng = np.random.default_rng(3)
    skewed = cp.marginal_quantiles(rng.exponential(size=(3, 5000)))
    loadings = np.array([[0.9], [0.9], [0.0]])  # bins 0 and 1 move together, bin 2 alone
    noise = FrameNoise()
    noise.retarget(_target(skewed, loadings, np.array([0.0, 0.0, 0.9]), np.array([0.0])), purity=1.0)
    frames = np.concatenate([noise.process(2, rng, np.full(3, 10.0)) for _ in range(5000)], axis=1)
    assert np.allclose(frames.mean(axis=1), 2.0, atol=0.05) and np.allclose(frames.std(axis=1), 0.5, atol=0.05)
    assert np.all(skew(frames, axis=1) > 1.0)  # the exponential's skewness is 2; Gaussian noise has 0
    corr = np.corrcoef(frames)
    assert corr[0, 1] > 0.6 and abs(corr[0, 2]) < 0.1
    lag1 = np.corrcoef(frames[2, 1:], frames[2, :-1])[0, 1]
    assert abs(lag1 - carried_persistence(np.array([0.9]), 1.0)[0]) < 0.1
    # a style added to the library brings its factors: the carried factors start again, nothing breaks
    noise.retarget(_target(skewed, np.hstack([loadings, loadings]), np.zeros(3), np.zeros(2)), purity=0.5)
    assert noise.process(2, rng, np.full(3, 10.0)).shape == (3, 2)


def test_the_shared_part_of_new_frames_spreads_wider_where_the_trend_is_high():
    rng = np.random.default_rng(4)
    gauss = cp.marginal_quantiles(rng.standard_normal((2, 5000)))
    target = _target(gauss, np.array([[0.9], [0.0]]), np.zeros(2), np.array([0.0]))
    target.spread_coupling = torch.tensor([0.4, 0.4])
    target.offset_sd = torch.tensor([1.0, 1.0])
    noise = FrameNoise()
    noise.retarget(target, purity=1.0)
    high, low = np.full((2, 4000), 1.5, np.float32), np.full((2, 4000), -1.5, np.float32)
    wide, narrow = (noise.process(4000, rng, np.full(2, 10.0), offsets) for offsets in (high, low))
    # bin 0's variance is mostly shared: it spreads; bin 1 has no shared part and keeps its spread
    assert wide[0].std() > 1.3 * narrow[0].std()
    assert abs(wide[1].std() / narrow[1].std() - 1.0) < 0.1
    plain = noise.process(4000, rng, np.full(2, 10.0))  # no trend laid out yet: no coupling
    assert narrow[0].std() < plain[0].std() < wide[0].std()


def test_the_carried_persistence_leaves_the_overlaps_share_and_a_blends_impurity_out():
    measured = np.array([0.0, 0.175, 0.6, 0.999])
    rho = carried_persistence(measured, 1.0)
    assert rho[0] == 0.0 and rho[1] == 0.0 and 0.4 < rho[2] < 0.6 and rho[3] <= 0.95
    assert np.all(carried_persistence(measured, 0.5) <= rho)


def test_bins_that_move_together_for_a_few_frames_do_so_in_new_frames_and_a_held_wave_holds():
    """Two groups of bins, each moved by a factor: one the style holds for a few frames (lag-1 correlation
    0.8, a field recording's co-moving bins), one it holds for long (0.99, a wave). The new frames' first
    group moves together at most as an AR(1) of 0.5 (an AR(1) of 0.8's carried share, 0.76, drew blotches
    the recordings do not have); the second keeps its wave."""
    rng = np.random.default_rng(5)
    gauss = cp.marginal_quantiles(rng.standard_normal((4, 5000)))
    loadings = np.array([[0.95, 0.0], [0.95, 0.0], [0.0, 0.95], [0.0, 0.95]])
    noise = FrameNoise()
    noise.retarget(_target(gauss, loadings, np.zeros(4), np.array([0.8, 0.99])), purity=1.0)
    frames = np.concatenate([noise.process(2, rng, np.full(4, 10.0)) for _ in range(10000)], axis=1)
    shared = [frames[0] + frames[1], frames[2] + frames[3]]
    lag = [[np.corrcoef(x[k:], x[:-k])[0, 1] for k in (1, 4)] for x in shared]
    print("lag-1 / lag-4 correlation of the groups' shared move:", np.round(lag, 2))
    assert lag[0][0] < 0.55 and lag[0][1] < 0.1, lag  # carried at 0.76: about 0.68 and 0.3
    assert lag[1][0] > 0.85 and lag[1][1] > 0.7, lag
    rho = carried_factor_persistence(np.array([0.8, 0.99]), 1.0)
    assert rho[0] <= 0.5 and rho[1] == carried_persistence(np.array([0.99]), 1.0)[0]


def test_a_long_styles_copula_is_measured_on_pieces_spread_over_it(monkeypatch):
    config = live_config()
    net, fmap = config.build_network(), config.spectral.feature_map()
    y = np.concatenate([bursts_and_drone(10.0), harmonic_tone(10.0)])  # two halves, two textures
    s = log_magnitude(stft(y.astype(np.float64)))  # 1723 frames
    whole = compute_target(s, net, fmap, lags=config.lags)
    first = compute_target(s[:, :800], net, fmap, lags=config.lags)  # what the first pieces alone would give
    monkeypatch.setattr(targets, "COPULA_FRAMES", 800)  # four pieces of 200 frames
    part = compute_target(s, net, fmap, lags=config.lags)
    assert part.quantiles.shape == whole.quantiles.shape and part.loadings.shape == whole.loadings.shape
    heard = np.argsort(s.mean(axis=1))[-100:]
    off = {name: float((t.quantiles - whole.quantiles)[heard].abs().mean()) for name, t in (("part", part), ("first", first))}
    print(f"quantiles off the whole's: pieces {off['part']:.3f}, the first 800 frames {off['first']:.3f}")
    assert off["part"] < 0.5 * off["first"]
