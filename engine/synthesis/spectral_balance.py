"""Spectral balance: what the engine plays keeps the blended styles' long-term power in each band.

The engine models log-magnitudes, but a listener (and the learned embedding) hears power, and the
power it plays in a band drifts from the style's: drawing the trend and the residual apart loses a
band whose residual is loudest where its trend is high, the optimiser's step loses some more, and the
phase's overlap-add of frames that are not a consistent spectrogram loses most where the frames move
fast (bursts over a drone: 5-7 dB above 1.5 kHz; ``docs/EXPERIMENTS.md`` section 23).
:class:`SpectralBalance` measures the power per envelope band (half-octave,
:meth:`engine.analysis.spectral.SpectralConfig.envelope_map`) of the samples the phase made, over the
last :data:`BALANCE_SECONDS`, and scales the next committed frames' bins by
``sqrt(style power / played power)`` of their bands, within ±:data:`MAX_BALANCE_DB`.

Power is each channel's, averaged over the channels, on both sides (the style's and the played): a
mono style played at width 1 has channels each about 3 dB over their mean, and balancing that mean
instead made the width control a 2.7 dB level control (``docs/EXPERIMENTS.md`` section 32).

The played power of each bin is divided by the gain in force before it is averaged, so the average
estimates the engine's own level error and the gain is that estimate's inverse: no feedback loop that
could ring.
The average starts from the styles' power, as if the engine had played it right for
:data:`PRIOR_SECONDS`, takes in what it plays as a running mean, then averages over
:data:`BALANCE_SECONDS`: a band whose power comes in bursts (birdsong's chirps, quiet for seconds and
then 15-25 dB louder) is not lifted by the full 6 dB during the first quiet seconds and then played
that much too loud when the burst comes (``docs/EXPERIMENTS.md`` section 32), and a swell of a few
seconds is not evened out. The optimiser's frames and statistics are untouched: the gain acts on the
committed frames on their way to the phase.

Lifecycle as JUCE's: :meth:`prepare`; each block :meth:`gains` before the phase and :meth:`observe`
of its samples; :meth:`release`.
"""
from __future__ import annotations

import numpy as np

from engine.analysis.spectral import StreamMagnitudes
from engine.synthesis.stereo import bins_from_bands

#: Time constant of the played band power's average, seconds.
BALANCE_SECONDS = 10.0
#: Weight of the average's starting guess (the styles' own power), in seconds of played samples.
PRIOR_SECONDS = 1.5
#: Largest correction either way, dB: a band whose power the style holds in rare events (campfire's crackles above
#: 11 kHz) is not made up with steady hiss; ±12 dB did that (docs/EXPERIMENTS.md section 23).
MAX_BALANCE_DB = 6.0
#: Band power (|STFT|², the analysis' scale) below which a band counts as silent and is left alone.
SILENT_POWER = 1e-12
#: Floor of a target's bins when a blend move carries the estimate along, relative to its loudest bin (-60 dB).
RELATIVE_FLOOR = 1e-6
#: Multiplicative updates of the band ratios a block (warm-started: they move little between blocks).
SOLVER_ITERATIONS = 4


class PlayedBands:
    """What the stages that act per envelope band on what was played share: the band map, its spreading over
    the bins (:func:`engine.synthesis.stereo.bins_from_bands`) and the played samples' whole frames.

    Parameters
    ----------
    envelope_map : np.ndarray [shape=(bands, bins)]
        Non-negative weights of each bin in each band, each row summing to 1.
    n_fft, hop : int
        The engine's STFT (the played samples are analysed as the styles were).
    """

    def __init__(self, envelope_map: np.ndarray, *, n_fft: int, hop: int) -> None:
        self._emap = np.asarray(envelope_map, dtype=np.float64)
        self._bin_map = bins_from_bands(self._emap)
        self._frames = StreamMagnitudes(n_fft=n_fft, hop=hop)


class SpectralBalance(PlayedBands):
    """Per-band gains that bring the played power to the styles' (see module doc; parameters as
    :class:`PlayedBands`, and ``block_seconds`` > 0, the duration of one block in seconds)."""

    def __init__(self, envelope_map: np.ndarray, *, n_fft: int, hop: int, block_seconds: float) -> None:
        super().__init__(envelope_map, n_fft=n_fft, hop=hop)
        self._rate = block_seconds / BALANCE_SECONDS
        self._prior_blocks = PRIOR_SECONDS / block_seconds
        self.prepare()

    def prepare(self) -> None:
        """Forget what was played (a new stream): gains start at 0 dB."""
        self._played: np.ndarray | None = None  # per-bin power the engine plays at 0 dB
        self._target: np.ndarray | None = None  # the target power of the last gains()
        self._blocks = 0
        self._ratio = np.ones(self._emap.shape[0])
        self._gains = np.ones(self._emap.shape[1])
        self._applied = self._gains  # with the bed's gains: what the played frames were scaled by
        self._frames.reset()
        self.gains_db = np.zeros(self._emap.shape[0])

    def release(self) -> None:
        """Drop the carried samples and the estimate."""
        self._played = None
        self._frames.reset()

    @property
    def applied(self) -> np.ndarray:
        """The per-bin magnitude gains ``(bins,)`` of the last :meth:`gains` (the bed's share included): what the
        frames now being played were scaled by."""
        return self._applied

    def gains(self, target_power: np.ndarray, bed: np.ndarray | None = None) -> np.ndarray:
        """Per-bin magnitude gains ``(bins,)`` for the next committed frames, towards ``target_power``
        ``(bins,)`` (mean |STFT|² per bin and channel of the blended styles, :attr:`Style.channel_power`). All 1 until something was played;
        bands where either power is below :data:`SILENT_POWER` keep 1.

        ``bed`` ``(bins,)``, power gains in (0, 1]: the share of each bin's power the frames play while the
        click layer plays the rest (:func:`engine.analysis.clicks.bed_gains`); the gains carry it whole,
        outside the ±:data:`MAX_BALANCE_DB` of the balance, which keeps measuring the engine's own level.

        A bin's gain is spread from the bands it belongs to (:func:`engine.synthesis.stereo.bins_from_bands`),
        so neighbouring bands share bins: the band ratios ``r`` solve ``A r = wanted`` with
        ``A = E diag(played) M`` (``E`` the envelope map, ``M`` the spreading) by
        :data:`SOLVER_ITERATIONS` multiplicative updates from the last block's, which keep them positive.
        A bin is lifted no further than its own ``target / played``: spread from its band, a lift reached
        the bins above a style's low-pass that play only leakage (46 dB under the total where the style is 64 dB under).
        """
        target_power = np.asarray(target_power, dtype=np.float64)
        if self._played is not None and self._target is not None and target_power is not self._target:
            self._played = self._played * _moved(self._target, target_power)
        self._target = target_power
        if self._played is not None:
            bound = 10.0 ** (MAX_BALANCE_DB / 10.0)
            wanted = self._emap @ target_power
            a = self._emap @ (self._played[:, None] * self._bin_map)
            heard = (np.diag(a) > SILENT_POWER) & (wanted > SILENT_POWER)
            ratio = np.where(heard, self._ratio, 1.0)
            for _ in range(SOLVER_ITERATIONS):
                ratio = np.where(heard, np.clip(ratio * wanted / np.maximum(a @ ratio, SILENT_POWER), 1.0 / bound, bound), 1.0)
            self._ratio = ratio
            # no bin is lifted past its own shortfall: a bin the styles hardly sound in, where the engine
            # plays its neighbours' leakage, is not lifted with its band
            own = np.divide(target_power, self._played, out=np.full_like(target_power, np.inf), where=self._played > 0)
            self._gains = np.sqrt(np.minimum(self._bin_map @ ratio, np.maximum(own, 1.0)))
        self.gains_db = 10.0 * np.log10(self._ratio)
        self._applied = self._gains if bed is None else self._gains * np.sqrt(bed)
        return self._applied

    def observe(self, samples: np.ndarray) -> None:
        """Take in a block of played samples, ``(n,)`` or ``(n, channels)`` (each channel's power is
        analysed, then averaged over the channels, as the styles' was), made from frames under the
        last :meth:`gains`."""
        mags = self._frames.process(samples)
        if not mags:
            return
        power = sum(np.mean(m ** 2, axis=1) for m in mags) / len(mags)
        played = power / np.maximum(self._applied, 1e-6) ** 2
        if self._played is None:
            self._played = played if self._target is None else self._target.copy()
        self._blocks += 1
        rate = max(self._rate, 1.0 / (self._blocks + self._prior_blocks))
        self._played = self._played + rate * (played - self._played)


def _moved(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Per-bin ``new / old`` power, both floored at :data:`RELATIVE_FLOOR` of their loudest bin (a bin
    silent in one target does not make the ratio explode)."""
    floor = RELATIVE_FLOOR * max(float(old.max()), float(new.max()), SILENT_POWER)
    return (new + floor) / (old + floor)
