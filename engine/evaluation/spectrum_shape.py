"""The shape of a sound's spectrum: are partials partials, and is the top octave there?

* :func:`frame_flatness_db` — median over frames of the spectral flatness (geometric over arithmetic
  mean power) between 100 Hz and 5 kHz, n_fft 4096, in dB: a cello is about -45 dB, white noise
  about -2.5 dB (the mean of log of an exponential variable), a texture that turned partials into
  noise sits far above its source.
* :func:`top_octave_levels_db` — level of each third-octave band with its centre in 11-18 kHz
  (two bands, 11.3-18.0 kHz) relative to the sound's whole power, dB; :func:`top_octave_error_db`
  the candidate's minus the reference's, averaged over the bands.

Both read the channels' mean power (:func:`engine.evaluation.audio.power_mean_stft`) and are pure.
"""
from __future__ import annotations

import numpy as np

from engine.evaluation.audio import power_mean_stft
from engine.evaluation.bands import band_matrix, third_octave_bands
from engine.errors import ParameterError

#: STFT of both measures: 4096 samples (93 ms at 44.1 kHz, 186 ms at 22.05 kHz), hop a quarter.
SHAPE_N_FFT = 4096
SHAPE_HOP = 1024
#: Band of the flatness, Hz (capped at Nyquist): where partials of pitched material and voices lie.
FLATNESS_LO_HZ = 100.0
FLATNESS_HI_HZ = 5000.0
#: Power floor (linear) under the logarithms and below which a frame counts as silent.
SHAPE_POWER_FLOOR = 1e-20
#: Centres of the top-octave third-octave bands lie in this range (Hz): 12.7 and 16 kHz.
TOP_OCTAVE_LO_HZ = 11000.0
TOP_OCTAVE_HI_HZ = 18000.0
#: Band levels are floored at this many dB below the sound's power (an empty band reads -100 dB).
LEVEL_FLOOR_DB = -100.0


def _power(y: np.ndarray, role: str) -> np.ndarray:
    return power_mean_stft(y, n_fft=SHAPE_N_FFT, hop=SHAPE_HOP, role=role) ** 2


def frame_flatness_db(y: np.ndarray, *, sample_rate: int, role: str = "sound") -> float:
    """Median over non-silent frames of ``10 log10(geometric mean / arithmetic mean)`` of the power
    in 100 Hz - min(5 kHz, Nyquist), in dB (<= 0; 0 = flat, very negative = a few strong partials).

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (n, channels)], floating, finite
        Audio at ``sample_rate`` Hz; channels' powers are averaged.
    sample_rate : int > 0
        Rate in Hz (places the band).

    Raises
    ------
    ParameterError
        Not float audio, or every frame silent.
    """
    power = _power(y, role)
    freqs = np.fft.rfftfreq(SHAPE_N_FFT, 1.0 / sample_rate)
    band = power[(freqs >= FLATNESS_LO_HZ) & (freqs <= min(FLATNESS_HI_HZ, sample_rate / 2))]
    arithmetic = band.mean(axis=0)
    heard = arithmetic > SHAPE_POWER_FLOOR
    if not np.any(heard):
        raise ParameterError(f"{role} is silent between {FLATNESS_LO_HZ:g} and {FLATNESS_HI_HZ:g} Hz: no flatness")
    geometric = np.exp(np.mean(np.log(band[:, heard] + SHAPE_POWER_FLOOR), axis=0))
    return float(np.median(10.0 * np.log10(geometric / arithmetic[heard])))


def top_octave_levels_db(y: np.ndarray, *, sample_rate: int, role: str = "sound") -> np.ndarray | None:
    """Level of each third-octave band centred in 11-18 kHz over the sound's whole power, dB
    ``(bands,)``, floored at :data:`LEVEL_FLOOR_DB`; None when the rate holds no such band
    (below about 36 kHz).
    """
    edges = third_octave_bands(TOP_OCTAVE_LO_HZ, TOP_OCTAVE_HI_HZ, nyquist_hz=sample_rate / 2)
    if len(edges) == 0:
        return None
    spectrum = _power(y, role).mean(axis=1)
    bands = band_matrix(np.fft.rfftfreq(SHAPE_N_FFT, 1.0 / sample_rate), edges) @ spectrum
    relative = bands / max(float(spectrum.sum()), SHAPE_POWER_FLOOR)
    return np.maximum(10.0 * np.log10(np.maximum(relative, SHAPE_POWER_FLOOR)), LEVEL_FLOOR_DB)


def top_octave_error_db(reference_db: np.ndarray | None, candidate_db: np.ndarray | None) -> float | None:
    """Mean over the top-octave bands of candidate minus reference level, dB (negative: the
    candidate is duller); None when either has no bands."""
    if reference_db is None or candidate_db is None:
        return None
    return float(np.mean(candidate_db - reference_db))
