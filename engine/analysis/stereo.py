"""A sound's stereo image per band: left/right coherence, level difference, and the level of its mid.

The engine synthesises one magnitude texture, the *mid* (the channels' mean, the right channel's bins inverted
where the two are in antiphase, :func:`aligned_mid`; what every other statistic is taken on), and derives the two
channels from it per band (parametric stereo, Breebaart
et al. 2005: :mod:`engine.synthesis.stereo`). What it needs of a stereo style, per band ``b`` of the
envelope map (:meth:`engine.analysis.spectral.SpectralConfig.envelope_map`, half-octave bands), from
the STFTs ``L`` and ``R`` of its channels summed over frames ``t``:

* ``coherence`` ``c_b = sqrt(Σ_k E_bk γ_k)`` in [0, 1], ``E`` the map's weights (rows sum to 1) and
  ``γ_k = |Σ_t L R*|² / (Σ_t |L|² Σ_t |R|²)`` each bin's magnitude-squared coherence: 1 when the
  channels are one signal (panned or delayed per bin), about 0 when they are independent (a finite
  recording gives independent noise about ``1 / sqrt(frames)``, 0.04 for 8 s). The upmix gives every
  bin of the band the coherence ``c_b``, so the band's mean ``γ`` is the style's: the mean over bins is
  what a listener's bands and :func:`engine.evaluation.stereo.band_coherence` measure. A power-weighted
  mean of ``|Σ_t L R*|`` instead let a few strong coherent bins (a low hum, a bird in the middle) set
  a whole band, and the texture came out more coherent than its style in those bands
  (``docs/EXPERIMENTS.md`` section 15);
* ``level_difference_db`` ``10 log10(P_L / P_R)`` (left over right), within ±:data:`MAX_LEVEL_DIFFERENCE_DB`
  (a silent channel would be infinitely far);
* ``wander_db``, ``wander_shared``: how far the level difference moves, slowly, about that mean, and how
  much of it the bands do together (:func:`level_wander`). A
  field recording's image is not still: a bird calls on the left, then one on the right, and in its bands
  the difference over 0.4 s means moves 1-3.5 dB (the corpus' birds, insects and jungle); a texture made
  with a still difference moved 0.3-0.5 dB there, what the random fluctuation of two channels gives;
* ``mid_ratio`` ``(P_L + P_R) / 2 / P_M``, the channels' mean power over the mid's (1 for identical
  channels, 2 for independent ones of equal level): the channels made from the mid texture are scaled
  by its square root so their level is the style's, however wide (at most :data:`MAX_MID_RATIO`, where
  the channels nearly cancel in the mid).

A mono style has :func:`independent_image`: coherence 0, no level difference and no wander, ratio 1; the
``width`` parameter then says how much of that independence is heard. All functions are pure (numpy, scipy).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.ndimage

from engine.analysis.spectral import SpectralConfig, stft_frames
from engine.errors import ParameterError

#: Largest mid ratio (6 dB) a style's channels may be scaled by over the mid texture.
MAX_MID_RATIO = 4.0
#: Correlation of a bin's channels under which the right one is inverted in the mid (:func:`aligned_mid`): only
#: where the plain mean nearly cancels. Turning every bin of the right channel to the left's mean phase instead took
#: the birds 0.03-0.08 further from their recording by the learned ear, each channel's as well as the mix's
#: (docs/EXPERIMENTS.md section 63); no bin of the corpus' recordings correlates under −0.70, so they keep the plain
#: mean.
ANTIPHASE_CORRELATION = 0.8
#: Largest level difference between the channels in a band, dB.
MAX_LEVEL_DIFFERENCE_DB = 40.0
#: The two means (s) over which the level difference's movement is split into a still image's and a wander.
WANDER_WINDOWS_SECONDS = (0.1, 0.4)
#: Time constant of the level difference's wander, s (the 0.4 s means of the corpus' birds and insects hold
#: 0.2-0.4 of their movement from one to the next).
WANDER_SECONDS = 0.5
#: Seconds over which :func:`level_difference_track` follows a content's level difference (a transfer's).
TRACK_SECONDS = 0.25
#: Largest wander, dB.
MAX_WANDER_DB = 6.0
#: Bands that wander less than this (dB) take no part in the walk the bands share.
MIN_WANDER_DB = 0.1
#: Largest correlation of a band's wander with the shared walk (each band keeps a walk of its own).
MAX_WANDER_SHARED = 0.95
#: Power added under each logarithm (|STFT|² scale), so a silent band has a finite level.
POWER_FLOOR = 1e-20
#: Frames of STFT taken at once while analysing a long style (bounded memory).
CHUNK_FRAMES = 2048


@dataclass(frozen=True)
class StereoImage:
    """Per-band stereo statistics (see module doc), each ``(bands,)`` float64; ``wander_db`` is the standard
    deviation of the level difference's slow movement about ``level_difference_db`` (0 for a still image),
    ``wander_shared`` its correlation with a walk all bands share (:func:`level_wander`)."""

    coherence: np.ndarray
    level_difference_db: np.ndarray
    mid_ratio: np.ndarray
    wander_db: np.ndarray
    wander_shared: np.ndarray


def independent_image(bands: int) -> StereoImage:
    """The image of two independent channels of equal level, a mono style's (``width`` scales it)."""
    return StereoImage(np.zeros(bands), np.zeros(bands), np.ones(bands), np.zeros(bands), np.zeros(bands))


def stereo_image(audio: np.ndarray, spectral: SpectralConfig,
                 envelope_map: np.ndarray) -> tuple[StereoImage, np.ndarray, np.ndarray]:
    """The stereo image of ``audio`` ``(samples, 2)`` (float, finite) at ``spectral``'s rate and STFT, the
    channels' mean power per bin ``(bins,)`` (mean over frames of ``(|L|² + |R|²) / 2``), and the sign per bin
    ``(bins,)`` (±1) the right channel takes in the mid (:func:`aligned_mid`).

    Computed :data:`CHUNK_FRAMES` frames at a time. Raises ParameterError for audio that is not two channels.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 2 or audio.shape[1] != 2:
        raise ParameterError(f"a stereo image needs audio of shape (samples, 2). Found shape {audio.shape}")
    left, right = audio[:, 0], audio[:, 1]
    n_frames = 1 + len(audio) // spectral.hop
    cross, p_left, p_right, p_mid = (np.zeros(spectral.n_bins, dt) for dt in (complex, float, float, float))
    e = np.asarray(envelope_map, dtype=np.float64)
    band_left, band_right = [], []
    for start in range(0, n_frames, CHUNK_FRAMES):
        stop = start + CHUNK_FRAMES
        lft = stft_frames(left, start, stop, n_fft=spectral.n_fft, hop=spectral.hop)
        rgt = stft_frames(right, start, stop, n_fft=spectral.n_fft, hop=spectral.hop)
        cross += np.sum(lft * np.conj(rgt), axis=1)
        p_left += np.sum(np.abs(lft) ** 2, axis=1)
        p_right += np.sum(np.abs(rgt) ** 2, axis=1)
        p_mid += np.sum(np.abs(0.5 * (lft + rgt)) ** 2, axis=1)
        band_left.append(e @ np.abs(lft) ** 2)
        band_right.append(e @ np.abs(rgt) ** 2)
    tiny = POWER_FLOOR
    alignment = np.where(cross.real < -ANTIPHASE_CORRELATION * np.sqrt(p_left * p_right), -1.0, 1.0)
    p_mid -= np.where(alignment < 0, cross.real, 0.0)  # Σ |L − R|² / 4 where inverted
    per_bin = np.abs(cross) ** 2 / ((p_left + tiny) * (p_right + tiny))
    coherence = np.clip(np.sqrt((e @ per_bin) / np.maximum(e.sum(axis=1), tiny)), 0.0, 1.0)
    bl, br, bm = e @ p_left + tiny, e @ p_right + tiny, e @ p_mid + tiny
    difference = np.clip(10.0 * np.log10(bl / br), -MAX_LEVEL_DIFFERENCE_DB, MAX_LEVEL_DIFFERENCE_DB)
    wander, shared = level_wander(np.concatenate(band_left, axis=1), np.concatenate(band_right, axis=1),
                                  frame_rate=spectral.sample_rate / spectral.hop)
    image = StereoImage(coherence, difference, np.clip(0.5 * (bl + br) / bm, 0.0, MAX_MID_RATIO), wander, shared)
    return image, 0.5 * (p_left + p_right) / n_frames, alignment


def level_difference_track(audio: np.ndarray, spectral: SpectralConfig, envelope_map: np.ndarray, *,
                           seconds: float = TRACK_SECONDS) -> np.ndarray:
    """Each band's level difference ``10 log10(P_L / P_R)`` in dB, frame by frame ``(bands, frames)``, of ``audio``
    ``(samples, 2)`` at ``spectral``'s STFT (the frames of :func:`engine.analysis.spectral.stft`): the channels' band
    powers averaged over ``seconds`` around each frame, within ±:data:`MAX_LEVEL_DIFFERENCE_DB`. A source that moves
    from one side to the other moves it; a still image gives its :func:`stereo_image` difference, give or take the
    noise of ``seconds`` of material. Computed :data:`CHUNK_FRAMES` frames at a time. Raises ParameterError for audio
    that is not two channels."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 2 or audio.shape[1] != 2:
        raise ParameterError(f"a level difference needs audio of shape (samples, 2). Found shape {audio.shape}")
    e = np.asarray(envelope_map, dtype=np.float64)
    n_frames = 1 + len(audio) // spectral.hop
    powers = [np.concatenate([e @ np.abs(stft_frames(audio[:, c], start, start + CHUNK_FRAMES, n_fft=spectral.n_fft,
                                                     hop=spectral.hop)) ** 2
                              for start in range(0, n_frames, CHUNK_FRAMES)], axis=1) for c in range(2)]
    width = max(1, int(round(seconds * spectral.sample_rate / spectral.hop)))
    left, right = (scipy.ndimage.uniform_filter1d(p, width, axis=1, mode="nearest") for p in powers)
    return np.clip(10.0 * np.log10((left + POWER_FLOOR) / (right + POWER_FLOOR)), -MAX_LEVEL_DIFFERENCE_DB,
                   MAX_LEVEL_DIFFERENCE_DB)


def aligned_mid(left: np.ndarray, right: np.ndarray, alignment: np.ndarray) -> np.ndarray:
    """The mid ``(L + u R) / 2`` of two channels' STFTs ``(bins, frames)``, ``u`` the sign ``(bins,)`` that
    :func:`stereo_image` returns: −1 in a bin where the channels' correlation ``Re Σ_t L R* / sqrt(P_L P_R)`` is
    under −:data:`ANTIPHASE_CORRELATION`, else 1. There the plain mean cancels, to silence for a channel whose
    polarity was swapped (the texture played 110 dB under its style); elsewhere this is the plain mean."""
    return 0.5 * (left + alignment[:, None] * right)


def level_wander(left: np.ndarray, right: np.ndarray, *, frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """How far each band's level difference wanders, and how much of that the bands do together:
    ``(wander_db, wander_shared)``, each ``(bands,)``.

    ``wander_db`` is the standard deviation (dB) of an AR(1) walk of time constant :data:`WANDER_SECONDS`
    that gives the slow part of the band's movement; ``wander_shared`` the correlation of that movement with
    one walk common to all bands (a bird that calls in several bands moves them together), within
    ±:data:`MAX_WANDER_SHARED`.

    Parameters
    ----------
    left, right : np.ndarray [shape=(bands, frames)]
        The channels' band powers frame by frame (any scale, the same for both).
    frame_rate : float
        Frames a second.

    The level difference over the two :data:`WANDER_WINDOWS_SECONDS` means varies as ``V(W) = S + F / W``
    (``W`` in frames): ``S`` is the part that holds over the windows, the walk's, and ``F / W`` the part a
    still image has too, which averages out. ``S`` is then divided by the share of a walk's variance the
    longer window's mean leaves. The shared part is one common factor of the wandering bands' differences
    over the longer means (their correlations with it, :func:`_one_factor`). A recording shorter than that
    window, or one whose difference does not wander, gives zeros; the wander is at most :data:`MAX_WANDER_DB`.
    """
    bands = left.shape[0]
    widths = [max(1, int(round(seconds * frame_rate))) for seconds in WANDER_WINDOWS_SECONDS]
    if left.shape[1] < widths[1]:
        return np.zeros(bands), np.zeros(bands)
    differences = []
    for w in widths:
        lft = scipy.ndimage.uniform_filter1d(left, w, axis=1)
        rgt = scipy.ndimage.uniform_filter1d(right, w, axis=1)
        differences.append(10.0 * np.log10((lft + POWER_FLOOR) / (rgt + POWER_FLOOR)))
    (fast_w, slow_w), (fast_v, slow_v) = widths, [np.var(d, axis=1) for d in differences]
    still = (fast_v - slow_v) / (1.0 / fast_w - 1.0 / slow_w)
    lags = np.abs(np.arange(slow_w)[:, None] - np.arange(slow_w)[None, :])
    kept = float(np.mean(wander_pole(frame_rate) ** lags))
    wander = np.sqrt(np.clip((slow_v - still / slow_w) / kept, 0.0, MAX_WANDER_DB ** 2))
    shared = np.zeros(bands)
    moving = np.flatnonzero(wander > MIN_WANDER_DB)
    if len(moving) >= 2:
        shared[moving] = _one_factor(np.corrcoef(differences[1][moving]))
    return wander, shared


def _one_factor(correlation: np.ndarray) -> np.ndarray:
    """Loadings ``l`` of one common factor whose ``l_i l_j`` give ``correlation``'s off-diagonal entries
    (principal-axis factoring: the diagonal replaced by each variable's shared part, refined 20 times), within
    ±:data:`MAX_WANDER_SHARED`, signed so that most of the loading is positive. Uncorrelated variables get 0."""
    c = np.array(correlation, dtype=np.float64)
    off = c - np.diag(np.diag(c))
    communality = np.abs(off).max(axis=1)
    loading = np.zeros(len(c))
    for _ in range(20):
        np.fill_diagonal(c, communality)
        values, vectors = np.linalg.eigh(c)
        loading = np.clip(vectors[:, -1] * np.sqrt(max(values[-1], 0.0)), -MAX_WANDER_SHARED, MAX_WANDER_SHARED)
        communality = loading ** 2
    return loading * (1.0 if loading.sum() >= 0 else -1.0)


def wander_pole(frame_rate: float) -> float:
    """The per-frame pole of the level difference's wander, an AR(1) of time constant :data:`WANDER_SECONDS`."""
    return float(np.exp(-1.0 / (WANDER_SECONDS * frame_rate)))


def blend_images(images: Sequence[StereoImage], weights: np.ndarray) -> StereoImage:
    """The weighted mean of ``images`` (``weights`` sum to 1), field by field: a blend or a morph moves
    the stereo image with the timbre."""
    w = np.asarray(weights, dtype=np.float64)
    return StereoImage(*(sum(wi * getattr(im, name) for wi, im in zip(w, images))
                         for name in ("coherence", "level_difference_db", "mid_ratio", "wander_db", "wander_shared")))
