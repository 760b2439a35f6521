"""Phase reconstruction: offline Fast Griffin-Lim and streaming RTISI-LA.

Both follow the STFT conventions of :mod:`engine.analysis.spectral`: centred frames (the first frame's
centre is sample 0), periodic Hann window, magnitudes ``(n_bins, n_frames)`` with
``n_bins = n_fft // 2 + 1``, and ``(n_frames - 1) * hop`` output samples for ``n_frames`` frames.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from engine.errors import ParameterError
from engine.analysis.overlap_add import NORM_FLOOR, OverlapAdd, add_frames
from engine.analysis.spectral import DEFAULT_HOP, DEFAULT_N_FFT, hann_window, istft, stft

_EPS = NORM_FLOOR


def _check_magnitude(magnitude: np.ndarray, n_bins: int | None = None) -> np.ndarray:
    m = np.asarray(magnitude)
    if m.ndim != 2 or not np.issubdtype(m.dtype, np.number) or np.iscomplexobj(m):
        raise ParameterError(f"magnitude must be a real 2-D array (n_bins, n_frames). Found shape {m.shape}, "
                             f"dtype {m.dtype}")
    if n_bins is not None and m.shape[0] != n_bins:
        raise ParameterError(f"magnitude must have {n_bins} bins. Found shape {m.shape}")
    if n_bins is None and m.shape[0] < 33:
        raise ParameterError(f"magnitude must have at least 33 bins (n_fft >= 64). Found shape {m.shape}")
    m = m.astype(np.float64, copy=False)
    if not np.all(np.isfinite(m)):
        raise ParameterError("magnitude contains NaN or Inf values")
    if m.size and m.min() < 0:
        raise ParameterError(f"magnitude must be non-negative. Found minimum {m.min()}")
    return m


def _phase_of(spec: np.ndarray) -> np.ndarray:
    """Unit-modulus ``spec / |spec|`` (1 where ``spec`` is 0)."""
    a = np.abs(spec)
    return np.where(a > 0, spec / np.maximum(a, 1e-300), 1.0)


def fast_griffin_lim(magnitude: np.ndarray, *, hop: int = DEFAULT_HOP, n_iter: int = 32, momentum: float = 0.99,
                     rng: np.random.Generator | None = None, length: int | None = None,
                     progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Audio whose STFT magnitude approximates ``magnitude``: Fast Griffin-Lim.

    Perraudin, Balazs & Søndergaard (2013), "A fast Griffin-Lim algorithm", IEEE WASPAA: the
    Griffin-Lim projection ``P(c) = S · phase(STFT(ISTFT(c)))`` with the inertial update
    ``c ← t_n + momentum · (t_n − t_{n−1})``; ``momentum = 0`` is plain Griffin-Lim (Griffin & Lim 1984).

    Parameters
    ----------
    magnitude : np.ndarray [shape=(n_bins, n_frames)], float, finite, >= 0
        Linear STFT magnitude; ``n_fft = 2 (n_bins - 1)``.
    hop : int
        Frame advance in samples (must match the analysis).
    n_iter : int >= 1
        Iterations (each is one ISTFT and one STFT of the whole signal).
    momentum : float in [0, 1)
        FGLA inertia; 0.99 is the published recommendation.
    rng : np.random.Generator or None
        Source of the random initial phase; ``np.random.default_rng(0)`` when None.
    length : int >= 0 or None
        Output length in samples; default ``(n_frames - 1) * hop``.
    progress : callable(int) or None
        Called after each iteration with the number of iterations done (1 .. ``n_iter``).

    Returns
    -------
    np.ndarray [shape=(length,)], float64
        The inverse STFT of the last projection (magnitude ``S``, estimated phase).

    Raises
    ------
    ParameterError
        For a malformed magnitude or a setting out of range (the message quotes the value).
    """
    mag = _check_magnitude(magnitude)
    n_bins, n_frames = mag.shape
    n_fft = 2 * (n_bins - 1)
    if not (isinstance(n_iter, (int, np.integer)) and n_iter >= 1):
        raise ParameterError(f"n_iter must be an integer >= 1. Found: {n_iter!r}")
    if not (np.isfinite(momentum) and 0.0 <= momentum < 1.0):
        raise ParameterError(f"momentum must be in [0, 1). Found: {momentum!r}")
    if not (isinstance(hop, (int, np.integer)) and 0 < hop <= n_fft // 2):
        raise ParameterError(f"hop must be an integer in (0, n_fft/2] = (0, {n_fft // 2}]. Found: {hop!r}")
    if length is not None and not (isinstance(length, (int, np.integer)) and length >= 0):
        raise ParameterError(f"length must be a non-negative integer or None. Found: {length!r}")
    if n_frames == 0:
        return np.zeros(length or 0)
    rng = np.random.default_rng(0) if rng is None else rng
    c = t = mag * np.exp(2j * np.pi * rng.random(mag.shape))
    for i in range(n_iter):
        t_prev = t
        t = mag * _phase_of(stft(istft(c, hop=hop), n_fft=n_fft, hop=hop))
        c = t + momentum * (t - t_prev)
        if progress is not None:
            progress(i + 1)
    y = istft(t, hop=hop)  # (n_frames - 1) * hop samples; zeros after them when more are asked for
    if length is None:
        return y
    return y[:length] if length <= len(y) else np.pad(y, (0, length - len(y)))


class StreamingPhase:
    """Streaming phase reconstruction by RTISI-LA (real-time iterative spectrogram inversion with look-ahead).

    Zhu, Beauregard & Wyse (2007), "Real-time signal estimation from modified short-time Fourier
    transform magnitude spectra", IEEE Trans. Audio, Speech, and Language Processing 15(5), 1645-1653.

    The object holds the ``look_ahead + 1`` newest frames not yet committed. For each new frame:

    1. initial phase: the phase of the windowed overlap-add of committed and held frames at the new
       frame's position (the "windowed partial reconstruction" of the paper; random phase only where
       that is exactly zero, e.g. for the first frame);
    2. refinement: ``iterations`` Griffin-Lim iterations over the held frames together (vectorised),
       against the partial signal ``(committed + held overlap-add) / (their squared-window sum)``,
       with FGLA inertia ``momentum`` (Perraudin et al. 2013) carried across stages;
    3. commit: once ``look_ahead + 1`` frames are held, the oldest one's windowed frame joins the
       committed overlap-add for good, and the ``hop`` samples no later frame touches are returned,
       divided by their squared-window sum (1.5 in the steady state for Hann at hop ``n_fft / 4``,
       less at the start of the stream). Committed samples never change.

    Every frame gets ``look_ahead + 1`` refinement stages, in the stream and at its end (``flush``),
    and the output does not depend on how the frames are split into ``process`` calls.

    Measured (2 s synthetic signals, defaults): spectral convergence -23.4 dB on a harmonic tone
    and -17.8 dB on noise, against -20.8 / -18.7 dB for FGLA-32; about 0.4 ms per frame on one
    CPU core. The windowed (unnormalised) partial reconstruction as initialiser beats the
    normalised one by 10 dB (harmonic) and 2 dB (noise), and momentum 0.95 beats 0 by 2 dB on noise.

    Lifecycle (like a JUCE ``AudioProcessor``): ``prepare()`` → ``process()`` ... → ``flush()`` →
    ``release()``; ``prepare()`` again starts a new stream.

    Latency: after ``n`` frames have been pushed in total, ``process`` has returned exactly
    ``max(0, n * hop - latency_samples)`` samples, with ``latency_samples = look_ahead * hop +
    n_fft // 2`` (1280 samples, 58 ms at the defaults and 22050 Hz). So the sample at the centre of
    frame ``m`` (stream sample ``m * hop``) comes out of the ``process`` call that receives frame
    ``m + latency_frames``, ``latency_frames = latency_samples // hop`` (5 at the defaults).

    Parameters
    ----------
    n_fft, hop : int
        STFT size and frame advance in samples (power of two >= 64; ``0 < hop <= n_fft / 2``).
    look_ahead : int in [0, 64]
        Frames held after the one being committed (3 in the paper's recommended setting).
    iterations : int in [0, 1000]
        Griffin-Lim iterations per stage (per new frame).
    momentum : float in [0, 1)
        FGLA inertia of the per-stage iterations; 0 is the paper's plain Griffin-Lim update.
    rng : np.random.Generator or None
        Source of random initial phase; ``np.random.default_rng(0)`` at each ``prepare()`` when None.
    """

    def __init__(self, *, n_fft: int = DEFAULT_N_FFT, hop: int = DEFAULT_HOP, look_ahead: int = 3,
                 iterations: int = 5, momentum: float = 0.95, rng: np.random.Generator | None = None) -> None:
        if not (isinstance(n_fft, (int, np.integer)) and n_fft >= 64 and n_fft & (n_fft - 1) == 0):
            raise ParameterError(f"n_fft must be a power of two >= 64. Found: {n_fft!r}")
        if not (isinstance(hop, (int, np.integer)) and 0 < hop <= n_fft // 2):
            raise ParameterError(f"hop must be an integer in (0, n_fft/2] = (0, {n_fft // 2}]. Found: {hop!r}")
        if not (isinstance(look_ahead, (int, np.integer)) and 0 <= look_ahead <= 64):
            raise ParameterError(f"look_ahead must be an integer in [0, 64] frames. Found: {look_ahead!r}")
        if not (isinstance(iterations, (int, np.integer)) and 0 <= iterations <= 1000):
            raise ParameterError(f"iterations must be an integer in [0, 1000]. Found: {iterations!r}")
        if not (np.isfinite(momentum) and 0.0 <= momentum < 1.0):
            raise ParameterError(f"momentum must be in [0, 1). Found: {momentum!r}")
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.look_ahead, self.iterations, self.momentum = int(look_ahead), int(iterations), float(momentum)
        self.n_bins = self.n_fft // 2 + 1
        self._seed_rng = rng
        self._prepared = False

    @property
    def latency_samples(self) -> int:
        """Delay in samples: ``look_ahead * hop + n_fft // 2`` (see the class docstring)."""
        return self.look_ahead * self.hop + self.n_fft // 2

    @property
    def latency_frames(self) -> int:
        """Delay in frames: frame ``m``'s centre sample comes out when frame ``m + latency_frames`` goes in."""
        return self.latency_samples // self.hop

    @property
    def last_committed(self) -> np.ndarray:
        """``(k, n_bins)`` complex: the spectra of the frames the last :meth:`process` (or :meth:`flush`)
        committed, oldest first, as they were overlap-added into its samples (the stereo upmix makes the
        two channels from them: :mod:`engine.synthesis.stereo`)."""
        if not self._committed_spectra:
            return np.zeros((0, self.n_bins), dtype=complex)
        return np.stack(self._committed_spectra)

    def prepare(self) -> None:
        """Allocate every buffer and reset the stream state (a new stream starts)."""
        n_fft, hop, held = self.n_fft, self.hop, self.look_ahead + 1
        self._rng = np.random.default_rng(0) if self._seed_rng is None else self._seed_rng
        self._window = np.array(hann_window(n_fft))
        # Buffers span the held frames: padded stream samples from the oldest held frame's start on.
        self._span = self.look_ahead * hop + n_fft
        self._committed = OverlapAdd(self._window, hop)  # committed frames; its tail reaches into the held ones
        self._mag = np.zeros((held, self.n_bins))  # held magnitudes, oldest first
        self._spec = np.zeros((held, self.n_bins), dtype=complex)  # held FGLA iterates c
        self._proj = np.zeros((held, self.n_bins), dtype=complex)  # held projections t (previous iteration)
        # Squared-window sums of the first k held frames. Each sample adds its frames newest first, the
        # order these tables always had: the refinement carries a last-bit change on to audible ones.
        self._held_norm = np.zeros((held + 1, self._span))
        for k in range(1, held + 1):
            for i in reversed(range(k)):
                self._held_norm[k, i * hop:i * hop + n_fft] += self._window ** 2
        self._slots = np.arange(held)[:, None] * hop + np.arange(n_fft)[None, :]  # samples of each held slot
        self._count = 0  # frames held
        self._committed_spectra: list[np.ndarray] = []
        self._emitted = 0  # padded stream samples returned or dropped so far
        self._prepared = True

    def release(self) -> None:
        """Free the buffers; ``prepare()`` must be called before the next stream."""
        if hasattr(self, "_committed"):
            del self._window, self._committed, self._mag, self._spec, self._proj, self._held_norm, self._slots
        self._prepared = False

    def _require_prepared(self) -> None:
        if not self._prepared:
            raise ParameterError("StreamingPhase: call prepare() before process() or flush() (also after flush())")

    def _from_committed(self, tail: np.ndarray) -> np.ndarray:
        """``(span,)`` samples from the oldest held frame's start: the committed frames' ``tail``, then zeros."""
        out = np.zeros(self._span)
        out[:len(tail)] = tail
        return out

    def _overlap(self, count: int) -> np.ndarray:
        """Overlap-add ``(span,)`` of the committed frames and the first ``count`` held frames (not normalised)."""
        num = self._from_committed(self._committed.tail)
        if count:
            frames = np.fft.irfft(self._spec[:count], n=self.n_fft, axis=1)
            frames *= self._window
            add_frames(frames, self.hop, num)
        return num

    def _analyse(self, x: np.ndarray, first: int, count: int) -> np.ndarray:
        """Spectra ``(count, n_bins)`` of ``x`` windowed at held-frame slots ``first .. first + count - 1``."""
        return np.fft.rfft(x[self._slots[first:first + count]] * self._window, axis=1)

    def _push(self, mag: np.ndarray) -> None:
        """Hold one new frame ``(n_bins,)`` with its initial phase, then refine the held frames."""
        k = self._count
        est = self._analyse(self._overlap(k), k, 1)[0]
        silent = est == 0
        if silent.any():
            est = np.where(silent, np.exp(2j * np.pi * self._rng.random(self.n_bins)), est)
        self._mag[k] = mag
        self._spec[k] = self._proj[k] = mag * _phase_of(est)
        self._count = k + 1
        self._refine()

    def _refine(self) -> None:
        """``iterations`` FGLA iterations over the held frames against the partial signal."""
        n = self._count
        norm = np.maximum(self._from_committed(self._committed.tail_norm) + self._held_norm[n], _EPS)
        for _ in range(self.iterations):
            t = self._mag[:n] * _phase_of(self._analyse(self._overlap(n) / norm, 0, n))
            self._spec[:n] = t + self.momentum * (t - self._proj[:n])
            self._proj[:n] = t

    def _commit(self) -> np.ndarray:
        """Commit the oldest held frame; return the ``hop`` padded stream samples now final."""
        self._committed_spectra.append(self._proj[0].copy())
        out = self._committed.push((np.fft.irfft(self._proj[0], n=self.n_fft) * self._window)[None, :])
        for buf in (self._mag, self._spec, self._proj):
            buf[:-1] = buf[1:]
        self._count -= 1
        return out

    def _trim(self, chunks: list[np.ndarray]) -> np.ndarray:
        """Join padded-sample chunks and drop the stream's first ``n_fft // 2`` samples (the centring pad)."""
        y = np.concatenate(chunks) if chunks else np.zeros(0)
        start = self._emitted
        self._emitted += len(y)
        return y[max(0, self.n_fft // 2 - start):]

    def process(self, magnitude_frames: np.ndarray) -> np.ndarray:
        """Push the next frames and return the samples that became final.

        Parameters
        ----------
        magnitude_frames : np.ndarray [shape=(n_bins, k)], float, finite, >= 0, any k >= 0
            The next ``k`` linear-magnitude frames of the stream.

        Returns
        -------
        np.ndarray [shape=(m,)], float64
            The next ``m`` output samples; summed over the stream, ``m`` is
            ``max(0, frames_pushed * hop - latency_samples)``.

        Raises
        ------
        ParameterError
            For a malformed block, or when the object is not prepared.
        """
        self._require_prepared()
        mag = _check_magnitude(magnitude_frames, self.n_bins)
        self._committed_spectra = []
        chunks = []
        for j in range(mag.shape[1]):
            self._push(mag[:, j])
            if self._count > self.look_ahead:
                chunks.append(self._commit())
        return self._trim(chunks)

    def flush(self) -> np.ndarray:
        """End the stream: refine and commit the held frames, return every remaining sample.

        With ``N`` frames pushed in total, the outputs of ``process`` and ``flush`` together are
        ``(N - 1) * hop`` samples long, like :func:`engine.analysis.spectral.istft` of ``N`` frames. Call
        ``prepare()`` before the next stream.
        """
        self._require_prepared()
        self._committed_spectra = []
        chunks = []
        while self._count:
            self._refine()
            chunks.append(self._commit())
        tail = self.n_fft // 2 - self.hop  # final samples after the last commit, up to the last frame's centre
        chunks.append(self._committed.flush()[:tail])
        self._prepared = False
        return self._trim(chunks)
