"""Texture quality metrics: how close candidate sounds are to a reference sound.

Every metric compares time-averaged statistics, so a candidate of any duration compares with a
reference of any other duration; sounds are mono ``(samples,)`` or stereo ``(samples, 2)``
(:mod:`engine.evaluation.audio`: single-spectrum metrics read the channels' mean power). The
STFT metrics work on the engine's STFT (:mod:`engine.analysis.spectral`: n_fft 1024, hop 256,
periodic Hann, centred); the settings are fixed on purpose so that numbers stay comparable between
runs and machines.

* :func:`heldout_gram_distance` — Gram distance under random conv banks the synthesis never
  optimises (different seed and widths), so a texture cannot score well by overfitting its own loss.
* :func:`mean_spectrum_distance_db` — RMS difference in dB of the time-averaged power spectra
  (first-order spectral statistics; timbre and level).
* :func:`envelope_stats_distance` — McDermott & Simoncelli (2011) style subband envelope statistics
  over the whole band (ERB bands 40 Hz - 18 kHz, up to Nyquist): moments, cross-band correlation and
  modulation power (temporal structure).
* :func:`evaluate` runs these against one reference, plus the learned embedding's MMD
  (:mod:`engine.evaluation.embedding`, when aisfx is installed), the frame flatness and top-octave
  level (:mod:`engine.evaluation.spectrum_shape`) and the L/R coherence (:mod:`engine.evaluation.stereo`);
  :func:`scale_rows` puts the distances on the scale 0 = the style, 1 = spectral noise of the style;
  :func:`format_table` prints the result.

Spectral convergence against a known target magnitude (for phase reconstruction, not textures) is
:func:`engine.analysis.spectral.spectral_convergence_db`, re-exported here.

Reference: J. H. McDermott and E. P. Simoncelli, "Sound texture perception via statistics of the
auditory periphery", Neuron 71 (2011).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import scipy.signal
import torch

from engine.analysis import statistics as st
from engine.evaluation import embedding as emb
from engine.evaluation.audio import as_channels, level_db, power_mean_stft, trim_edges
from engine.evaluation.spectrum_shape import frame_flatness_db, top_octave_error_db, top_octave_levels_db
from engine.evaluation.stereo import band_coherence, coherence_error
from engine.errors import ParameterError
from engine.analysis.spectral import (DEFAULT_HOP, DEFAULT_N_FFT, DEFAULT_SAMPLE_RATE, SpectralConfig, log_magnitude,
                             spectral_convergence_db)
from models.random_banks import BankSpec, RandomBanks1D

__all__ = [
    "EMBEDDING_KEY", "HELDOUT_BANKS", "HELDOUT_SEED", "METRIC_KEYS", "ROW_KEYS", "SCALED_KEYS", "describe",
    "envelope_stats_distance", "evaluate", "format_table", "heldout_gram_distance", "mean_spectrum_distance_db",
    "min_samples", "scale_rows", "scaled", "spectral_convergence_db", "weak_scales",
]

#: The STFT distances, which every pair of sounds gets (numbers, never None).
METRIC_KEYS: tuple[str, ...] = ("heldout_gram", "mean_spectrum_db", "envelope_stats")
#: The learned embedding's squared MMD (None in a row when aisfx is not installed or not asked for).
EMBEDDING_KEY = "embedding_mmd"
#: Keys of each row :func:`evaluate` returns, in table order:
#:
#: * ``flatness_db``: the candidate's median frame flatness, dB; ``flatness_error_db`` minus the
#:   reference's (positive: noisier than the reference);
#: * ``top_octave_db``: its third-octave levels at 12.7 and 16 kHz minus the reference's, dB, mean of
#:   the two (None below a 36 kHz rate);
#: * ``coherence``: its mean L/R coherence over the third-octave bands (1 for mono),
#:   ``coherence_error`` the mean per-band difference from the reference's;
#: * ``level_db``: its channels' mean power minus the reference's, dB; ``mono_level_db`` the same of the mono mixes,
#:   which the learned embedding reads (:func:`engine.evaluation.audio.level_db`): the embedding hears a level
#:   difference as a large one of timbre (docs/EXPERIMENTS.md sections 31 and 40), and these say when it does.
ROW_KEYS: tuple[str, ...] = (EMBEDDING_KEY, *METRIC_KEYS, "flatness_db", "flatness_error_db", "top_octave_db",
                             "coherence", "coherence_error", "level_db", "mono_level_db")
#: Distances that :func:`scale_rows` puts on the scale 0 = the style, 1 = spectral noise of it (the
#: others are not scaled: spectral noise has the style's mean spectrum and top octave, and a noisy
#: style's flatness, so their scale would divide by about zero).
SCALED_KEYS: tuple[str, ...] = (EMBEDDING_KEY, "envelope_stats", "heldout_gram")

#: Seed and banks of the held-out network: spans of 3, 19 and 61 frames (about 0.03, 0.2 and 0.7 s at
#: 22050 Hz / hop 256); none of the widths or dilations of the synthesis defaults.
HELDOUT_SEED = 1234567
HELDOUT_BANKS: tuple[BankSpec, ...] = (BankSpec(3, 1, 128), BankSpec(7, 3, 128), BankSpec(11, 6, 128))

#: Power floor (linear, -100 dB) under every logarithm and compressed envelope.
POWER_FLOOR = 1e-10

#: Subband envelopes: bands of :data:`ENVELOPE_BAND_ERB` ERB between these edges (Hz; the top edge is
#: capped at Nyquist): 33 bands at 44.1 kHz, 29 at 22.05 kHz. (Until the full-band metrics of issue 17
#: these were 28 bands of 50 Hz - 10 kHz; figures from before differ a little on 22.05 kHz sounds.)
ENVELOPE_FMIN_HZ = 40.0
ENVELOPE_FMAX_HZ = 18000.0
ENVELOPE_BAND_ERB = 1.2
#: Envelope compression exponent on amplitude (McDermott & Simoncelli use 0.3).
ENVELOPE_COMPRESSION = 0.3
#: Envelope standard deviations are floored at this fraction of the envelope mean, so a band that is
#: constant to within 0.1 % gets skewness, kurtosis and correlations near 0 instead of round-off noise.
STD_FLOOR = 1e-3
#: Lower edge of the lowest octave modulation band (Hz); bands double up to the envelope Nyquist.
MODULATION_FMIN_HZ = 0.5
#: Welch segment length for envelope spectra, in frames (5.9 s at 22050 Hz / hop 256).
MODULATION_SEGMENT_FRAMES = 512
#: Per-element floor ``φ`` of the normaliser of each statistic group (see :func:`envelope_stats_distance`):
#: about the sampling noise of that statistic on a few seconds of stationary noise; 0 for the
#: level-bearing mean, which is never near zero.
GROUP_FLOORS: dict[str, float] = {
    "mean": 0.0, "cv": 0.05, "skewness": 0.5, "kurtosis": 0.5, "correlation": 0.1, "modulation": 0.05,
}


def min_samples(metric: str, *, sample_rate: int) -> int:
    """Shortest sound ``metric`` (a :data:`METRIC_KEYS` entry) accepts, in samples at ``sample_rate`` Hz.

    The held-out banks need 61 frames (0.70 s at 22050 Hz); the envelope metric needs one period of
    the lowest modulation band (2 s); the embedding two blocks (2.55 s); the mean spectrum one sample.
    """
    if metric == "heldout_gram":
        return (max(b.span for b in HELDOUT_BANKS) - 1) * DEFAULT_HOP
    if metric == "envelope_stats":
        return int(np.ceil(sample_rate / MODULATION_FMIN_HZ))
    if metric == "mean_spectrum_db":
        return 1
    if metric == EMBEDDING_KEY:
        frames = emb.BLOCK_FRAMES + (emb.MIN_BLOCKS - 1) * emb.BLOCK_HOP_FRAMES - 1
        return int(np.ceil(frames * emb.EMBEDDING_HOP / emb.EMBEDDING_RATE * sample_rate))
    raise ParameterError(f"unknown metric {metric!r}; expected one of {(EMBEDDING_KEY, *METRIC_KEYS)}")


def _trimmed(y: np.ndarray, *, sample_rate: int, metrics: Sequence[str], role: str) -> np.ndarray:
    """Validated ``(samples, channels)`` float64 audio, long enough for ``metrics`` (the error says
    what they need, naming the sound by ``role``), with its edges trimmed when what remains still is
    (:func:`~engine.evaluation.audio.trim_edges`)."""
    SpectralConfig(sample_rate=sample_rate)
    y = as_channels(y, role=role)
    need = max(min_samples(m, sample_rate=sample_rate) for m in metrics)
    if len(y) < need:
        raise ParameterError(f"{role} is too short: {len(y) / sample_rate:.3f} s, "
                             f"{'/'.join(metrics)} needs at least {need / sample_rate:.3f} s")
    return trim_edges(y, sample_rate=sample_rate, need=need)


def _spectrogram(y: np.ndarray, *, sample_rate: int, metrics: Sequence[str], role: str) -> np.ndarray:
    """Channel-power-mean magnitude ``(513, frames)`` of one validated, edge-trimmed sound."""
    y = _trimmed(y, sample_rate=sample_rate, metrics=metrics, role=role)
    return power_mean_stft(y, n_fft=DEFAULT_N_FFT, hop=DEFAULT_HOP, role=role)


# --- held-out Gram ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _heldout_bank() -> RandomBanks1D:
    """The held-out network on the 513 linear bins (built once per process; weights are seeded)."""
    return RandomBanks1D(DEFAULT_N_FFT // 2 + 1, HELDOUT_BANKS, seed=HELDOUT_SEED)


@torch.no_grad()
def _heldout_grams(spec: np.ndarray) -> list[torch.Tensor]:
    """Gram ``(128, 128)`` of each held-out bank's ReLU maps on ``log1p |spec|``."""
    x = torch.from_numpy(log_magnitude(spec))
    return [st.gram(a) for a in _heldout_bank()(x)]


def _gram_distance(ref: list[torch.Tensor], cand: list[torch.Tensor]) -> float:
    """``mean_b ‖G_c,b − G_r,b‖_F² / ‖G_r,b‖_F²`` over the banks."""
    return float(np.mean([float(((c - r) ** 2).sum() / (r ** 2).sum().clamp_min(1e-30)) for r, c in zip(ref, cand)]))


def heldout_gram_distance(ref: np.ndarray, cand: np.ndarray, *, sample_rate: int) -> float:
    """Normalised Gram distance under a held-out random conv network (dimensionless, >= 0).

    Features are ``log1p |STFT|`` (513 bins x frames, n_fft 1024, hop 256) fed to
    :class:`~models.random_banks.RandomBanks1D` with :data:`HELDOUT_BANKS` (128 filters each, widths
    3/7/11, dilations 1/3/6) and seed :data:`HELDOUT_SEED`; ``G = A Aᵀ / positions`` of each bank's
    ReLU maps ``A``. The distance is ``mean_b ‖G_c,b − G_r,b‖_F² / ‖G_r,b‖_F²`` over the three banks.

    Parameters
    ----------
    ref, cand : np.ndarray [shape=(n,) or (n, channels)], floating, finite
        Audio (channels' powers averaged), each at least 61 frames long (0.70 s at 22050 Hz).
    sample_rate : int
        Rate of both sounds in Hz (checked; error messages give durations in seconds).

    Raises
    ------
    ParameterError
        If a sound is not float audio, not finite, or too short.
    """
    key = "heldout_gram"
    grams_r = _heldout_grams(_spectrogram(ref, sample_rate=sample_rate, metrics=(key,), role="reference"))
    grams_c = _heldout_grams(_spectrogram(cand, sample_rate=sample_rate, metrics=(key,), role="candidate"))
    return _gram_distance(grams_r, grams_c)


# --- mean spectrum ---------------------------------------------------------------------------------

def _mean_power_db(spec: np.ndarray) -> np.ndarray:
    """``10 log10`` of the per-bin mean power over frames, floored at -100 dB, ``(bins,)``."""
    return 10.0 * np.log10(np.maximum(np.mean(np.abs(spec) ** 2, axis=1), POWER_FLOOR))


def _rms_db(ref_db: np.ndarray, cand_db: np.ndarray) -> float:
    return float(np.sqrt(np.mean((cand_db - ref_db) ** 2)))


def mean_spectrum_distance_db(ref: np.ndarray, cand: np.ndarray, *, sample_rate: int) -> float:
    """RMS over the 513 frequency bins of the difference of the mean power spectra, in dB (>= 0).

    Per bin, the power spectrum is ``10 log10(mean_t |X[f, t]|²)`` of the STFT (n_fft 1024, hop 256),
    floored at -100 dB. Level counts: a candidate 6 dB quieter than the reference scores 6 dB.

    Parameters
    ----------
    ref, cand : np.ndarray [shape=(n,) or (n, channels)], floating, finite
        Audio (channels' powers averaged), any length >= 1 sample.
    sample_rate : int
        Rate of both sounds in Hz (checked).
    """
    key = "mean_spectrum_db"
    return _rms_db(_mean_power_db(_spectrogram(ref, sample_rate=sample_rate, metrics=(key,), role="reference")),
                   _mean_power_db(_spectrogram(cand, sample_rate=sample_rate, metrics=(key,), role="candidate")))


# --- subband envelope statistics -------------------------------------------------------------------

def _erb_number(f_hz: np.ndarray) -> np.ndarray:
    """Glasberg & Moore ERB-rate scale: ``21.4 log10(1 + 0.00437 f)``."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f_hz, dtype=np.float64))


@lru_cache(maxsize=8)
def _band_matrix(sample_rate: int) -> np.ndarray:
    """0/1 matrix ``(bands, 513)`` summing STFT bins into ERB-spaced bands (read-only).

    Bands of :data:`ENVELOPE_BAND_ERB` on the ERB-rate scale (as many as fit) from
    :data:`ENVELOPE_FMIN_HZ` to min(:data:`ENVELOPE_FMAX_HZ`, Nyquist); a bin belongs to the band
    holding its centre frequency. Bands that hold no bin (narrower than one bin, at the bottom and at
    high sample rates) are dropped.
    """
    n_bins = DEFAULT_N_FFT // 2 + 1
    freqs = np.arange(n_bins) * sample_rate / DEFAULT_N_FFT
    edges = _erb_number([ENVELOPE_FMIN_HZ, min(ENVELOPE_FMAX_HZ, sample_rate / 2)])
    bands = int((edges[1] - edges[0]) // ENVELOPE_BAND_ERB)
    position = (_erb_number(freqs) - edges[0]) / (edges[1] - edges[0]) * bands
    band = np.floor(position).astype(int)
    m = (band[None, :] == np.arange(bands)[:, None]).astype(np.float64)
    m = m[m.sum(axis=1) > 0]
    m.setflags(write=False)
    return m


def _modulation_edges(frame_rate: float) -> np.ndarray:
    """Octave band edges (Hz) from :data:`MODULATION_FMIN_HZ` up to the envelope Nyquist."""
    n = int(np.floor(np.log2(frame_rate / 2 / MODULATION_FMIN_HZ)))
    return MODULATION_FMIN_HZ * 2.0 ** np.arange(n + 1)


def _envelope_statistics(spec: np.ndarray, *, sample_rate: int) -> dict[str, np.ndarray]:
    """McDermott–Simoncelli statistics of the compressed subband envelopes of one spectrogram.

    Envelope of band ``k`` at frame ``t``: ``e = (Σ_{f in k} |X[f, t]|²)^(0.3 / 2)`` (amplitude
    ``sqrt`` of band power, compressed by :data:`ENVELOPE_COMPRESSION`). Over frames, with ``μ`` the
    mean and ``σ = sqrt(var + (STD_FLOOR μ)²)``:

    * ``mean`` ``(bands,)``: ``μ``;
    * ``cv`` ``(bands,)``: ``σ / μ``;
    * ``skewness``, ``kurtosis`` ``(bands,)``: ``E[(e − μ)³] / σ³`` and ``E[(e − μ)⁴] / σ⁴``;
    * ``correlation`` ``(bands, bands)``: ``E[(e_i − μ_i)(e_j − μ_j)] / (σ_i σ_j)`` (diagonal ≈ 1);
    * ``modulation`` ``(bands, octaves)``: Welch power of ``e − μ`` in octave bands from 0.5 Hz
      (segments of up to 512 frames), divided by ``σ²`` — the fraction of envelope variance per band.
    """
    power = _band_matrix(sample_rate) @ (np.abs(spec) ** 2)
    env = np.maximum(power, POWER_FLOOR) ** (ENVELOPE_COMPRESSION / 2)
    mu = env.mean(axis=1)
    dev = env - mu[:, None]
    sigma = np.sqrt((dev ** 2).mean(axis=1) + (STD_FLOOR * mu) ** 2)
    z = dev / sigma[:, None]
    frame_rate = sample_rate / DEFAULT_HOP
    freqs, psd = scipy.signal.welch(dev, fs=frame_rate, nperseg=min(env.shape[1], MODULATION_SEGMENT_FRAMES),
                                    detrend="constant", axis=1)
    edges = _modulation_edges(frame_rate)
    df = freqs[1] - freqs[0]
    modulation = np.stack([psd[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) * df
                           for lo, hi in zip(edges[:-1], edges[1:])], axis=1) / (sigma ** 2)[:, None]
    return {
        "mean": mu,
        "cv": sigma / mu,
        "skewness": (z ** 3).mean(axis=1),
        "kurtosis": (z ** 4).mean(axis=1),
        "correlation": z @ z.T / z.shape[1],
        "modulation": modulation,
    }


def _envelope_distance(ref: dict[str, np.ndarray], cand: dict[str, np.ndarray]) -> float:
    """Mean over groups of ``‖c − r‖² / (‖r‖² + ‖c‖² + n φ²)`` (``n`` numbers, ``φ`` the group's floor)."""
    parts = [float(np.sum((cand[k] - ref[k]) ** 2)
                   / (np.sum(ref[k] ** 2) + np.sum(cand[k] ** 2) + ref[k].size * floor ** 2 + 1e-30))
             for k, floor in GROUP_FLOORS.items()]
    return float(np.mean(parts))


def envelope_stats_distance(ref: np.ndarray, cand: np.ndarray, *, sample_rate: int) -> float:
    """Distance between subband envelope statistics (McDermott & Simoncelli 2011), in [0, 2).

    The STFT power (n_fft 1024, hop 256) is summed into bands of 1.2 ERB from 40 Hz to 18 kHz (or
    Nyquist: 33 bands at 44.1 kHz, 29 at 22.05 kHz);
    each band's amplitude envelope is compressed (``^0.3``). Six statistic groups are measured over
    frames: envelope mean, coefficient of variation, skewness, kurtosis, the cross-band correlation
    matrix, and the fraction of envelope variance in octave modulation bands 0.5–1, 1–2, ..., 16–32 Hz
    (see ``_envelope_statistics``). Each group ``g`` (``n_g`` numbers) contributes

        ``d_g = ‖c_g − r_g‖² / (‖r_g‖² + ‖c_g‖² + n_g φ_g²)``,

    which lies in [0, 2): 0 when equal, about 1 for unrelated statistics of similar size, so no group
    with large raw values (kurtosis of a bursty sound can exceed 100) swamps the others. The floor
    ``φ_g`` (:data:`GROUP_FLOORS`) is about the sampling noise of that statistic, so two near-zero
    estimates (e.g. skewness of two stretches of noise) do not count as far apart. The result is the
    mean of the six ``d_g``, each weighted equally; it is symmetric in ``ref`` and ``cand``. Only the
    mean group depends on level (a 6 dB gain gives about 0.004). All statistics are time averages, so
    sounds of different durations compare.

    Parameters
    ----------
    ref, cand : np.ndarray [shape=(n,) or (n, channels)], floating, finite
        Audio (channels' powers averaged), each at least 2 s long (one period of the lowest
        modulation band).
    sample_rate : int
        Rate of both sounds in Hz: it places the bands (Hz) and sets the envelope rate
        (``sample_rate / 256`` frames per second).
    """
    key = "envelope_stats"
    stats_r = _envelope_statistics(_spectrogram(ref, sample_rate=sample_rate, metrics=(key,), role="reference"),
                                   sample_rate=sample_rate)
    stats_c = _envelope_statistics(_spectrogram(cand, sample_rate=sample_rate, metrics=(key,), role="candidate"),
                                   sample_rate=sample_rate)
    return _envelope_distance(stats_r, stats_c)


# --- all metrics -----------------------------------------------------------------------------------

def _analyse(y: np.ndarray, *, sample_rate: int, role: str, embedding: bool) -> dict:
    """Everything :func:`evaluate` compares, of one sound. The STFT metrics drop the sound's edges
    when what remains is long enough for them (as the pairwise functions do); the embedding reads the
    whole sound: a 50 ms fade is a small part of one 2.3 s block, and a recording's 3 s half holds
    only 2 blocks without its edges against 5 with them."""
    whole = y
    y = _trimmed(y, sample_rate=sample_rate, metrics=METRIC_KEYS, role=role)
    spec = power_mean_stft(y, n_fft=DEFAULT_N_FFT, hop=DEFAULT_HOP, role=role)
    return {
        "grams": _heldout_grams(spec), "power_db": _mean_power_db(spec),
        "envelope": _envelope_statistics(spec, sample_rate=sample_rate),
        "flatness_db": frame_flatness_db(y, sample_rate=sample_rate, role=role),
        "top_octave": top_octave_levels_db(y, sample_rate=sample_rate, role=role),
        "coherence": band_coherence(y, sample_rate=sample_rate, role=role),
        "level_db": level_db(y, role=role),
        "embedding": emb.embed(whole, sample_rate=sample_rate, role=role) if embedding else None,
    }


def evaluate(reference: np.ndarray, candidates: Sequence[np.ndarray], *,
             sample_rate: int = DEFAULT_SAMPLE_RATE, embedding: bool = True) -> list[dict[str, float | None]]:
    """All metrics of each candidate against one reference; the reference is analysed once.

    Parameters
    ----------
    reference : np.ndarray [shape=(n,) or (n, channels)], floating, finite
        Audio, at least 2 s (2.55 s with the embedding).
    candidates : sequence of np.ndarray [shape=(m,) or (m, channels)]
        Audio at the same rate, each as long as the reference must be; lengths and channel counts
        may differ from the reference (a mono candidate has coherence 1).
    sample_rate : int
        Rate of every sound in Hz.
    embedding : bool
        Also the aisfx embedding's MMD when aisfx is installed (:func:`engine.evaluation.embedding.unavailable_reason`
        says why not); else that key is None.

    Returns
    -------
    list of dict
        One ``{key: float or None}`` per candidate, keys :data:`ROW_KEYS`, in candidate order.

    Raises
    ------
    ParameterError
        A sound that is not float audio, too short, silent in the flatness band, or of more than
        two channels.
    """
    embedding = embedding and emb.unavailable_reason() is None
    ref = _analyse(reference, sample_rate=sample_rate, role="reference", embedding=embedding)
    h = emb.bandwidth(ref["embedding"]) if embedding else None
    rows = []
    for i, cand in enumerate(candidates):
        c = _analyse(cand, sample_rate=sample_rate, role=f"candidate {i + 1}", embedding=embedding)
        rows.append({
            EMBEDDING_KEY: emb.embedding_mmd(ref["embedding"], c["embedding"], h=h) if embedding else None,
            "heldout_gram": _gram_distance(ref["grams"], c["grams"]),
            "mean_spectrum_db": _rms_db(ref["power_db"], c["power_db"]),
            "envelope_stats": _envelope_distance(ref["envelope"], c["envelope"]),
            "flatness_db": c["flatness_db"],
            "flatness_error_db": c["flatness_db"] - ref["flatness_db"],
            "top_octave_db": top_octave_error_db(ref["top_octave"], c["top_octave"]),
            "coherence": float(np.mean(c["coherence"])),
            "coherence_error": coherence_error(ref["coherence"], c["coherence"]),
            "level_db": c["level_db"][0] - ref["level_db"][0],
            "mono_level_db": c["level_db"][1] - ref["level_db"][1],
        })
    return rows


def describe(y: np.ndarray, *, sample_rate: int, role: str = "reference") -> dict[str, float]:
    """A sound's own figures, as :func:`evaluate` reads them (edges trimmed alike): ``flatness_db``
    (median frame flatness, dB) and ``coherence`` (mean L/R coherence over the third-octave bands)."""
    y = _trimmed(y, sample_rate=sample_rate, metrics=METRIC_KEYS, role=role)
    return {"flatness_db": frame_flatness_db(y, sample_rate=sample_rate, role=role),
            "coherence": float(np.mean(band_coherence(y, sample_rate=sample_rate, role=role)))}


def scaled(value: float | None, floor: float | None, ceiling: float | None) -> float | None:
    """``(value − floor) / (ceiling − floor)``: 0 at the floor (the style), 1 at the ceiling (spectral
    noise of it); None when a value is missing or the ceiling is not above the floor (no scale)."""
    if value is None or floor is None or ceiling is None or not ceiling > floor:
        return None
    return (value - floor) / (ceiling - floor)


def scale_rows(rows: Sequence[dict], *, floor: dict, ceiling: dict) -> list[dict]:
    """Copies of ``rows`` with ``KEY_scaled`` added for each :data:`SCALED_KEYS` entry, on the scale
    of ``floor`` (0: the style's row against the same reference) and ``ceiling`` (1: spectral
    noise of the style's row)."""
    return [{**row, **{f"{k}_scaled": scaled(row[k], floor[k], ceiling[k]) for k in SCALED_KEYS}} for row in rows]


#: A scale whose ends lie closer than this fraction of the floor is named by :func:`weak_scales`
#: (night_dark_forest's envelope statistics: style 0.399, noise 0.426, 7 % apart; the corpus' other
#: scales are 26 % to 28x apart, docs/EXPERIMENTS.md section 11).
WEAK_SCALE_GAP = 0.2


def weak_scales(floor: dict, ceiling: dict) -> list[str]:
    """The :data:`SCALED_KEYS` whose spectral noise is less than :data:`WEAK_SCALE_GAP` of the style's
    distance further from the reference than the style: there the scaled figure mostly shows the
    metric's noise, and the raw one is the one to read."""
    return [k for k in SCALED_KEYS if floor[k] is not None and ceiling[k] is not None
            and ceiling[k] - floor[k] < WEAK_SCALE_GAP * abs(floor[k])]


#: Format of each :data:`ROW_KEYS` column of :func:`format_table`.
_FORMATS: dict[str, str] = {
    EMBEDDING_KEY: ".3f", "heldout_gram": ".3g", "mean_spectrum_db": ".2f", "envelope_stats": ".3f",
    "flatness_db": ".1f", "flatness_error_db": "+.1f", "top_octave_db": "+.1f", "coherence": ".2f",
    "coherence_error": ".2f", "level_db": "+.1f", "mono_level_db": "+.1f",
}


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    return "n/a" if value is None else format(value, fmt)


def format_table(rows: Sequence[dict], names: Sequence[str]) -> str:
    """Aligned plain-text table: one line per candidate, a column per :data:`ROW_KEYS` entry, headed
    by its key.

    Where a row has ``KEY_scaled`` (:func:`scale_rows`), that column is headed ``KEY(scaled/raw)`` and
    shows both; figures a row lacks (None) read ``n/a``. Names left-aligned, values right-aligned; no
    trailing newline.
    """
    if len(rows) != len(names):
        raise ParameterError(f"need one name per row. Found {len(names)} names for {len(rows)} rows")
    is_scaled = any(f"{k}_scaled" in row for row in rows for k in SCALED_KEYS)
    header = ["candidate", *(f"{key}(scaled/raw)" if is_scaled and key in SCALED_KEYS else key for key in ROW_KEYS)]
    body = [[str(name), *(f"{_cell(row, key + '_scaled', '.2f')}/{_cell(row, key, _FORMATS[key])}"
                          if is_scaled and key in SCALED_KEYS else _cell(row, key, _FORMATS[key]) for key in ROW_KEYS)]
            for row, name in zip(rows, names)]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [[cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))]
             for line in [header, *body]]
    return "\n".join("  ".join(line).rstrip() for line in lines)
