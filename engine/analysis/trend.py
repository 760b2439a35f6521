"""The slow part of a sound's band envelopes (its swells), and the spectrogram with it taken out.

A texture like a seashore is fast noise under slow, broadband swells of seconds. The live engine
makes the two at two rates (:mod:`engine.synthesis.block_synth`): coarse in-flight band
envelopes at one value per ``factor`` frames (the *trend*), and the per-bin frames around it (the
*residual*). The style is analysed the same way: the statistics of its coarse band envelopes are
the trend's target, and every other statistic (conv Grams, mean spectrum, spread, fine band
envelopes) is taken on the residual, ``s − P (trend − mean)`` (``P`` spreads a band's move over its
bins by their level, :func:`level_spread_map`), so the per-window statistics no longer
pull each 0.5 s window of a swell back to the recording's global level (measured in
``docs/EXPERIMENTS.md`` section 9).

All functions are pure (numpy, scipy). Units: log1p magnitude; ``bands`` are the rows of
:meth:`engine.analysis.spectral.SpectralConfig.envelope_map` (16 half-octave bands at 22050 Hz),
``factor`` in frames (8 frames = 93 ms at hop 256).
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from engine.errors import ParameterError

#: Smallest per-bin level (log1p units) by which :func:`level_spread_map` weights a bin: a bin the style
#: never sounds in still keeps its band's moves invertible.
SPREAD_LEVEL_FLOOR = 1e-4
#: ``rcond`` of :func:`level_spread_map` for a map not of full rank. The fine envelope map's null space lies at 2e-10
#: of ``E W Eᵀ``'s largest eigenvalue or less (measured at 8-96 kHz, levels in [0, 3]); at this ``rcond`` no bin moves
#: more than 6.6 times its band's change, and the values it drops besides belong to bands whose bins a style leaves
#: silent, which then do not move. (The network's channels, from 40 Hz, have a value at 8e-5 that let a bin move 31
#: times: ``docs/EXPERIMENTS.md`` section 57.)
RANK_DEFICIENT_RCOND = 1e-6
#: Largest measured ``|γ|`` of :func:`spread_coupling` (at ``γ = 0.5`` and a trend 3 standard deviations up, a
#: shared factor's part of a bin spreads 3.5 times wider).
MAX_SPREAD_COUPLING = 0.5


def band_spread_map(envelope_map: np.ndarray) -> np.ndarray:
    """``P`` ``(bins, bands)`` float32, the pseudo-inverse of the envelope map ``E`` ``(bands, bins)``.

    Adding ``P d`` to frames moves their band envelopes by exactly ``d`` (``E P = I`` for the
    full-rank ``E`` of the half-octave bands), spreading each band's move evenly over its bins.
    """
    return np.linalg.pinv(np.asarray(envelope_map, dtype=np.float64)).astype(np.float32)


def level_spread_map(envelope_map: np.ndarray | sparse.sparray, level: np.ndarray, *,
                     rcond: float | None = None) -> np.ndarray:
    """The even spread (:func:`band_spread_map` of ``envelope_map`` ``E``) reweighted by ``level`` ``(bins,)``, the
    mean log1p magnitude of each bin: ``P = W Eᵀ (E W Eᵀ)⁻¹`` ``(bins, bands)`` float32, ``W = diag(max(level,
    SPREAD_LEVEL_FLOOR))``, the smallest move in ``W⁻¹`` norm that moves the bands by ``d``. Still ``E P = I``, but
    a bin moves in proportion to its level. A map not of full rank (:meth:`engine.analysis.spectral.SpectralConfig.
    fine_envelope_map`, whose low bands read the same bins) needs ``rcond``: ``(E W Eᵀ)`` is pseudo-inverted, its
    eigenvalues under ``rcond`` times the largest dropped (:data:`RANK_DEFICIENT_RCOND`), and ``E P d = d``
    holds for the moves the bands can make apart.

    In log1p units a move is a gain on a loud bin but an added magnitude on a near-silent one, so the
    even spread filled the bins a band shares with silence: the campfire recording is empty above
    17 kHz, and its texture's trend lifted those bins from 96 to 76 dB under the total, the top octave
    4 dB too loud (``docs/EXPERIMENTS.md`` section 16).

    ``E`` is a numpy array or, for many bands, a ``scipy.sparse`` one (:func:`sparse_map`; each band reads a few
    bins): the 106 twelfth-octave bands at 44.1 kHz take about 1.2 ms so against 1.7 ms dense, the 16 half-octave
    ones 0.06 ms dense against 0.3 ms sparse (``docs/EXPERIMENTS.md`` section 60). A morph rebuilds both on
    every block.

    Raises
    ------
    ParameterError
        If ``level`` is not one value per bin.
    """
    e = envelope_map if sparse.issparse(envelope_map) else np.asarray(envelope_map, dtype=np.float64)
    w = np.maximum(np.asarray(level, dtype=np.float64), SPREAD_LEVEL_FLOOR)
    if w.shape != (e.shape[1],):
        raise ParameterError(f"level must be ({e.shape[1]},), one per bin. Found shape {w.shape}")
    gram = (e * w) @ e.T
    gram = gram.toarray() if sparse.issparse(gram) else gram
    if rcond is None:
        inverse = np.linalg.inv(gram)
    else:
        values, vectors = np.linalg.eigh(gram)
        kept = values > rcond * values[-1]
        inverse = (vectors[:, kept] / values[kept]) @ vectors[:, kept].T
    return (w[:, None] * (e.T @ inverse)).astype(np.float32)


def sparse_map(envelope_map: np.ndarray) -> sparse.csr_array:
    """``envelope_map`` ``(bands, bins)`` as the float64 sparse array :func:`level_spread_map` works on."""
    return sparse.csr_array(np.asarray(envelope_map, dtype=np.float64))


def coarse_envelopes(band_envelopes: np.ndarray, factor: int) -> np.ndarray:
    """Means of ``band_envelopes`` ``(bands, frames)`` over consecutive runs of ``factor`` frames.

    Returns ``(bands, frames // factor)`` float32 (a trailing partial run is dropped).

    Raises
    ------
    ParameterError
        If ``factor`` < 1 or there are fewer than ``factor`` frames.
    """
    e = np.asarray(band_envelopes, dtype=np.float32)
    n = e.shape[1] // factor if factor >= 1 else 0
    if n < 1:
        raise ParameterError(f"coarse envelopes need at least {factor} frames (factor >= 1). Found: {e.shape[1]}")
    return e[:, :n * factor].reshape(e.shape[0], n, factor).mean(axis=2)


def trend(coarse: np.ndarray, factor: int, start: int, stop: int) -> np.ndarray:
    """The coarse envelopes ``(bands, n)`` interpolated to frames ``start .. stop − 1``, ``(bands, stop − start)``.

    Coarse value ``k`` sits at the centre of its run, frame ``(k + 0.5) factor − 0.5``; linear in
    between, held flat before the first and after the last centre.
    """
    centres = (np.arange(coarse.shape[1]) + 0.5) * factor - 0.5
    t = np.arange(start, stop, dtype=np.float64)
    return np.stack([np.interp(t, centres, row) for row in coarse]).astype(np.float32)


def detrended(log_mag: np.ndarray, coarse: np.ndarray, factor: int, spread_map: np.ndarray,
              start: int = 0, stop: int | None = None) -> np.ndarray:
    """Frames ``start:stop`` of ``log_mag`` ``(bins, frames)`` with the trend's deviation from its mean
    taken out: ``s − P (trend − mean(coarse))``, float32 (may dip slightly below 0); ``P`` is
    ``spread_map`` ``(bins, bands)``, the style's :func:`level_spread_map`."""
    stop = log_mag.shape[1] if stop is None else stop
    return (np.asarray(log_mag[:, start:stop], dtype=np.float32)
            - offsets(coarse, factor, spread_map, start, stop)).astype(np.float32)


def offsets(coarse: np.ndarray, factor: int, spread_map: np.ndarray, start: int, stop: int) -> np.ndarray:
    """What the trend adds to frames ``start:stop``: ``P (trend − mean(coarse))`` ``(bins, stop − start)``
    float32, the part :func:`detrended` takes out."""
    dev = trend(coarse, factor, start, stop) - coarse.mean(axis=1, keepdims=True)
    return (spread_map @ dev).astype(np.float32)


def spread_coupling(scores: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much wider each bin's residual spreads where its trend is high.

    Where a recording's swells come, its fine structure is often wilder too: jungle's insects chirp in
    their choruses, a violin's bow digs in as it swells. Drawn apart, a trend and a residual of the right
    spreads lose the loud moments' power (2-5 dB at jungle's 2.5-4 kHz, ``docs/EXPERIMENTS.md`` section 22).
    With ``u`` a bin's trend offset standardised over the frames and ``g`` its residual's Gaussian scores,
    the model is ``Var(g | u) = exp(2 γ u − 2 γ²)`` (unit variance on average), and for small ``γ``
    ``E[(g² − 1) u] ≈ 2 γ``. The engine applies it to the shared factors' part of each bin only
    (:mod:`engine.synthesis.frame_noise`): spread over each bin's own noise too, it made random loud bins
    of birds' and jungle's chirps.

    Parameters
    ----------
    scores : np.ndarray [shape=(bins, frames)]
        The residual's unit Gaussian scores (:func:`engine.analysis.copula.gaussian_scores`).
    offsets : np.ndarray [shape=(bins, frames)]
        The trend's offsets over the same frames (:func:`offsets`), log1p units.

    Returns
    -------
    gamma : np.ndarray [shape=(bins,)], float32
        ``E[(g² − 1) u] / 2`` held within ±:data:`MAX_SPREAD_COUPLING`; 0 for a bin the trend does not move.
    offset_sd : np.ndarray [shape=(bins,)], float32
        Each bin's offset standard deviation, the unit of ``u`` (the engine divides its own offsets by it).
    """
    off = np.asarray(offsets, dtype=np.float64)
    sd = off.std(axis=1)
    moves = sd > 1e-6
    u = (off - off.mean(axis=1, keepdims=True)) / np.where(moves, sd, 1.0)[:, None]
    g = np.asarray(scores, dtype=np.float64)
    g = (g - g.mean(axis=1, keepdims=True)) / np.maximum(g.std(axis=1, keepdims=True), 1e-9)
    gamma = np.clip(np.where(moves, ((g * g - 1.0) * u).mean(axis=1) / 2.0, 0.0), -MAX_SPREAD_COUPLING,
                    MAX_SPREAD_COUPLING)
    return gamma.astype(np.float32), np.where(moves, sd, 0.0).astype(np.float32)


def coupled_spread(gamma: np.ndarray, offset_sd: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The factor ``exp(γ u − γ²)`` ``(bins, n)`` float32 by which new frames' shared scores spread under
    trend offsets ``offsets`` ``(bins, n)``, log1p units (:func:`spread_coupling`; ``u`` held within ±3).
    A bin the trend does not move keeps factor 1."""
    gamma = np.asarray(gamma, dtype=np.float32)[:, None]
    sd = np.asarray(offset_sd, dtype=np.float32)[:, None]
    u = np.where(sd > 1e-6, np.clip(offsets / np.maximum(sd, 1e-6), -3.0, 3.0), 0.0)
    return np.exp(gamma * u - gamma * gamma).astype(np.float32)


def layout_weights(factor: int) -> np.ndarray:
    """Weights ``w`` ``(factor,)`` with which the engine lays a coarse value out over its ``factor`` frames.

    Frame ``p`` of coarse period ``k`` gets ``(1 − w_p) c_{k−1} + w_p c_k``, ``w_p = (p + 0.5) / factor``:
    the same linear interpolation as :func:`trend`, half a period later (the engine needs ``c_k``
    before period ``k`` starts).
    """
    return ((np.arange(factor) + 0.5) / factor).astype(np.float32)
