"""Clicks over a steady bed: a style's short broadband events (a fire's crackles, a leaf's snaps), measured
so that the engine can play new ones.

The engine's frames are 46 ms long and overlap four times: a crackle of 2-3 ms in the style is spread over
46 ms of hiss, and the bands where crackles carry the power (a fire's top octave: 77 % of its power in 1 %
of the frames) lose their sparseness (docs/EXPERIMENTS.md sections 22 and 25). This module finds such
events on a fine STFT (:data:`CLICK_WINDOW_SECONDS` window, a quarter of it as hop):

* a band's *floor* is the median of its power over :data:`FLOOR_SECONDS`; a frame is *hot* in a band whose
  power stands :data:`CLICK_RATIO_DB` over its floor;
* a *click* is a frame at which at least :data:`MIN_HOT_SHARE` of the third-octave bands above
  :data:`MIN_CLICK_HZ` are hot, the largest in :data:`CLICK_GAP_SECONDS` around it;
* a style *has* clicks when it holds at least :data:`MIN_CLICKS` of them and its floor is steady: the median
  over bands of the floor's spread over time is at most :data:`MAX_FLOOR_SPREAD_DB` (a fire's or leaves'
  bed: 2.2 dB; speech 37 dB and a harp's arpeggio 25 dB, whose onsets are not clicks over a bed).

:func:`click_target` gives what the engine needs to play new clicks (their rate, the distribution of their
energies, their mean spectrum, their decay, their place between two channels) and the share of the style's
power they hold per frequency, which the engine's frames leave to them (:func:`bed_gains`). Where a bin's floor
holds almost none of its power (a fire's top octave, silent between crackles), the frames leave the clicks all of
it but the floor: the power of the crackles too small to be found and of the found ones' tails, played by the
frames, was a steady hiss in the gaps (``docs/EXPERIMENTS.md`` section 42). Pure functions;
only the first :data:`CLICK_MAX_SECONDS` of a style are read (its fine spectrogram is float32, 21 MB a minute
at 44.1 kHz).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

from engine.analysis.stereo import MAX_LEVEL_DIFFERENCE_DB, StereoImage

__all__ = ["ClickTarget", "click_target", "bed_gains", "profile_edges"]

#: Window of the fine STFT, s (256 samples at 44.1 kHz); its hop is a quarter of it.
CLICK_WINDOW_SECONDS = 256 / 44100
#: Span of the median that is a band's floor, s.
FLOOR_SECONDS = 0.2
#: How far over its floor a band must stand to be hot in a frame, dB.
CLICK_RATIO_DB = 10.0
#: Lowest band centre that counts for a click, Hz (below it a bed's swells are louder than any click).
MIN_CLICK_HZ = 1000.0
#: Share of those bands that must be hot at once.
MIN_HOT_SHARE = 0.5
#: Two clicks are at least this far apart, s.
CLICK_GAP_SECONDS = 0.003
#: Fewest clicks a style must hold to have any.
MIN_CLICKS = 5
#: Largest spread of a steady floor (median over bands of the std over time of its level), dB.
MAX_FLOOR_SPREAD_DB = 6.0
#: Seconds of a style that are analysed (enough for a rate and a spectrum; bounds time and memory).
CLICK_MAX_SECONDS = 60.0
#: Frames after a click's peak frame (and one before) whose excess over the floor is its energy.
CLICK_FRAMES_AFTER = 3
#: Lowest inner edge of the half-octave bands of the clicks' profiles, Hz.
PROFILE_LOW_HZ = 500.0
#: Most click profiles kept (a random choice of the clicks found).
MAX_PROFILES = 256
#: A bin whose floor holds less than this share of its power is the clicks': the frames play only its floor.
CLICK_BIN_FLOOR_SHARE = 0.1
#: Least share of a bin's power the frames play (-30 dB): the spectral balance divides what it measures by the
#: frames' gains, and with none left its estimate of such a bin was leakage (campfire's envelopes 0.110 against
#: 0.100 with this floor; docs/EXPERIMENTS.md section 42).
MIN_BED_SHARE = 1e-3
#: Largest delay between a click's two channels that its coherence allows for, s (spaced microphones 30 cm apart).
MAX_CLICK_DELAY_SECONDS = 0.001
#: Shortest and longest decay time constant of a click, s.
DECAY_LIMITS_SECONDS = (0.0005, 0.02)


@dataclass(frozen=True, eq=False)
class ClickTarget:
    """The clicks of one style (:func:`click_target`). Compared and hashed by identity (the click layer keeps
    a deck of profiles per target).

    Attributes
    ----------
    rate_hz : float
        Clicks per second.
    energy : float
        A click's mean energy: the sum of its squared samples (full scale 1), of the mid of a stereo style.
    freqs : np.ndarray [shape=(bins,)]
        Frequencies of the fine STFT's bins, Hz.
    shape : np.ndarray [shape=(bins,)]
        Mean share of a click's energy in each bin (sums to 1).
    share : np.ndarray [shape=(bins,)]
        Share of the style's power in each bin that the clicks hold, in [0, 1]: the found clicks' own, or all
        but the floor in a bin whose floor holds less than :data:`CLICK_BIN_FLOOR_SHARE` of it.
    decay_seconds : float
        Time constant of a click's exponential decay.
    image : engine.analysis.stereo.StereoImage
        Each kept click's (one per row of ``profiles``) place between two channels, in a band image's terms
        (:func:`_click_image`): its channels' coherence, left over right energy in dB, and their mean energy over
        the mid's (a click in the middle 1, independent in each channel 2). A mono style's clicks: 1, 0, 1.
    edges : np.ndarray [shape=(bands + 1,)]
        Edges of the half-octave bands of the profiles, Hz (:func:`profile_edges`).
    profiles : np.ndarray [shape=(clicks, bands)], float32
        Each click found: its energy per band over the clicks' mean energy in that band (the mean over
        clicks is 1 in every band). A new click takes one, so that loud clicks and bright clicks come as
        often as in the style (a fire's top octave is a few bright crackles, not many dull ones).
    """

    rate_hz: float
    energy: float
    freqs: np.ndarray
    shape: np.ndarray
    share: np.ndarray
    decay_seconds: float
    image: StereoImage
    edges: np.ndarray
    profiles: np.ndarray


def _fine_power(y: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    """|STFT|² ``(bins, frames)`` float32 of ``y`` (one channel) on the fine grid, scaled so that the frames'
    summed power times the hop is the signal's energy; the bins' frequencies, Hz; the hop, samples."""
    n_fft = max(16, int(round(CLICK_WINDOW_SECONDS * sample_rate)))
    hop = n_fft // 4
    freqs, _, z = scipy.signal.stft(y.astype(np.float32), fs=sample_rate, nperseg=n_fft, noverlap=n_fft - hop,
                                    boundary=None, padded=False)
    power = (z.real ** 2 + z.imag ** 2).astype(np.float32)
    total = float(power.sum(dtype=np.float64))
    power *= np.float32(np.sum(y.astype(np.float64) ** 2) / (total * hop) if total > 0 else 0.0)
    return power, freqs, hop


def _span_medians(power: np.ndarray, span: int) -> np.ndarray:
    """Median of each row over consecutive spans of ``span`` frames ``(rows, ceil(frames / span))``; the last,
    short span takes the last ``span`` frames. Frame ``t``'s floor is column ``t // span``."""
    rows, n = power.shape
    whole = n // span * span
    parts = [np.median(power[:, :whole].reshape(rows, -1, span), axis=2)] if whole else []
    if whole < n:
        parts.append(np.median(power[:, max(0, n - span):], axis=1, keepdims=True))
    return np.concatenate(parts, axis=1)


def _floor_share(power: np.ndarray, span: int) -> np.ndarray:
    """Share of each bin's power ``(bins,)`` that its floor holds: the mean of its medians over spans of ``span``
    frames over its mean, each median divided by ln 2 (the median of a steady noise's power is ln 2 of its mean)."""
    floor = _span_medians(power, span).mean(axis=1, dtype=np.float64) / np.log(2.0)
    return np.clip(floor / np.maximum(power.mean(axis=1, dtype=np.float64), 1e-30), 0.0, 1.0)


def _bands(freqs: np.ndarray) -> np.ndarray:
    """0/1 ``(bands, bins)`` of the third-octave bands (centres ``MIN_CLICK_HZ · 2^(k/3)`` Hz) that hold a bin."""
    nyquist = freqs[-1]
    k = np.arange(0, int(np.floor(3 * np.log2(nyquist / MIN_CLICK_HZ))) + 1)
    centres = MIN_CLICK_HZ * 2.0 ** (k / 3)
    lo, hi = centres * 2 ** (-1 / 6), np.minimum(centres * 2 ** (1 / 6), nyquist + 1)
    m = ((freqs[None, :] >= lo[:, None]) & (freqs[None, :] < hi[:, None])).astype(np.float32)
    return m[m.sum(axis=1) > 0]


def _click_energy(power: np.ndarray, peaks: np.ndarray, span: int) -> np.ndarray:
    """Energy over the floor per bin of each click ``(bins, clicks, frames)``: frames ``-1 .. CLICK_FRAMES_AFTER``
    around each peak, less the floor of the span each lies in."""
    frames = peaks[:, None] + np.arange(-1, CLICK_FRAMES_AFTER + 1)[None, :]
    floor = _span_medians(power, span)[:, frames // span]
    return np.maximum(power[:, frames].astype(np.float64) - floor, 0.0)


def click_target(audio: np.ndarray, *, sample_rate: int) -> ClickTarget | None:
    """The clicks of a style, or None when it has none (see the module doc for the rule).

    Parameters
    ----------
    audio : np.ndarray [shape=(n,) or (n, channels)], floating, finite
        The style at the engine rate; clicks are found on the channels' mean (their place between two
        channels is measured; other channel counts are mixed to one).
    sample_rate : int
        Its rate, Hz.
    """
    audio = np.asarray(audio)[: int(CLICK_MAX_SECONDS * sample_rate)]
    if audio.ndim == 2 and audio.shape[1] != 2:
        audio = audio.mean(axis=1)
    mid = audio.mean(axis=1) if audio.ndim == 2 else audio
    power, freqs, hop = _fine_power(mid, sample_rate)
    span = max(3, int(round(FLOOR_SECONDS * sample_rate / hop)))
    bands = _bands(freqs)
    if power.shape[1] < 2 * span or len(bands) == 0:
        return None
    band_power = bands @ power
    band_floor = _span_medians(band_power, span)
    if np.median(np.std(10 * np.log10(band_floor + 1e-20), axis=1)) > MAX_FLOOR_SPREAD_DB:
        return None
    ratio = band_power / np.maximum(band_floor[:, np.arange(power.shape[1]) // span], 1e-30)
    hot = (ratio > 10 ** (CLICK_RATIO_DB / 10)).mean(axis=0) >= MIN_HOT_SHARE
    score = np.where(hot, np.log(np.maximum(ratio, 1.0)).sum(axis=0), 0.0)
    peaks, _ = scipy.signal.find_peaks(score, distance=max(1, int(round(CLICK_GAP_SECONDS * sample_rate / hop))))
    peaks = peaks[hot[peaks] & (peaks >= 1) & (peaks + CLICK_FRAMES_AFTER < power.shape[1])]
    if len(peaks) < MIN_CLICKS:
        return None
    each = _click_energy(power, peaks, span) * hop  # (bins, clicks, frames), energy
    per_click = each.sum(axis=2)
    broadband = each.sum(axis=0)
    decay_per_hop = np.median(broadband[:, 2] / np.maximum(broadband[:, 1], 1e-30))
    decay = -hop / sample_rate / np.log(np.clip(decay_per_hop, 1e-3, 0.999))
    keep = np.random.default_rng(0).permutation(len(peaks))[:MAX_PROFILES]
    if audio.ndim == 2:
        image = _click_image(audio, peaks[keep], span=span, hop=hop, sample_rate=sample_rate)
    else:
        still = np.zeros(len(keep))
        image = StereoImage(np.ones(len(keep)), still, np.ones(len(keep)), still, still)
    edges = profile_edges(sample_rate)
    in_band = ((freqs[None, :] >= edges[:-1, None]) & (freqs[None, :] < edges[1:, None])).astype(np.float64)
    band_energy = in_band @ per_click  # (bands, clicks)
    profiles = band_energy / np.maximum(band_energy.mean(axis=1, keepdims=True), 1e-30)
    total = np.maximum(power.sum(axis=1, dtype=np.float64) * hop, 1e-30)
    share = np.clip(per_click.sum(axis=1) / total, 0.0, 1.0)
    floor = _floor_share(power, span)
    share = np.where(floor < CLICK_BIN_FLOOR_SHARE, np.maximum(share, 1.0 - floor), share)
    return ClickTarget(rate_hz=len(peaks) * sample_rate / len(mid), energy=float(per_click.sum(axis=0).mean()),
                       freqs=freqs, shape=per_click.sum(axis=1) / per_click.sum(),
                       share=share,
                       decay_seconds=float(np.clip(decay, *DECAY_LIMITS_SECONDS)),
                       image=image, edges=edges,
                       profiles=profiles.T[keep].astype(np.float32))


def _click_image(audio: np.ndarray, peaks: np.ndarray, *, span: int, hop: int, sample_rate: int) -> StereoImage:
    """The image of each click at ``peaks`` (fine frames) of a stereo ``audio`` ``(n, 2)`` (see
    :class:`ClickTarget`), from its fine frames -1 .. :data:`CLICK_FRAMES_AFTER` above :data:`MIN_CLICK_HZ`.

    * Coherence: in the bins where the click stands :data:`CLICK_RATIO_DB` over both channels' floors (the bed under
      it has a coherence of its own: leaves' clicks read 0.92 over all bins, 0.96 there), the channels' correlation
      at the delay within :data:`MAX_CLICK_DELAY_SECONDS` that gives the most (a spaced pair's, a fraction of a
      sample included), from their summed cross-spectrum. The most of many delays is over 0 for unrelated channels
      too: what each click's left gives with the next click's right (the median, ``u``) counts as none, and an
      estimate ``ĉ`` as ``(ĉ − u) / (1 − u)``. A click over one channel's floor only has none.
    * Level difference: the channels' energies in the bins where it stands over either channel's floor, left over
      right.
    * Mid ratio: what a click of that coherence and level difference played in both channels without a delay
      needs for its mid to hold the mid's energy, :attr:`ClickTarget.energy`: ``2 / (1 + 2 c √q / (1 + q))``, ``q``
      the level difference as a power ratio (a delay in the style, which the layer does not play, weakens the
      style's mid, not the played one's)."""
    n_fft = 4 * hop  # as _fine_power's
    around = peaks[:, None] + np.arange(-1, CLICK_FRAMES_AFTER + 1)[None, :]  # (clicks, frames)
    frames = audio[around[:, :, None] * hop + np.arange(n_fft)].astype(np.float64)  # (clicks, frames, n_fft, 2)
    spectra = np.fft.rfft(frames * scipy.signal.get_window("hann", n_fft)[:, None], axis=2)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    high = freqs >= MIN_CLICK_HZ
    over = []  # (clicks, frames, bins): where the click stands over each channel's floor
    for channel in range(2):
        power = _fine_power(audio[:, channel], sample_rate)[0][high]
        floor = _span_medians(power, span)[:, around // span]
        over.append(np.moveaxis(power[:, around] > 10 ** (CLICK_RATIO_DB / 10) * floor, 0, -1))
    spectra = spectra[:, :, high]
    energy = [np.sum(np.abs(spectra[..., k]) ** 2 * (over[0] | over[1]), axis=(1, 2)) for k in range(2)]
    left, right = (spectra[..., k] * (over[0] & over[1]) for k in range(2))  # the bed's own coherence left out
    power = np.stack([np.sum(np.abs(x) ** 2, axis=(1, 2)) for x in (left, right)])  # (2, clicks)
    delays = np.arange(-MAX_CLICK_DELAY_SECONDS, MAX_CLICK_DELAY_SECONDS, 0.125 / sample_rate)
    turn = np.exp(2j * np.pi * freqs[high, None] * delays[None, :])  # (bins, delays)

    def coherence(left: np.ndarray, right: np.ndarray, power: np.ndarray) -> np.ndarray:
        cross = np.sum(left * np.conj(right), axis=1) @ turn  # (clicks, delays)
        return np.abs(cross).max(axis=1) / np.maximum(np.sqrt(power[0] * power[1]), 1e-30)

    unrelated = float(np.median(coherence(left, np.roll(right, 1, axis=0), np.stack([power[0], np.roll(power[1], 1)]))))
    c = np.clip((coherence(left, right, power) - unrelated) / max(1.0 - unrelated, 1e-6), 0.0, 1.0)
    q = np.clip(np.maximum(energy[0], 1e-30) / np.maximum(energy[1], 1e-30),
                10 ** (-MAX_LEVEL_DIFFERENCE_DB / 10), 10 ** (MAX_LEVEL_DIFFERENCE_DB / 10))
    still = np.zeros(len(c))
    return StereoImage(c, 10.0 * np.log10(q), 2.0 / (1.0 + 2.0 * c * np.sqrt(q) / (1.0 + q)), still, still)


def profile_edges(sample_rate: int) -> np.ndarray:
    """Edges (Hz) of the half-octave bands of the clicks' profiles: 0, ``PROFILE_LOW_HZ · 2^(k/2)`` below the
    Nyquist frequency, and just past it."""
    k = np.arange(0, int(np.floor(2 * np.log2(sample_rate / 2 / PROFILE_LOW_HZ))) + 1)
    return np.concatenate([[0.0], PROFILE_LOW_HZ * 2.0 ** (k / 2), [sample_rate / 2 + 1.0]])


def bed_gains(target: ClickTarget | None, freqs: np.ndarray) -> np.ndarray:
    """Per-bin power gains ``(len(freqs),)`` for the engine's frames at ``freqs`` (Hz): the part of a bin's
    power that is not the clicks', ``1 − share``, at least :data:`MIN_BED_SHARE`; ones without clicks."""
    if target is None:
        return np.ones(len(freqs))
    return np.maximum(1.0 - np.interp(freqs, target.freqs, target.share, right=0.0), MIN_BED_SHARE)
