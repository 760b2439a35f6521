"""Is a texture new sound, or the style read back? Novelty and collage measures.

A copy of the style has the style's statistics, so every statistics metric (:mod:`engine.evaluation.metrics`)
rewards granular replay. These measures tell synthesis from replay, on the same STFT as the engine
(log1p magnitude, n_fft 1024, hop 256, 11.6 ms frames at 22050 Hz):

* :func:`copied_share` — the share of a candidate's frames that sit in a verbatim run of the style:
  for each frame take the nearest style frame (L2); a frame is *copied* when it lies in a run of at
  least :data:`COPY_RUN_FRAMES` frames (about 100 ms) whose nearest style frame advances by exactly one
  frame per frame. 0 for synthesis from statistics, near 1 for replay.
* :func:`distance_ratio` — the median nearest-style-frame distance of the candidate over that of a
  reference (fresh material of the same source, e.g. the recording's unseen continuation): about 1 is
  as new as the source itself, well below 1 is memorised.
* :func:`collage_index` — whether a blend of styles A and B is one hybrid or alternating pieces: each
  250 ms window's mean log spectrum is placed on the line from A's mean (0) to B's (1); the mean
  distance of those positions from the blend weight ``w``, over the ``2 w (1 − w)`` that a pure
  alternation of A and B in the ratio ``w`` gives. 0 is a steady hybrid, 1 a collage (a plain sum of
  two recordings measures 0.2-0.35).
"""
from __future__ import annotations

import numpy as np

from engine.errors import ParameterError
from engine.analysis.spectral import DEFAULT_HOP, DEFAULT_N_FFT, SpectralConfig, log_magnitude
from engine.evaluation.audio import power_mean_stft

#: Frames in a run of advancing nearest style frames that count as copied (9 frames = 104 ms at 22050 Hz).
COPY_RUN_FRAMES = 9
#: Window of :func:`collage_index`, in seconds.
COLLAGE_WINDOW_SECONDS = 0.25
#: Candidate frames compared with the style at once (bounds memory to this many x style frames).
_CHUNK = 512


def _log_spectrogram(y: np.ndarray, *, sample_rate: int, role: str, min_frames: int) -> np.ndarray:
    """``log1p |STFT|`` ``(513, frames)`` of float audio, ``(n,)`` or ``(n, channels)`` (the channels'
    mean power, :func:`engine.evaluation.audio.power_mean_stft`); ParameterError naming ``role`` if unusable."""
    SpectralConfig(sample_rate=sample_rate)
    s = log_magnitude(power_mean_stft(y, n_fft=DEFAULT_N_FFT, hop=DEFAULT_HOP, role=role))
    if s.shape[1] < min_frames:
        raise ParameterError(f"{role} is too short: {len(y) / sample_rate:.3f} s, needs at least "
                             f"{min_frames * DEFAULT_HOP / sample_rate:.3f} s")
    return s


def nearest_frames(style: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index and L2 distance of the nearest ``style`` frame for each ``candidate`` frame.

    Both are ``(bins, frames)`` spectrograms; returns two ``(candidate frames,)`` arrays.
    """
    s = style.astype(np.float64)
    s2 = (s * s).sum(axis=0)
    idx, dist = [], []
    for i in range(0, candidate.shape[1], _CHUNK):
        c = candidate[:, i:i + _CHUNK].astype(np.float64)
        d = (c * c).sum(axis=0)[:, None] - 2.0 * (c.T @ s) + s2[None, :]
        j = np.argmin(d, axis=1)
        idx.append(j)
        dist.append(np.sqrt(np.maximum(d[np.arange(len(j)), j], 0.0)))
    return np.concatenate(idx), np.concatenate(dist)


def copied_mask(nearest: np.ndarray, *, run: int = COPY_RUN_FRAMES) -> np.ndarray:
    """Boolean mask of the frames that lie in a run of >= ``run`` frames whose ``nearest`` index advances by 1."""
    n = len(nearest)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    step = np.diff(nearest) == 1
    # run boundaries: a run of frames [a, b] has step[a:b] all True
    start = 0
    for t in range(1, n + 1):
        if t == n or not step[t - 1]:
            if t - start >= run:
                mask[start:t] = True
            start = t
    return mask


def copied_share(style: np.ndarray, candidate: np.ndarray, *, sample_rate: int) -> float:
    """Share in [0, 1] of ``candidate``'s frames that are verbatim runs of ``style`` (see module doc).

    Both are float audio (mono or multichannel) at ``sample_rate`` Hz; the candidate needs at least
    ``COPY_RUN_FRAMES`` frames (0.1 s at 22050 Hz).
    """
    s = _log_spectrogram(style, sample_rate=sample_rate, role="style", min_frames=1)
    c = _log_spectrogram(candidate, sample_rate=sample_rate, role="candidate", min_frames=COPY_RUN_FRAMES)
    return float(copied_mask(nearest_frames(s, c)[0]).mean())


def distance_ratio(style: np.ndarray, candidate: np.ndarray, reference: np.ndarray, *, sample_rate: int) -> float:
    """Median nearest-style-frame distance of ``candidate`` over that of ``reference`` (see module doc)."""
    s = _log_spectrogram(style, sample_rate=sample_rate, role="style", min_frames=1)
    c = _log_spectrogram(candidate, sample_rate=sample_rate, role="candidate", min_frames=1)
    r = _log_spectrogram(reference, sample_rate=sample_rate, role="reference", min_frames=1)
    ref = float(np.median(nearest_frames(s, r)[1]))
    if ref < 1e-3:  # round-off of identical frames; fresh material lies ~1 log1p unit away or more
        raise ParameterError("reference is the style itself (distance 0): give fresh material of the source")
    return float(np.median(nearest_frames(s, c)[1])) / ref


def collage_index(candidate: np.ndarray, style_a: np.ndarray, style_b: np.ndarray, weight: float, *,
                  sample_rate: int) -> float:
    """Collage index of a blend with weight ``weight`` on style B (0 < weight < 1; see module doc).

    Raises
    ------
    ParameterError
        Weight outside (0, 1), the two styles with the same mean spectrum, or a candidate shorter than
        one window.
    """
    if not 0.0 < weight < 1.0:
        raise ParameterError(f"blend weight must be in (0, 1). Found: {weight}")
    a = _log_spectrogram(style_a, sample_rate=sample_rate, role="style A", min_frames=1).mean(axis=1)
    b = _log_spectrogram(style_b, sample_rate=sample_rate, role="style B", min_frames=1).mean(axis=1)
    per_window = max(1, int(round(COLLAGE_WINDOW_SECONDS * sample_rate / DEFAULT_HOP)))
    c = _log_spectrogram(candidate, sample_rate=sample_rate, role="candidate", min_frames=per_window)
    axis = b - a
    norm = float(axis @ axis)
    if norm <= 1e-12:
        raise ParameterError("the two styles have the same mean spectrum: a collage cannot be told from a hybrid")
    n = c.shape[1] // per_window
    windows = c[:, :n * per_window].reshape(c.shape[0], n, per_window).mean(axis=2)
    position = (windows - a[:, None]).T @ axis / norm
    return float(np.mean(np.abs(position - weight)) / (2.0 * weight * (1.0 - weight)))
