"""Spectral front end: STFT / ISTFT, log1p magnitude, and the pseudo-CQT (log-frequency) map.

All functions are pure and work on numpy arrays. Shapes follow librosa: a spectrogram is
``(n_bins, n_frames)`` with ``n_bins = n_fft // 2 + 1``. Frames are ``hop`` samples apart. Frame length and
advance are set in milliseconds (:data:`FRAME_MS`, :data:`HOP_MS`) and turned into samples for the
rate by :func:`stft_sizes`: a frame is about 46 ms long and frames are about 11.6 ms apart at every
rate (1024 / 256 samples at 22050 Hz, 2048 / 512 at 44.1 and 48 kHz).

The STFT is centred (the signal is reflect-padded by ``n_fft // 2``), the window is a periodic Hann,
and ``istft(stft(x))`` reconstructs ``x`` to float precision (tested).

The pseudo-CQT follows Huzaifah & Wyse's code: a fixed linear map from linear-frequency bins onto a
log-frequency axis (triangular weights between neighbouring log-spaced centres), with the
Moore-Penrose pseudo-inverse as its inverse map.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.analysis.overlap_add import OverlapAdd
from engine.errors import ParameterError

DEFAULT_SAMPLE_RATE = 22050
#: Length of an STFT frame in milliseconds, whatever the rate (1024 samples at 22050 Hz); the FFT
#: size is the power of two nearest to it (:func:`stft_sizes`).
FRAME_MS = 1000.0 * 1024 / 22050
#: Frames overlap by three quarters: the hop is a quarter of the FFT size (11.6 ms at 22050 and 44100 Hz).
HOP_DIVISOR = 4


def stft_sizes(sample_rate: int) -> tuple[int, int]:
    """``(n_fft, hop)`` in samples for ``sample_rate`` Hz: the power of two nearest to :data:`FRAME_MS`
    and a quarter of it (22050 Hz: 1024, 256; 44100 and 48000 Hz: 2048, 512; 8000 Hz: 512, 128)."""
    n_fft = 2 ** max(6, int(round(np.log2(FRAME_MS * sample_rate / 1000.0))))
    return n_fft, n_fft // HOP_DIVISOR


#: STFT size and hop at :data:`DEFAULT_SAMPLE_RATE` (1024 and 256 samples).
DEFAULT_N_FFT, DEFAULT_HOP = stft_sizes(DEFAULT_SAMPLE_RATE)
#: Lowest band centre of the texture envelopes (:meth:`SpectralConfig.envelope_map`), Hz.
ENVELOPE_FMIN_HZ = 50.0
#: Bands per octave of the fine envelopes (:meth:`SpectralConfig.fine_envelope_map`): the live network's channels'.
FINE_BANDS_PER_OCTAVE = 12


@dataclass(frozen=True)
class SpectralConfig:
    """STFT settings shared by every stage.

    Parameters
    ----------
    sample_rate : int > 0
        Engine sample rate in Hz.
    n_fft : int, power of two >= 64, or None
        FFT size in samples; None (the default): :func:`stft_sizes` for the rate, about 46 ms
        (1024 at 22050 Hz, 2048 at 44.1 kHz).
    hop : int, 0 < hop <= n_fft // 2, or None
        Frame advance in samples; None (the default): a quarter of ``n_fft``, about 11.6 ms.
    frequency_axis : {"linear", "cqt"}
        Axis on which the networks see the spectrum: the linear bins themselves, or the pseudo-CQT map.
    cqt_bins_per_octave : int
        Resolution of the pseudo-CQT axis.
    cqt_fmin : float
        Lowest centre frequency of the pseudo-CQT axis in Hz.
    """

    sample_rate: int = DEFAULT_SAMPLE_RATE
    n_fft: int | None = None
    hop: int | None = None
    frequency_axis: str = "linear"
    cqt_bins_per_octave: int = 24
    cqt_fmin: float = 40.0

    def __post_init__(self) -> None:
        if not (isinstance(self.sample_rate, int) and 4000 <= self.sample_rate <= 192000):
            raise ParameterError(f"sample_rate must be an integer in [4000, 192000] Hz. Found: {self.sample_rate}")
        n_fft, hop = stft_sizes(self.sample_rate)
        if self.n_fft is None:  # frozen: fill the rate's sizes in once
            object.__setattr__(self, "n_fft", n_fft if self.hop is None else max(n_fft, 2 * self.hop))
        if self.hop is None:
            object.__setattr__(self, "hop", self.n_fft // HOP_DIVISOR)
        if self.n_fft < 64 or self.n_fft & (self.n_fft - 1):
            raise ParameterError(f"n_fft must be a power of two >= 64. Found: {self.n_fft}")
        if not 0 < self.hop <= self.n_fft // 2:
            raise ParameterError(f"hop must be in (0, n_fft/2]. Found: {self.hop}")
        if self.frequency_axis not in ("linear", "cqt"):
            raise ParameterError(f"frequency_axis must be 'linear' or 'cqt'. Found: {self.frequency_axis!r}")

    @property
    def n_bins(self) -> int:
        """Linear-frequency bins per frame: ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def frame_seconds(self) -> float:
        """Seconds between frames (hop / sample_rate)."""
        return self.hop / self.sample_rate

    @property
    def n_channels(self) -> int:
        """Channels the networks see: linear bins, or pseudo-CQT bins."""
        return self.feature_map().shape[0]

    def feature_map(self) -> np.ndarray:
        """The ``(n_channels, n_bins)`` float32 matrix from linear bins to network channels."""
        if self.frequency_axis == "linear":
            return np.eye(self.n_bins, dtype=np.float32)
        return pseudo_cqt_matrix(
            sample_rate=self.sample_rate, n_fft=self.n_fft,
            bins_per_octave=self.cqt_bins_per_octave, fmin=self.cqt_fmin,
        ).copy()

    def envelope_map(self) -> np.ndarray:
        """The ``(bands, n_bins)`` float32 matrix averaging linear bins into the texture envelopes' bands.

        Half-octave bands (a :func:`pseudo_cqt_matrix` at 2 bins per octave) from 50 Hz to Nyquist: 16
        bands at 22050 Hz. Their band-mean log1p magnitudes over time are the envelopes whose statistics
        (:func:`engine.analysis.statistics.envelope_statistics`) the live engine matches.
        """
        return pseudo_cqt_matrix(sample_rate=self.sample_rate, n_fft=self.n_fft, bins_per_octave=2,
                                 fmin=ENVELOPE_FMIN_HZ).copy()

    def fine_envelope_map(self) -> np.ndarray:
        """The ``(fine_bands, n_bins)`` float32 matrix averaging linear bins into twelfth-octave bands (a
        :func:`pseudo_cqt_matrix` at :data:`FINE_BANDS_PER_OCTAVE`) from :data:`ENVELOPE_FMIN_HZ` to Nyquist: 106 bands
        at 44.1 kHz, their centres :meth:`fine_centres_hz`. Below about 360 Hz at 44.1 kHz (180 Hz at 22.05 kHz) a
        twelfth of an octave is narrower than a bin, so neighbouring bands read the same bins: the map is not of
        full rank (:func:`engine.analysis.trend.level_spread_map` takes its ``rcond`` for it).
        """
        return pseudo_cqt_matrix(sample_rate=self.sample_rate, n_fft=self.n_fft, bins_per_octave=FINE_BANDS_PER_OCTAVE,
                                 fmin=ENVELOPE_FMIN_HZ).copy()

    def fine_centres_hz(self) -> np.ndarray:
        """Centre of each row of :meth:`fine_envelope_map`, Hz, ``(fine_bands,)`` float64."""
        count = self.fine_envelope_map().shape[0]
        return ENVELOPE_FMIN_HZ * 2.0 ** (np.arange(count) / FINE_BANDS_PER_OCTAVE)



@lru_cache(maxsize=8)
def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``n_fft`` samples (float64, read-only)."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    w.setflags(write=False)
    return w


def _check_audio(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ParameterError(f"audio must be mono, shape (n,). Found shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"audio must be floating point. Found dtype {y.dtype}")
    if not np.all(np.isfinite(y)):
        raise ParameterError("audio contains NaN or Inf samples")
    return y


def frame_count(n_samples: int, *, hop: int = DEFAULT_HOP) -> int:
    """Frames a centred STFT gives for ``n_samples`` samples: ``1 + n_samples // hop``."""
    return 1 + n_samples // hop


def stft(y: np.ndarray, *, n_fft: int = DEFAULT_N_FFT, hop: int = DEFAULT_HOP) -> np.ndarray:
    """Centred short-time Fourier transform.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], floating, finite
        Mono audio.
    n_fft, hop : int
        FFT size and frame advance in samples.

    Returns
    -------
    np.ndarray [shape=(n_fft // 2 + 1, 1 + n // hop)], complex128

    Raises
    ------
    ParameterError
        If ``y`` is not 1-D floating and finite.
    """
    y = _check_audio(y).astype(np.float64, copy=False)
    pad = n_fft // 2
    mode = "reflect" if len(y) > pad else "constant"
    yp = np.pad(y, pad, mode=mode)
    n_frames = frame_count(len(y), hop=hop)
    need = (n_frames - 1) * hop + n_fft
    if len(yp) < need:
        yp = np.pad(yp, (0, need - len(yp)))
    return _spectra(yp, n_frames, n_fft=n_fft, hop=hop)


def _spectra(padded: np.ndarray, n_frames: int, *, n_fft: int, hop: int) -> np.ndarray:
    """Windowed rFFTs of the first ``n_frames`` frames of ``padded``, ``(bins, n_frames)`` complex128."""
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    return np.fft.rfft(frames * hann_window(n_fft), axis=1).T


class StreamMagnitudes:
    """Magnitudes of a stream's whole STFT frames as its blocks arrive (frames every ``hop`` samples from
    the stream's first sample, not centred): :meth:`process` takes a block and returns the frames it
    completes; the samples short of a whole frame wait for the next block. Stream object: :meth:`reset`
    forgets them."""

    def __init__(self, *, n_fft: int, hop: int) -> None:
        self.n_fft, self.hop = n_fft, hop
        self.reset()

    def reset(self) -> None:
        """Forget the samples waiting for a whole frame."""
        self._held: np.ndarray | None = None  # (n, channels)

    def process(self, samples: np.ndarray) -> list[np.ndarray]:
        """``|STFT|`` ``(bins, count)`` float64 of each channel's frames completed by ``samples`` ``(n,)`` or
        ``(n, channels)``; an empty list when none is (a change of channel count starts afresh)."""
        block = samples if samples.ndim == 2 else samples[:, None]
        x = block if self._held is None or self._held.shape[1] != block.shape[1] else np.concatenate([self._held, block])
        count = (len(x) - self.n_fft) // self.hop + 1 if len(x) >= self.n_fft else 0
        self._held = x[count * self.hop:]
        return [np.abs(_spectra(x[:, c], count, n_fft=self.n_fft, hop=self.hop)) for c in range(x.shape[1])] if count else []


def stft_frames(y: np.ndarray, start: int, stop: int, *, n_fft: int = DEFAULT_N_FFT,
                hop: int = DEFAULT_HOP) -> np.ndarray:
    """Frames ``start .. stop - 1`` of :func:`stft` ``(y)``, the same values, from the samples they need.

    A long sound is analysed in pieces with this (bounded memory: a piece of ``m`` frames costs about
    ``m * n_fft * 24`` bytes); the centred edges are reflected exactly as :func:`stft` pads them.
    ``stop`` is clipped to the frame count; ``y`` must be 1-D floating and finite (not re-checked
    per piece: check once with :func:`stft`'s rules or trust the caller).
    """
    y = np.asarray(y)
    n, pad = len(y), n_fft // 2
    stop = min(stop, frame_count(n, hop=hop))
    if not 0 <= start < stop:
        return np.zeros((n_fft // 2 + 1, 0), dtype=np.complex128)
    idx = np.arange(start * hop - pad, (stop - 1) * hop - pad + n_fft)
    segment = np.zeros(len(idx), dtype=np.float64)
    if n > pad:  # np.pad(mode="reflect"), then zeros past the reflected edge (stft's final pad)
        keep = (idx >= -pad) & (idx < n + pad)
        j = np.abs(idx[keep])
        j = np.where(j >= n, 2 * (n - 1) - j, j)
        segment[keep] = y[j]
    else:  # np.pad(mode="constant")
        keep = (idx >= 0) & (idx < n)
        segment[keep] = y[idx[keep]]
    return _spectra(segment, stop - start, n_fft=n_fft, hop=hop)


def istft(spec: np.ndarray, *, hop: int = DEFAULT_HOP, length: int | None = None) -> np.ndarray:
    """Inverse of :func:`stft` by windowed overlap-add with squared-window normalisation
    (:class:`engine.analysis.overlap_add.OverlapAdd`, all frames in one push).

    Parameters
    ----------
    spec : np.ndarray [shape=(n_bins, n_frames)], complex
    hop : int
        Frame advance in samples.
    length : int or None
        Output length in samples; default ``(n_frames - 1) * hop``.

    Returns
    -------
    np.ndarray [shape=(length,)], float64
    """
    n_bins, n_frames = spec.shape
    n_fft = 2 * (n_bins - 1)
    frames = np.fft.irfft(spec.T, n=n_fft, axis=1) * hann_window(n_fft)
    ola = OverlapAdd(hann_window(n_fft), hop)
    out = np.concatenate([ola.push(frames), ola.flush()])  # (n_frames - 1) * hop + n_fft samples
    pad = n_fft // 2
    if length is None:
        length = (n_frames - 1) * hop
    y = out[pad:pad + length]
    if len(y) < length:
        y = np.pad(y, (0, length - len(y)))
    return y


def log_magnitude(spec: np.ndarray) -> np.ndarray:
    """``log1p(|spec|)`` as float32: the representation every network and loss works on."""
    return np.log1p(np.abs(spec)).astype(np.float32)


def magnitude_from_log(log_mag: np.ndarray) -> np.ndarray:
    """Inverse of :func:`log_magnitude` on magnitudes: ``expm1`` clipped at zero."""
    return np.maximum(np.expm1(np.asarray(log_mag, dtype=np.float64)), 0.0)


def spectral_convergence_db(y: np.ndarray, target_mag: np.ndarray, *, hop: int = DEFAULT_HOP) -> float:
    """Spectral convergence ``20 log10(‖|STFT y| − S‖ / ‖S‖)`` in dB (lower is better).

    ``target_mag`` is a linear magnitude ``(n_bins, n_frames)``; the STFT of ``y`` is cut or
    zero-padded to the same number of frames.
    """
    n_fft = 2 * (target_mag.shape[0] - 1)
    mag = np.abs(stft(np.asarray(y, dtype=np.float64), n_fft=n_fft, hop=hop))
    t = target_mag.shape[1]
    if mag.shape[1] < t:
        mag = np.pad(mag, ((0, 0), (0, t - mag.shape[1])))
    mag = mag[:, :t]
    return float(20 * np.log10(np.linalg.norm(mag - target_mag) / max(np.linalg.norm(target_mag), 1e-12) + 1e-12))


@lru_cache(maxsize=8)
def pseudo_cqt_matrix(*, sample_rate: int = DEFAULT_SAMPLE_RATE, n_fft: int = DEFAULT_N_FFT,
                      bins_per_octave: int = 24, fmin: float = 40.0) -> np.ndarray:
    """Linear map from ``n_fft // 2 + 1`` linear bins to log-spaced bins (pseudo-CQT).

    Log centres run from ``fmin`` to Nyquist, ``bins_per_octave`` per octave. Each log bin is a
    triangle on the linear axis spanning its neighbours' centres, normalised to unit sum, and never
    narrower than one linear bin (so low log bins interpolate, high ones average). Frequencies below
    ``fmin`` fold into the first log bin.

    Returns
    -------
    np.ndarray [shape=(n_log, n_fft // 2 + 1)], float32, read-only
    """
    if fmin <= 0 or fmin >= sample_rate / 2:
        raise ParameterError(f"fmin must be in (0, sample_rate/2). Found: {fmin}")
    n_bins = n_fft // 2 + 1
    freqs = np.arange(n_bins) * sample_rate / n_fft
    n_log = int(np.floor(bins_per_octave * np.log2((sample_rate / 2) / fmin))) + 1
    centres = fmin * 2.0 ** (np.arange(-1, n_log + 1) / bins_per_octave)
    df = sample_rate / n_fft
    m = np.zeros((n_log, n_bins))
    for k in range(n_log):
        lo, c, hi = centres[k], centres[k + 1], centres[k + 2]
        lo, hi = min(lo, c - df), max(hi, c + df)
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        m[k] = np.clip(np.minimum(up, down), 0.0, None)
    m[0, freqs < fmin] = 1.0
    m /= m.sum(axis=1, keepdims=True)
    out = m.astype(np.float32)
    out.setflags(write=False)
    return out


def pseudo_cqt_inverse(matrix: np.ndarray) -> np.ndarray:
    """Pseudo-inverse ``(n_bins, n_log)`` of a :func:`pseudo_cqt_matrix`, float32."""
    return np.linalg.pinv(matrix.astype(np.float64), rcond=1e-4).astype(np.float32)
