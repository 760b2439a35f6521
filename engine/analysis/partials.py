"""A style's steady partials, and how loud its spectrum is between them.

A celesta's spectrogram is a few loud bins (the partials of its notes) over a floor far below them,
except at the notes' onsets, when the floor rises for a frame or two. A texture can keep each bin's own
distribution and still lose that: when its floor is never far from its mean, it sits well over the
recording's between the partials most of the time, and the partials are heard in a hiss
(``docs/EXPERIMENTS.md`` section 24). Two statistics describe it; nothing of the recording's frames is kept:

* :func:`partial_bins` — the bins of the steady partials: the main lobes of the peaks of the mean power
  spectrum that stand :data:`PEAK_PROMINENCE_DB` over their neighbourhood, every note's (a melody's notes a
  whole tone apart are two peaks, not one and a floor); none unless they hold :data:`MIN_PARTIAL_SHARE` of
  the power (noise, rain, speech, field recordings and an arpeggio over many notes have none);
* :func:`floor_bins`, :func:`floor_levels` and :func:`floor_quantiles` — each frame's floor (the mean
  power of the other bins between the lowest partial and the highest) relative to the same frame's
  partials, natural log, and its distribution over the style's frames at :data:`FLOOR_PROBABILITIES`;
* :func:`lobe_starts`, :func:`peak_offsets` and :func:`lobe_shapes` — where each partial's lobe lies, where
  in it a frame's peak is, and the magnitudes a steady sinusoid there gives the lobe's bins.

:func:`blend_floors` makes a blend's :class:`FloorTarget` of them.

Pure functions of float arrays (numpy, float64 inside).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

#: A peak of the mean power spectrum stands at least this far over the median of its neighbourhood, dB.
PEAK_PROMINENCE_DB = 10.0
#: Bins each side of a candidate peak whose median it stands over (a peak need only be louder than the bins
#: next to it: the violin's A4 lies 2.3 bins over its G4 and is as loud, and when a peak had to be the loudest
#: of these bins it was left to the floor and played 16 dB under the style, docs/EXPERIMENTS.md section 61).
PEAK_NEIGHBOURS = 8
#: Peaks more than this far under the loudest bin are not partials of interest, dB.
PEAK_RANGE_DB = 60.0
#: Bins each side of a peak that belong to it: a periodic Hann window's main lobe is 4 bins wide.
LOBE_HALF_WIDTH = 2
#: Least share of the style's power the partials' lobes hold for a style to count as having partials
#: (the celesta 0.99, the violin's four notes 0.98; the harp's arpeggio 0.40, whose notes decay into each
#: other, and a floor mapped for it at 0.35 took its envelope statistics 0.06 further, section 61; the dark
#: forest's one frog 0.01; every noise 0).
MIN_PARTIAL_SHARE = 0.5
#: Probabilities at which the floor's distribution is kept: even in Gaussian score over ±3, so the rare
#: loud floors of onsets have levels of their own.
FLOOR_PROBABILITIES = ndtr(np.linspace(-3.0, 3.0, 49))
#: Power added under every level's logarithms (|STFT|² of audio in [-1, 1]: -120 dB of a unit bin).
POWER_FLOOR = 1e-12
#: Most frames a style's floor distribution is measured on (evenly spaced; 24 s at 44.1 kHz).
MAX_FLOOR_FRAMES = 2048


def partial_bins(mean_power: np.ndarray) -> np.ndarray:
    """The bins of a spectrum's steady partials, ``(bins,)`` bool; all False when it has none.

    Parameters
    ----------
    mean_power : np.ndarray [shape=(bins,)], finite, >= 0
        Mean |STFT|² per bin over a style's frames.

    A peak is a bin at least as loud as the bins on either side of it, at least :data:`PEAK_PROMINENCE_DB`
    over the median of its ±:data:`PEAK_NEIGHBOURS` neighbourhood (cut at the spectrum's edges) and within
    :data:`PEAK_RANGE_DB` of the loudest bin; its lobe is ±:data:`LOBE_HALF_WIDTH` bins (two peaks closer
    than a lobe make one run of bins). The lobes count only when together they hold
    :data:`MIN_PARTIAL_SHARE` of the power.
    """
    power = np.asarray(mean_power, dtype=np.float64)
    mask = np.zeros(power.shape, dtype=bool)
    if power.size == 0 or power.max() <= 0:
        return mask
    level = 10.0 * np.log10(power + POWER_FLOOR)
    loudest = level.max()
    for k in range(len(level)):
        near = level[max(0, k - PEAK_NEIGHBOURS):k + PEAK_NEIGHBOURS + 1]
        if (level[k] == level[max(0, k - 1):k + 2].max() and level[k] - np.median(near) >= PEAK_PROMINENCE_DB
                and level[k] >= loudest - PEAK_RANGE_DB):
            mask[max(0, k - LOBE_HALF_WIDTH):k + LOBE_HALF_WIDTH + 1] = True
    if power[mask].sum() < MIN_PARTIAL_SHARE * power.sum() or not floor_bins(mask).any():
        mask[:] = False
    return mask


def floor_bins(partials: np.ndarray) -> np.ndarray:
    """The floor between partials, ``(bins,)`` bool: the bins from the lowest partial bin to the highest that
    are not partial bins. Below and above the partials lies what the partials do not shape (a room's hum,
    a recording's empty top band): moved with the notes' floor, those bands' envelopes swung 2-4 times as
    wide as the recording's (``docs/EXPERIMENTS.md`` section 24)."""
    inside = np.flatnonzero(partials)
    floor = np.zeros(len(partials), dtype=bool)
    if len(inside):
        floor[inside[0]:inside[-1] + 1] = True
    return floor & ~partials


def floor_levels(magnitudes: np.ndarray, partials: np.ndarray) -> np.ndarray:
    """Each frame's floor, the mean power of :func:`floor_bins`, over the mean power of the ``partials``
    bins, natural log, ``(frames,)``.

    Parameters
    ----------
    magnitudes : np.ndarray [shape=(bins, frames)], finite, >= 0
        Linear |STFT| frames.
    partials : np.ndarray [shape=(bins,)], bool
        :func:`partial_bins` of at least two separate peaks.
    """
    power = np.square(np.asarray(magnitudes, dtype=np.float64))
    return np.log(power[floor_bins(partials)].mean(axis=0) + POWER_FLOOR) - np.log(power[partials].mean(axis=0) + POWER_FLOOR)


def floor_quantiles(log_magnitude: np.ndarray, partials: np.ndarray) -> np.ndarray | None:
    """The distribution of :func:`floor_levels` over a spectrogram's frames at :data:`FLOOR_PROBABILITIES`,
    ``(levels,)`` float64, non-decreasing; None when ``partials`` is empty.

    Parameters
    ----------
    log_magnitude : np.ndarray [shape=(bins, frames)], finite
        log1p |STFT| of the style; at most :data:`MAX_FLOOR_FRAMES` evenly spaced frames are read.
    partials : np.ndarray [shape=(bins,)], bool
    """
    if not np.any(partials):
        return None
    frames = log_magnitude.shape[1]
    picked = np.linspace(0, frames - 1, min(frames, MAX_FLOOR_FRAMES)).round().astype(int)
    levels = floor_levels(np.expm1(np.asarray(log_magnitude[:, picked], dtype=np.float64)), partials)
    return np.quantile(levels, FLOOR_PROBABILITIES)


def lobe_starts(partials: np.ndarray) -> np.ndarray:
    """The first bin of each partial's lobe, ``(peaks,)`` int: the runs of ``partials`` that are one lobe
    (``2 LOBE_HALF_WIDTH + 1`` bins). Lobes that run together (two peaks closer than a lobe) have no shape
    of their own and are left out."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(partials, dtype=int), [0]])))
    return np.array([a for a, b in zip(edges[::2], edges[1::2]) if b - a == 2 * LOBE_HALF_WIDTH + 1], dtype=int)


def peak_offsets(below: np.ndarray, at: np.ndarray, above: np.ndarray) -> np.ndarray:
    """Where a peak lies, in bins from the centre bin (within ±1): the vertex of the parabola through the
    levels in dB of the bin below the centre, the centre and the bin above, element-wise; 0 where the
    three do not bend down."""
    curvature = below - 2.0 * at + above
    bent = curvature < 0
    return np.clip(np.where(bent, 0.5 * (below - above) / np.where(bent, curvature, -1.0), 0.0), -1.0, 1.0)


def lobe_shapes(offsets: np.ndarray) -> np.ndarray:
    """The magnitudes a steady sinusoid ``offsets`` bins from a lobe's centre gives the lobe's
    ``2 LOBE_HALF_WIDTH + 1`` bins, ``offsets.shape + (2 LOBE_HALF_WIDTH + 1,)``, unit energy: a periodic
    Hann window's transform ``|sinc(x) / (1 − x²)|`` at the bins' distances ``x`` from the sinusoid."""
    x = np.arange(-LOBE_HALF_WIDTH, LOBE_HALF_WIDTH + 1) - np.asarray(offsets, dtype=np.float64)[..., None]
    near_one = np.abs(np.abs(x) - 1.0) < 1e-9
    shapes = np.abs(np.where(near_one, 0.5, np.sinc(x) / np.where(near_one, 1.0, 1.0 - x ** 2)))
    return shapes / np.sqrt(np.sum(shapes ** 2, axis=-1, keepdims=True))


@dataclass(frozen=True)
class FloorTarget:
    """What :class:`engine.synthesis.partial_floor.PartialFloor` keeps for a blend (:func:`blend_floors`).

    Attributes
    ----------
    partials : np.ndarray [shape=(bins,)], bool
    quantiles : np.ndarray [shape=(levels,)]
        The floor levels' distribution (:func:`floor_quantiles`).
    strength : float in (0, 1]
        Share of the blend's weight held by styles with partials.
    starts : np.ndarray [shape=(peaks,)], int
        :func:`lobe_starts` of the partials.
    """

    partials: np.ndarray
    quantiles: np.ndarray
    strength: float
    starts: np.ndarray


def blend_floors(partials: list[np.ndarray], quantiles: list[np.ndarray | None],
                 weights: np.ndarray) -> FloorTarget | None:
    """The floor target of a blend, or None when no style with a weight has partials.

    The partials are the union of those styles' (each style's ``partials`` ``(bins,)``), the quantiles
    their weighted mean (each ``(levels,)`` from :func:`floor_quantiles`, None for a style without
    partials) and the strength the share of the blend's weight they hold (a blend of a violin and rain at
    0.5 moves the floor half way, in dB, from the texture's own to the violin's).
    """
    w = np.asarray(weights, dtype=np.float64)
    tonal = [i for i, q in enumerate(quantiles) if q is not None and w[i] > 0]
    if not tonal:
        return None
    mask = np.any([partials[i] for i in tonal], axis=0)
    return FloorTarget(mask, np.average([quantiles[i] for i in tonal], axis=0, weights=w[tonal]),
                       float(w[tonal].sum() / w.sum()), lobe_starts(mask))
