"""The shape of each bin's values and how bins move together: a Gaussian copula of a spectrogram.

A style's per-bin mean and spread say where a bin sits, not how its values are spread: a crackle's
bin is quiet in most frames and loud in a few (skewed), a partial's bin is loud while the note rings.
And bins do not move alone: a crackle lifts every high bin in the same frame, a note lifts its
partials together. This module measures both, as statistics (nothing of the recording's frames is kept):

* :func:`marginal_quantiles` — each bin's standardised values at :data:`QUANTILE_LEVELS` evenly spaced
  probabilities: the shape of its distribution, ``(bins, levels)``;
* :func:`gaussian_scores` and :func:`from_gaussian` — a bin's values as unit Gaussian scores (by
  rank), and scores back to values through the bin's quantiles;
* :func:`requantile` — values of one set of distributions moved to another's, each keeping its probability;
* :func:`shared_factors` — the leading eigenvectors of the sounding bins' correlation in Gaussian scores
  (their loadings, ``(bins, rank)``) and each factor's lag-1 correlation over frames.

New frames drawn as ``μ + σ from_gaussian(L f + √(1 − |L|²) ε)`` with unit Gaussian factors ``f`` and
per-bin noise ``ε`` have each bin's mean, spread and distribution, and the bins' leading correlations
(:mod:`engine.synthesis.frame_noise`). Pure functions of float arrays (numpy, float64 inside).
"""
from __future__ import annotations

import numpy as np
from numba import njit
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

#: Quantiles kept per bin: probabilities ``(k + 0.5) / QUANTILE_LEVELS``, so the rarest 0.8 % of a bin's
#: values on either side are represented by the outermost quantile.
QUANTILE_LEVELS = 64
#: Shared factors kept per style: the leading eigenvectors of the bins' correlation.
SHARED_FACTORS = 16
#: Largest share of a bin's variance the shared factors may explain, so every bin keeps some noise of its own.
MAX_SHARED = 0.9
#: Mean log1p magnitude below which a bin counts as silent (a full-scale sine peaks at about 500 at n_fft 2048,
#: so this is about 114 dB under it): it takes no part in the shared factors. By rank, a silent bin's numerical
#: noise weighs as much as a loud bin's values: two of rain's 16 factors lived in the empty top half of its
#: bins at 44.1 kHz (``docs/EXPERIMENTS.md`` sections 19 and 27).
SILENT_LEVEL = 1e-3


def marginal_quantiles(z: np.ndarray, levels: int = QUANTILE_LEVELS) -> np.ndarray:
    """Each row's values at probabilities ``(k + 0.5) / levels``, standardised to mean 0 and
    standard deviation 1 over the levels, ``(rows, levels)`` float32.

    Parameters
    ----------
    z : np.ndarray [shape=(rows, frames)], finite
        Values per row (a spectrogram's bins, standardised or not), at least 2 frames.
    levels : int >= 2

    A row whose values are all equal gets the quantiles of a unit Gaussian (it has no shape of its own).
    """
    p = (np.arange(levels) + 0.5) / levels
    q = np.quantile(np.asarray(z), p, axis=1).T.astype(np.float64)
    q = q - q.mean(axis=1, keepdims=True)
    sd = q.std(axis=1, keepdims=True)
    gauss = ndtri(p)
    return np.where(sd > 1e-9, q / np.maximum(sd, 1e-9), gauss / gauss.std()).astype(np.float32)


def from_gaussian(g: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Unit Gaussian scores ``g`` ``(rows, frames)`` mapped to each row's distribution: the row's
    quantile function (linear between its ``quantiles`` ``(rows, levels)``) at ``Φ(g)``, held at the
    outermost quantiles beyond them; float32. (A tail drawn on beyond the outermost quantiles, on the
    slope of the last step, made rain's texture further from its source by the learned ear:
    ``docs/EXPERIMENTS.md`` section 19.)"""
    levels = quantiles.shape[1]
    pos = np.clip(ndtr(g) * levels - 0.5, 0.0, levels - 1.0)
    lo = np.minimum(pos.astype(np.int64), levels - 2)
    frac = (pos - lo).astype(np.float32)
    rows = np.arange(quantiles.shape[0])[:, None]
    return (1.0 - frac) * quantiles[rows, lo] + frac * quantiles[rows, lo + 1]


@njit("void(float64[:, ::1], float64[:, ::1], float64[:, ::1], float32[:, ::1])", nogil=True, cache=True)
def _requantile_rows(x: np.ndarray, source: np.ndarray, target: np.ndarray,
                     out: np.ndarray) -> None:  # pragma: no cover - compiled
    """:func:`requantile` row by row into ``out``: each value's cell among its row's ``source`` knots (strictly
    increasing) by bisection, and the same place between the row's ``target`` knots."""
    rows, n = x.shape
    levels = source.shape[1]
    for r in range(rows):
        for j in range(n):
            v = min(max(x[r, j], source[r, 0]), source[r, levels - 1])
            lo, hi = 0, levels
            while lo < hi:  # the first knot not under v
                mid = (lo + hi) >> 1
                if source[r, mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            i = min(max(lo, 1), levels - 1)
            frac = min(max((v - source[r, i - 1]) / (source[r, i] - source[r, i - 1]), 0.0), 1.0)
            out[r, j] = (1.0 - frac) * target[r, i - 1] + frac * target[r, i]


def requantile(z: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Standardised values ``z`` ``(rows, n)`` of the distributions with quantiles ``source`` ``(rows, levels)``
    moved to the distributions with quantiles ``target`` (same shape): each value keeps its probability
    (linear between quantiles, held at the outermost ones), float32. Compiled (numba, at import): a morph runs it
    over the in-flight frames on every block, and numpy's one sorted search over all rows' knots took 2 ms of such
    a block (``docs/EXPERIMENTS.md`` section 60)."""
    levels = source.shape[1]
    knots = np.ascontiguousarray(source, dtype=np.float64) + np.arange(levels) * 1e-9  # repeated quantiles: knots must increase
    out = np.empty(np.shape(z), dtype=np.float32)
    _requantile_rows(np.ascontiguousarray(z, dtype=np.float64), knots,
                     np.ascontiguousarray(target, dtype=np.float64), out)
    return out


def gaussian_scores(z: np.ndarray) -> np.ndarray:
    """Each row's values ``z`` ``(rows, frames)`` as unit Gaussian scores by rank, ``Φ⁻¹((rank − ½) / frames)``
    (ties share their mean rank), float64: what :func:`from_gaussian` maps back, up to the quantiles'
    interpolation."""
    g = rankdata(z, axis=1)
    g -= 0.5
    g /= np.shape(z)[1]
    return ndtri(g, out=g)


def shared_factors(g: np.ndarray, rank: int = SHARED_FACTORS, *,
                   sounding: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """How the rows of Gaussian scores ``g`` ``(rows, frames)`` move together.

    ``sounding`` ``(rows,)`` bool: the rows the factors are measured on (None: all); the others get zero
    loadings (their noise is all their own). A caller passes ``level >= SILENT_LEVEL`` (:data:`SILENT_LEVEL`).

    Returns
    -------
    loadings : np.ndarray [shape=(rows, rank)], float32
        The leading ``rank`` eigenvectors of the rows' correlation matrix, each scaled by the root of
        its eigenvalue (``L Lᵀ`` is the best rank-``rank`` part of the correlation), rows shrunk so that
        ``|L_r|² <=`` :data:`MAX_SHARED`.
    persistence : np.ndarray [shape=(rank,)], float32
        Each factor's lag-1 correlation over frames (its scores ``Lᵀ g``).

    Fewer frames than ``rank`` leave the extra factors at zero loading.
    """
    g = np.asarray(g, dtype=np.float64)
    g = g - g.mean(axis=1, keepdims=True)
    sd = g.std(axis=1, keepdims=True)
    g = np.where(sd > 1e-9, g / np.maximum(sd, 1e-9), 0.0)
    if sounding is not None:
        g[~np.asarray(sounding, dtype=bool)] = 0.0
    corr = g @ g.T / g.shape[1]
    values, vectors = np.linalg.eigh(corr)
    top = np.argsort(values)[::-1][:rank]
    loadings = vectors[:, top] * np.sqrt(np.clip(values[top], 0.0, None))
    norms = np.sqrt((loadings ** 2).sum(axis=1, keepdims=True))
    loadings *= np.minimum(1.0, np.sqrt(MAX_SHARED) / np.maximum(norms, 1e-12))
    scores = vectors[:, top].T @ g
    var = (scores ** 2).mean(axis=1)
    lagged = (scores[:, 1:] * scores[:, :-1]).mean(axis=1)
    persistence = np.where(var > 1e-12, lagged / np.maximum(var, 1e-12), 0.0)
    return loadings.astype(np.float32), persistence.astype(np.float32)
