"""Random, untrained convolutional networks whose feature statistics define a texture.

* :class:`RandomBanks1D` — several separate one-layer 1D conv banks over time, frequency bins as
  input channels (Ulyanov & Lebedev 2016; Antognini, Hoffman & Weiss 2019: separate banks of
  different receptive fields beat stacked layers). Each bank has its own kernel width and dilation;
  its span in frames is ``dilation * (width - 1) + 1``.
* :class:`Random2DCNN` — an image-style stack of 3x3 conv layers over the spectrogram as a picture,
  the variant Huzaifah & Wyse compare against.

Weights are drawn from a seeded generator, so the same seed and specs give bit-identical networks on
every machine. Convolutions are "valid" (no padding): edge frames are seen by fewer windows.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch

from engine.errors import ParameterError


@dataclass(frozen=True)
class BankSpec:
    """One conv bank: ``filters`` kernels of ``width`` taps spaced ``dilation`` frames apart."""

    width: int
    dilation: int = 1
    filters: int = 256

    def __post_init__(self) -> None:
        if self.width < 1 or self.dilation < 1 or self.filters < 1:
            raise ParameterError(f"bank width, dilation and filters must be >= 1. Found: {self}")

    @property
    def span(self) -> int:
        """Receptive field in frames."""
        return self.dilation * (self.width - 1) + 1


#: Default banks, short to long: spans of 5, 9, 17 and 33 frames (58 ms to 383 ms at 22050/256).
DEFAULT_BANKS: tuple[BankSpec, ...] = (
    BankSpec(5, 1, 256), BankSpec(5, 2, 256), BankSpec(5, 4, 256), BankSpec(5, 8, 256),
)


class ConvLayer(NamedTuple):
    """One 1D conv + ReLU feature layer as the live graph runs it (:class:`engine.synthesis.step_graph.AnalyticStep`).

    ``a = relu(conv1d(input, weight, bias, dilation))``, valid convolution; ``input`` is the network's
    input when ``source`` is -1, else the ReLU maps of layer ``source`` (an earlier layer). Separate
    banks all read the input; a stack reads the layer before.
    """

    weight: torch.Tensor  # (out_channels, in_channels, width)
    bias: torch.Tensor | None  # (out_channels,)
    dilation: int
    source: int


class RandomBanks1D(torch.nn.Module):
    """Separate random 1D conv banks; ``forward`` returns each bank's ReLU feature maps.

    ``valid_1d``: position ``j`` of each map sees only frames ``j .. j + span - 1``, so the style
    analysis (:func:`engine.analysis.targets.compute_target`) may run it on overlapping pieces.

    Parameters
    ----------
    in_channels : int
        Frequency channels of the input (513 linear bins at n_fft 1024, fewer for pseudo-CQT).
    banks : sequence of BankSpec
        Ordered short to long span; the receptive-field control weights them in this order.
    seed : int
        Seed of the weight generator.

    Weights are N(0, 1 / (in_channels * width)), no bias; they never train (``requires_grad``
    False).
    """

    valid_1d = True

    def __init__(self, in_channels: int, banks: tuple[BankSpec, ...] = DEFAULT_BANKS, seed: int = 0) -> None:
        super().__init__()
        if not banks:
            raise ParameterError("at least one conv bank is needed")
        self.in_channels = in_channels
        self.specs = tuple(banks)
        self.seed = seed
        gen = torch.Generator().manual_seed(seed)
        weights = []
        for spec in self.specs:
            std = (in_channels * spec.width) ** -0.5
            weights.append(torch.randn(spec.filters, in_channels, spec.width, generator=gen) * std)
        self.weights = torch.nn.ParameterList([torch.nn.Parameter(w, requires_grad=False) for w in weights])

    @property
    def max_span(self) -> int:
        """Longest receptive field of any bank, in frames."""
        return max(s.span for s in self.specs)

    def pre_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Conv outputs before the ReLU, one ``(filters, frames - span + 1)`` tensor per bank.

        ``x`` is ``(in_channels, frames)`` with ``frames >= max_span``.
        """
        if x.shape[-1] < self.max_span:
            raise ParameterError(f"need at least {self.max_span} frames for these banks. Found: {x.shape[-1]}")
        return [torch.nn.functional.conv1d(x.unsqueeze(0), w, dilation=s.dilation)[0]
                for w, s in zip(self.weights, self.specs)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ReLU feature maps, one ``(filters, frames - span + 1)`` tensor per bank."""
        return [torch.relu(z) for z in self.pre_activations(x)]

    def conv_layers(self) -> list[ConvLayer]:
        """The banks as :class:`ConvLayer` s: no bias, each reading the input."""
        return [ConvLayer(w.detach(), None, s.dilation, -1) for w, s in zip(self.weights, self.specs)]

    def describe(self) -> dict:
        """JSON-able description (for manifests)."""
        return {"kind": "random1d", "seed": self.seed, "in_channels": self.in_channels,
                "banks": [asdict(s) for s in self.specs]}


class Random2DCNN(torch.nn.Module):
    """Image-style random CNN: 3x3 conv + ReLU layers with 2x2 max-pooling between them.

    The spectrogram ``(bins, frames)`` is one grey image. ``forward`` returns each layer's ReLU maps
    flattened to ``(channels, positions)``, so the same Gram / autocorrelation statistics apply.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.channels = tuple(channels)
        gen = torch.Generator().manual_seed(seed)
        weights, c_in = [], 1
        for c in self.channels:
            weights.append(torch.randn(c, c_in, 3, 3, generator=gen) * (c_in * 9) ** -0.5)
            c_in = c
        self.weights = torch.nn.ParameterList([torch.nn.Parameter(w, requires_grad=False) for w in weights])
        self.max_span = 2 ** len(self.channels) + 2

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ReLU maps of every layer, each ``(channels, positions)``; ``x`` is ``(bins, frames)``."""
        h = x.unsqueeze(0).unsqueeze(0)
        out = []
        for i, w in enumerate(self.weights):
            if i:
                h = torch.nn.functional.max_pool2d(h, 2)
            h = torch.relu(torch.nn.functional.conv2d(h, w, padding=1))
            out.append(h[0].flatten(1))
        return out

    def describe(self) -> dict:
        """JSON-able description (for manifests)."""
        return {"kind": "random2d", "seed": self.seed, "channels": list(self.channels)}
