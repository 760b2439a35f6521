"""Offline texture synthesis and style transfer (torch, L-BFGS over the whole spectrogram).

Texture synthesis (Ulyanov & Lebedev 2016; Antognini et al. 2019): a log-magnitude spectrogram of
the requested length starts as the blended styles' mean spectrum plus noise and is optimised with
L-BFGS so that its statistics under the chosen network match the blended target. Style transfer
(Verma & Smith 2018): the spectrogram starts from the content sound and minimises
``α Lc + β Ls + γ Le + δ Lt`` (:mod:`engine.synthesis.losses`). Phase comes from fast Griffin-Lim
(momentum 0.99). The optimised variable is ``u`` with ``s = |u|``, so magnitudes stay non-negative.

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
    """Audio (float32, engine rate), the optimised magnitude, and what the run measured."""

    audio: np.ndarray
    magnitude: np.ndarray
    final_loss: float
    loss_terms: dict
    spectral_convergence_db: float


def _analyse(audio: np.ndarray, spectral: SpectralConfig) -> np.ndarray:
    return log_magnitude(stft(np.asarray(audio, dtype=np.float64), n_fft=spectral.n_fft, hop=spectral.hop))


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
    sc = spectral_convergence_db(y, mag, hop=settings.spectral.hop)
    peak = float(np.max(np.abs(y)))
    if peak > 0.99:
        y = y * (0.99 / peak)
    return y.astype(np.float32), sc


def synthesize(styles: list[np.ndarray], *, seconds: float, blend_weights: list[float] | None = None,
               settings: OfflineSettings = OfflineSettings(),
               progress: Callable[[int, float], None] | None = None,
               phase_progress: Callable[[int], None] | None = None) -> OfflineResult:
    """Offline texture of ``seconds`` from one or more styles (mono audio at the engine rate).

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
    logs = [_analyse(y, settings.spectral) for y in styles]
    targets = [compute_target(s, network, fmap, lags=settings.lags) for s in logs]
    weights = blend_weights if blend_weights is not None else [1.0] * len(styles)
    target = blend(targets, weights)
    n_samples = int(round(seconds * settings.spectral.sample_rate))
    frames = n_samples // settings.spectral.hop + 1
    if frames < network.max_span + settings.lags + 1:
        raise ParameterError(f"seconds must be at least {(network.max_span + settings.lags + 1) * settings.spectral.frame_seconds:.2f}")
    rng = np.random.default_rng(settings.seed)
    mean = target.mean_spectrum.numpy()[:, None]
    init = np.abs(mean + 0.5 * mean.std() * rng.standard_normal((len(mean), frames))).astype(np.float32)
    log_mag, loss, terms = _optimise(init, target, network, settings, settings.weights, None, progress)
    audio, sc = _reconstruct(log_mag, settings, n_samples, phase_progress)
    return OfflineResult(audio, np.expm1(log_mag), loss, terms, sc)


def transfer(content: np.ndarray, style: np.ndarray, *, settings: OfflineSettings = OfflineSettings(weights=TRANSFER_WEIGHTS),
             progress: Callable[[int, float], None] | None = None,
             phase_progress: Callable[[int], None] | None = None) -> OfflineResult:
    """Style transfer: the content sound's structure with the style sound's statistics (same length as content)."""
    torch.manual_seed(settings.seed)
    network = settings.build_network()
    fmap = settings.spectral.feature_map()
    content_log = _analyse(content, settings.spectral)
    target = compute_target(_analyse(style, settings.spectral), network, fmap, lags=settings.lags)
    with torch.no_grad():
        content_feats = network(feature_input(torch.from_numpy(content_log), torch.from_numpy(fmap)))
    log_mag, loss, terms = _optimise(content_log, target, network, settings, settings.weights, content_feats, progress)
    audio, sc = _reconstruct(log_mag, settings, len(content), phase_progress)
    return OfflineResult(audio, np.expm1(log_mag), loss, terms, sc)
