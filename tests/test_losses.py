"""Every loss term: the hand-written gradient of the live graph equals torch autograd (random banks and the
trained 1D net); blending."""
import numpy as np
import pytest
import torch

from engine.synthesis import losses
from engine.analysis.spectral import SpectralConfig
from engine.synthesis.step_graph import AnalyticStep, BlockConfig, envelope_stats_gradient, receptive_field_weights
from engine.analysis.targets import blend, compute_target
from models.random_banks import BankSpec

TERMS = {"style": (1, 0, 0, 0, 0), "spectral": (0, 1, 0, 0, 0), "temporal": (0, 0, 1, 0, 0),
         "autocorr": (0, 0, 0, 1, 0), "seam": (0, 0, 0, 0, 1)}
SMALL_BANKS = (BankSpec(3, 1, 32), BankSpec(3, 4, 32))


def _problem(axis: str, seed: int = 0, network: str = "random1d"):
    small = {"banks": SMALL_BANKS} if network == "random1d" else {}
    cfg = BlockConfig(spectral=SpectralConfig(frequency_axis=axis), network=network, **small)
    rng = np.random.default_rng(seed)
    style = rng.gamma(2.0, 0.5, size=(513, 200)).astype(np.float32)
    net = cfg.build_network()
    target = compute_target(style, net, cfg.spectral.feature_map(), lags=cfg.lags)
    window = torch.from_numpy(rng.gamma(2.0, 0.6, size=(513, cfg.window_frames)).astype(np.float32))
    return cfg, net, target, window


@pytest.mark.parametrize("axis,network", [("linear", "random1d"), ("cqt", "random1d"), ("linear", "trained1d")])
@pytest.mark.parametrize("term", list(TERMS))
def test_analytic_gradient_matches_autograd(axis, network, term):
    cfg, net, target, window = _problem(axis, network=network)
    lw = torch.tensor(TERMS[term], dtype=torch.float32)
    bank_w = torch.from_numpy(receptive_field_weights(0.3, cfg.n_layers))
    args = (window, target.grams, target.autocorr, target.mean_spectrum, target.temporal, target.flux, lw, bank_w)
    with torch.no_grad():
        loss_a, grad_a = AnalyticStep(cfg).gradient(*args)
        loss_new, grad_new = AnalyticStep(cfg).gradient(*args, start=cfg.context_frames)  # the live graph's case
    x = window.clone().requires_grad_(True)
    weights = losses.LossWeights(style=float(lw[0]), spectral=float(lw[1]), temporal=float(lw[2]),
                                 autocorr=float(lw[3]), seam=float(lw[4]))
    loss_t, terms = losses.total_loss(x, net, torch.from_numpy(cfg.spectral.feature_map()), target, weights, bank_w,
                                      seam_at=cfg.context_frames)
    (grad_t,) = torch.autograd.grad(loss_t, x)
    assert list(terms) == [term]
    assert float(loss_t) > 0
    assert abs(float(loss_a) - float(loss_t)) <= 1e-4 * float(loss_t)
    assert float((grad_a - grad_t).norm() / grad_t.norm()) < 1e-4
    new_t = grad_t[:, cfg.context_frames:]
    assert float(loss_new) == pytest.approx(float(loss_a), rel=1e-6)
    assert float((grad_new - new_t).norm()) <= 1e-4 * float(new_t.norm()) + 1e-12


@pytest.mark.parametrize("seed", [0, 1])
def test_envelope_gradient_matches_autograd(seed):
    """The band-envelope statistics term over committed history + in-flight frames, by hand and by autograd."""
    cfg = BlockConfig(banks=SMALL_BANKS, history_frames=80, inflight_frames=12)
    rng = np.random.default_rng(seed)
    emap = torch.from_numpy(cfg.spectral.envelope_map())
    style = torch.from_numpy(rng.gamma(2.0, 0.5, size=(513, 300)).astype(np.float32))
    target = [t * 1.3 for t in losses.st.envelope_statistics(emap @ style)]  # a target the frames do not meet
    history = emap @ torch.from_numpy(rng.gamma(2.0, 0.6, size=(513, cfg.history_frames)).astype(np.float32))
    frames = torch.from_numpy(rng.gamma(2.0, 0.6, size=(513, cfg.inflight_frames)).astype(np.float32))
    with torch.no_grad():
        loss_a, grad_a = AnalyticStep(cfg).envelope_gradient(frames, history, target, torch.tensor(0.7))
    x = frames.clone().requires_grad_(True)
    loss_t = 0.7 * losses.envelope_loss(torch.cat([history, emap @ x], dim=1), target)
    (grad_t,) = torch.autograd.grad(loss_t, x)
    assert float(loss_t) > 0
    assert abs(float(loss_a) - float(loss_t)) <= 1e-4 * float(loss_t)
    assert float((grad_a - grad_t).norm() / grad_t.norm()) < 1e-3


@pytest.mark.parametrize("short", [False, True])
def test_trend_gradient_matches_autograd(short):
    """The trend's statistics (normalised coarse history + in-flight values, coarse lags), by hand and by
    autograd; ``short``: a style too short for the slowest lags, whose modulation there is masked out."""
    rng = np.random.default_rng(3)
    coarse_style = torch.from_numpy(rng.gamma(3.0, 0.3, size=(16, 20 if short else 200)).astype(np.float32))
    target = list(losses.st.masked_envelope_statistics(coarse_style, losses.st.COARSE_LAGS))
    target = [target[0], target[1] * 1.2, *target[2:]]  # a spread the values do not meet
    mask = losses.st.lag_mask(coarse_style.shape[1], losses.st.COARSE_LAGS)
    assert bool((mask == 0).any()) == short
    history = torch.from_numpy(rng.standard_normal((16, 40)).astype(np.float32))
    coarse = torch.from_numpy(rng.standard_normal((16, 12)).astype(np.float32))
    with torch.no_grad():
        loss_a, grad_a = AnalyticStep.coarse_gradient(coarse, history, target, mask, torch.tensor(0.7))
    u = coarse.clone().requires_grad_(True)
    mu, sd = target[0].unsqueeze(1), target[1].unsqueeze(1)
    loss_t = 0.7 * losses.envelope_loss(mu + sd * torch.cat([history, u], dim=1), target, losses.st.COARSE_LAGS, mask)
    (grad_t,) = torch.autograd.grad(loss_t, u)
    assert float(loss_t) > 0
    assert abs(float(loss_a) - float(loss_t)) <= 1e-4 * float(loss_t)
    assert float((grad_a - grad_t).norm() / grad_t.norm()) < 1e-3


def test_content_loss_is_zero_at_the_content_and_grows_away_from_it():
    cfg, net, _, window = _problem("linear")
    with torch.no_grad():
        feats = net(window)
        assert float(losses.content_loss(feats, feats)) == 0.0
        assert float(losses.content_loss(net(window * 1.5), feats)) > 0.1


def test_blend_with_one_hot_weights_is_that_style():
    cfg, net, t1, _ = _problem("linear", seed=1)
    _, _, t2, _ = _problem("linear", seed=2)
    mixed = blend([t1, t2], [1.0, 0.0])
    for a, b in zip(mixed.grams + mixed.autocorr, t1.grams + t1.autocorr):
        assert torch.equal(a, b)
    assert torch.equal(mixed.mean_spectrum, t1.mean_spectrum)
    half = blend([t1, t2], [2.0, 2.0])
    assert torch.allclose(half.grams[0], 0.5 * (t1.grams[0] + t2.grams[0]))


def test_blend_rejects_bad_weights():
    _, _, t1, _ = _problem("linear")
    for bad in ([0.0], [float("nan")], [-1.0], [1.0, 1.0]):
        with pytest.raises(ValueError):
            blend([t1], bad)


def test_receptive_field_moves_weight_from_short_to_long_banks():
    short, long_ = receptive_field_weights(0.0, 4), receptive_field_weights(1.0, 4)
    assert short[0] > short[-1] and long_[-1] > long_[0]
    assert np.isclose(short.sum(), 4.0)
    with pytest.raises(ValueError):
        receptive_field_weights(1.5, 4)



def _trapped_band(rng: np.random.Generator, depth: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Band envelopes (four bands, 256 committed frames then 24 in flight) where band 0's history sits ``depth`` of
    the style's spreads under its mean (the style's band dips: skewness -1.8) while its in-flight frames are at the
    style's level; bands 1-3 are their own style. The target is the style's statistics."""
    history = 256
    e = rng.normal(1.0, 0.05, size=(4, history + 24))
    e[0, :history] = rng.normal(1.0 - depth * 0.05, 0.01, size=history)
    style = np.concatenate([rng.normal(1.0, 0.05, size=(1, 4000)),
                            e[1:, :1].repeat(4000, axis=1) + rng.normal(0.0, 0.05, size=(3, 4000))])
    target = list(losses.st.envelope_statistics(torch.from_numpy(style)))
    target[2] = target[2].clone()
    target[2][0] = -1.8
    return torch.from_numpy(e), target


def test_the_mean_barrier_acts_only_on_a_band_far_from_the_styles_mean():
    """The mean's barrier (``losses.MEAN_BARRIER_SPREADS``): nothing while every band's mean is within its reach, so
    a healthy window's step is as before; beyond it, its share of the step lifts every frame of a band that has
    fallen under the style's mean. By hand (the live graph) and by autograd alike."""
    groups = len(losses.ENVELOPE_FLOORS)
    for depth, acts in ((1.0, False), (6.0, True), (18.0, True)):
        e, target = _trapped_band(np.random.default_rng(5), depth)
        x = e.clone().requires_grad_(True)
        barrier = losses.mean_barrier(x.mean(dim=1), target[0], target[1]) / groups
        loss_t = losses.envelope_loss(x, target)
        (grad_t,) = torch.autograd.grad(loss_t, x, retain_graph=True)
        loss_a, grad_a = envelope_stats_gradient(e, 24, target, torch.tensor(1.0), losses.st.ENVELOPE_LAGS)
        assert abs(float(loss_a) - float(loss_t)) <= 1e-6 * float(loss_t)
        assert float((grad_a - grad_t[:, -24:]).norm() / grad_t[:, -24:].norm()) < 1e-6
        assert (float(barrier) > 0.0) == acts
        if acts:
            (lift,) = torch.autograd.grad(barrier, x)
            assert bool((lift[0] < 0).all()) and float(lift[1:].abs().max()) == 0.0
