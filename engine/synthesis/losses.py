"""Loss terms of texture synthesis and style transfer (torch, differentiable).

With ``s`` the log-magnitude being optimised ``(bins, frames)``, ``a_b`` the ReLU maps of bank or
layer ``b`` of the network on ``M s`` (``M`` the frequency map), hats the target's statistics, and
``w_b`` per-bank weights (the receptive-field control):

* style (β):      ``Ls = Σ_b w_b ‖G(a_b) − Ĝ_b‖² / ‖Ĝ_b‖²`` — normalised Gram distance.
* spectral (γ):   ``Le = ‖μ(s) − μ̂‖² / ‖μ̂‖²`` — spectral energy envelope (per-bin mean over time).
* temporal (δ):   ``Lt = ‖(m_e, σ_e) − (m̂_e, σ̂_e)‖² / ‖(m̂_e, σ̂_e)‖²`` — moments of the per-frame
  energy (temporal energy envelope).
* content (α):    ``Lc = Σ_b ‖a_b − â_b‖² / ‖â_b‖²`` — feature maps of the content sound (transfer).
* autocorr (ε):   ``La = Σ_b w_b ‖R(a_b) − R̂_b‖² / ‖R̂_b‖²`` — feature-map autocorrelation (rhythm).
* seam (ζ):       ``Lz = max(0, f − f̂)² / f̂²`` with ``f = mean_f (s[:, k] − s[:, k−1])²`` the flux across
  the seam at frame ``k`` between fixed context and new frames, ``f̂`` the style's mean flux — only in
  the streaming engine, where it keeps block boundaries no rougher than the inside of the style.

* envelope (η):   ``Lv = mean_g ‖v_g − v̂_g‖² / (‖v̂_g‖² + n_g φ_g²)`` over the five groups ``g`` of
  band-envelope statistics (:func:`engine.analysis.statistics.envelope_statistics`: mean, standard deviation,
  skewness, cross-band correlation, modulation) of the half-octave band means of ``s``, ``φ_g`` the
  group's floor (:data:`ENVELOPE_FLOORS`) so near-zero statistics do not blow up the ratio — only
  in the streaming engine, where the envelopes span seconds of committed history plus the frames
  being optimised (McDermott & Simoncelli's texture statistics; the short window of the conv
  statistics cannot hold a skewness or a 1 Hz modulation). The mean's group adds a barrier,
  ``mean_b max(0, |μ_b − μ̂_b| / σ̂_b − k)²`` (:func:`mean_barrier`, ``k`` = :data:`MEAN_BARRIER_SPREADS`),
  zero while every band's mean stays within ``k`` of the style's spreads of it.
* trend (θ):      ``Lθ``, the same statistics of the live engine's coarse band envelopes (one value per
  8 frames, in flight 3 s ahead of the frames) at :data:`engine.analysis.statistics.COARSE_LAGS`, against the
  style's coarse statistics; lags a short style cannot measure are masked out.

``L = α Lc + β Ls + γ Le + δ Lt + ε La + ζ Lz + η Lv`` (live: ``+ θ Lθ``). Every term is relative (divided by the target's energy),
so the defaults below need no per-sound scaling. Defaults were chosen on the corpus by ear and by
``evaluate``; see README.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from engine.analysis import statistics as st
from engine.errors import ParameterError
from engine.analysis.targets import StyleTarget, feature_input

EPS = 1e-12
#: Floor ``φ_g`` per band-envelope statistic group, in :data:`engine.analysis.statistics.ENVELOPE_KEYS` order:
#: none for mean and spread (never near zero), about their sampling noise for the others.
ENVELOPE_FLOORS: tuple[float, ...] = (0.0, 0.0, 0.3, 0.1, 0.1)
#: How far, in the style's spreads of a band's envelope, the mean of a window of envelopes may stray from the
#: style's mean before :func:`mean_barrier` acts. A window's statistics are matched by moving only its newest
#: frames, and a skewness matched that way can trap a band: once most of the window sits under the style's mean,
#: new frames at the style's level look like rare loud outliers, and a style whose band dips (skewness under 0)
#: pushes them down too. night_mediterran's 3.2-6.4 kHz band fell from 0.95 to 0.08 (log1p) within 30 s of playing
#: and stayed there while the loss grew 40-fold; the mean's own term, relative to every band's mean at once, is
#: too weak to lift one band (``docs/EXPERIMENTS.md`` section 46). A healthy window's mean strays under half
#: of a spread.
MEAN_BARRIER_SPREADS = 2.0


@dataclass(frozen=True)
class LossWeights:
    """Weights α (content), β (style), γ (spectral envelope), δ (temporal envelope), ε (autocorrelation),
    ζ (seam), η (band-envelope statistics)."""

    content: float = 0.0
    style: float = 1.0
    spectral: float = 1.0
    temporal: float = 0.1
    autocorr: float = 0.3
    seam: float = 0.0
    envelope: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (value >= 0 and value < float("inf")):
                raise ParameterError(f"loss weight {name} must be finite and >= 0. Found: {value}")


def relative_sq(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``‖x − target‖² / ‖target‖²``."""
    return ((x - target) ** 2).sum() / ((target ** 2).sum() + EPS)


def style_loss(feats: list[torch.Tensor], target: StyleTarget, bank_weights: torch.Tensor) -> torch.Tensor:
    """Ls: weighted normalised Gram distance over banks."""
    return sum(bank_weights[i] * relative_sq(st.gram(a), target.grams[i]) for i, a in enumerate(feats))


def autocorr_loss(feats: list[torch.Tensor], target: StyleTarget, bank_weights: torch.Tensor) -> torch.Tensor:
    """La: weighted normalised autocorrelation distance over banks."""
    return sum(bank_weights[i] * relative_sq(st.autocorrelation(a, target.autocorr[i].shape[1]), target.autocorr[i])
               for i, a in enumerate(feats))


def spectral_loss(s: torch.Tensor, target: StyleTarget) -> torch.Tensor:
    """Le: relative distance of the mean log-magnitude spectrum."""
    return relative_sq(st.mean_spectrum(s), target.mean_spectrum)


def temporal_loss(s: torch.Tensor, target: StyleTarget) -> torch.Tensor:
    """Lt: relative distance of the per-frame energy moments."""
    return relative_sq(st.temporal_envelope_stats(s), target.temporal)


def seam_loss(s: torch.Tensor, target: StyleTarget, seam_at: int) -> torch.Tensor:
    """Lz: how far the flux across frames ``seam_at − 1 → seam_at`` exceeds the style's mean flux."""
    f = ((s[:, seam_at] - s[:, seam_at - 1]) ** 2).mean()
    return torch.relu(f - target.flux) ** 2 / (target.flux ** 2 + EPS)


def envelope_loss(envelopes: torch.Tensor, target: list[torch.Tensor], lags: tuple[int, ...] = st.ENVELOPE_LAGS,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Lv: band-envelope statistics of ``envelopes`` ``(bands, frames)`` at ``lags`` against ``target`` (see
    module doc); ``mask`` ``(len(lags),)`` weights the modulation's lags (the trend's short-style mask)."""
    stats = list(st.envelope_statistics(envelopes, lags))
    if mask is not None:
        stats[4], target = stats[4] * mask, [*target[:4], target[4] * mask]
    parts = [((x - t) ** 2).sum() / ((t * t).sum() + t.numel() * floor ** 2 + EPS)
             for x, t, floor in zip(stats, target, ENVELOPE_FLOORS)]
    parts[0] = parts[0] + mean_barrier(stats[0], target[0], target[1])
    return sum(parts) / len(parts)


def mean_barrier(mean: torch.Tensor, target_mean: torch.Tensor, target_spread: torch.Tensor) -> torch.Tensor:
    """``mean_b max(0, |μ_b − μ̂_b| / σ̂_b − k)²`` of band means ``mean`` ``(bands,)`` against the style's mean and
    spread ``(bands,)`` (> 0: :data:`engine.analysis.statistics.ENVELOPE_VAR_FLOOR` keeps them so), ``k`` =
    :data:`MEAN_BARRIER_SPREADS`: zero while each band's mean stays within ``k`` spreads of the style's."""
    excess = torch.relu((mean - target_mean).abs() / target_spread - MEAN_BARRIER_SPREADS)
    return (excess * excess).mean()


def content_loss(feats: list[torch.Tensor], content_feats: list[torch.Tensor]) -> torch.Tensor:
    """Lc: relative distance of the feature maps to the content sound's."""
    return sum(relative_sq(a, c) for a, c in zip(feats, content_feats))


def total_loss(s: torch.Tensor, network: torch.nn.Module, feature_map: torch.Tensor, target: StyleTarget,
               weights: LossWeights, bank_weights: torch.Tensor,
               content_feats: list[torch.Tensor] | None = None,
               seam_at: int | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """``α Lc + β Ls + γ Le + δ Lt + ε La + ζ Lz`` and each term's value.

    ``s`` is the log-magnitude ``(bins, frames)`` being optimised; ``bank_weights`` ``(n_banks,)``;
    ``seam_at`` the first new frame after fixed context (streaming only). Terms with weight 0 are
    not computed.
    """
    feats = network(feature_input(s, feature_map))
    terms: dict[str, torch.Tensor] = {}
    if weights.style:
        terms["style"] = weights.style * style_loss(feats, target, bank_weights)
    if weights.autocorr:
        terms["autocorr"] = weights.autocorr * autocorr_loss(feats, target, bank_weights)
    if weights.spectral:
        terms["spectral"] = weights.spectral * spectral_loss(s, target)
    if weights.temporal:
        terms["temporal"] = weights.temporal * temporal_loss(s, target)
    if weights.seam and seam_at:
        terms["seam"] = weights.seam * seam_loss(s, target, seam_at)
    if weights.content and content_feats is not None:
        terms["content"] = weights.content * content_loss(feats, content_feats)
    total = sum(terms.values())
    return total, {k: float(v.detach()) for k, v in terms.items()}
