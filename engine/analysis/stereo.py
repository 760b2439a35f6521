"""A sound's stereo image per band: left/right coherence, level difference, and the level of its mid.

The engine synthesises one magnitude texture, the *mid* (the channels' mean, what every other
statistic is taken on), and derives the two channels from it per band (parametric stereo, Breebaart
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
* ``mid_ratio`` ``(P_L + P_R) / 2 / P_M``, the channels' mean power over the mid's (1 for identical
  channels, 2 for independent ones of equal level): the channels made from the mid texture are scaled
  by its square root so their level is the style's, however wide (at most :data:`MAX_MID_RATIO`, where
  the channels nearly cancel in the mid).

A mono style has :func:`independent_image`: coherence 0, no level difference, ratio 1; the ``width``
parameter then says how much of that independence is heard. All functions are pure numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from engine.analysis.spectral import SpectralConfig, stft_frames
from engine.errors import ParameterError

#: Largest mid ratio (6 dB) a style's channels may be scaled by over the mid texture.
MAX_MID_RATIO = 4.0
#: Largest level difference between the channels in a band, dB.
MAX_LEVEL_DIFFERENCE_DB = 40.0
#: Frames of STFT taken at once while analysing a long style (bounded memory).
CHUNK_FRAMES = 2048


@dataclass(frozen=True)
class StereoImage:
    """Per-band stereo statistics (see module doc), each ``(bands,)`` float64."""

    coherence: np.ndarray
    level_difference_db: np.ndarray
    mid_ratio: np.ndarray


def independent_image(bands: int) -> StereoImage:
    """The image of two independent channels of equal level, a mono style's (``width`` scales it)."""
    return StereoImage(np.zeros(bands), np.zeros(bands), np.ones(bands))


def stereo_image(audio: np.ndarray, spectral: SpectralConfig, envelope_map: np.ndarray) -> tuple[StereoImage, np.ndarray]:
    """The stereo image of ``audio`` ``(samples, 2)`` (float, finite) at ``spectral``'s rate and STFT, and
    the channels' mean power per bin ``(bins,)`` (mean over frames of ``(|L|² + |R|²) / 2``).

    Computed :data:`CHUNK_FRAMES` frames at a time. Raises ParameterError for audio that is not two channels.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 2 or audio.shape[1] != 2:
        raise ParameterError(f"a stereo image needs audio of shape (samples, 2). Found shape {audio.shape}")
    left, right = audio[:, 0], audio[:, 1]
    n_frames = 1 + len(audio) // spectral.hop
    cross, p_left, p_right, p_mid = (np.zeros(spectral.n_bins, dt) for dt in (complex, float, float, float))
    for start in range(0, n_frames, CHUNK_FRAMES):
        stop = start + CHUNK_FRAMES
        lft = stft_frames(left, start, stop, n_fft=spectral.n_fft, hop=spectral.hop)
        rgt = stft_frames(right, start, stop, n_fft=spectral.n_fft, hop=spectral.hop)
        cross += np.sum(lft * np.conj(rgt), axis=1)
        p_left += np.sum(np.abs(lft) ** 2, axis=1)
        p_right += np.sum(np.abs(rgt) ** 2, axis=1)
        p_mid += np.sum(np.abs(0.5 * (lft + rgt)) ** 2, axis=1)
    e = np.asarray(envelope_map, dtype=np.float64)
    tiny = 1e-20
    per_bin = np.abs(cross) ** 2 / ((p_left + tiny) * (p_right + tiny))
    coherence = np.clip(np.sqrt((e @ per_bin) / np.maximum(e.sum(axis=1), tiny)), 0.0, 1.0)
    bl, br, bm = e @ p_left + tiny, e @ p_right + tiny, e @ p_mid + tiny
    difference = np.clip(10.0 * np.log10(bl / br), -MAX_LEVEL_DIFFERENCE_DB, MAX_LEVEL_DIFFERENCE_DB)
    image = StereoImage(coherence, difference, np.clip(0.5 * (bl + br) / bm, 0.0, MAX_MID_RATIO))
    return image, 0.5 * (p_left + p_right) / n_frames


def blend_images(images: Sequence[StereoImage], weights: np.ndarray) -> StereoImage:
    """The weighted mean of ``images`` (``weights`` sum to 1), field by field: a blend or a morph moves
    the stereo image with the timbre."""
    w = np.asarray(weights, dtype=np.float64)
    return StereoImage(*(sum(wi * getattr(im, name) for wi, im in zip(w, images))
                         for name in ("coherence", "level_difference_db", "mid_ratio")))
