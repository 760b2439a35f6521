"""Per-style target statistics, and blending several styles' targets with weights.

A :class:`StyleTarget` holds, for one sound, everything the losses compare against: a Gram matrix and
an autocorrelation per network layer/bank, the mean log-magnitude spectrum (spectral energy envelope)
the temporal energy-envelope moments, the mean spectral flux, the per-bin spread (standard deviation of
the log-magnitude, which with the mean shapes the live engine's noise) and the band-envelope
statistics (:func:`engine.analysis.statistics.envelope_statistics`). Blending is linear in every statistic with weights
normalised to sum 1, so weights (1, 0) give exactly the first style's target.

Long styles are analysed in pieces: with a 1D network of valid convolutions (``random1d``,
``trained1d``), :func:`compute_target` runs the network on ``chunk_frames`` (4096 frames, 48 s at
22050 Hz) at a time plus the overlap the longest layer and the lags need, and keeps the Gram and
autocorrelation as running sums (float64), so its memory does not grow with the sound's length:
about 30 MB for the live banks, where the whole spectrogram at once took 1.3 GB for 20 minutes. The
result equals the one-piece statistics to float32 rounding (tested). 2D networks (offline only)
see the whole spectrogram at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.analysis import statistics as st
from engine.errors import ParameterError

#: Frames of feature maps computed at once by :func:`compute_target` for long styles.
CHUNK_FRAMES = 4096


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
                   feature_map: np.ndarray | torch.Tensor, *, lags: int, envelope_map: np.ndarray | None = None,
                   chunk_frames: int = CHUNK_FRAMES) -> StyleTarget:
    """Statistics of one style's log-magnitude spectrogram ``(bins, frames)`` under ``network``.

    With ``envelope_map`` ``(bands, bins)`` (:meth:`engine.analysis.spectral.SpectralConfig.envelope_map`) the
    band-envelope statistics are computed too (the style then needs more frames than the longest
    envelope lag; the band envelopes are 16 rows, so they are analysed whole). Spectrograms longer
    than ``chunk_frames`` are analysed in pieces when the network is a stack of valid 1D convolutions
    (see the module doc); the memory then stays bounded.

    Raises
    ------
    ParameterError
        If the spectrogram has fewer frames than the network's longest span plus ``lags``.
    """
    s = torch.as_tensor(np.asarray(log_mag, dtype=np.float32))
    need = network.max_span + lags + 1
    if s.shape[1] < need:
        raise ParameterError(f"style needs at least {need} frames for these networks. Found: {s.shape[1]}")
    fmap = torch.as_tensor(np.asarray(feature_map, dtype=np.float32))
    if s.shape[1] <= chunk_frames or not _valid_1d(network):
        feats = network(feature_input(s, fmap))
        grams = [st.gram(a) for a in feats]
        autocorr = [st.autocorrelation(a, min(lags, a.shape[1] - 1)) for a in feats]
        flux = st.mean_flux(s)
    else:
        grams, autocorr = _chunked_feature_stats(s, network, fmap, lags, chunk_frames)
        flux = _chunked_flux(s, chunk_frames)
    envelope = None if envelope_map is None else list(
        st.envelope_statistics(torch.as_tensor(np.asarray(envelope_map, dtype=np.float32)) @ s))
    return StyleTarget(grams=grams, autocorr=autocorr, mean_spectrum=st.mean_spectrum(s),
                       temporal=st.temporal_envelope_stats(s), flux=flux, spread=s.std(dim=1), envelope=envelope)


def _valid_1d(network: torch.nn.Module) -> bool:
    """Whether ``network`` maps ``(channels, frames)`` to maps whose position ``j`` sees only frames
    ``j .. j + span - 1`` (valid 1D convolutions), so it can run on overlapping pieces."""
    from models.random_banks import RandomBanks1D
    from models.trained import Trained1DCNN
    return isinstance(network, (RandomBanks1D, Trained1DCNN))


def _chunked_feature_stats(s: torch.Tensor, network: torch.nn.Module, fmap: torch.Tensor, lags: int,
                           chunk: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Gram ``a aᵀ / P`` and autocorrelation ``Σ_t a_t a_{t+τ} / (P − τ)`` of every layer, piece by piece."""
    n, span = s.shape[1], network.max_span
    probe = network(feature_input(s[:, :span], fmap))  # one position of the longest layer
    spans = [span - a.shape[1] + 1 for a in probe]
    positions = [n - k + 1 for k in spans]
    layer_lags = [min(lags, p - 1) for p in positions]
    grams = [torch.zeros(a.shape[0], a.shape[0], dtype=torch.float64) for a in probe]
    sums = [torch.zeros(a.shape[0], q, dtype=torch.float64) for a, q in zip(probe, layer_lags)]
    for start in range(0, max(positions), chunk):
        lo = min(start, n - span)  # a piece shorter than the longest span starts earlier
        hi = min(n, start + chunk + lags + span - 1)
        for k, a in enumerate(network(feature_input(s[:, lo:hi], fmap))):
            m = min(start + chunk, positions[k]) - start  # this piece's own positions of layer k
            if m <= 0:
                continue
            x = a[:, start - lo:]  # from global position ``start`` on, with the lags' overlap after it
            grams[k] += (x[:, :m] @ x[:, :m].T).double()
            for tau in range(1, layer_lags[k] + 1):
                count = min(m, x.shape[1] - tau)
                if count > 0:
                    sums[k][:, tau - 1] += (x[:, :count] * x[:, tau:tau + count]).sum(dim=1).double()
    counts = [torch.arange(p - 1, p - q - 1, -1, dtype=torch.float64) for p, q in zip(positions, layer_lags)]
    return ([(g / p).float() for g, p in zip(grams, positions)],
            [(r / c).float() for r, c in zip(sums, counts)])


def _chunked_flux(s: torch.Tensor, chunk: int) -> torch.Tensor:
    """:func:`engine.analysis.statistics.mean_flux` without a full-size difference array."""
    n = s.shape[1]
    total = 0.0
    for start in range(0, n - 1, chunk):
        piece = s[:, start:min(n, start + chunk + 1)]
        total += float(((piece[:, 1:] - piece[:, :-1]).double() ** 2).sum())
    return torch.tensor(total / (s.shape[0] * (n - 1)), dtype=torch.float32)


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
