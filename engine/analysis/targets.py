"""Per-style target statistics, and blending several styles' targets with weights.

A :class:`StyleTarget` holds, for one sound, everything the losses compare against: a Gram matrix and
an autocorrelation per network layer/bank, the mean log-magnitude spectrum (spectral energy envelope)
the temporal energy-envelope moments, the mean spectral flux, the per-bin spread (standard deviation of
the log-magnitude), persistence (lag-1 correlation) and copula (each bin's distribution and the bins'
shared factors, :mod:`engine.analysis.copula`), which with the mean shape the live engine's
new frames, and the band-envelope
statistics (:func:`engine.analysis.statistics.envelope_statistics`). For the live engine
(``trend_factor`` given) the band envelopes are also averaged to one value per ``trend_factor`` frames
and their statistics at :data:`engine.analysis.statistics.COARSE_LAGS` kept as the slow *trend*'s
target, and every other statistic is taken on the spectrogram with that trend taken out
(:mod:`engine.analysis.trend`). Blending is linear in every statistic with weights
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

from engine.analysis import copula as cp
from engine.analysis import statistics as st
from engine.analysis import trend as tr
from engine.errors import ParameterError

#: Frames of feature maps computed at once by :func:`compute_target` for long styles.
CHUNK_FRAMES = 4096
#: Frames the copula is measured on: a longer style gives :data:`COPULA_PIECES` evenly spaced pieces of
#: ``COPULA_FRAMES / COPULA_PIECES`` frames (its distribution and correlations, not its whole length, matter).
COPULA_FRAMES, COPULA_PIECES = 2048, 4
#: Frames whose float64 moments (:func:`_chunked_moments`) are summed at once: their temporaries are about
#: five float64 copies of the piece, 21 MB at 513 bins (82 MB at :data:`CHUNK_FRAMES`, the peak of a long analysis).
MOMENT_FRAMES = 1024


@dataclass
class StyleTarget:
    """Target statistics of one style (or a blend). Tensors are float32, no gradient."""

    grams: list[torch.Tensor]
    autocorr: list[torch.Tensor]
    mean_spectrum: torch.Tensor
    temporal: torch.Tensor
    flux: torch.Tensor
    spread: torch.Tensor | None = None
    persistence: torch.Tensor | None = None
    quantiles: torch.Tensor | None = None
    loadings: torch.Tensor | None = None
    factor_persistence: torch.Tensor | None = None
    envelope: list[torch.Tensor] | None = None
    coarse: list[torch.Tensor] | None = None
    coarse_mask: torch.Tensor | None = None
    spread_coupling: torch.Tensor | None = None
    offset_sd: torch.Tensor | None = None


def feature_input(log_mag: torch.Tensor, feature_map: torch.Tensor) -> torch.Tensor:
    """Network input from a log-magnitude ``(bins, frames)``: the frequency map applied, ``(channels, frames)``."""
    return feature_map @ log_mag


@torch.no_grad()
def compute_target(log_mag: np.ndarray | torch.Tensor, network: torch.nn.Module,
                   feature_map: np.ndarray | torch.Tensor, *, lags: int, envelope_map: np.ndarray | None = None,
                   trend_factor: int | None = None, band_envelopes: np.ndarray | None = None,
                   chunk_frames: int = CHUNK_FRAMES) -> StyleTarget:
    """Statistics of one style's log-magnitude spectrogram ``(bins, frames)`` under ``network``.

    With ``envelope_map`` ``(bands, bins)`` (:meth:`engine.analysis.spectral.SpectralConfig.envelope_map`) the
    band-envelope statistics are computed too (the style then needs more frames than the longest
    envelope lag; the band envelopes are 16 rows, so they are analysed whole). With ``trend_factor``
    (frames, needs ``envelope_map``) the coarse trend statistics are kept and everything else is
    measured on the detrended spectrogram (see the module doc); ``coarse_mask`` says which coarse lags
    the style is long enough for. ``band_envelopes`` is ``envelope_map @ log_mag`` where the caller
    already has it (it is then not computed again). Spectrograms longer than ``chunk_frames`` are analysed in pieces
    when the network is a stack of valid 1D convolutions (see the module doc); the memory then stays
    bounded.

    Raises
    ------
    ParameterError
        If the spectrogram has fewer frames than the network's longest span plus ``lags``, or
        ``trend_factor`` comes without ``envelope_map``.
    """
    raw = np.asarray(log_mag, dtype=np.float32)
    need = network.max_span + lags + 1
    if raw.shape[1] < need:
        raise ParameterError(f"style needs at least {need} frames for these networks. Found: {raw.shape[1]}")
    n = raw.shape[1]
    emap = None if envelope_map is None else np.asarray(envelope_map, dtype=np.float32)
    coarse_stats, mask, bands = None, None, None
    if trend_factor is not None:
        if emap is None:
            raise ParameterError("trend_factor needs envelope_map")
        bands = emap @ raw if band_envelopes is None else np.asarray(band_envelopes, dtype=np.float32)
        coarse = tr.coarse_envelopes(bands, trend_factor)
        spread_map = tr.level_spread_map(emap, raw.mean(axis=1))
        coarse_stats = list(st.masked_envelope_statistics(torch.from_numpy(coarse), st.COARSE_LAGS))
        mask = st.lag_mask(coarse.shape[1], st.COARSE_LAGS)
        bands = bands - (tr.trend(coarse, trend_factor, 0, n) - coarse.mean(axis=1, keepdims=True))

        def view(lo: int, hi: int) -> torch.Tensor:
            return torch.from_numpy(tr.detrended(raw, coarse, trend_factor, spread_map, lo, min(hi, n)))
    else:
        whole = torch.from_numpy(raw)

        def view(lo: int, hi: int) -> torch.Tensor:
            return whole[:, lo:hi]
    fmap = torch.as_tensor(np.asarray(feature_map, dtype=np.float32))
    if n <= chunk_frames or not _valid_1d(network):
        s = view(0, n)
        feats = network(feature_input(s, fmap))
        grams = [st.gram(a) for a in feats]
        autocorr = [st.autocorrelation(a, min(lags, a.shape[1] - 1)) for a in feats]
        flux, mean, spread, persistence = st.mean_flux(s), st.mean_spectrum(s), s.std(dim=1), st.persistence(s)
        temporal = st.temporal_envelope_stats(s)
    else:
        grams, autocorr = _chunked_feature_stats(view, n, network, fmap, lags, chunk_frames)
        flux, mean, spread, persistence = _chunked_moments(view, n, min(chunk_frames, MOMENT_FRAMES))
        temporal = _chunked_temporal(view, n, chunk_frames)
    quantiles, loadings, factor_persistence, spread_coupling, offset_sd = _copula(
        view, n, mean, spread, None if trend_factor is None else
        lambda lo, hi: tr.offsets(coarse, trend_factor, spread_map, lo, min(hi, n)))
    envelope = None
    if emap is not None:
        env = torch.from_numpy(np.asarray(emap @ raw if bands is None else bands, dtype=np.float32))
        envelope = list(st.envelope_statistics(env))
    return StyleTarget(grams=grams, autocorr=autocorr, mean_spectrum=mean,
                       temporal=temporal, flux=flux, spread=spread, persistence=persistence,
                       quantiles=quantiles, loadings=loadings, factor_persistence=factor_persistence,
                       envelope=envelope, coarse=coarse_stats, coarse_mask=mask,
                       spread_coupling=spread_coupling, offset_sd=offset_sd)


def _valid_1d(network: torch.nn.Module) -> bool:
    """Whether ``network`` maps ``(channels, frames)`` to maps whose position ``j`` sees only frames
    ``j .. j + span - 1`` (valid 1D convolutions), so it can run on overlapping pieces: the networks
    of :mod:`models` say so with a ``valid_1d`` class attribute (analysis does not import the models)."""
    return getattr(network, "valid_1d", False)


def _chunked_feature_stats(view, n: int, network: torch.nn.Module, fmap: torch.Tensor, lags: int,
                           chunk: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Gram ``a aᵀ / P`` and autocorrelation ``Σ_t a_t a_{t+τ} / (P − τ)`` of every layer, piece by piece
    (``view(lo, hi)`` gives frames ``lo:hi`` of the ``n``-frame spectrogram)."""
    span = network.max_span
    probe = network(feature_input(view(0, span), fmap))  # one position of the longest layer
    spans = [span - a.shape[1] + 1 for a in probe]
    positions = [n - k + 1 for k in spans]
    layer_lags = [min(lags, p - 1) for p in positions]
    grams = [torch.zeros(a.shape[0], a.shape[0], dtype=torch.float64) for a in probe]
    sums = [torch.zeros(a.shape[0], q, dtype=torch.float64) for a, q in zip(probe, layer_lags)]
    for start in range(0, max(positions), chunk):
        lo = min(start, n - span)  # a piece shorter than the longest span starts earlier
        hi = min(n, start + chunk + lags + span - 1)
        for k, a in enumerate(network(feature_input(view(lo, hi), fmap))):
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


def _chunked_moments(view, n: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean flux (:func:`engine.analysis.statistics.mean_flux`), per-bin mean, standard deviation and
    persistence (:func:`engine.analysis.statistics.persistence`) of the ``n``-frame spectrogram
    ``view(lo, hi)``, a piece at a time (float64 sums)."""
    total, sums, squares, pairs = 0.0, 0.0, 0.0, 0.0
    first = last = None
    for start in range(0, n, chunk):
        piece = view(start, min(n, start + chunk + 1)).double()
        own = piece[:, :min(chunk, n - start)]
        first = own[:, 0] if first is None else first
        last = piece[:, -1]
        sums = sums + own.sum(dim=1)
        squares = squares + (own * own).sum(dim=1)
        pairs = pairs + (piece[:, 1:] * piece[:, :-1]).sum(dim=1)
        total += float(((piece[:, 1:] - piece[:, :-1]) ** 2).sum())
    mean = sums / n
    std = torch.sqrt(torch.clamp((squares - n * mean * mean) / (n - 1), min=0.0))
    var = squares / n - mean * mean
    # Σ (x_t − m)(x_{t+1} − m) over the n − 1 pairs, from the sums: the pairs' own sums are the whole
    # sum less the last frame, and less the first
    lagged = (pairs - mean * ((sums - last) + (sums - first)) + (n - 1) * mean * mean) / (n - 1)
    persistence = torch.where(var > 1e-12, lagged / torch.clamp(var, min=1e-12), torch.zeros_like(var))
    bins = mean.shape[0]
    return (torch.tensor(total / (bins * (n - 1)), dtype=torch.float32), mean.float(), std.float(),
            persistence.float())


def _pieces(n: int) -> list[tuple[int, int]]:
    """The frame ranges the copula reads: all ``n`` frames up to :data:`COPULA_FRAMES`, else
    :data:`COPULA_PIECES` evenly spaced pieces of that many frames in all."""
    if n <= COPULA_FRAMES:
        return [(0, n)]
    piece = COPULA_FRAMES // COPULA_PIECES
    return [(int(lo), int(lo) + piece) for lo in np.linspace(0, n - piece, COPULA_PIECES).astype(int)]


def _copula(view, n: int, mean: torch.Tensor, spread: torch.Tensor, offsets=None) -> tuple[torch.Tensor, ...]:
    """Each bin's standardised quantiles, the shared factors' loadings and their persistence
    (:mod:`engine.analysis.copula`) of the ``n``-frame spectrogram ``view(lo, hi)`` standardised by
    ``mean`` and ``spread`` (over :func:`_pieces`); with ``offsets(lo, hi)``, the trend's offsets over the
    same frames, also :func:`engine.analysis.trend.spread_coupling` (else None, None)."""
    pieces = _pieces(n)
    frames = np.concatenate([view(lo, hi).numpy() for lo, hi in pieces], axis=1)
    sd = spread.numpy()[:, None]
    z = np.array(frames, dtype=np.float32)  # float32, in place: this runs beside the style's whole spectrogram
    z -= mean.numpy()[:, None]
    z /= np.maximum(sd, 1e-9)
    z[sd[:, 0] <= 1e-9] = 0.0
    quantiles = cp.marginal_quantiles(z)
    scores = cp.gaussian_scores(z)
    loadings, factor_persistence = cp.shared_factors(scores, sounding=mean.numpy() >= cp.SILENT_LEVEL)
    coupling = offset_sd = None
    if offsets is not None:
        gamma, sd_off = tr.spread_coupling(scores, np.concatenate([offsets(lo, hi) for lo, hi in pieces], axis=1))
        coupling, offset_sd = torch.from_numpy(gamma), torch.from_numpy(sd_off)
    return (torch.from_numpy(quantiles), torch.from_numpy(loadings), torch.from_numpy(factor_persistence),
            coupling, offset_sd)


def _chunked_temporal(view, n: int, chunk: int) -> torch.Tensor:
    """:func:`engine.analysis.statistics.temporal_envelope_stats` of ``view`` a piece at a time."""
    energy = torch.cat([view(start, min(n, start + chunk)).mean(dim=0) for start in range(0, n, chunk)])
    return torch.stack([energy.mean(), torch.sqrt(((energy - energy.mean()) ** 2).mean() + 1e-12)])


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
        persistence=None if targets[0].persistence is None else mix(lambda t: t.persistence),
        quantiles=None if targets[0].quantiles is None else mix(lambda t: t.quantiles),
        # the blend's correlation is the weighted mean of the styles': their factors side by side, each
        # scaled by the root of its weight; a style at weight 0 keeps its (zero) columns, so the factor
        # count stays that of the library
        loadings=None if targets[0].loadings is None else torch.cat(
            [float(np.sqrt(wi)) * t.loadings for wi, t in zip(w, targets)], dim=1),
        factor_persistence=None if targets[0].factor_persistence is None else torch.cat(
            [t.factor_persistence for t in targets]),
        envelope=None if targets[0].envelope is None else [
            mix(lambda t, i=i: t.envelope[i]) for i in range(len(targets[0].envelope))],
        coarse=None if targets[0].coarse is None else [
            mix(lambda t, i=i: t.coarse[i]) for i in range(len(targets[0].coarse))],
        coarse_mask=None if targets[0].coarse_mask is None else mix(lambda t: t.coarse_mask),
        spread_coupling=None if targets[0].spread_coupling is None else mix(lambda t: t.spread_coupling),
        offset_sd=None if targets[0].offset_sd is None else mix(lambda t: t.offset_sd),
    )
