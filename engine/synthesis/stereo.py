"""Two channels from one texture: per-band parametric stereo with a time-varying decorrelator.

The block engine synthesises one magnitude texture, the mid, and the streaming phase gives each of its
committed frames a complex spectrum ``X`` (:attr:`engine.synthesis.phase.StreamingPhase.last_committed`).
:class:`StereoUpmix` makes the two channels from those spectra, per bin ``k``:

    ``D_t = X_{t − d_k} · exp(j θ_k(t))``,  ``L = g_L (a X + b D)``,  ``R = g_R (a X − b D)``

and overlap-adds each channel as the phase does its mid (same window, hop and trimmed start, so
the channels are as long as the mid and in time with it; at ``b = 0`` and ``g = 1`` both are the mid,
bit for bit). ``d_k`` is a delay in frames and ``θ_k`` a random walk from 0, :data:`PHASE_STEP_RADIANS` a
frame, both the same over each group of bins (see below): ``D`` has ``X``'s spectrum and short-time
shape but no fixed relation to it at any moment, so ``X`` and ``D`` are incoherent, and
``a = sqrt((1 + c) / 2)``, ``b = sqrt((1 − c) / 2)`` give channels of coherence ``c`` and the mid's
power (Breebaart et al. 2005, "Parametric coding of stereo audio", EURASIP J. Appl. Signal Process.
9, 1305-1322, with a decorrelator of our own). A fixed all-pass (a constant ``θ``) would not do: per bin it is a linear filter, coherent at any length of
measurement. The walk's cost is frequency jitter of the decorrelated part, about
``PHASE_STEP_RADIANS / (2 π hop)`` (4 Hz rms at 11.6 ms frames), heard on steady partials, not in noise. On a
steady partial ``D`` is ``X`` turned, and ``a X ± b D`` moved its power from one channel to the other as the walk
turned: ``D``'s part in phase with ``X`` over the last :data:`QUADRATURE_SECONDS` is taken out, the rest brought
back to ``D``'s power (:meth:`StereoUpmix._quadrature`), so a partial keeps its level in both channels.
The delays do the work where the texture is noise-like: ``D`` is ``X`` of 4-10 frames before
(:data:`DELAY_FRAMES`, constant over each third of an octave so the overlap-add stays consistent and
keeps the power; a random phase per bin and frame lost 3 dB there and left a coherence of 0.4). Where
the streaming phase continues a bin like a partial (steady tones; the few bins of a band below about
150 Hz) only the walk decorrelates, over seconds: measured on white noise at 44.1 kHz, a mono style at
width 1 gives coherence 0.06-0.13 above 150 Hz and 0.2-0.3 below in 6 s of output (the image's measure,
:func:`engine.analysis.stereo.stereo_image`).

``g_L``, ``g_R`` set the level difference and bring the channels to the style's level over the mid
(:mod:`engine.analysis.stereo`). Where the style's difference wanders (a bird on the left, then one on the
right), each band's difference walks about it as an AR(1) of the style's ``wander_db`` and time constant
(:data:`engine.analysis.stereo.WANDER_SECONDS`), the two channels' power kept: a walk of its own and one all
bands share, mixed by the style's ``wander_shared``; a bin between two bands mixes theirs (:func:`wander_map`).
:func:`channel_mix` turns a (blended) stereo image and the ``width`` parameter into the per-bin ``a``, ``b``, ``g_L``, ``g_R``: coherence ``1 − width (1 − c)`` and level
difference ``width · d``, so width 0 gives identical channels, 1 the style's image (for a mono style
two independent channels).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from engine.analysis.one_pole import one_pole
from engine.analysis.overlap_add import OverlapAdd
from engine.analysis.spectral import hann_window, stft
from engine.analysis.stereo import StereoImage, wander_pole
from engine.errors import ParameterError

#: Standard deviation of the decorrelator's per-bin phase step, radians per frame (see module doc).
PHASE_STEP_RADIANS = 0.3
#: Delays of the decorrelator in frames, shortest and longest (4 frames: no overlap with the frame itself).
DELAY_FRAMES = (4, 10)
#: Bins of one delay: groups of this fraction of an octave.
DELAY_GROUPS_PER_OCTAVE = 3
#: Channels of the stereo engine.
STEREO = 2
#: Time constant of the running means that find the decorrelated part's share in phase with the mid, s (see
#: :meth:`StereoUpmix.process`): longer than the few frames over which that share of a noise-like bin changes
#: sign, shorter than the decorrelator's walk turns a steady partial's. A mono 440-Hz sine at width 1 swung
#: 6.9 dB (standard deviation of the channels' difference over 0.5 s) without; 0.1 s leaves 1.3 dB, 0.05 s
#: 0.7 dB but pink noise's coherence 0.08 where it is 0.07 (docs/EXPERIMENTS.md section 63).
QUADRATURE_SECONDS = 0.1
#: Largest gain that brings the decorrelated part back to its power (+12 dB).
MAX_QUADRATURE_GAIN = 4.0
#: Frames :func:`upmix` hands :meth:`StereoUpmix.process` at once (bounded memory on a long signal).
UPMIX_CHUNK_FRAMES = 512
#: Frames :func:`upmix` plays under one level difference when it follows a track of them (4 = 46 ms at 11.6 ms).
TRACK_CHUNK_FRAMES = 4
#: Largest gain :meth:`StereoUpmix.relevel` gives the delay line (a bin the old blend left near silent
#: stays near silent rather than its residue being raised to the new level).
MAX_RELEVEL_GAIN = 4.0


def bins_from_bands(envelope_map: np.ndarray) -> np.ndarray:
    """``(bins, bands)`` float64: each bin's weights over the bands it belongs to (rows sum to 1), to
    spread per-band values over the bins."""
    m = np.asarray(envelope_map, dtype=np.float64).T
    return m / np.maximum(m.sum(axis=1, keepdims=True), 1e-12)


def mix_rows(image: StereoImage, width: float) -> np.ndarray:
    """Rows ``a``, ``b``, ``g_L``, ``g_R`` ``(4, n)`` (see module doc) for each of ``image``'s ``n`` entries (its
    bands, or a style's clicks: :class:`engine.analysis.clicks.ClickTarget`) at ``width`` in [0, 1]. Two
    signals ``X``, ``D`` of equal power ``P`` mixed as ``g_L (a X + b D)``, ``g_R (a X − b D)`` give channels
    of coherence ``1 − width (1 − c)``, left over right ``width · d`` dB and mean power ``mid_ratio · P``."""
    coherence = 1.0 - width * (1.0 - image.coherence)
    q = 10.0 ** (width * image.level_difference_db / 10.0)  # left power over right
    r = image.mid_ratio
    return np.stack([np.sqrt((1.0 + coherence) / 2.0), np.sqrt(np.maximum(1.0 - coherence, 0.0) / 2.0),
                     np.sqrt(r * 2.0 * q / (1.0 + q)), np.sqrt(r * 2.0 / (1.0 + q))])


def channel_mix(image: StereoImage, width: float, bin_map: np.ndarray) -> np.ndarray:
    """The per-bin mix ``(4, bins)``: :func:`mix_rows` of ``image``'s bands at ``width`` in [0, 1], spread over
    the bins by ``bin_map`` (from :func:`bins_from_bands`)."""
    return mix_rows(image, width) @ bin_map.T


def wander_map(image: StereoImage, width: float, bin_map: np.ndarray) -> np.ndarray:
    """``(bins, 1 + bands)``: the dB each bin's level difference moves per unit of the walk the bands share
    (column 0) and of each band's own walk, at ``width`` in [0, 1]. A band's wander is split between the two
    by its ``wander_shared``; a bin between two bands mixes their walks, scaled so that it wanders as far as
    their mean variance (a mix of independent walks would move less). :meth:`StereoUpmix.process` multiplies
    the unit walks by it."""
    w, shared = image.wander_db, image.wander_shared
    own = bin_map * (w * np.sqrt(1.0 - shared ** 2))[None, :]
    rows = np.concatenate([bin_map @ (w * shared)[:, None], own], axis=1)
    played = (rows ** 2).sum(axis=1, keepdims=True)
    wanted = bin_map @ (w ** 2)[:, None]
    return width * rows * np.sqrt(wanted / np.maximum(played, 1e-12))


class StereoUpmix:
    """Stream object: the mid's committed spectra in, two channels of samples out (see module doc).

    Parameters
    ----------
    n_fft, hop : int
        The streaming phase's STFT size and frame advance in samples.
    seed : int
        Seed of the decorrelator's phases (the same seed gives the same channels).

    Lifecycle: :meth:`prepare`, :meth:`process` per block, :meth:`release`.
    """

    def __init__(self, *, n_fft: int, hop: int, sample_rate: int, seed: int = 0) -> None:
        self.n_fft, self.hop, self.seed = int(n_fft), int(hop), int(seed)
        self._pole = wander_pole(sample_rate / self.hop)
        self._quadrature_pole = float(np.exp(-self.hop / (QUADRATURE_SECONDS * sample_rate)))
        self.n_bins = self.n_fft // 2 + 1
        self._window = np.array(hann_window(self.n_fft))

    def prepare(self) -> None:
        """Reset the overlap-adds and draw the decorrelator's starting phases."""
        self._rng = np.random.default_rng(self.seed)
        self._group = np.floor(np.log2(np.arange(self.n_bins) + 1.0) * DELAY_GROUPS_PER_OCTAVE).astype(int)
        groups = self._group.max() + 1
        self._theta = np.zeros(groups)
        lo, hi = DELAY_FRAMES
        self._delay = self._rng.integers(lo, hi + 1, groups)[self._group]
        self._past = np.zeros((hi + 1, self.n_bins), dtype=complex)  # committed spectra, newest last
        self._ola = [OverlapAdd(self._window, self.hop) for _ in range(STEREO)]
        self._emitted = 0
        self._wander_rng = np.random.default_rng([self.seed, 1])  # its own: a still image plays as before
        self._walk = np.zeros(0)  # the unit walks (the shared one, then each band's), drawn on first use
        self._in_phase_state: np.ndarray | None = None  # (3 bins, 1): running means of Re(X* D), |X|², |D|²
        self._turned_state: np.ndarray | None = None  # (bins, 1): running mean of the turned part's power

    def release(self) -> None:
        """Drop the stream state; :meth:`prepare` starts a new stream."""
        self._ola = []

    def relevel(self, old_level: np.ndarray, new_level: np.ndarray) -> None:
        """Scale the delay line's spectra per bin from ``old_level`` to ``new_level`` ``(n_bins,)``, linear
        magnitudes: by ``new / old``, at most ``MAX_RELEVEL_GAIN``; a bin at 0 in both keeps its residue.

        On a timbre move the engine re-levels what the decorrelated part will still play: without it,
        half the power of a wide channel pair kept the old timbre for up to ``DELAY_FRAMES[1]`` frames
        (116 ms), and a style change was heard that much later (``docs/EXPERIMENTS.md`` section 20).
        """
        gain = np.divide(new_level, old_level, out=np.ones(self.n_bins), where=old_level > 0)
        self._past *= np.minimum(gain, MAX_RELEVEL_GAIN)[None, :]

    def process(self, spectra: np.ndarray, mix: np.ndarray, wander: np.ndarray | None = None) -> np.ndarray:
        """The two channels ``(samples, 2)`` float64 of the mid's next committed frames.

        Parameters
        ----------
        spectra : np.ndarray [shape=(k, n_bins)], complex
            The frames the phase committed (:attr:`engine.synthesis.phase.StreamingPhase.last_committed`).
        mix : np.ndarray [shape=(4, n_bins)]
            :func:`channel_mix`'s rows ``a``, ``b``, ``g_L``, ``g_R``.
        wander : np.ndarray [shape=(n_bins, 1 + bands)], optional
            :func:`wander_map`: the level difference wanders by it (see module doc); None or zeros hold it
            still.

        Returns as many samples as the phase's :meth:`~engine.synthesis.phase.StreamingPhase.process`
        returned for the same frames. Raises ParameterError for spectra of the wrong size.
        """
        if spectra.ndim != 2 or spectra.shape[1] != self.n_bins:
            raise ParameterError(f"spectra must be (k, {self.n_bins}). Found shape {spectra.shape}")
        k = len(spectra)
        steps = np.cumsum(self._rng.standard_normal((k, len(self._theta))) * PHASE_STEP_RADIANS, axis=0)
        theta = self._theta + steps
        if k:
            self._theta = np.mod(theta[-1], 2.0 * np.pi)
        theta = theta[:, self._group]
        a, b, g_left, g_right = mix
        self._past = np.concatenate([self._past, spectra])[-len(self._past) - k:]
        rows = len(self._past) - k + np.arange(k)[:, None] - self._delay[None, :]
        delayed = self._past[rows, np.arange(self.n_bins)[None, :]]
        self._past = self._past[k:]
        mid, side = a * spectra, b * delayed * np.exp(1j * theta)
        out = []
        if wander is not None and k and wander.any():
            g_left, g_right = self._wandered(g_left, g_right, wander, k)
        if k:
            side = self._quadrature(mid, side)
        for ola, spec in zip(self._ola, (g_left * (mid + side), g_right * (mid - side))):
            out.append(ola.push(np.fft.irfft(spec, n=self.n_fft, axis=1) * self._window))
        y = np.stack(out, axis=1) if k else np.zeros((0, STEREO))
        start = self._emitted
        self._emitted += len(y)
        return y[max(0, self.n_fft // 2 - start):]

    def _quadrature(self, mid: np.ndarray, side: np.ndarray) -> np.ndarray:
        """The decorrelated part ``(k, n_bins)`` less its share in phase with the mid that persists over
        :data:`QUADRATURE_SECONDS`, scaled back to its power over the same means (at most
        :data:`MAX_QUADRATURE_GAIN`).

        ``|X ± D|² = |X|² + |D|² ± 2 Re(X* D)``: the channels get the same power but for the cross term. In noise
        it changes sign every few frames and averages out; on a steady partial ``D`` is ``X`` turned by the walk,
        and the term moved the partial's power from one channel to the other and back over seconds (a mono sine
        at width 1 swung by up to 13 dB between them). A part in quadrature with ``X`` adds the same power to both
        channels and moves only the phase between them; the channels' mean stays ``X``."""
        track = np.concatenate([np.real(np.conj(mid) * side), np.abs(mid) ** 2, np.abs(side) ** 2], axis=1).T
        means, self._in_phase_state = one_pole(track, self._in_phase_state, self._quadrature_pole)
        cross, power, side_power = np.split(means.T, 3, axis=1)
        turned = side - mid * (cross / np.maximum(power, 1e-30))
        track = (np.abs(turned) ** 2).T
        turned_power, self._turned_state = one_pole(track, self._turned_state, self._quadrature_pole)
        gain = np.sqrt(side_power / np.maximum(turned_power.T, 1e-30))
        return turned * np.minimum(gain, MAX_QUADRATURE_GAIN)

    def _wandered(self, g_left: np.ndarray, g_right: np.ndarray, wander: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
        """The channel gains ``(k, n_bins)`` of ``k`` frames with the bands' walks laid on the level
        difference: each bin's left share of ``g_L² + g_R²`` moved by the walk's dB, that sum kept (a channel
        the style leaves silent stays silent)."""
        if len(self._walk) != wander.shape[1]:
            self._walk = self._wander_rng.standard_normal(wander.shape[1])
        noise = self._wander_rng.standard_normal((k, len(self._walk))) * np.sqrt(1.0 - self._pole ** 2)
        walks = np.empty((k, len(self._walk)))
        for i in range(k):
            self._walk = self._pole * self._walk + noise[i]
            walks[i] = self._walk
        power = g_left ** 2 + g_right ** 2
        share = g_left ** 2 / np.maximum(power, 1e-30)
        moved = share * 10.0 ** (walks @ wander.T / 10.0)
        share = moved / (moved + 1.0 - share)
        return np.sqrt(power * share), np.sqrt(power * (1.0 - share))


def upmix(audio: np.ndarray, image: StereoImage, width: float, *, n_fft: int, hop: int, sample_rate: int,
          envelope_map: np.ndarray, seed: int = 0, level_difference_db: np.ndarray | None = None) -> np.ndarray:
    """The two channels ``(n, 2)`` float64 of a whole mono signal ``audio`` ``(n,)`` with ``image`` at ``width``
    in [0, 1]: :class:`StereoUpmix` run over the signal's centred STFT (``n_fft``, ``hop``, Hann), so an offline
    render gets the stream's channels. ``envelope_map`` is the ``(bands, bins)`` map of ``image``'s bands
    (:meth:`engine.analysis.spectral.SpectralConfig.envelope_map`). As in the stream, the first
    ``DELAY_FRAMES[1]`` frames' decorrelated part is silent (nothing before them to delay).

    ``level_difference_db`` ``(bands, frames)``, optional: each band's level difference frame by frame
    (:func:`engine.analysis.stereo.level_difference_track` of a transfer's content, whose frames are the signal's),
    followed :data:`TRACK_CHUNK_FRAMES` frames at a time in place of ``image``'s still difference and its wander
    (the last frame's held past its end). Raises ParameterError for audio that is not 1-D, float and finite."""
    up = StereoUpmix(n_fft=n_fft, hop=hop, sample_rate=sample_rate, seed=seed)
    up.prepare()
    bin_map = bins_from_bands(envelope_map)
    # n_fft zeros after the end: the frames that reach the last samples are all there
    padded = np.concatenate([np.asarray(audio, dtype=np.float64), np.zeros(n_fft)])
    spectra = stft(padded, n_fft=n_fft, hop=hop).T
    if level_difference_db is None:
        mix, wander = channel_mix(image, width, bin_map), wander_map(image, width, bin_map)
        out = [up.process(spectra[i:i + UPMIX_CHUNK_FRAMES], mix, wander)
               for i in range(0, len(spectra), UPMIX_CHUNK_FRAMES)]
    else:
        track = np.asarray(level_difference_db, dtype=np.float64)
        last = track.shape[1] - 1
        out = [up.process(spectra[i:i + TRACK_CHUNK_FRAMES], channel_mix(dataclasses.replace(
            image, level_difference_db=track[:, min(i, last):min(i + TRACK_CHUNK_FRAMES, last + 1)].mean(axis=1)),
            width, bin_map)) for i in range(0, len(spectra), TRACK_CHUNK_FRAMES)]
    up.release()
    return np.concatenate(out)[:len(audio)]
