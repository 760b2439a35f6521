"""Offline texture synthesis and style transfer (torch, L-BFGS over the whole spectrogram).

Texture synthesis (Ulyanov & Lebedev 2016; Antognini et al. 2019): a log-magnitude spectrogram of
the requested length starts as the blended styles' mean spectrum plus noise and is optimised with
L-BFGS so that its statistics under the chosen network match the blended target. Style transfer
(Verma & Smith 2018): the spectrogram starts from the content sound and minimises
``α Lc + β Ls + γ Le + δ Lt`` (:mod:`engine.synthesis.losses`). Phase comes from fast Griffin-Lim
(momentum 0.99). The optimised variable is ``u`` with ``s = |u|``, so magnitudes stay non-negative.

Stereo as in the stream (:mod:`engine.synthesis.stereo`): one texture is synthesised of the styles' mids (a stereo
style's aligned channel mean, :func:`engine.analysis.stereo.aligned_mid`), and its two channels are made after the
phase with the blended styles' stereo image at a ``width`` (:func:`engine.synthesis.stereo.upmix`). A transfer keeps
its content's channels: a stereo content gives two with the content's image, each band's level difference following
the content's over :data:`engine.analysis.stereo.TRACK_SECONDS` (a source that moves across moves), a mono content one.

Networks: ``random1d`` (separate random 1D banks, :data:`OFFLINE_BANKS`), ``random2d`` (image-style
3x3 CNN), ``trained2d`` / ``trained1d`` (classifiers trained on General MIDI notes, models/trained.py). Frequency axis: linear bins or pseudo-CQT (``SpectralConfig.frequency_axis``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from engine.synthesis import losses
from engine.errors import ParameterError
from engine.synthesis.phase import fast_griffin_lim
from engine.analysis.spectral import SpectralConfig, log_magnitude, spectral_convergence_db, stft
from engine.analysis.stereo import (StereoImage, aligned_mid, blend_images, independent_image, level_difference_track,
                                    stereo_image)
from engine.synthesis.stereo import STEREO, upmix
from engine.synthesis.step_graph import receptive_field_weights
from engine.analysis.targets import StyleTarget, blend, compute_target, feature_input
from models import NETWORKS
from models.random_banks import BankSpec, Random2DCNN, RandomBanks1D

#: Offline banks, short to long: spans of 5, 9, 17, 33 and 65 frames (58 ms to 755 ms).
OFFLINE_BANKS: tuple[BankSpec, ...] = tuple(BankSpec(5, d, 256) for d in (1, 2, 4, 8, 16))
#: Transfer defaults (α, β, γ, δ): content, style, spectral and temporal envelope.
TRANSFER_WEIGHTS = losses.LossWeights(content=1.0, style=1.0, spectral=0.5, temporal=0.1, autocorr=0.0)


@dataclass(frozen=True)
class OfflineSettings:
    """Settings of an offline run.

    Parameters
    ----------
    network : {"random1d", "random2d", "trained2d", "trained1d"}
    lbfgs_iterations : int
        L-BFGS iterations (each one or more loss evaluations; ``--iterations`` offline).
    griffin_lim_iterations : int
        Fast Griffin-Lim iterations for the phase.
    receptive_field : float in [0, 1]
        Weights the banks short (0) to long (1).
    lags : int
        Autocorrelation lags in frames.
    seed : int
        Seeds the networks' weights and the initial spectrogram and phase.
    weights : LossWeights
    spectral : SpectralConfig
    """

    network: str = "random1d"
    lbfgs_iterations: int = 200
    griffin_lim_iterations: int = 100
    receptive_field: float = 0.5
    lags: int = 16
    seed: int = 0
    weights: losses.LossWeights = field(default_factory=losses.LossWeights)
    spectral: SpectralConfig = field(default_factory=SpectralConfig)

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ParameterError(f"network must be one of {NETWORKS}. Found: {self.network!r}")
        if self.lbfgs_iterations < 1 or self.griffin_lim_iterations < 1:
            raise ParameterError(f"L-BFGS and Griffin-Lim iterations must be >= 1. Found: {self.lbfgs_iterations}, "
                                 f"{self.griffin_lim_iterations}")

    def build_network(self) -> torch.nn.Module:
        """The network these settings name (seeded)."""
        if self.network == "random2d":
            return Random2DCNN(seed=self.seed)
        if self.network in ("trained2d", "trained1d"):
            from models.trained import check_channels, load_trained
            if self.network == "trained1d":
                check_channels(self.network, self.spectral.n_channels)
            return load_trained(self.network)
        return RandomBanks1D(self.spectral.n_channels, OFFLINE_BANKS, self.seed)

    def bank_weights(self, network: torch.nn.Module) -> torch.Tensor:
        """Per-bank (or per-layer) weights from the receptive-field setting."""
        n = len(network.weights)
        return torch.from_numpy(receptive_field_weights(self.receptive_field, n))


@dataclass(frozen=True)
class OfflineResult:
    """Audio (float32, engine rate; ``(n,)`` mono or ``(n, 2)`` stereo), the optimised magnitude (of the mid), and
    what the run measured."""

    audio: np.ndarray
    magnitude: np.ndarray
    final_loss: float
    loss_terms: dict
    spectral_convergence_db: float


def _analyse(audio: np.ndarray, spectral: SpectralConfig) -> tuple[np.ndarray, StereoImage | None]:
    """log1p |STFT| ``(bins, frames)`` of ``audio``'s mid and its stereo image: ``audio`` mono ``(n,)`` (image
    None) or stereo ``(n, 2)`` (its aligned mid, as the stream analyses a style)."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 2 and audio.shape[1] == STEREO:
        image, _, alignment = stereo_image(audio, spectral, spectral.envelope_map())
        left, right = (stft(audio[:, c], n_fft=spectral.n_fft, hop=spectral.hop) for c in range(STEREO))
        return log_magnitude(aligned_mid(left, right, alignment)), image
    return log_magnitude(stft(audio, n_fft=spectral.n_fft, hop=spectral.hop)), None


def _channels(audio: np.ndarray, image: StereoImage | None, width: float, settings: OfflineSettings,
              level_difference_db: np.ndarray | None = None) -> np.ndarray:
    """The mono phase output ``audio`` as it is (``image`` None) or its two channels with ``image`` at ``width``
    (and its level difference following ``level_difference_db``, see :func:`engine.synthesis.stereo.upmix`),
    scaled to peak at 0.99 at most."""
    if image is not None:
        spec = settings.spectral
        audio = upmix(audio, image, width, n_fft=spec.n_fft, hop=spec.hop, sample_rate=spec.sample_rate,
                      envelope_map=spec.envelope_map(), seed=settings.seed, level_difference_db=level_difference_db)
    peak = float(np.max(np.abs(audio)))
    return (audio * (0.99 / peak) if peak > 0.99 else audio).astype(np.float32)


def _optimise(init: np.ndarray, target: StyleTarget, network: torch.nn.Module, settings: OfflineSettings,
              weights: losses.LossWeights, content_feats: list[torch.Tensor] | None,
              progress: Callable[[int, float], None] | None) -> tuple[np.ndarray, float, dict]:
    fmap = torch.from_numpy(settings.spectral.feature_map())
    bank_w = settings.bank_weights(network)
    u = torch.tensor(np.ascontiguousarray(init), dtype=torch.float32, requires_grad=True)
    inner = 10
    opt = torch.optim.LBFGS([u], lr=1.0, max_iter=inner, history_size=20, line_search_fn="strong_wolfe")
    state = {"loss": float("nan"), "terms": {}}

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss, terms = losses.total_loss(torch.abs(u), network, fmap, target, weights, bank_w, content_feats)
        loss.backward()
        state["loss"], state["terms"] = float(loss.detach()), terms
        if progress:  # every evaluation, so a caller that stops from here stops within one
            progress(min(settings.lbfgs_iterations, max(done, opt.state[u].get("n_iter", 0))), state["loss"])
        return loss

    done = 0
    while done < settings.lbfgs_iterations:
        opt.step(closure)
        done = min(settings.lbfgs_iterations, done + inner)
        if not np.isfinite(state["loss"]):
            raise ParameterError("optimisation diverged (non-finite loss); try other weights")
        if progress:
            progress(done, state["loss"])
    return torch.abs(u).detach().numpy(), state["loss"], state["terms"]


def _reconstruct(log_mag: np.ndarray, settings: OfflineSettings, n_samples: int,
                 progress: Callable[[int], None] | None) -> tuple[np.ndarray, float]:
    mag = np.expm1(log_mag.astype(np.float64))
    y = fast_griffin_lim(mag, hop=settings.spectral.hop, n_iter=settings.griffin_lim_iterations, momentum=0.99,
                         rng=np.random.default_rng(settings.seed), length=n_samples, progress=progress)
    return y, spectral_convergence_db(y, mag, hop=settings.spectral.hop)


def synthesize(styles: list[np.ndarray], *, seconds: float, blend_weights: list[float] | None = None,
               settings: OfflineSettings = OfflineSettings(), channels: int = STEREO, width: float = 1.0,
               progress: Callable[[int, float], None] | None = None,
               phase_progress: Callable[[int], None] | None = None) -> OfflineResult:
    """Offline texture of ``seconds`` from one or more styles (audio at the engine rate, each mono ``(n,)`` or
    stereo ``(n, 2)``): ``channels`` 2 gives two channels with the blended styles' stereo image at ``width`` in
    [0, 1] (0 = mono, 1 = the styles' image, independent channels for a mono style), 1 the mono texture.

    ``progress(iterations_done, loss)`` is called after every loss evaluation and ``phase_progress(i)``
    after every Griffin-Lim iteration; an exception either raises (KeyboardInterrupt, say) ends the
    run there and propagates.

    Raises
    ------
    ParameterError
        Bad settings, too-short duration or styles, divergence.
    """
    if not np.isfinite(seconds) or seconds <= 0:
        raise ParameterError(f"seconds must be > 0. Found: {seconds}")
    torch.manual_seed(settings.seed)
    network = settings.build_network()
    fmap = settings.spectral.feature_map()
    if channels not in (1, STEREO) or not 0.0 <= width <= 1.0:
        raise ParameterError(f"channels must be 1 or 2 and width in [0, 1]. Found: {channels!r}, {width!r}")
    analysed = [_analyse(y, settings.spectral) for y in styles]
    targets = [compute_target(s, network, fmap, lags=settings.lags) for s, _ in analysed]
    weights = blend_weights if blend_weights is not None else [1.0] * len(styles)
    target = blend(targets, weights)
    bands = settings.spectral.envelope_map().shape[0]
    share = np.asarray(weights, dtype=np.float64) / max(float(np.sum(weights)), 1e-12)
    image = blend_images([independent_image(bands) if im is None else im for _, im in analysed], share) \
        if channels == STEREO else None
    n_samples = int(round(seconds * settings.spectral.sample_rate))
    frames = n_samples // settings.spectral.hop + 1
    if frames < network.max_span + settings.lags + 1:
        raise ParameterError(f"seconds must be at least {(network.max_span + settings.lags + 1) * settings.spectral.frame_seconds:.2f}")
    rng = np.random.default_rng(settings.seed)
    mean = target.mean_spectrum.numpy()[:, None]
    init = np.abs(mean + 0.5 * mean.std() * rng.standard_normal((len(mean), frames))).astype(np.float32)
    log_mag, loss, terms = _optimise(init, target, network, settings, settings.weights, None, progress)
    audio, sc = _reconstruct(log_mag, settings, n_samples, phase_progress)
    return OfflineResult(_channels(audio, image, width, settings), np.expm1(log_mag), loss, terms, sc)


def transfer(content: np.ndarray, style: np.ndarray, *, settings: OfflineSettings = OfflineSettings(weights=TRANSFER_WEIGHTS),
             progress: Callable[[int, float], None] | None = None,
             phase_progress: Callable[[int], None] | None = None) -> OfflineResult:
    """Style transfer: the content sound's structure with the style sound's statistics, as long as the content
    and with its channels (each sound mono ``(n,)`` or stereo ``(n, 2)``; a stereo content's image is kept, its level
    differences moving as the content's, a stereo style's mid is its statistics' source)."""
    torch.manual_seed(settings.seed)
    network = settings.build_network()
    fmap = settings.spectral.feature_map()
    content_log, image = _analyse(content, settings.spectral)
    target = compute_target(_analyse(style, settings.spectral)[0], network, fmap, lags=settings.lags)
    with torch.no_grad():
        content_feats = network(feature_input(torch.from_numpy(content_log), torch.from_numpy(fmap)))
    log_mag, loss, terms = _optimise(content_log, target, network, settings, settings.weights, content_feats, progress)
    audio, sc = _reconstruct(log_mag, settings, len(content), phase_progress)
    track = None if image is None else level_difference_track(content, settings.spectral, settings.spectral.envelope_map())
    return OfflineResult(_channels(audio, image, 1.0, settings, track), np.expm1(log_mag), loss, terms, sc)
