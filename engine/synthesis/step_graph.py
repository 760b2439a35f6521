"""The block optimiser: K guarded Adam steps on the ``L`` in-flight log-magnitude frames.

One block's problem: a window of ``C`` committed context frames followed by ``L`` in-flight frames
(the rolling in-flight window of :mod:`engine.synthesis.block_synth`: frames enter it as shaped noise and leave it
``L / B`` blocks later), all ``(bins, ·)`` log1p magnitudes. Each step computes the statistics of the
whole window under the feature network (``BlockConfig.network``: the separate random conv banks
``random1d``, or the trained 1D classifier's stack of four layers ``trained1d``), and the band-envelope
statistics of ``H`` committed history frames plus the in-flight ones, and moves only the in-flight
frames towards the blended target.

Two implementations of the same step:

* :class:`AnalyticStep` — the gradient written out by hand (Gram, autocorrelation, mean spectrum,
  temporal-envelope moments, back through each layer's ReLU and a transposed convolution, from the
  deepest layer to the input). It uses only ops that export to ONNX, so it is the live graph. Tested
  equal to autograd.
* :func:`autograd_step` — the torch reference backend: the same loss from :mod:`engine.synthesis.losses`,
  differentiated by autograd.

Guards against the drift and divergence seen with plain Adam on Gram loss alone: non-finite
gradients and inputs are zeroed, Adam's update is bounded by the learning rate per step, and the frames are
clamped to ``[0, upper]`` (no negative magnitudes, no runaway peaks; ``upper`` is per-bin, from the
styles). The mean-spectrum term keeps first-order statistics from wandering.

Graph inputs (names fixed, float32): ``frames (bins, L)``, ``context (bins, C)``, ``adam_m``, ``adam_v``
(bins, L), ``step ()``, ``gram_i (F_i, F_i)`` and ``acorr_i (F_i, lags)`` per bank or layer ``i``,
``mean_spectrum (bins,)``, ``temporal (2,)``, ``flux ()``, ``env_history (bands, H)`` (band envelopes of
the last ``H`` committed frames), the five envelope targets ``env_mean``, ``env_std``,
``env_skewness`` ``(bands,)``, ``env_correlation (bands, bands)``, ``env_modulation (bands, lags)``,
``coarse``, ``coarse_m``, ``coarse_v`` ``(bands, Lc)`` (normalised trend and its Adam moments),
``coarse_history (bands, Hc)`` (normalised), the five coarse targets ``cenv_mean`` ... ``cenv_modulation``
``(bands, coarse lags)``, ``cenv_mask (coarse lags,)``, ``loss_weights (7,)`` = (style, spectral,
temporal, autocorr, seam, envelope, trend), ``bank_weights (n_layers,)``, ``lr ()``, ``upper (bins,)``.
Outputs: ``frames_out``, ``adam_m_out``, ``adam_v_out``, ``step_out``, ``loss ()`` (the loss before the
last step), ``coarse_out``, ``coarse_m_out``, ``coarse_v_out``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from engine.synthesis import losses
from engine.analysis import statistics as st
from engine.errors import ParameterError
from engine.analysis.spectral import SpectralConfig
from engine.analysis.targets import StyleTarget
from models import LIVE_NETWORKS, NETWORKS
from models.random_banks import BankSpec, ConvLayer, RandomBanks1D
from models.trained import Trained1DCNN, check_channels, conv1d_spans, load_trained, manifest_entry

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
#: Offset of the multiplicative step domain ``log(x + FLOOR)``, in log1p-magnitude units.
FLOOR = 0.1
#: Largest move of one element in one step, in units of the learning rate.
MAX_STEP = 2.0
EPS = 1e-12
#: The trend's step size over the frames' (``lr``): 0.15 normalised units a step at the default 0.3
#: (``docs/EXPERIMENTS.md`` section 9: 0.3 overshoots, 0.03 is too slow for seashore's swells;
#: section 17: keeping it at 0.1 when the frames' step went to 0.4 changed nothing beyond seed noise).
COARSE_LR_RATIO = 0.5
#: The normalised trend ``u`` stays within ``±COARSE_LIMIT`` spreads of the style's coarse band mean.
COARSE_LIMIT = 4.0
#: The live engine's random banks: spans of 5, 9, 17 and 33 frames (58 ms to 383 ms), 64 filters each.
#: 64 instead of the offline 256 (``models.random_banks.DEFAULT_BANKS``): the step is bound by the
#: number of graph nodes on a 2-core CPU, not by filters, yet 64 cost 40 % less than 128 with the
#: same texture figures (docs/EXPERIMENTS.md, section 8).
LIVE_BANKS: tuple[BankSpec, ...] = tuple(BankSpec(5, d, 64) for d in (1, 2, 4, 8))


def check_live_network(network: str) -> None:
    """ParameterError (one line) unless the live engine can run ``network`` (:data:`models.LIVE_NETWORKS`);
    callers that open a sound device first check before it."""
    if network not in LIVE_NETWORKS:
        if network in NETWORKS:
            raise ParameterError(f"network {network!r} is not available live: the streaming engine runs "
                                 f"{' or '.join(LIVE_NETWORKS)}; use render --offline (or transfer) for it")
        raise ParameterError(f"network must be one of {LIVE_NETWORKS}. Found: {network!r}")


@dataclass(frozen=True)
class BlockConfig:
    """Shape and settings of the block problem; everything the exported graph depends on.

    Parameters
    ----------
    context_frames : int
        ``C``, committed frames before the in-flight ones (at 11.6 ms a frame, 24 is 279 ms).
    block_frames : int
        ``B``, frames committed (and new noise frames taken in) each block (2 frames = 23 ms at
        22050 Hz / hop 256).
    inflight_frames : int
        ``L``, frames under optimisation at once (the in-flight frames); each frame gets
        ``steps · L / B`` optimiser steps before it is committed (``steps`` per block: the
        ``iterations`` parameter).
    history_frames : int
        ``H``, committed frames whose band envelopes the envelope statistics include (256 = 3 s).
    coarse_factor : int
        Frames per value of the slow trend (8 = 93 ms).
    coarse_inflight, coarse_history : int
        ``Lc`` trend values under optimisation (32 = 3 s ahead of the frames) and ``Hc`` committed ones
        its statistics include (96 = 8.9 s).
    steps_per_call : int
        ``K``, Adam steps one graph call performs; the engine calls it repeatedly for more.
    lags : int
        Autocorrelation lags in frames.
    banks, seed : the ``random1d`` banks (see :class:`models.random_banks.RandomBanks1D`), default
        :data:`LIVE_BANKS`, and the seed of their random weights: part of the exported graph, fixed
        for a run. Not ``--seed``, which sets the ``variation`` parameter: the seed of the noise new
        frames start from, which may change while playing.
    spectral : SpectralConfig
    network : {"random1d", "trained1d"}
        Feature network (:data:`models.LIVE_NETWORKS`): the random banks, or the committed trained 1D
        classifier (:class:`models.trained.Trained1DCNN`, the 513 linear bins only; ``banks`` and
        ``seed`` then play no part and ``banks`` must stay at its default).
    """

    context_frames: int = 24
    block_frames: int = 2
    inflight_frames: int = 24
    history_frames: int = 256
    coarse_factor: int = 8
    coarse_inflight: int = 32
    coarse_history: int = 96
    steps_per_call: int = 1
    lags: int = 8
    banks: tuple[BankSpec, ...] = LIVE_BANKS
    seed: int = 0
    spectral: SpectralConfig = field(default_factory=SpectralConfig)
    network: str = "random1d"

    def __post_init__(self) -> None:
        if self.block_frames < 1 or self.context_frames < 1 or self.steps_per_call < 1:
            raise ParameterError(f"block_frames, context_frames, steps_per_call must be >= 1. Found: {self}")
        if not self.block_frames <= self.inflight_frames:
            raise ParameterError(f"inflight_frames must be >= block_frames. Found: {self.inflight_frames} < "
                                 f"{self.block_frames}")
        if self.history_frames + self.inflight_frames <= max(st.ENVELOPE_LAGS):
            raise ParameterError(f"history_frames + inflight_frames must exceed the longest envelope lag "
                                 f"{max(st.ENVELOPE_LAGS)}. Found: {self.history_frames + self.inflight_frames}")
        if self.coarse_factor < 1 or self.coarse_inflight < 1 or \
                self.coarse_history + self.coarse_inflight <= max(st.COARSE_LAGS):
            raise ParameterError(f"coarse_factor and coarse_inflight must be >= 1 and coarse_history + coarse_inflight "
                                 f"exceed the longest coarse lag {max(st.COARSE_LAGS)}. Found: {self.coarse_factor}, "
                                 f"{self.coarse_inflight}, {self.coarse_history}")
        check_live_network(self.network)
        if self.network != "random1d":
            if self.banks != LIVE_BANKS:
                raise ParameterError(f"banks configure the random1d network only; leave them at the default "
                                     f"with {self.network}")
            check_channels(self.network, self.spectral.n_channels, manifest_entry(self.network)["config"]["in_channels"])
        window = self.window_frames
        longest = max(self.layer_spans)
        if window - longest < self.lags + 1:
            raise ParameterError(f"window of {window} frames is too short for {self.network}'s longest span of "
                                 f"{longest} frames and {self.lags} lags: needs {longest + self.lags + 1}")

    @property
    def window_frames(self) -> int:
        """``C + L``: the frames whose conv statistics one step computes."""
        return self.context_frames + self.inflight_frames

    @property
    def layer_spans(self) -> tuple[int, ...]:
        """Receptive field in frames of each feature layer (bank), short to long, without building the network."""
        if self.network == "random1d":
            return tuple(b.span for b in self.banks)
        cfg = manifest_entry(self.network)["config"]
        return conv1d_spans(cfg["width"], cfg["dilations"])

    @property
    def n_layers(self) -> int:
        """Feature layers (banks): one Gram and one autocorrelation target, one receptive-field weight each."""
        return len(self.layer_spans)

    def build_network(self) -> RandomBanks1D | Trained1DCNN:
        """The network this configuration names: the seeded random banks or the committed trained net."""
        if self.network == "random1d":
            return RandomBanks1D(self.spectral.n_channels, self.banks, self.seed)
        return load_trained(self.network)

    def describe(self) -> dict:
        """JSON-able description (the manifest's ``config``; its hash is the graph cache key)."""
        d = asdict(self)
        d["banks"] = [asdict(b) for b in self.banks]
        d["spectral"] = asdict(self.spectral)
        if self.network != "random1d":
            d["weights_sha256"] = manifest_entry(self.network)["sha256"]
        return d


#: Pseudo-CQT resolution of the live random banks' input: 98 channels instead of 513 linear bins.
LIVE_CQT_BINS_PER_OCTAVE = 12

#: The live engine's durations in milliseconds, the one place they are set: :func:`live_config` turns
#: them into frames at the rate's hop (11.6 ms at 22050 and 44100 Hz, where they give the frame counts
#: of :class:`BlockConfig`'s defaults; 10.7 ms at 48 kHz). ``coarse_period`` is the trend's step,
#: ``coarse_inflight`` and ``coarse_history`` are spans of trend values, ``lags`` the autocorrelation's
#: longest lag.
LIVE_DURATIONS_MS = {
    "context": 278.6, "block": 23.2, "inflight": 278.6, "history": 2972.2,
    "coarse_period": 92.9, "coarse_inflight": 2972.2, "coarse_history": 8916.6, "lags": 92.9,
}
#: Receptive fields of the live random banks in milliseconds, short to long (spans of 5, 9, 17 and 33
#: frames at 11.6 ms: :data:`LIVE_BANKS`); :func:`live_banks` sets their dilations for a hop.
LIVE_BANK_SPANS_MS = (58.0, 104.5, 197.4, 383.1)


def live_banks(frame_ms: float) -> tuple[BankSpec, ...]:
    """The live banks for frames ``frame_ms`` apart: :data:`LIVE_BANKS`' widths and filters, dilations
    that keep each bank's span in milliseconds (:data:`LIVE_BANK_SPANS_MS`) to within half a dilation step."""
    return tuple(BankSpec(b.width, max(1, round((span / frame_ms - 1) / (b.width - 1))), b.filters)
                 for b, span in zip(LIVE_BANKS, LIVE_BANK_SPANS_MS))


#: Lowest and highest rate of the full-band engine in Hz: it runs at the output's rate within them
#: (:func:`full_band_rate`).
FULL_BAND_RATES = (44100, 48000)
#: The rate the trained 1D classifier was trained at (its input is the 513 linear bins of a 1024-point STFT).
TRAINED_RATE = 22050


def full_band_rate(output_rate: int | None, *, network: str = "random1d") -> int:
    """The engine rate for an output at ``output_rate`` Hz (a device's rate, or the highest of the styles'
    rates for a render): that rate within :data:`FULL_BAND_RATES`, so the whole band up to its Nyquist is
    synthesised (a 96 kHz device gets 48 kHz and the output chain resamples; a 22.05 kHz style or an
    unknown rate gets 44.1 kHz, its empty top band being its timbre). ``trained1d`` runs at
    :data:`TRAINED_RATE`, the rate of its 513 input bins."""
    if network == "trained1d":
        return TRAINED_RATE
    lo, hi = FULL_BAND_RATES
    return min(hi, max(lo, int(output_rate or lo)))


def live_config(sample_rate: int = 22050, *, network: str = "random1d", frequency_axis: str | None = None) -> BlockConfig:
    """The live engine's block configuration at ``sample_rate`` Hz; ParameterError for a network the
    live engine cannot run.

    The STFT is about 46 ms long at every rate (:func:`engine.analysis.spectral.stft_sizes`), and every
    duration comes from :data:`LIVE_DURATIONS_MS` and :data:`LIVE_BANK_SPANS_MS`, so a texture at 44.1 or
    48 kHz has the same time scales as at 22050 Hz. The random banks see a 12-bins-per-octave pseudo-CQT
    by default (the trained net its 513 linear bins: 22050 Hz only).
    """
    axis = frequency_axis or ("cqt" if network == "random1d" else "linear")
    spectral = SpectralConfig(sample_rate=sample_rate, frequency_axis=axis, cqt_bins_per_octave=LIVE_CQT_BINS_PER_OCTAVE)
    ms = 1000.0 * spectral.frame_seconds

    def frames(name: str, unit: float = 1.0) -> int:
        return max(1, round(LIVE_DURATIONS_MS[name] / (ms * unit)))

    factor = frames("coarse_period")
    extra = {} if network != "random1d" else {"banks": live_banks(ms)}
    return BlockConfig(context_frames=frames("context"), block_frames=frames("block"), inflight_frames=frames("inflight"),
                       history_frames=frames("history"), coarse_factor=factor,
                       coarse_inflight=frames("coarse_inflight", factor), coarse_history=frames("coarse_history", factor),
                       lags=frames("lags"), spectral=spectral, network=network, **extra)


def receptive_field_weights(receptive_field: float, n_banks: int, *, width: float = 0.35) -> np.ndarray:
    """Per-bank weights for the 0..1 receptive-field control, ``(n_banks,)``, summing to ``n_banks``.

    Banks are ordered short to long span; bank ``i`` sits at position ``i / (n_banks - 1)`` and is
    weighted by a Gaussian of ``width`` around ``receptive_field``: 0 favours the shortest (grainy),
    1 the longest (structured), 0.5 weighs them about evenly.
    """
    if not 0.0 <= receptive_field <= 1.0:
        raise ParameterError(f"receptive field must be in [0, 1]. Found: {receptive_field}")
    pos = np.linspace(0.0, 1.0, n_banks) if n_banks > 1 else np.zeros(1)
    w = np.exp(-0.5 * ((pos - receptive_field) / width) ** 2)
    return (w * n_banks / w.sum()).astype(np.float32)


def finite(x: torch.Tensor) -> torch.Tensor:
    """``x`` with NaN/Inf replaced by 0 (the graph's input guard)."""
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def adam_update(x: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, step: torch.Tensor,
                lr: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One guarded Adam step: non-finite gradients zeroed, result clamped to ``[0, upper]``.

    The step is taken on ``z = log(x + FLOOR)`` (gradient ``g · (x + FLOOR)``), so updates are
    multiplicative: near-silent bins move little. Additive steps on ``x`` pile up against the
    clamp at 0 (only upward moves survive there) and lifted the corpus's quiet high bands by 9 dB.
    The second moment is the block's mean squared gradient (one value broadcast over ``v``), not per
    element, for the same reason: per-element Adam moves every bin by about ``lr`` whatever its
    gradient. No element of ``z`` moves more than ``MAX_STEP * lr`` per step, so a few large
    gradients (the seam) cannot overshoot.
    """
    g = finite(g) * (x + FLOOR)
    b1, b2 = ADAM_BETAS
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * (g * g).mean()
    step = (step + 1).reshape(())
    m_hat = m / (1 - b1 ** step)
    v_hat = v / (1 - b2 ** step)
    z = torch.log(x + FLOOR) - lr * torch.clamp(m_hat / (torch.sqrt(v_hat) + ADAM_EPS), -MAX_STEP, MAX_STEP)
    x = torch.minimum(torch.clamp(torch.exp(z) - FLOOR, min=0.0), upper.unsqueeze(1))
    return x, m, v, step


def coarse_adam(u: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, step: torch.Tensor,
                lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Adam step on the normalised trend ``u`` (per-element moments, additive: ``u`` is in spreads,
    so every band moves at the same rate whatever its level), bounded by ``MAX_STEP · lr`` and
    clamped to ``±COARSE_LIMIT``. ``step`` is the count after this step (shared with the frames)."""
    g = finite(g)
    b1, b2 = ADAM_BETAS
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat = m / (1 - b1 ** step)
    v_hat = v / (1 - b2 ** step)
    u = u - lr * torch.clamp(m_hat / (torch.sqrt(v_hat) + ADAM_EPS), -MAX_STEP, MAX_STEP)
    return torch.clamp(u, -COARSE_LIMIT, COARSE_LIMIT), m, v


def envelope_stats_gradient(e: torch.Tensor, n_new: int, target: list[torch.Tensor], weight: torch.Tensor,
                            lags: tuple[int, ...], mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight · Lv`` of envelopes ``e`` ``(bands, n)`` at ``lags`` (``mask`` weighting the modulation's
    lags), and its gradient with respect to the last ``n_new`` frames of ``e``.

    With ``z = (e − μ) / σ`` and ``g = ∂L/∂z`` (skewness, correlation, modulation terms), the
    gradient on the envelopes is ``(g − mean g − z mean(g z)) / σ`` plus the mean's ``∂L/∂μ / n`` (its group's
    and the barrier's, :func:`engine.synthesis.losses.mean_barrier`) and the spread's ``∂L/∂σ · z / n`` (the
    layer-norm backward).
    """
    n = e.shape[1]
    mu = e.mean(dim=1)
    c = e - mu.unsqueeze(1)
    sd = torch.sqrt((c * c).mean(dim=1) + st.ENVELOPE_VAR_FLOOR)
    z = c / sd.unsqueeze(1)
    mod = torch.stack([(z[:, :-lag] * z[:, lag:]).mean(dim=1) for lag in lags], dim=1)
    mod_target = target[4]
    if mask is not None:
        mod, mod_target = mod * mask, mod_target * mask
    stats = (mu, sd, (z * z * z).mean(dim=1), z @ z.T / n, mod)
    targets = (*target[:4], mod_target)
    groups = len(stats)
    loss = torch.zeros(())
    coefs = []
    for x, t, floor in zip(stats, targets, losses.ENVELOPE_FLOORS):
        norm = (t * t).sum() + t.numel() * floor ** 2 + EPS
        diff = x - t
        loss = loss + (diff * diff).sum() / norm
        coefs.append((2.0 * weight / (groups * norm)) * diff)  # ∂L/∂statistic
    # the mean's barrier (losses.mean_barrier), part of the mean's group
    deviation = (mu - target[0]) / target[1]
    excess = torch.relu(deviation.abs() - losses.MEAN_BARRIER_SPREADS)
    loss = loss + (excess * excess).mean()
    coefs[0] = coefs[0] + (2.0 * weight / (groups * e.shape[0])) * excess * torch.sign(deviation) / target[1]
    loss = weight * loss / groups
    d_mu, d_sd, d_skew, d_corr, d_mod = coefs
    if mask is not None:
        d_mod = d_mod * mask
    g = (3.0 / n) * d_skew.unsqueeze(1) * z * z + (2.0 / n) * (d_corr @ z)
    for i, lag in enumerate(lags):
        a = d_mod[:, i:i + 1] / (n - lag)
        g = g + torch.nn.functional.pad(a * z[:, lag:], (0, lag)) + torch.nn.functional.pad(a * z[:, :-lag], (lag, 0))
    d_e = (g - g.mean(dim=1, keepdim=True) - z * (g * z).mean(dim=1, keepdim=True)) / sd.unsqueeze(1)
    d_e = d_e + (d_mu / n).unsqueeze(1) + (d_sd / n).unsqueeze(1) * z
    return loss, d_e[:, n - n_new:]


class AnalyticStep(torch.nn.Module):
    """K Adam steps with the hand-written gradient; exportable to ONNX (see module doc for I/O).

    The network is a list of :class:`models.random_banks.ConvLayer` s (conv + bias + ReLU, BatchNorm
    folded in): the random banks are parallel layers that all read the input, the trained 1D net a
    stack where each reads the one before. Backward runs from the last layer to the first; each
    layer's gradient is its own Gram and autocorrelation terms plus what flows back from the layers
    reading it, masked by its ReLU and sent through the transposed convolution to its input.
    """

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.config = config
        self.layers: list[ConvLayer] = config.build_network().conv_layers()
        fmap = config.spectral.feature_map()
        self.identity_map = config.spectral.frequency_axis == "linear"
        self.fmap = torch.from_numpy(np.ascontiguousarray(fmap))
        self.emap = torch.from_numpy(np.ascontiguousarray(config.spectral.envelope_map()))

    def envelope_gradient(self, frames: torch.Tensor, history: torch.Tensor, target: list[torch.Tensor],
                          weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``η Lv`` (:func:`engine.synthesis.losses.envelope_loss`) of ``history`` ``(bands, H)`` followed by the band
        envelopes of ``frames`` ``(bins, L)``, and its gradient with respect to ``frames``."""
        e = torch.cat([history, self.emap @ frames], dim=1)
        loss, d_e = envelope_stats_gradient(e, frames.shape[1], target, weight, st.ENVELOPE_LAGS)
        return loss, self.emap.T @ d_e

    @staticmethod
    def coarse_gradient(coarse: torch.Tensor, history: torch.Tensor, target: list[torch.Tensor], mask: torch.Tensor,
                        weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``θ Lθ`` of the trend: normalised ``history`` ``(bands, Hc)`` then ``coarse`` ``(bands, Lc)``, as
        envelopes ``μ̂ + σ̂ u`` (target mean and spread), at the coarse lags; gradient w.r.t. ``coarse``."""
        mu, sd = target[0].unsqueeze(1), target[1].unsqueeze(1)
        e = mu + sd * torch.cat([history, coarse], dim=1)
        loss, d_e = envelope_stats_gradient(e, coarse.shape[1], target, weight, st.COARSE_LAGS, mask)
        return loss, sd * d_e

    @staticmethod
    def _stats_grad(a: torch.Tensor, gram_t: torch.Tensor, acorr_t: torch.Tensor, w_style: torch.Tensor,
                    w_acorr: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer's weighted Gram + autocorrelation loss, and its gradient with respect to the ReLU maps
        ``a`` at positions ``start:``."""
        n = a.shape[1]
        g = a @ a.T / n
        diff_g = g - gram_t
        norm_g = (gram_t * gram_t).sum() + EPS
        loss = w_style * (diff_g * diff_g).sum() / norm_g
        d_a = (4.0 * w_style / (norm_g * n)) * (diff_g @ a[:, start:])
        lags = int(acorr_t.shape[1])
        # All lags in two grouped convolutions, each channel with its own kernel (op overhead, not
        # arithmetic, bounds the step on 2-core CPUs; the gathers they replace were a fifth of it):
        # r[f, t] = sum_j a[f, j] a[f, j + t + 1] over the n - t - 1 valid pairs, and the gradient
        # d_r[f, j] = sum_t coef[f, t] (a[f, j + t + 1] + a[f, j - t - 1]), zero outside the window.
        channels, width = int(a.shape[0]), int(n)  # static sizes: the exporter needs a convolution's shapes
        ahead = torch.nn.functional.pad(a[:, 1:], (0, lags)).reshape(1, channels, width + lags - 1)
        r = torch.nn.functional.conv1d(ahead, a.reshape(channels, 1, width), groups=channels)[0]
        counts = torch.arange(n - 1, n - lags - 1, -1, dtype=a.dtype)
        r = r / counts
        diff_r = r - acorr_t
        norm_r = (acorr_t * acorr_t).sum() + EPS
        loss = loss + w_acorr * (diff_r * diff_r).sum() / norm_r
        coef = (2.0 * w_acorr / norm_r) * diff_r / counts
        kernel = torch.cat([coef.flip(1), torch.zeros_like(coef[:, :1]), coef], dim=1).reshape(channels, 1, 2 * lags + 1)
        padded = torch.nn.functional.pad(a, (lags, lags)).reshape(1, channels, width + 2 * lags)
        d_r = torch.nn.functional.conv1d(padded, kernel, groups=channels)[0]
        return loss, d_a + d_r[:, start:]

    def _features_grad(self, x: torch.Tensor, grams: list[torch.Tensor], acorrs: list[torch.Tensor],
                       w_style: torch.Tensor, w_acorr: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every layer's weighted Gram + autocorrelation loss, and its gradient with respect to the input
        ``x`` at frames ``start:``.

        Backward only touches the positions that reach those frames: layer ``i``'s from
        ``need[i] = max(0, need[source] − span_i + 1)`` on (``need[input] = start``). With the new
        frames last in the window that skips most of the short banks' positions (a third of the
        step's work at B = 2).
        """
        pre, acts, need = [], [], []
        for layer in self.layers:
            h = x if layer.source < 0 else acts[layer.source]
            z = torch.nn.functional.conv1d(h.unsqueeze(0), layer.weight, layer.bias, dilation=layer.dilation)[0]
            pre.append(z)
            acts.append(torch.relu(z))
            span = (layer.weight.shape[2] - 1) * layer.dilation + 1
            need.append(max(0, (start if layer.source < 0 else need[layer.source]) - span + 1))
        loss = torch.zeros(())
        d_x = torch.zeros_like(x[:, start:])
        d_acts: list[torch.Tensor | None] = [None] * len(self.layers)
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            l_i, d_a = self._stats_grad(acts[i], grams[i], acorrs[i], w_style[i], w_acorr[i], need[i])
            loss = loss + l_i
            if d_acts[i] is not None:
                d_a = d_a + d_acts[i]
            d_z = d_a * (pre[i][:, need[i]:] > 0).to(d_a.dtype)
            d_h = torch.nn.functional.conv_transpose1d(d_z.unsqueeze(0), layer.weight, dilation=layer.dilation)[0]
            # d_h covers the source's positions need[i]:, which start at or before the source's own need
            if layer.source < 0:
                d_x = d_x + d_h[:, start - need[i]:]
            else:
                src = layer.source
                d_h = d_h[:, need[src] - need[i]:]
                d_acts[src] = d_h if d_acts[src] is None else d_acts[src] + d_h
        return loss, d_x

    def gradient(self, s: torch.Tensor, grams: list[torch.Tensor], acorrs: list[torch.Tensor],
                 mean_spectrum: torch.Tensor, temporal: torch.Tensor, flux: torch.Tensor, loss_weights: torch.Tensor,
                 bank_weights: torch.Tensor, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and its gradient with respect to the window ``s`` ``(bins, C + B)`` at frames ``start:``."""
        w_style, w_spec, w_temp, w_acorr, w_seam = (loss_weights[0], loss_weights[1], loss_weights[2],
                                                    loss_weights[3], loss_weights[4])
        x = s if self.identity_map else self.fmap @ s
        loss, d_x = self._features_grad(x, grams, acorrs, w_style * bank_weights, w_acorr * bank_weights, start)
        d_s = d_x if self.identity_map else self.fmap.T @ d_x
        bins, frames = s.shape
        mu = s.mean(dim=1)
        diff_mu = mu - mean_spectrum
        norm_mu = (mean_spectrum * mean_spectrum).sum() + EPS
        loss = loss + w_spec * (diff_mu * diff_mu).sum() / norm_mu
        d_s = d_s + ((2.0 * w_spec / (norm_mu * frames)) * diff_mu).unsqueeze(1)
        e = s.mean(dim=0)
        m_e = e.mean()
        sd_e = torch.sqrt(((e - m_e) ** 2).mean() + 1e-12)
        norm_t = (temporal * temporal).sum() + EPS
        r0, r1 = m_e - temporal[0], sd_e - temporal[1]
        loss = loss + w_temp * (r0 * r0 + r1 * r1) / norm_t
        c = 2.0 * w_temp / norm_t
        d_e = c * (r0 / frames + r1 * (e - m_e) / (frames * sd_e))
        d_s = d_s + (d_e[start:] / bins).unsqueeze(0)
        c = self.config.context_frames
        if c:
            jump = s[:, c] - s[:, c - 1]
            excess = torch.relu((jump * jump).mean() - flux)
            norm_f = flux * flux + EPS
            loss = loss + w_seam * excess * excess / norm_f
            d_jump = (4.0 * w_seam * excess / (norm_f * bins)) * jump
            d_seam = torch.nn.functional.pad(d_jump.unsqueeze(1), (c, frames - c - 1)) \
                - torch.nn.functional.pad(d_jump.unsqueeze(1), (c - 1, frames - c))
            d_s = d_s + d_seam[:, start:]
        return loss, d_s

    def forward(self, frames, context, adam_m, adam_v, step, *rest):
        n, k = len(self.layers), len(st.ENVELOPE_KEYS)
        grams, acorrs = list(rest[:n]), list(rest[n:2 * n])
        mean_spectrum, temporal, flux, history = rest[2 * n:2 * n + 4]
        envelope = list(rest[2 * n + 4:2 * n + 4 + k])
        coarse, coarse_m, coarse_v, coarse_history = rest[2 * n + 4 + k:2 * n + 8 + k]
        coarse_target = list(rest[2 * n + 8 + k:2 * n + 8 + 2 * k])
        coarse_mask, loss_weights, bank_weights, lr, upper = rest[2 * n + 8 + 2 * k:]
        c = context.shape[1]
        frames, context, history = finite(frames), finite(context), finite(history)
        coarse, coarse_history = finite(coarse), finite(coarse_history)
        loss = torch.zeros(())
        for _ in range(self.config.steps_per_call):
            s = torch.cat([context, frames], dim=1)
            loss, d_s = self.gradient(s, grams, acorrs, mean_spectrum, temporal, flux, loss_weights, bank_weights, c)
            loss_v, d_v = self.envelope_gradient(frames, history, envelope, loss_weights[5])
            loss_c, d_c = self.coarse_gradient(coarse, coarse_history, coarse_target, coarse_mask, loss_weights[6])
            loss = loss + loss_v + loss_c
            frames, adam_m, adam_v, step = adam_update(frames, d_s + d_v, adam_m, adam_v, step, lr, upper)
            coarse, coarse_m, coarse_v = coarse_adam(coarse, d_c, coarse_m, coarse_v, step, COARSE_LR_RATIO * lr)
        return frames, adam_m, adam_v, step, loss, coarse, coarse_m, coarse_v


def graph_input_names(n_layers: int) -> list[str]:
    """Input names of the step graph, in order."""
    return (["frames", "context", "adam_m", "adam_v", "step"] + [f"gram_{i}" for i in range(n_layers)]
            + [f"acorr_{i}" for i in range(n_layers)]
            + ["mean_spectrum", "temporal", "flux", "env_history"] + [f"env_{k}" for k in st.ENVELOPE_KEYS]
            + ["coarse", "coarse_m", "coarse_v", "coarse_history"] + [f"cenv_{k}" for k in st.ENVELOPE_KEYS]
            + ["cenv_mask", "loss_weights", "bank_weights", "lr", "upper"])


GRAPH_OUTPUT_NAMES = ["frames_out", "adam_m_out", "adam_v_out", "step_out", "loss", "coarse_out", "coarse_m_out",
                      "coarse_v_out"]


@dataclass
class TrendState:
    """The trend's part of the step graph's state, float32: normalised in-flight values ``coarse`` and
    their Adam moments ``m``, ``v`` ``(bands, Lc)``, and the normalised committed ``history`` ``(bands, Hc)``."""

    coarse: np.ndarray
    m: np.ndarray
    v: np.ndarray
    history: np.ndarray


def target_inputs(target: StyleTarget, loss_weights: np.ndarray) -> dict[str, np.ndarray]:
    """The step graph's target part of the feed from a (blended) live target (with envelope and coarse
    statistics, :func:`engine.analysis.targets.compute_target` with ``trend_factor``) and the loss
    weights; the engine makes it once per blend, not once per block."""
    feed = {}
    for i, (g, r) in enumerate(zip(target.grams, target.autocorr)):
        feed[f"gram_{i}"], feed[f"acorr_{i}"] = g.numpy(), r.numpy()
    feed.update(mean_spectrum=target.mean_spectrum.numpy(), temporal=target.temporal.numpy(), flux=target.flux.numpy())
    for key, env, coarse in zip(st.ENVELOPE_KEYS, target.envelope, target.coarse):
        feed[f"env_{key}"], feed[f"cenv_{key}"] = env.numpy(), coarse.numpy()
    feed.update(cenv_mask=target.coarse_mask.numpy(), loss_weights=loss_weights)
    return {k: np.asarray(v, dtype=np.float32, order="C") for k, v in feed.items()}


def graph_inputs(frames: np.ndarray, context: np.ndarray, adam_m: np.ndarray, adam_v: np.ndarray, step: float,
                 targets: dict[str, np.ndarray], bank_weights: np.ndarray, lr: float, upper: np.ndarray,
                 env_history: np.ndarray, trend: TrendState) -> dict[str, np.ndarray]:
    """The feed dictionary of the step graph from numpy state and :func:`target_inputs` (whose arrays
    are passed on as they are, so a stepper can keep them bound)."""
    state = {"frames": frames, "context": context, "adam_m": adam_m, "adam_v": adam_v, "step": step,
             "env_history": env_history, "coarse": trend.coarse, "coarse_m": trend.m, "coarse_v": trend.v,
             "coarse_history": trend.history, "bank_weights": bank_weights, "lr": lr, "upper": upper}
    return {**targets, **{k: np.asarray(v, dtype=np.float32, order="C") for k, v in state.items()}}


def example_inputs(config: BlockConfig, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Plausible random inputs of the right shapes (export tracing, tests, benchmarks)."""
    rng = rng or np.random.default_rng(0)
    from engine.analysis.targets import compute_target
    bins = config.spectral.n_bins
    emap = config.spectral.envelope_map()
    length = max(4 * config.window_frames + config.history_frames, 64 * config.coarse_factor)
    style = rng.gamma(2.0, 0.5, size=(bins, length)).astype(np.float32)
    target = compute_target(style, config.build_network(), config.spectral.feature_map(), lags=config.lags,
                            envelope_map=emap, trend_factor=config.coarse_factor)
    n, bands = config.inflight_frames, emap.shape[0]
    zeros = np.zeros((bins, n), np.float32)
    cz = np.zeros((bands, config.coarse_inflight), np.float32)
    trend = TrendState(rng.standard_normal(cz.shape).astype(np.float32), cz, cz,
                       rng.standard_normal((bands, config.coarse_history)).astype(np.float32))
    targets = target_inputs(target, np.array([1.0, 1.0, 0.1, 0.3, 1.0, 1.0, 1.0]))
    return graph_inputs(style[:, -n:], style[:, :config.context_frames], zeros, zeros, 0.0, targets,
                        receptive_field_weights(0.5, config.n_layers), 0.05, style.max(axis=1) * 1.5,
                        emap @ style[:, -n - config.history_frames:-n], trend)


def autograd_step(config: BlockConfig, network: torch.nn.Module, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The torch reference backend: the same K steps as the graph, gradient by autograd.

    ``feed`` and the result use the graph's input and output names.
    """
    t = {k: torch.from_numpy(v) for k, v in feed.items()}
    n = config.n_layers
    target = StyleTarget([t[f"gram_{i}"] for i in range(n)], [t[f"acorr_{i}"] for i in range(n)],
                         t["mean_spectrum"], t["temporal"], t["flux"],
                         envelope=[t[f"env_{k}"] for k in st.ENVELOPE_KEYS],
                         coarse=[t[f"cenv_{k}"] for k in st.ENVELOPE_KEYS], coarse_mask=t["cenv_mask"])
    lw = t["loss_weights"].tolist()
    weights = losses.LossWeights(style=lw[0], spectral=lw[1], temporal=lw[2], autocorr=lw[3], seam=lw[4])
    fmap = torch.from_numpy(np.ascontiguousarray(config.spectral.feature_map()))
    emap = torch.from_numpy(np.ascontiguousarray(config.spectral.envelope_map()))
    history, coarse_history = finite(t["env_history"]), finite(t["coarse_history"])
    frames, m, v, step = finite(t["frames"]), t["adam_m"], t["adam_v"], t["step"]
    coarse, cm, cv = finite(t["coarse"]), t["coarse_m"], t["coarse_v"]
    mu, sd = target.coarse[0].unsqueeze(1), target.coarse[1].unsqueeze(1)
    context = finite(t["context"])
    loss = torch.zeros(())
    for _ in range(config.steps_per_call):
        x = frames.clone().requires_grad_(True)
        u = coarse.clone().requires_grad_(True)
        loss, _ = losses.total_loss(torch.cat([context, x], dim=1), network, fmap, target, weights,
                                    t["bank_weights"], seam_at=config.context_frames)
        loss = loss + lw[5] * losses.envelope_loss(torch.cat([history, emap @ x], dim=1), target.envelope)
        loss = loss + lw[6] * losses.envelope_loss(mu + sd * torch.cat([coarse_history, u], dim=1), target.coarse,
                                                   st.COARSE_LAGS, target.coarse_mask)
        g, g_u = torch.autograd.grad(loss, (x, u))
        with torch.no_grad():
            frames, m, v, step = adam_update(frames, g, m, v, step, t["lr"], t["upper"])
            coarse, cm, cv = coarse_adam(coarse, g_u, cm, cv, step, COARSE_LR_RATIO * t["lr"])
    return {"frames_out": frames.numpy(), "adam_m_out": m.numpy(), "adam_v_out": v.numpy(),
            "step_out": step.numpy(), "loss": loss.detach().numpy(), "coarse_out": coarse.numpy(),
            "coarse_m_out": cm.numpy(), "coarse_v_out": cv.numpy()}
