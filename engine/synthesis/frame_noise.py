"""The noise new frames start from: each bin's distribution, carried in time and shared across bins.

Frame ``t``'s residual log-magnitude in bin ``k`` is ``μ_k + σ_k Q_k(Φ(z_kt))``: the blended style's
per-bin mean ``μ``, spread ``σ`` and quantile function ``Q`` (:mod:`engine.analysis.copula`; a skewed
crackle bin is quiet in most frames and loud in a few) of a unit Gaussian score

    ``z_t = L f_t + √(1 − |L_k|²) e_t``

where the shared factors ``f`` (one per column of the loadings ``L``: a crackle lifting every high
bin at once, a note lifting its partials together) and each bin's own noise ``e`` go on from frame to
frame as AR(1) processes, ``x_t = ρ x_{t−1} + √(1 − ρ²) ε_t``. A bin's ``ρ`` is the style's persistence
(:func:`engine.analysis.statistics.persistence`), a factor's its scores' lag-1 correlation, both times
the blend's purity ``Σ w²`` (1 for one style, 0.5 for a half-half blend: slow new frames let the
optimiser alternate between two pitched styles instead of blending them), less what the phase adds
(:data:`OVERLAP_PERSISTENCE`), at most :data:`MAX_PERSISTENCE`; a factor that is not held (a wave, a note)
at most :data:`MAX_FACTOR_PERSISTENCE` (:func:`carried_factor_persistence`). The marginal of every bin is the
style's; only the order in time and the company across bins are drawn. Where the trend laid out over the
new frames is high, the shared part ``L f`` spreads wider by ``exp(γ u − γ²)``
(:func:`engine.analysis.trend.coupled_spread`; ``u`` the bin's standardised trend offset, ``γ`` the style's
:func:`engine.analysis.trend.spread_coupling`): a chorus is wilder than the lull between. Nothing is read from the
recordings. ``docs/EXPERIMENTS.md`` sections 18 (persistence) and 19 (the copula).

Lifecycle: :meth:`FrameNoise.retarget` when the blend changes (keeps the carried state where it
still fits), :meth:`FrameNoise.process` for the next frames, :meth:`FrameNoise.prepare` to forget the
carried state.
"""
from __future__ import annotations

import numpy as np

from engine.analysis.copula import from_gaussian
from engine.analysis.trend import coupled_spread
from engine.analysis.targets import StyleTarget

#: Largest persistence of the new frames' noise, so every bin still moves: at 0.95 a deviation halves in
#: 13.5 frames (157 ms). ``docs/EXPERIMENTS.md`` section 18.
MAX_PERSISTENCE = 0.95
#: The part of a style's persistence the new frames' noise leaves to the phase: white noise's STFT shows
#: 0.35 from the frames' overlap alone, and the phase gives back about half of it (independent new
#: frames play at 0.25, new frames at 0.35 play at 0.43), so the noise carries ``(ρ − 0.175) / 0.825``.
OVERLAP_PERSISTENCE = 0.175
#: Largest AR(1) coefficient of a shared factor that is not held. Bins that move together in a field
#: recording do so for a few frames: night_mediterran's factors have lag-1 correlations of 0.64-0.80 and
#: lag-4 ones of -0.09 to 0.31, where an AR(1) at the lag-1 value holds them 0.17-0.41. Carried at their
#: lag-1 value, they drew blotches of co-moving bins 10-30 frames long where the recordings are a fine
#: speckle, and the learned ear heard it (``docs/EXPERIMENTS.md`` section 45).
MAX_FACTOR_PERSISTENCE = 0.5
#: Lag-1 correlation from which a shared factor is held and keeps its persistence (seashore's waves 0.99,
#: the violin's note 0.98; the nights' and jungle's factors reach 0.91).
HELD_FACTOR_PERSISTENCE = 0.95


def carried_persistence(measured: np.ndarray, purity: float) -> np.ndarray:
    """The AR(1) coefficient the noise carries for a measured lag-1 correlation (module doc), float32."""
    rho = (np.asarray(measured, dtype=np.float64) * purity - OVERLAP_PERSISTENCE) / (1.0 - OVERLAP_PERSISTENCE)
    return np.clip(rho, 0.0, MAX_PERSISTENCE).astype(np.float32)


def carried_factor_persistence(measured: np.ndarray, purity: float) -> np.ndarray:
    """The AR(1) coefficient the noise carries for each shared factor of measured lag-1 correlation
    ``measured``: :func:`carried_persistence`, at most :data:`MAX_FACTOR_PERSISTENCE` unless the factor is
    held (its lag-1 correlation at least :data:`HELD_FACTOR_PERSISTENCE`: a wave, a sustained note), float32."""
    rho = carried_persistence(measured, purity)
    held = np.asarray(measured) >= HELD_FACTOR_PERSISTENCE
    return np.where(held, rho, np.minimum(rho, MAX_FACTOR_PERSISTENCE)).astype(np.float32)


def _ar1(rng: np.random.Generator, rho: np.ndarray, last: np.ndarray | None, n: int) -> np.ndarray:
    """``n`` steps ``(len(rho), n)`` of unit-variance AR(1) processes going on from ``last`` (None: a fresh start)."""
    fresh = np.sqrt(1.0 - rho * rho)
    x = rng.standard_normal((len(rho), n), dtype=np.float32)
    prev = x[:, 0] if last is None else rho * last + fresh * x[:, 0]
    x[:, 0] = prev
    for t in range(1, n):
        x[:, t] = prev = rho * prev + fresh * x[:, t]
    return x


class FrameNoise:
    """New frames' noise for the blended target (module doc). Not thread-safe: the synthesiser's own."""

    def __init__(self) -> None:
        self.prepare()

    def prepare(self) -> None:
        """Forget the carried state and the target (the next :meth:`process` starts fresh)."""
        self._moments: tuple[np.ndarray, np.ndarray] | None = None
        self._quantiles: np.ndarray | None = None
        self._coupling: tuple[np.ndarray, np.ndarray] | None = None
        self._loadings: np.ndarray | None = None
        self._own = self._rho = self._factor_rho = None
        self._last_bins: np.ndarray | None = None
        self._last_factors: np.ndarray | None = None

    def retarget(self, target: StyleTarget, purity: float) -> None:
        """Draw from ``target`` (a blend of styles' targets with purity ``Σ w²``) from now on; the
        carried state goes on where its shape still fits (a style added or removed resets the factors)."""
        mean, spread = target.mean_spectrum.numpy(), target.spread.numpy()
        self._moments = (mean, spread)
        rho = np.zeros_like(mean) if target.persistence is None else target.persistence.numpy()
        self._rho = carried_persistence(rho, purity)
        self._quantiles = None if target.quantiles is None else target.quantiles.numpy()
        self._coupling = None if target.spread_coupling is None else (target.spread_coupling.numpy(),
                                                                     target.offset_sd.numpy())
        if target.loadings is None:
            self._loadings = self._factor_rho = None
            self._own = np.ones_like(mean)
        else:
            self._loadings = target.loadings.numpy()
            self._factor_rho = carried_factor_persistence(target.factor_persistence.numpy(), purity)
            self._own = np.sqrt(np.clip(1.0 - (self._loadings ** 2).sum(axis=1), 0.0, 1.0)).astype(np.float32)
        if self._last_bins is not None and len(self._last_bins) != len(mean):
            self._last_bins = None
        if self._last_factors is not None and (self._loadings is None or len(self._last_factors) != self._loadings.shape[1]):
            self._last_factors = None

    def process(self, n: int, rng: np.random.Generator, upper: np.ndarray,
                offsets: np.ndarray | None = None) -> np.ndarray:
        """The next ``n`` frames ``(bins, n)`` float32 of residual log-magnitude, in ``[0, upper]``.

        ``offsets`` ``(bins, n)``, log1p units: what the trend will add to these frames; a target with a
        spread coupling (:func:`engine.analysis.trend.spread_coupling`) then spreads the shared factors' part
        of each bin wider where its trend is high. None: no coupling (the first frames, before any trend is
        laid out).

        Raises
        ------
        RuntimeError
            Before the first :meth:`retarget`.
        """
        if self._moments is None:
            raise RuntimeError("FrameNoise.process before retarget")
        mean, spread = self._moments
        z = _ar1(rng, self._rho, self._last_bins, n)
        self._last_bins = z[:, -1].copy()
        if self._loadings is not None:
            f = _ar1(rng, self._factor_rho, self._last_factors, n)
            self._last_factors = f[:, -1].copy()
            shared = self._loadings @ f
            if self._coupling is not None and offsets is not None:
                shared *= coupled_spread(*self._coupling, offsets)
            z = shared + self._own[:, None] * z
        if self._quantiles is not None:
            z = from_gaussian(z, self._quantiles)
        return np.clip(mean[:, None] + spread[:, None] * z, 0.0, upper[:, None]).astype(np.float32)
