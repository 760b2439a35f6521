"""The block optimiser: K guarded Adam steps on the newest B log-magnitude frames.

One block's problem: a window of ``C`` fixed context frames followed by ``B`` new frames, all
``(bins, ·)`` log1p magnitudes. Each step computes the statistics of the whole window under the
random conv banks and moves only the new frames towards the blended target.

Two implementations of the same step:

* :class:`AnalyticStep` — the gradient written out by hand (Gram, autocorrelation, mean spectrum,
  temporal-envelope moments, back through ReLU and a transposed convolution). It uses only ops that
  export to ONNX, so it is the live graph. Tested equal to autograd.
* :func:`autograd_step` — the torch reference backend: the same loss from :mod:`engine.losses`,
  differentiated by autograd.

Guards against the drift and divergence seen with plain Adam on Gram loss alone: non-finite
gradients and inputs are zeroed, Adam's update is bounded by the learning rate per step, and the frames are
clamped to ``[0, upper]`` (no negative magnitudes, no runaway peaks; ``upper`` is per-bin, from the
styles). The mean-spectrum term keeps first-order statistics from wandering.

Graph inputs (names fixed, float32): ``frames (bins, B)``, ``context (bins, C)``, ``adam_m``, ``adam_v``
(bins, B), ``step ()``, ``gram_i (F_i, F_i)`` and ``acorr_i (F_i, lags)`` per bank ``i``,
``mean_spectrum (bins,)``, ``temporal (2,)``, ``flux ()``, ``loss_weights (5,)`` = (style, spectral,
temporal, autocorr, seam), ``bank_weights (n_banks,)``, ``lr ()``, ``upper (bins,)``. Outputs: ``frames_out``,
``adam_m_out``, ``adam_v_out``, ``step_out``, ``loss ()`` (the loss before the last step).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from engine import losses
from engine.errors import ParameterError
from engine.spectral import SpectralConfig
from engine.targets import StyleTarget
from models.random_banks import DEFAULT_BANKS, BankSpec, RandomBanks1D

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
#: Offset of the multiplicative step domain ``log(x + FLOOR)``, in log1p-magnitude units.
FLOOR = 0.1
#: Largest move of one element in one step, in units of the learning rate.
MAX_STEP = 2.0
EPS = 1e-12


@dataclass(frozen=True)
class BlockConfig:
    """Shape and settings of the block problem; everything the exported graph depends on.

    Parameters
    ----------
    context_frames : int
        ``C``, fixed frames before the new ones (at 11.6 ms a frame, 40 is 464 ms).
    block_frames : int
        ``B``, new frames each block (8 frames = 93 ms at 22050 Hz / hop 256).
    steps_per_call : int
        ``K``, Adam steps one graph call performs; the engine calls it repeatedly for more.
    lags : int
        Autocorrelation lags in frames.
    banks, seed : network specification (see :class:`models.random_banks.RandomBanks1D`).
    spectral : SpectralConfig
    """

    context_frames: int = 40
    block_frames: int = 8
    steps_per_call: int = 1
    lags: int = 8
    banks: tuple[BankSpec, ...] = DEFAULT_BANKS
    seed: int = 0
    spectral: SpectralConfig = field(default_factory=SpectralConfig)

    def __post_init__(self) -> None:
        if self.block_frames < 1 or self.context_frames < 0 or self.steps_per_call < 1:
            raise ParameterError(f"block_frames, steps_per_call must be >= 1 and context_frames >= 0. Found: {self}")
        window = self.context_frames + self.block_frames
        longest = max(b.span for b in self.banks)
        if window - longest < self.lags + 1:
            raise ParameterError(
                f"window of {window} frames is too short for a bank span of {longest} and {self.lags} lags")

    @property
    def window_frames(self) -> int:
        """``C + B``."""
        return self.context_frames + self.block_frames

    def network(self) -> RandomBanks1D:
        """The random banks this configuration names."""
        return RandomBanks1D(self.spectral.n_channels, self.banks, self.seed)

    def describe(self) -> dict:
        """JSON-able description (the manifest's ``config``)."""
        d = asdict(self)
        d["banks"] = [asdict(b) for b in self.banks]
        d["spectral"] = asdict(self.spectral)
        return d


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


class AnalyticStep(torch.nn.Module):
    """K Adam steps with the hand-written gradient; exportable to ONNX (see module doc for I/O)."""

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.config = config
        net = config.network()
        self.weights = [w.detach().clone() for w in net.weights]
        self.dilations = [s.dilation for s in config.banks]
        fmap = config.spectral.feature_map()
        self.identity_map = config.spectral.frequency_axis == "linear"
        self.fmap = torch.from_numpy(np.ascontiguousarray(fmap))

    def _bank_grad(self, x: torch.Tensor, w: torch.Tensor, dilation: int, gram_t: torch.Tensor,
                   acorr_t: torch.Tensor, w_style: torch.Tensor, w_acorr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.nn.functional.conv1d(x.unsqueeze(0), w, dilation=dilation)[0]
        a = torch.relu(z)
        n = a.shape[1]
        g = a @ a.T / n
        diff_g = g - gram_t
        norm_g = (gram_t * gram_t).sum() + EPS
        loss = w_style * (diff_g * diff_g).sum() / norm_g
        d_a = (4.0 * w_style / (norm_g * n)) * (diff_g @ a)
        lags = acorr_t.shape[1]
        r_cols, d_cols = [], []
        for t in range(1, lags + 1):
            r_cols.append((a[:, :-t] * a[:, t:]).sum(dim=1) / (n - t))
        r = torch.stack(r_cols, dim=1)
        diff_r = r - acorr_t
        norm_r = (acorr_t * acorr_t).sum() + EPS
        loss = loss + w_acorr * (diff_r * diff_r).sum() / norm_r
        coef = (2.0 * w_acorr / norm_r) * diff_r
        for t in range(1, lags + 1):
            c = coef[:, t - 1:t] / (n - t)
            d_cols.append(torch.nn.functional.pad(c * a[:, t:], (0, t)) + torch.nn.functional.pad(c * a[:, :-t], (t, 0)))
        d_a = d_a + sum(d_cols)
        d_z = d_a * (z > 0).to(d_a.dtype)
        d_x = torch.nn.functional.conv_transpose1d(d_z.unsqueeze(0), w, dilation=dilation)[0]
        return loss, d_x

    def gradient(self, s: torch.Tensor, grams: list[torch.Tensor], acorrs: list[torch.Tensor],
                 mean_spectrum: torch.Tensor, temporal: torch.Tensor, flux: torch.Tensor, loss_weights: torch.Tensor,
                 bank_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and its gradient with respect to the whole window ``s`` ``(bins, C + B)``."""
        w_style, w_spec, w_temp, w_acorr, w_seam = (loss_weights[0], loss_weights[1], loss_weights[2],
                                                    loss_weights[3], loss_weights[4])
        x = s if self.identity_map else self.fmap @ s
        loss = torch.zeros(())
        d_x = torch.zeros_like(x)
        for i, (w, dil) in enumerate(zip(self.weights, self.dilations)):
            l_b, d_b = self._bank_grad(x, w, dil, grams[i], acorrs[i], w_style * bank_weights[i], w_acorr * bank_weights[i])
            loss = loss + l_b
            d_x = d_x + d_b
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
        d_s = d_s + (d_e / bins).unsqueeze(0)
        c = self.config.context_frames
        if c:
            jump = s[:, c] - s[:, c - 1]
            excess = torch.relu((jump * jump).mean() - flux)
            norm_f = flux * flux + EPS
            loss = loss + w_seam * excess * excess / norm_f
            d_jump = (4.0 * w_seam * excess / (norm_f * bins)) * jump
            d_s = d_s + torch.nn.functional.pad(d_jump.unsqueeze(1), (c, frames - c - 1)) \
                - torch.nn.functional.pad(d_jump.unsqueeze(1), (c - 1, frames - c))
        return loss, d_s

    def forward(self, frames, context, adam_m, adam_v, step, *rest):
        n = len(self.weights)
        grams, acorrs = list(rest[:n]), list(rest[n:2 * n])
        mean_spectrum, temporal, flux, loss_weights, bank_weights, lr, upper = rest[2 * n:]
        c = context.shape[1]
        frames, context = finite(frames), finite(context)
        loss = torch.zeros(())
        for _ in range(self.config.steps_per_call):
            s = torch.cat([context, frames], dim=1)
            loss, d_s = self.gradient(s, grams, acorrs, mean_spectrum, temporal, flux, loss_weights, bank_weights)
            frames, adam_m, adam_v, step = adam_update(frames, d_s[:, c:], adam_m, adam_v, step, lr, upper)
        return frames, adam_m, adam_v, step, loss


def graph_input_names(n_banks: int) -> list[str]:
    """Input names of the step graph, in order."""
    return (["frames", "context", "adam_m", "adam_v", "step"] + [f"gram_{i}" for i in range(n_banks)]
            + [f"acorr_{i}" for i in range(n_banks)]
            + ["mean_spectrum", "temporal", "flux", "loss_weights", "bank_weights", "lr", "upper"])


GRAPH_OUTPUT_NAMES = ["frames_out", "adam_m_out", "adam_v_out", "step_out", "loss"]


def graph_inputs(frames: np.ndarray, context: np.ndarray, adam_m: np.ndarray, adam_v: np.ndarray, step: float,
                 target: StyleTarget, loss_weights: np.ndarray, bank_weights: np.ndarray, lr: float,
                 upper: np.ndarray) -> dict[str, np.ndarray]:
    """The feed dictionary of the step graph from numpy state and a (blended) target."""
    n = len(target.grams)
    feed = {"frames": frames, "context": context, "adam_m": adam_m, "adam_v": adam_v,
            "step": np.asarray(step, dtype=np.float32)}
    for i in range(n):
        feed[f"gram_{i}"] = target.grams[i].numpy()
        feed[f"acorr_{i}"] = target.autocorr[i].numpy()
    feed.update(mean_spectrum=target.mean_spectrum.numpy(), temporal=target.temporal.numpy(), flux=target.flux.numpy(),
                loss_weights=np.asarray(loss_weights, dtype=np.float32),
                bank_weights=np.asarray(bank_weights, dtype=np.float32),
                lr=np.asarray(lr, dtype=np.float32), upper=np.asarray(upper, dtype=np.float32))
    return {k: np.asarray(v, dtype=np.float32, order="C") for k, v in feed.items()}


def example_inputs(config: BlockConfig, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Plausible random inputs of the right shapes (export tracing, tests, benchmarks)."""
    rng = rng or np.random.default_rng(0)
    from engine.targets import compute_target
    bins = config.spectral.n_bins
    style = rng.gamma(2.0, 0.5, size=(bins, 4 * config.window_frames)).astype(np.float32)
    target = compute_target(style, config.network(), config.spectral.feature_map(), lags=config.lags)
    b = config.block_frames
    zeros = np.zeros((bins, b), np.float32)
    return graph_inputs(style[:, -b:], style[:, :config.context_frames], zeros, zeros, 0.0, target,
                        np.array([1.0, 1.0, 0.1, 0.3, 1.0]), receptive_field_weights(0.5, len(config.banks)), 0.05,
                        style.max(axis=1) * 1.5)


def autograd_step(config: BlockConfig, network: RandomBanks1D, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The torch reference backend: the same K steps as the graph, gradient by autograd.

    ``feed`` and the result use the graph's input and output names.
    """
    t = {k: torch.from_numpy(v) for k, v in feed.items()}
    n = len(config.banks)
    target = StyleTarget([t[f"gram_{i}"] for i in range(n)], [t[f"acorr_{i}"] for i in range(n)],
                         t["mean_spectrum"], t["temporal"], t["flux"])
    lw = t["loss_weights"].tolist()
    weights = losses.LossWeights(style=lw[0], spectral=lw[1], temporal=lw[2], autocorr=lw[3], seam=lw[4])
    fmap = torch.from_numpy(np.ascontiguousarray(config.spectral.feature_map()))
    frames, m, v, step = finite(t["frames"]), t["adam_m"], t["adam_v"], t["step"]
    context = finite(t["context"])
    loss = torch.zeros(())
    for _ in range(config.steps_per_call):
        x = frames.clone().requires_grad_(True)
        loss, _ = losses.total_loss(torch.cat([context, x], dim=1), network, fmap, target, weights,
                                    t["bank_weights"], seam_at=config.context_frames)
        (g,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            frames, m, v, step = adam_update(frames, g, m, v, step, t["lr"], t["upper"])
    return {"frames_out": frames.numpy(), "adam_m_out": m.numpy(), "adam_v_out": v.numpy(),
            "step_out": step.numpy(), "loss": loss.detach().numpy()}
