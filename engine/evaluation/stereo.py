"""The stereo image: how alike are left and right, band by band?

:func:`band_coherence` is the mean magnitude-squared coherence ``|S_LR|² / (S_LL S_RR)`` (Welch,
4096-sample Hann segments, half overlap) of the two channels over the bins of each third-octave band
centred in 100 Hz - 16 kHz (up to Nyquist): 1 for identical channels (and for a mono sound, which
is what a listener hears from it on two speakers), near 0 for independent ones (the estimate's bias is
about 1 / segments: 0.005 for 10 s at 44.1 kHz). Field recordings measure 0.1-0.4.
:func:`coherence_error` compares two sounds band by band. Pure functions.
"""
from __future__ import annotations

import numpy as np
import scipy.signal

from engine.evaluation.audio import as_channels
from engine.evaluation.bands import band_matrix, third_octave_bands
from engine.errors import ParameterError

#: Welch segment of the coherence, samples (10.8 Hz bins at 44.1 kHz).
COHERENCE_SEGMENT = 4096
#: Centres of the coherence bands lie in this range, Hz.
COHERENCE_LO_HZ = 100.0
COHERENCE_HI_HZ = 16000.0
#: Cross and auto spectra get this fraction of the mean power added, so a silent band reads 0.
COHERENCE_FLOOR = 1e-12


def coherence_bands(sample_rate: int) -> np.ndarray:
    """Edges ``(bands, 2)`` in Hz of the bands :func:`band_coherence` reports at ``sample_rate``."""
    return third_octave_bands(COHERENCE_LO_HZ, COHERENCE_HI_HZ, nyquist_hz=sample_rate / 2)


def band_coherence(y: np.ndarray, *, sample_rate: int, role: str = "sound") -> np.ndarray:
    """Mean L/R magnitude-squared coherence per band, ``(bands,)`` in [0, 1] (see module doc).

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (n, 2)], floating, finite
        Audio at ``sample_rate`` Hz. Mono gives ones (both speakers play the same); more than two
        channels are refused.
    sample_rate : int > 0
        Rate in Hz.

    Raises
    ------
    ParameterError
        Not audio, more than two channels, or shorter than one segment (0.09 s at 44.1 kHz).
    """
    ch = as_channels(y, role=role)
    edges = coherence_bands(sample_rate)
    if ch.shape[1] == 1:
        return np.ones(len(edges))
    if ch.shape[1] != 2:
        raise ParameterError(f"{role} has {ch.shape[1]} channels; coherence needs one or two")
    if len(ch) < COHERENCE_SEGMENT:
        raise ParameterError(f"{role} is too short for the coherence: {len(ch) / sample_rate:.3f} s, needs "
                             f"{COHERENCE_SEGMENT / sample_rate:.3f} s")
    kw = dict(fs=sample_rate, nperseg=COHERENCE_SEGMENT, noverlap=COHERENCE_SEGMENT // 2)
    freqs, s_lr = scipy.signal.csd(ch[:, 0], ch[:, 1], **kw)
    _, s_ll = scipy.signal.welch(ch[:, 0], **kw)
    _, s_rr = scipy.signal.welch(ch[:, 1], **kw)
    floor = COHERENCE_FLOOR * float(np.mean(s_ll + s_rr)) + 1e-300
    msc = np.abs(s_lr) ** 2 / ((s_ll + floor) * (s_rr + floor))
    m = band_matrix(freqs, edges)
    return (m @ msc) / np.maximum(m.sum(axis=1), 1)


def coherence_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean over bands of ``|candidate − reference|`` of two :func:`band_coherence` results (0..1)."""
    return float(np.mean(np.abs(np.asarray(candidate) - np.asarray(reference))))
