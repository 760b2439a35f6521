"""Trained spectrogram CNNs: an AlexNet-like 3x3 2D classifier (Verma & Smith 2018) and a 1D classifier
with frequency bins as channels (Huzaifah & Wyse), trained on GM instrument-family notes.

Both have the interface of :mod:`models.random_banks` networks, so :mod:`engine.synthesis.offline` uses them
unchanged: ``forward(x)`` takes a log-magnitude spectrogram ``(bins, frames)`` and returns each conv
layer's ReLU feature maps ``(channels, positions)``; ``max_span`` is the fewest frames they accept;
``weights`` has one entry per feature layer (the receptive-field control weights layers, shallow to
deep); ``describe()`` is JSON for manifests. :func:`load_trained` builds a network from the committed
weights in ``models/weights/`` (checked against the SHA-256 in ``manifest.json``), in eval mode with
every parameter frozen.

* :class:`Trained2DCNN` — the spectrogram as a one-channel picture; five 3x3 conv + BatchNorm + ReLU
  layers (16, 32, 64, 96, 96 channels), 2x2 max-pooling after the first four; a linear head on the
  last layer's mean and max over all positions. Any number of bins works (linear or pseudo-CQT axis)
  but it was trained on the 513 linear bins.
* :class:`Trained1DCNN` — frequency bins are the input channels of 1D convolutions over time (valid,
  width 3, dilations 1, 2, 4, 8; 256, 128, 128, 128 channels; spans of 3, 7, 15 and 31 frames); the
  same head. Needs exactly the 513 linear bins. Its :meth:`~Trained1DCNN.conv_layers` (BatchNorm folded
  into the convolutions) is what the live engine's hand-written gradient runs (``--network trained1d``).

How the weights were made is in ``models/weights/manifest.json`` (``python -m models.dataset`` then
``python -m models.train``; see docs/EXPERIMENTS.md). ``python -m models.trained --export-onnx DIR``
writes each classifier as ONNX (outputs: logits, then each layer's feature maps).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from engine.errors import ParameterError
from models.random_banks import ConvLayer

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
#: Network names (as in ``--network``) -> weight-file stem in :data:`WEIGHTS_DIR`.
KINDS = ("trained2d", "trained1d")
ONNX_OPSET = 17


def _pooled(h: torch.Tensor) -> torch.Tensor:
    """Mean and max over every position of ``(N, C, ...)``: ``(N, 2C)``."""
    flat = h.flatten(2)
    return torch.cat([flat.mean(dim=2), flat.amax(dim=2)], dim=1)


class _TrainedNet(nn.Module):
    """What both trained networks share: per-layer kernels for loss weights, and the manifest entry.

    Subclasses set ``kind``, ``convs``, ``head``, ``dropout``, ``source``, ``config()`` and ``feature_maps()``.
    """

    kind = ""

    @property
    def weights(self) -> list[torch.Tensor]:
        """Conv kernels, one per feature layer (for per-layer loss weights)."""
        return [c.weight for c in self.convs]

    def describe(self) -> dict:
        """JSON-able description (for manifests)."""
        return {"kind": self.kind, **self.config(), **self.source}

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of a batch in the layout of :meth:`feature_maps`."""
        return self.head(self.dropout(_pooled(self.feature_maps(x)[-1])))


class Trained2DCNN(_TrainedNet):
    """AlexNet-like stack of 3x3 conv + BatchNorm + ReLU layers with 2x2 max-pooling, plus a classifier head.

    Parameters
    ----------
    n_classes : int
    channels : tuple of int
        Output channels of each conv layer.
    pools : tuple of bool
        Whether a 2x2 max-pool follows each layer (before the next one).
    """

    kind = "trained2d"

    def __init__(self, n_classes: int = 12, channels: tuple[int, ...] = (16, 32, 64, 96, 96),
                 pools: tuple[bool, ...] = (True, True, True, True, False), dropout: float = 0.3) -> None:
        super().__init__()
        if len(channels) != len(pools):
            raise ParameterError(f"need one pool flag per layer. Found {len(channels)} layers, {len(pools)} flags")
        self.channels, self.pools, self.n_classes = tuple(channels), tuple(bool(p) for p in pools), n_classes
        c_in, convs, norms = 1, [], []
        for c in self.channels:
            convs.append(nn.Conv2d(c_in, c, 3, padding=1, bias=False))
            norms.append(nn.BatchNorm2d(c))
            c_in = c
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * c_in, n_classes)
        self.max_span = 2 ** sum(self.pools[:-1]) + 2
        self.source: dict = {}

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ReLU maps ``(N, C, H, W)`` of every layer; ``x`` is ``(N, 1, bins, frames)``."""
        out, h = [], x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if i and self.pools[i - 1]:
                h = nn.functional.max_pool2d(h, 2)
            h = torch.relu(norm(conv(h)))
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ReLU maps of every layer, each ``(channels, positions)``; ``x`` is ``(bins, frames)``."""
        if x.dim() != 2 or x.shape[1] < self.max_span or x.shape[0] < self.max_span:
            raise ParameterError(f"need a (bins, frames) input with at least {self.max_span} bins and frames. "
                                 f"Found: {tuple(x.shape)}")
        return [m[0].flatten(1) for m in self.feature_maps(x[None, None])]

    def config(self) -> dict:
        return {"n_classes": self.n_classes, "channels": list(self.channels), "pools": list(self.pools)}



class Trained1DCNN(_TrainedNet):
    """1D conv + BatchNorm + ReLU layers over time with frequency bins as input channels, plus a head.

    Convolutions are valid (no padding), width ``width``, one dilation per layer; the span of layer
    ``k`` is ``1 + (width − 1) · (d_1 + … + d_k)`` frames. ``valid_1d`` as for
    :class:`models.random_banks.RandomBanks1D`.
    """

    valid_1d = True

    kind = "trained1d"

    def __init__(self, n_classes: int = 12, in_channels: int = 513, channels: tuple[int, ...] = (256, 128, 128, 128),
                 dilations: tuple[int, ...] = (1, 2, 4, 8), width: int = 3, dropout: float = 0.3) -> None:
        super().__init__()
        if len(channels) != len(dilations):
            raise ParameterError(f"need one dilation per layer. Found {len(channels)} layers, {len(dilations)}")
        self.in_channels, self.channels, self.dilations = in_channels, tuple(channels), tuple(dilations)
        self.width, self.n_classes = width, n_classes
        c_in, convs, norms = in_channels, [], []
        for c, d in zip(self.channels, self.dilations):
            convs.append(nn.Conv1d(c_in, c, width, dilation=d, bias=False))
            norms.append(nn.BatchNorm1d(c))
            c_in = c
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * c_in, n_classes)
        self.spans = conv1d_spans(width, self.dilations)
        self.max_span = self.spans[-1]
        self.source: dict = {}

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ReLU maps ``(N, C, frames − span + 1)`` of every layer; ``x`` is ``(N, in_channels, frames)``."""
        out, h = [], x
        for conv, norm in zip(self.convs, self.norms):
            h = torch.relu(norm(conv(h)))
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ReLU maps of every layer, each ``(channels, frames − span + 1)``; ``x`` is ``(bins, frames)``."""
        if x.dim() != 2:
            raise ParameterError(f"need a (bins, frames) input. Found: {tuple(x.shape)}")
        check_channels(self.kind, x.shape[0], self.in_channels)
        if x.shape[1] < self.max_span:
            raise ParameterError(f"need at least {self.max_span} frames. Found: {x.shape[1]}")
        return [m[0] for m in self.feature_maps(x[None])]

    def conv_layers(self) -> list[ConvLayer]:
        """The layers as :class:`models.random_banks.ConvLayer` s, each reading the one before, with the
        eval-mode BatchNorm folded into the convolution: ``w·γ/√(σ²+ε)``, bias ``β − μγ/√(σ²+ε)``."""
        layers = []
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            layers.append(ConvLayer((conv.weight * scale[:, None, None]).detach(),
                                    (norm.bias - norm.running_mean * scale).detach(), conv.dilation[0], i - 1))
        return layers

    def config(self) -> dict:
        return {"n_classes": self.n_classes, "in_channels": self.in_channels, "channels": list(self.channels),
                "dilations": list(self.dilations), "width": self.width}



ARCHITECTURES: dict[str, type[nn.Module]] = {"trained2d": Trained2DCNN, "trained1d": Trained1DCNN}


def conv1d_spans(width: int, dilations: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """Span in frames of each layer of a stack of valid width-``width`` 1D convolutions with ``dilations``."""
    return tuple(1 + (width - 1) * sum(dilations[:k + 1]) for k in range(len(dilations)))


def check_channels(kind: str, n_channels: int, expected: int = 513) -> None:
    """ParameterError unless the 1D network ``kind`` can take ``n_channels`` frequency channels."""
    if n_channels != expected:
        raise ParameterError(f"{kind} was trained on the {expected} linear bins of n_fft 1024; use the linear "
                             f"frequency axis (--frequency-axis linear). Found {n_channels} channels")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: Path = MANIFEST) -> dict:
    """The weights manifest (``{"networks": {kind: entry}}``); ParameterError if missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ParameterError(f"{path}: cannot read the trained-weights manifest ({e})") from None


@lru_cache(maxsize=4)
def _entry(kind: str, weights_dir: str) -> dict:
    entry = read_manifest(Path(weights_dir) / "manifest.json").get("networks", {}).get(kind)
    if entry is None:
        raise ParameterError(f"no trained weights for {kind!r} in {weights_dir}/manifest.json")
    return entry


def manifest_entry(kind: str, weights_dir: str | Path = WEIGHTS_DIR) -> dict:
    """The manifest's entry of network ``kind`` (architecture ``config``, weights ``sha256``, accuracy, …),
    read without loading the weights. Do not modify it (it is cached)."""
    return _entry(kind, str(Path(weights_dir).resolve()))


@lru_cache(maxsize=4)
def _state(kind: str, weights_dir: str) -> tuple[dict, dict]:
    entry = _entry(kind, weights_dir)
    path = Path(weights_dir) / entry["file"]
    if not path.is_file():
        raise ParameterError(f"{path}: trained weights missing")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ParameterError(f"{path}: SHA-256 {digest[:12]}… does not match the manifest ({entry['sha256'][:12]}…)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return entry, state


def build(kind: str, config: dict) -> nn.Module:
    """An untrained network of ``kind`` (``trained2d`` / ``trained1d``) from a manifest ``config``."""
    if kind not in ARCHITECTURES:
        raise ParameterError(f"network must be one of {KINDS}. Found: {kind!r}")
    cfg = dict(config)
    for key in ("channels", "pools", "dilations"):
        if key in cfg:
            cfg[key] = tuple(cfg[key])
    return ARCHITECTURES[kind](**cfg)


def load_trained(kind: str, weights_dir: str | Path = WEIGHTS_DIR) -> nn.Module:
    """The committed trained network ``kind``, in eval mode, every parameter frozen.

    Raises
    ------
    ParameterError
        Unknown kind, missing manifest or weights, or a weight file whose hash does not match.
    """
    if kind not in ARCHITECTURES:
        raise ParameterError(f"network must be one of {KINDS}. Found: {kind!r}")
    entry, state = _state(kind, str(Path(weights_dir).resolve()))
    net = build(kind, entry["config"])
    net.load_state_dict(state)
    net.source = {"weights_file": entry["file"], "sha256": entry["sha256"],
                  "heldout_accuracy": entry.get("heldout_accuracy")}
    net.eval()
    net.requires_grad_(False)
    return net


class _OnnxWrapper(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        maps = self.net.feature_maps(x)
        return (self.net.head(_pooled(maps[-1])), *maps)


def onnx_input(net: nn.Module, batch: int = 1, frames: int = 64, bins: int = 513) -> torch.Tensor:
    """A zero input of the shape the ONNX graph of ``net`` takes."""
    if isinstance(net, Trained1DCNN):
        return torch.zeros(batch, net.in_channels, frames)
    return torch.zeros(batch, 1, bins, frames)


def export_onnx(net: nn.Module, path: str | Path) -> Path:
    """Write ``net`` (eval mode) as ONNX: input ``spectrogram`` (log1p magnitude, ``(N, 1, bins, frames)``
    for 2D, ``(N, 513, frames)`` for 1D; batch and frames dynamic, bins too for 2D), outputs ``logits``
    ``(N, classes)`` and ``features{k}``, each layer's ReLU maps."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net.eval()
    n_layers = len(net.convs)
    names = ["logits", *(f"features{k}" for k in range(n_layers))]
    if isinstance(net, Trained1DCNN):
        dyn = {"spectrogram": {0: "batch", 2: "frames"}}
    else:
        dyn = {"spectrogram": {0: "batch", 2: "bins", 3: "frames"}}
    for name in names:
        dyn[name] = {0: "batch"}
    # The wrapper must be in eval mode too: the exporter restores the wrapper's mode afterwards, which
    # would otherwise put ``net`` (BatchNorm, dropout) into training mode.
    wrapper = _OnnxWrapper(net).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(wrapper, (onnx_input(net),), str(path), input_names=["spectrogram"],
                          output_names=names, dynamic_axes=dyn, opset_version=ONNX_OPSET, dynamo=False,
                          do_constant_folding=True)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.trained", description="Inspect or export the trained networks.")
    p.add_argument("--export-onnx", metavar="DIR", help="write trained2d.onnx and trained1d.onnx into DIR")
    args = p.parse_args(argv)
    for kind in KINDS:
        net = load_trained(kind)
        print(json.dumps(net.describe()))
        if args.export_onnx:
            print("wrote", export_onnx(net, Path(args.export_onnx) / f"{kind}.onnx"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
