"""Per-style target statistics, and blending several styles' targets with weights.

A :class:`StyleTarget` holds, for one sound, everything the losses compare against: a Gram matrix and
an autocorrelation per network layer/bank, the mean log-magnitude spectrum (spectral energy envelope)
the temporal energy-envelope moments, the mean spectral flux, the per-bin spread (standard deviation of
the log-magnitude, which with the mean shapes the live engine's noise) and the band-envelope
statistics (:func:`engine.statistics.envelope_statistics`). Blending is linear in every statistic with weights
normalised to sum 1, so weights (1, 0) give exactly the first style's target.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine import statistics as st
from engine.errors import ParameterError


@dataclass
class StyleTarget:
    """Target statistics of one style (or a blend). Tensors are float32, no gradient."""

    grams: list[torch.Tensor]
    autocorr: list[torch.Tensor]
    mean_spectrum: torch.Tensor
    temporal: torch.Tensor
    flux: torch.Tensor
    spread: torch.Tensor | None = None
    envelope: list[torch.Tensor] | None = None

    def as_numpy(self) -> dict[str, np.ndarray | list[np.ndarray]]:
        """The statistics as float32 numpy arrays (the live graph's inputs)."""
        return {
            "grams": [g.numpy() for g in self.grams],
            "autocorr": [r.numpy() for r in self.autocorr],
            "mean_spectrum": self.mean_spectrum.numpy(),
            "temporal": self.temporal.numpy(),
            "flux": self.flux.numpy(),
        }


def feature_input(log_mag: torch.Tensor, feature_map: torch.Tensor) -> torch.Tensor:
    """Network input from a log-magnitude ``(bins, frames)``: the frequency map applied, ``(channels, frames)``."""
    return feature_map @ log_mag


@torch.no_grad()
def compute_target(log_mag: np.ndarray | torch.Tensor, network: torch.nn.Module,
                   feature_map: np.ndarray | torch.Tensor, *, lags: int,
                   envelope_map: np.ndarray | None = None) -> StyleTarget:
    """Statistics of one style's log-magnitude spectrogram ``(bins, frames)`` under ``network``.

    With ``envelope_map`` ``(bands, bins)`` (:meth:`engine.spectral.SpectralConfig.envelope_map`) the
    band-envelope statistics are computed too (the style then needs more frames than the longest
    envelope lag).

    Raises
    ------
    ParameterError
        If the spectrogram has fewer frames than the network's longest span plus ``lags``.
    """
    s = torch.as_tensor(np.asarray(log_mag, dtype=np.float32))
    need = network.max_span + lags + 1
    if s.shape[1] < need:
        raise ParameterError(f"style needs at least {need} frames for these networks. Found: {s.shape[1]}")
    feats = network(feature_input(s, torch.as_tensor(np.asarray(feature_map, dtype=np.float32))))
    return StyleTarget(
        grams=[st.gram(a) for a in feats],
        autocorr=[st.autocorrelation(a, min(lags, a.shape[1] - 1)) for a in feats],
        mean_spectrum=st.mean_spectrum(s),
        temporal=st.temporal_envelope_stats(s),
        flux=st.mean_flux(s),
        spread=s.std(dim=1),
        envelope=None if envelope_map is None else list(
            st.envelope_statistics(torch.as_tensor(np.asarray(envelope_map, dtype=np.float32)) @ s)),
    )


def normalise_weights(weights: np.ndarray | list[float], n: int) -> np.ndarray:
    """Blend weights as float64 summing to 1.

    Raises
    ------
    ParameterError
        Wrong count, negative or non-finite weights, or all zero.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != n:
        raise ParameterError(f"need {n} blend weights, one per style. Found: {w.size}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ParameterError(f"blend weights must be finite and >= 0. Found: {w.tolist()}")
    total = w.sum()
    if total <= 0:
        raise ParameterError(f"blend weights must not all be zero. Found: {w.tolist()}")
    return w / total


def blend(targets: list[StyleTarget], weights: np.ndarray | list[float]) -> StyleTarget:
    """Weighted average of several styles' targets (weights normalised to sum 1)."""
    if not targets:
        raise ParameterError("blending needs at least one style")
    w = normalise_weights(weights, len(targets))

    def mix(get):
        return sum(float(wi) * get(t) for wi, t in zip(w, targets) if wi > 0)

    n_layers = len(targets[0].grams)
    return StyleTarget(
        grams=[mix(lambda t, i=i: t.grams[i]) for i in range(n_layers)],
        autocorr=[mix(lambda t, i=i: t.autocorr[i]) for i in range(n_layers)],
        mean_spectrum=mix(lambda t: t.mean_spectrum),
        temporal=mix(lambda t: t.temporal),
        flux=mix(lambda t: t.flux),
        spread=None if targets[0].spread is None else mix(lambda t: t.spread),
        envelope=None if targets[0].envelope is None else [
            mix(lambda t, i=i: t.envelope[i]) for i in range(len(targets[0].envelope))],
    )
