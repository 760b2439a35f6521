"""Texture statistics of feature maps and spectrograms (torch, differentiable).

Shapes: a feature map ``a`` is ``(filters, positions)``; a log-magnitude spectrogram ``s`` is
``(bins, frames)``. All statistics are averages, so they do not depend on the length of the sound:
a 48-frame window and a 10 s file give comparable values.
"""
from __future__ import annotations

import torch


def gram(a: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``a aᵀ / positions`` ``(filters, filters)`` (Gatys; Ulyanov & Lebedev)."""
    return a @ a.T / a.shape[1]


def autocorrelation(a: torch.Tensor, lags: int) -> torch.Tensor:
    """Per-filter autocorrelation at lags 1..``lags`` frames, ``(filters, lags)``.

    ``R[f, τ-1] = Σ_t a[f, t] a[f, t+τ] / (positions − τ)`` (Antognini et al.: keeps rhythm),
    computed through an FFT zero-padded to twice the length (exact, and ~10x faster on a 10 s sound
    than one product per lag). Lags beyond ``positions - 1`` are not allowed.
    """
    n = a.shape[1]
    if not 1 <= lags < n:
        raise ValueError(f"lags must be in [1, {n - 1}] for {n} positions. Found: {lags}")
    spec = torch.fft.rfft(a, n=2 * n, dim=1)
    full = torch.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=2 * n, dim=1)
    counts = torch.arange(n - 1, n - lags - 1, -1, dtype=a.dtype)
    return full[:, 1:lags + 1] / counts


def mean_spectrum(s: torch.Tensor) -> torch.Tensor:
    """Spectral energy envelope: per-bin mean of the log-magnitude over frames, ``(bins,)``."""
    return s.mean(dim=1)


def mean_flux(s: torch.Tensor) -> torch.Tensor:
    """Spectral flux: mean over frame pairs of ``mean_f (s[f, t+1] − s[f, t])²``, a scalar."""
    return ((s[:, 1:] - s[:, :-1]) ** 2).mean()


def persistence(s: torch.Tensor) -> torch.Tensor:
    """Each bin's lag-1 correlation over frames, ``(bins,)``: how much of a bin's deviation from its mean
    the next frame keeps (a held partial near 1; white noise's STFT at a quarter-frame hop about 0.35,
    from the frames' overlap alone). A bin that never moves gets 0."""
    mean = s.mean(dim=1, keepdim=True)
    var = ((s - mean) ** 2).mean(dim=1)
    lagged = ((s[:, 1:] - mean) * (s[:, :-1] - mean)).mean(dim=1)
    return torch.where(var > 1e-12, lagged / torch.clamp(var, min=1e-12), torch.zeros_like(var))


def temporal_envelope_stats(s: torch.Tensor) -> torch.Tensor:
    """Mean and standard deviation over frames of the per-frame energy ``e_t = mean_f s[f, t]``, ``(2,)``.

    The temporal energy envelope of Verma & Smith, reduced to its first two moments so that sounds
    of different length compare.
    """
    e = s.mean(dim=0)
    return torch.stack([e.mean(), torch.sqrt(((e - e.mean()) ** 2).mean() + 1e-12)])


#: Lags in frames of the band-envelope autocorrelation (12 ms to 0.74 s at 22050 Hz / hop 256: the
#: modulation rates from about 40 Hz down to about 1 Hz).
ENVELOPE_LAGS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
#: Lags in coarse frames of the coarse band-envelope autocorrelation (the live engine's trend, one value per
#: ``BlockConfig.coarse_factor`` frames: 8 frames = 93 ms at 22050 Hz / hop 256, so 93 ms to 2.2 s).
COARSE_LAGS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24)
#: Fewest lag pairs a style must offer for its coarse modulation at that lag to count (see
#: :func:`lag_mask`).
MIN_LAG_PAIRS = 8
#: Keeps the envelope's standard deviation away from 0 for a constant band (log1p units squared).
ENVELOPE_VAR_FLOOR = 1e-6
#: Names of the band-envelope statistics, in the order :func:`envelope_statistics` returns them.
ENVELOPE_KEYS: tuple[str, ...] = ("mean", "std", "skewness", "correlation", "modulation")


def envelope_statistics(e: torch.Tensor, lags: tuple[int, ...] = ENVELOPE_LAGS) -> tuple[torch.Tensor, ...]:
    """Statistics of band envelopes ``e`` ``(bands, frames)`` (McDermott & Simoncelli's texture model,
    on log1p-magnitude band means).

    With ``z = (e − μ) / σ`` per band (``σ = sqrt(var + ENVELOPE_VAR_FLOOR)``), returns, in
    :data:`ENVELOPE_KEYS` order: mean ``μ`` ``(bands,)``, standard deviation ``σ`` ``(bands,)``,
    skewness ``E z³`` ``(bands,)``, cross-band correlation ``z zᵀ / frames`` ``(bands, bands)`` and the
    modulation (autocorrelation of ``z`` at ``lags``) ``(bands, len(lags))``, each lag averaged over its
    ``frames − lag`` pairs. Needs more frames than the longest lag.
    """
    n = e.shape[1]
    if n <= max(lags):
        raise ValueError(f"envelope statistics need more than {max(lags)} frames. Found: {n}")
    mu = e.mean(dim=1)
    c = e - mu.unsqueeze(1)
    sd = torch.sqrt((c * c).mean(dim=1) + ENVELOPE_VAR_FLOOR)
    z = c / sd.unsqueeze(1)
    mod = torch.stack([(z[:, :-lag] * z[:, lag:]).mean(dim=1) for lag in lags], dim=1)
    return mu, sd, (z * z * z).mean(dim=1), z @ z.T / n, mod


def lag_mask(frames: int, lags: tuple[int, ...], min_pairs: int = MIN_LAG_PAIRS) -> torch.Tensor:
    """``(len(lags),)`` float32: 1 for a lag that ``frames`` frames measure with at least ``min_pairs``
    pairs, else 0 (a short style says nothing about its slowest modulation)."""
    return torch.tensor([1.0 if frames - lag >= min_pairs else 0.0 for lag in lags], dtype=torch.float32)


def masked_envelope_statistics(e: torch.Tensor, lags: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """:func:`envelope_statistics` of ``e`` for a target: lags without :data:`MIN_LAG_PAIRS` pairs get
    modulation 0 (and weight 0 in :func:`lag_mask`), so a short style can still be analysed."""
    n = e.shape[1]
    usable = tuple(lag for lag in lags if n - lag >= MIN_LAG_PAIRS) or (1,)
    mu, sd, skew, corr, mod = envelope_statistics(e, usable)
    full = torch.zeros(e.shape[0], len(lags), dtype=e.dtype)
    for i, lag in enumerate(lags):
        if lag in usable:
            full[:, i] = mod[:, usable.index(lag)]
    return mu, sd, skew, corr, full
