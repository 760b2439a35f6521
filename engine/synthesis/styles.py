"""The loaded styles: audio → log-magnitude → target statistics, in numbered slots.

A :class:`StyleLibrary` may be changed from any thread (GUI, CLI) while the engine plays: the slots
are an immutable tuple replaced whole on each add/remove, so the engine's once-per-block read is a
single atomic attribute load and never sees a half-made style. Loading and analysing a style (about
0.1-0.5 s for a few seconds of sound, ~30 s for 20 minutes) happens in the caller's thread, never in
the engine's.

Memory. A style keeps its log-magnitude spectrogram (float32, 177 kB per second at 22050 Hz). The
analysis around it is bounded: the file is read and mixed to mono in blocks
(:func:`engine.analysis.audio_io.load_audio`), the STFT is taken :data:`STFT_CHUNK_FRAMES` frames at a time
(:func:`engine.analysis.spectral.stft_frames`), and :func:`engine.analysis.targets.compute_target` runs the network in
pieces. Measured here on a 20-minute 44.1 kHz stereo 16-bit file (``StyleLibrary.add_file``): peak
memory 2.4 GB and 34 s when it was analysed whole, 0.69 GB and 17 s in pieces (0.28 GB of that is
the interpreter with torch; the rest is the mono signal while it is resampled, then the 212 MB
spectrogram the style keeps). Files longer than :data:`STYLE_MAX_SECONDS` are refused with one line
before they are read. Those figures are for the 22050 Hz mono engine; the full-band engine keeps a
spectrogram of twice the bins (354 kB per second at 44.1 kHz) and reads a stereo file's two channels
for its stereo image (:mod:`engine.analysis.stereo`), so both parts about double (not yet measured).
"""
from __future__ import annotations

import functools
import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from engine.analysis.audio_io import load_audio
from engine.analysis.default_style import DEFAULT_STYLE_NAME, default_style
from engine.errors import AudioFileError, TextureError
from engine.params import ParamStore
from engine.analysis.spectral import _check_audio, log_magnitude, stft_frames
from engine.synthesis.step_graph import BlockConfig
from engine.analysis.targets import StyleTarget, compute_target
from engine.analysis import trend as tr
from engine.analysis.stereo import StereoImage, aligned_mid, independent_image, stereo_image
from engine.analysis.partials import floor_quantiles, partial_bins
from engine.analysis.clicks import ClickTarget, click_target
from engine.analysis.levels import level_percentiles
from engine.analysis.envelope_rates import rate_movement

#: Longest style file accepted, in seconds (its spectrogram stays in memory: ~0.64 GB an hour).
STYLE_MAX_SECONDS = 3600.0
#: Frames of STFT computed at once while analysing a style (about 50 MB of temporaries).
STFT_CHUNK_FRAMES = 2048


@dataclass(frozen=True)
class Style:
    """One loaded style.

    Attributes
    ----------
    slot_id : int
        Stable id (blend weights and MIDI refer to it); slot order is load order.
    name : str
        File name, or the default style's name.
    path : str or None
        Source file (None for the embedded default).
    log_mag : np.ndarray [shape=(bins, frames)], float32
        log1p |STFT| at the engine rate.
    target : StyleTarget
        Statistics under the live network.
    spectrum_db : np.ndarray [shape=(bins,)]
        Mean power spectrum in dB (|STFT|² averaged over frames, and over the channels of a stereo
        style: what is heard, where the mid loses up to 3 dB in decorrelated bands), for pictures.
    coarse : np.ndarray [shape=(bands, frames // coarse_factor)], float32
        Its coarse band envelopes (:func:`engine.analysis.trend.coarse_envelopes`): the trend that
        :meth:`detrended` takes out.
    image : StereoImage
        Its per-band stereo image (:mod:`engine.analysis.stereo`); a mono style's is
        :func:`engine.analysis.stereo.independent_image`. Everything else is of a stereo style's mid
        (the channels' mean).
    channel_power : np.ndarray [shape=(bins,)], float64
        Mean |STFT|² per bin of each channel, averaged over the channels (of a mono style: its own), the
        power :mod:`engine.synthesis.spectral_balance` keeps each played channel at, whatever the width.
    partials : np.ndarray [shape=(bins,)], bool
        The bins of its steady partials (:func:`engine.analysis.partials.partial_bins`; none for noise).
    floor_quantiles : np.ndarray [shape=(levels,)] or None
        How quiet its spectrum is between them (:func:`engine.analysis.partials.floor_quantiles`;
        :mod:`engine.synthesis.partial_floor` keeps it); None without partials.
    clicks : ClickTarget or None
        Its clicks over a steady bed (:func:`engine.analysis.clicks.click_target`), which
        :mod:`engine.synthesis.click_layer` plays; None without. The engine's frames then leave their share
        of the power to them (:func:`engine.analysis.clicks.bed_gains`).
    levels : np.ndarray [shape=(bins, LEVELS)], float32
        Each bin's percentiles of :attr:`log_mag` (:func:`engine.analysis.levels.level_percentiles`), which
        :mod:`engine.synthesis.level_map` maps the committed frames to.
    rate_movement : np.ndarray [shape=(rates, bands)], float64
        Its band envelopes' movement per rate part (:func:`engine.analysis.envelope_rates.rate_movement`), which
        :mod:`engine.synthesis.rate_narrowing` narrows the played movement to.
    fine_rate_movement : np.ndarray [shape=(rates, fine_bands)], float64
        The same of its twelfth-octave bands (:meth:`engine.analysis.spectral.SpectralConfig.
        fine_envelope_map`), for the narrowing's second, finer stage.
    """

    slot_id: int
    name: str
    path: str | None
    log_mag: np.ndarray
    target: StyleTarget
    spectrum_db: np.ndarray
    coarse: np.ndarray
    image: StereoImage
    channel_power: np.ndarray
    partials: np.ndarray
    floor_quantiles: np.ndarray | None
    clicks: ClickTarget | None
    levels: np.ndarray
    rate_movement: np.ndarray
    fine_rate_movement: np.ndarray

    def detrended(self, start: int, stop: int, factor: int, spread_map: np.ndarray) -> np.ndarray:
        """Frames ``start:stop`` of :attr:`log_mag` without their trend (the live engine's residual
        domain, :func:`engine.analysis.trend.detrended`), ``(bins, stop − start)`` float32."""
        return tr.detrended(self.log_mag, self.coarse, factor, spread_map, start, stop)

    @functools.cached_property
    def upper(self) -> np.ndarray:
        """Per-bin ceiling for optimised frames (log1p units): the style's per-bin maximum + 3 dB (computed once:
        every blend change of a morph reads it)."""
        return np.log1p(np.sqrt(2.0) * np.expm1(self.log_mag.max(axis=1).astype(np.float64))).astype(np.float32)


class StyleLibrary:
    """Numbered style slots analysed for one :class:`BlockConfig` (see module doc)."""

    def __init__(self, config: BlockConfig) -> None:
        self.config = config
        self._network = config.build_network()
        self._fmap = config.spectral.feature_map()
        self._emap = config.spectral.envelope_map()
        self._fine_map = config.spectral.fine_envelope_map()
        self._ids = itertools.count()
        self._write_lock = threading.Lock()
        self.slots: tuple[Style, ...] = ()

    @property
    def min_samples(self) -> int:
        """Fewest samples a style needs: enough frames for the longest bank, the lags and one block."""
        frames = self._network.max_span + self.config.lags + self.config.window_frames + 2
        return frames * self.config.spectral.hop

    def add_audio(self, y: np.ndarray, name: str, path: str | None = None) -> Style:
        """Analyse audio at the engine rate, mono ``(samples,)`` or stereo ``(samples, 2)``, and append it
        as a new slot: the statistics of its mid (the channels' mean) and its stereo image."""
        spec = self.config.spectral
        y = np.asarray(y)
        if len(y) < self.min_samples:
            raise AudioFileError(path or name, f"is too short: needs at least {self.min_samples / spec.sample_rate:.2f} s")
        channel_power = alignment = None
        source = y
        if y.ndim == 2 and y.shape[1] == 2:
            mid = _check_audio(y.mean(axis=1))  # ParameterError for audio that is not float and finite
            image, channel_power, alignment = stereo_image(y, spec, self._emap)
            if np.all(alignment > 0):  # the plain mean, taken in time (one STFT, not two)
                y, alignment = mid, None
        else:
            image = independent_image(self._emap.shape[0])
        log_mag, mid_power = self._spectrogram(y, alignment)
        power = mid_power if channel_power is None else channel_power  # each channel's, averaged
        factor = self.config.coarse_factor
        bands = self._emap @ log_mag
        target = compute_target(log_mag, self._network, self._fmap, lags=self.config.lags, envelope_map=self._emap,
                                trend_factor=factor, band_envelopes=bands)
        coarse = tr.coarse_envelopes(bands, factor)
        partials = partial_bins(mid_power)
        clicks = click_target(source, sample_rate=spec.sample_rate)  # after the checks of the mid and its STFT
        with self._write_lock:
            style = Style(next(self._ids), name, path, log_mag, target, 10 * np.log10(power + 1e-10), coarse, image,
                          power, partials, floor_quantiles(log_mag, partials), clicks, level_percentiles(log_mag),
                          rate_movement(bands, spec.hop / spec.sample_rate),
                          rate_movement(self._fine_map @ log_mag, spec.hop / spec.sample_rate))
            self.slots = self.slots + (style,)
        return style

    def _spectrogram(self, y: np.ndarray, alignment: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """log1p |STFT| ``(bins, frames)`` float32 (frame-major, as :func:`engine.analysis.spectral.stft` lays it
        out) and the mean power per bin, computed :data:`STFT_CHUNK_FRAMES` frames at a time: of ``y`` mono
        ``(samples,)``, or of the aligned mid (:func:`engine.analysis.stereo.aligned_mid`) of ``y`` ``(samples, 2)``
        by ``alignment``."""
        spec = self.config.spectral
        channels = [y] if alignment is None else [y[:, 0], y[:, 1]]
        # ParameterError, as stft() gives, for audio that is not mono, float, finite
        channels = [_check_audio(c) for c in channels]
        n_frames = 1 + len(y) // spec.hop
        log_mag = np.empty((n_frames, spec.n_bins), dtype=np.float32).T
        power = np.zeros(spec.n_bins)
        for start in range(0, n_frames, STFT_CHUNK_FRAMES):
            spectra = [stft_frames(c, start, start + STFT_CHUNK_FRAMES, n_fft=spec.n_fft, hop=spec.hop) for c in channels]
            piece = log_magnitude(spectra[0] if alignment is None else aligned_mid(*spectra, alignment))
            log_mag[:, start:start + piece.shape[1]] = piece
            power += np.sum(np.expm1(piece.astype(np.float64)) ** 2, axis=1)
        return log_mag, power / n_frames

    def add_file(self, path: str | os.PathLike) -> Style:
        """Load a sound file (see :func:`engine.analysis.audio_io.load_audio` for the errors) and add it.

        Files longer than :data:`STYLE_MAX_SECONDS` are refused (AudioFileError) before they are read."""
        y = load_audio(path, sample_rate=self.config.spectral.sample_rate, min_samples=self.min_samples,
                       max_seconds=STYLE_MAX_SECONDS, channels=None)
        return self.add_audio(y, Path(path).name, str(path))

    def add_default(self) -> Style:
        """Add the embedded default style."""
        return self.add_audio(default_style(sample_rate=self.config.spectral.sample_rate), DEFAULT_STYLE_NAME)

    def remove(self, slot_id: int) -> None:
        """Remove a slot (no error if it is already gone)."""
        with self._write_lock:
            self.slots = tuple(s for s in self.slots if s.slot_id != slot_id)

    def ids(self) -> list[int]:
        """Slot ids in slot order."""
        return [s.slot_id for s in self.slots]


def load_library(config: BlockConfig, paths: Sequence[str], weights: Sequence[float] | None, params: ParamStore, *,
                 on_error: Callable[[TextureError], None] | None = None) -> StyleLibrary:
    """The styles of the files ``paths``, each with its blend weight ``weights[i]`` set in ``params``
    (none set when ``weights`` is None); the embedded default style when none loads.

    Loading takes the caller's thread (see the module doc). Raises the first file's TextureError
    (unreadable, too long, too short) unless ``on_error`` is given: then each such error goes to it
    and the other files still load (the window's way).
    """
    library = StyleLibrary(config)
    for i, path in enumerate(paths):
        try:
            style = library.add_file(path)
        except TextureError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        if weights is not None:
            params.set_blend(style.slot_id, weights[i])
    if not library.slots:
        library.add_default()
    return library
