"""A learned ear: distance between two sounds in aisfx's sound-effects embedding.

aisfx (Ma & Lerch, "Representation Learning for the Automatic Indexing of Sound Effects Libraries",
ISMIR 2022; code MIT, weights CC BY 4.0, shipped inside its wheel) is a 9-layer 2-D CNN trained to
classify sound-effects libraries; its 512-d embedding of a 2.3 s log-mel block describes what a sound
effect *is*. It is used here to judge textures only, never as a loss: a texture optimised towards it
would stop being judged by it.

Pipeline (aisfx's own settings, its Essentia path reimplemented in numpy so nothing beyond torch is
needed): mono mix, 44.1 kHz, |STFT| (2048 Hann, hop 1024, 23 ms frames), power into 96 HTK-mel
triangles 0-22.05 kHz each summing to 1, ``log10(1e4 x + 1) / 9.4578`` (its training normalisation),
blocks of 100 frames (2.3 s) every 10 frames (0.23 s), one embedding per block.

:func:`embedding_mmd` is the squared maximum mean discrepancy (unbiased) between the reference's and
the candidate's sets of embeddings under the Gaussian kernel ``exp(−‖a − b‖² / h)``, ``h`` the median
squared distance between the reference's own embeddings: 0 for sets drawn alike, up to 2 for sets
that share nothing (it can dip slightly below 0 by chance).

aisfx is an optional install (its pins do not fit Python 3.11: ``pip install --no-deps aisfx``, done by
``.ci/setup``); :func:`unavailable_reason` says in one line why it cannot be used, and the other
metrics run without it.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache

import numpy as np

from engine.analysis.audio_io import resample
from engine.analysis.spectral import stft
from engine.evaluation.audio import mono_mix
from engine.errors import ParameterError

#: aisfx's analysis rate, STFT, mel bands and block layout.
EMBEDDING_RATE = 44100
EMBEDDING_N_FFT = 2048
EMBEDDING_HOP = 1024
MEL_BANDS = 96
#: Maximum of aisfx's log-mel over its training sets (``spectrogram_normalize``, 'original').
MEL_NORM_MAX = 9.457798957824707
BLOCK_FRAMES = 100
BLOCK_HOP_FRAMES = 10
#: Fewest blocks per sound: the bandwidth and the unbiased MMD need pairs (2.55 s of audio).
MIN_BLOCKS = 2
#: Blocks embedded per forward pass (bounds memory: ~40 MB of activations per block).
_BATCH = 16


def unavailable_reason() -> str | None:
    """None when aisfx can be imported, else one line saying why and how to install it."""
    if importlib.util.find_spec("aisfx") is None:
        return "aisfx is not installed (pip install --no-deps aisfx; .ci/setup does it): no embedding distance"
    try:
        _network()
    except Exception as exc:  # a broken install: any import or load error is reported in one line
        return f"aisfx cannot be loaded ({type(exc).__name__}: {exc}): no embedding distance"
    return None


@lru_cache(maxsize=1)
def _network():
    """aisfx's embedding network (X-Sequential-CE) with the wheel's weights, on CPU, in eval mode."""
    import torch
    from aisfx.inference import get_path_modelWeights
    from aisfx.models.cnn2d import EmbeddingNet

    # The checkpoint pickles numpy integers beside the weights, which torch's weights-only loader
    # refuses; it is a file of the installed wheel, trusted like its code.
    weights, _ = torch.load(get_path_modelWeights(), map_location="cpu", weights_only=False)
    net = EmbeddingNet("max", 3, 1, 64)
    prefix = "embedding_net."
    net.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
    return net.eval()


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


@lru_cache(maxsize=1)
def _mel_matrix() -> np.ndarray:
    """``(96, 1025)`` HTK-mel triangles over 0-22.05 kHz, weights on the mel axis, each row summing to 1."""
    mel = _hz_to_mel(np.fft.rfftfreq(EMBEDDING_N_FFT, 1.0 / EMBEDDING_RATE))
    points = np.linspace(0.0, _hz_to_mel(EMBEDDING_RATE / 2), MEL_BANDS + 2)
    lo, mid, hi = points[:-2, None], points[1:-1, None], points[2:, None]
    m = np.maximum(0.0, np.minimum((mel - lo) / (mid - lo), (hi - mel) / (hi - mid)))
    m /= m.sum(axis=1, keepdims=True)
    m.setflags(write=False)
    return m


def log_mel(y: np.ndarray, *, sample_rate: int, role: str = "sound") -> np.ndarray:
    """aisfx's normalised log-mel spectrogram ``(frames, 96)`` of ``y`` (mono mix, resampled to 44.1 kHz)."""
    mono = resample(mono_mix(y, role=role), sample_rate, EMBEDDING_RATE).astype(np.float64)
    power = np.abs(stft(mono, n_fft=EMBEDDING_N_FFT, hop=EMBEDDING_HOP)) ** 2
    return (np.log10(1e4 * (_mel_matrix() @ power) + 1.0) / MEL_NORM_MAX).T


def embed(y: np.ndarray, *, sample_rate: int, role: str = "sound") -> np.ndarray:
    """aisfx embeddings ``(blocks, 512)`` of every 100-frame block every 10 frames of ``y``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (n, channels)], floating, finite
        Audio at ``sample_rate`` Hz, at least 2.55 s (two blocks).

    Raises
    ------
    ParameterError
        Not audio, or too short.
    """
    import torch

    mel = log_mel(y, sample_rate=sample_rate, role=role)
    blocks = 1 + (len(mel) - BLOCK_FRAMES) // BLOCK_HOP_FRAMES if len(mel) >= BLOCK_FRAMES else 0
    if blocks < MIN_BLOCKS:
        need = (BLOCK_FRAMES + (MIN_BLOCKS - 1) * BLOCK_HOP_FRAMES - 1) * EMBEDDING_HOP / EMBEDDING_RATE
        have = len(mel) * EMBEDDING_HOP / EMBEDDING_RATE
        raise ParameterError(f"{role} is too short for the embedding: {have:.2f} s, needs {need:.2f} s")
    starts = np.arange(blocks) * BLOCK_HOP_FRAMES
    x = torch.from_numpy(mel[starts[:, None] + np.arange(BLOCK_FRAMES)].astype(np.float32))
    net = _network()
    with torch.no_grad():
        return np.concatenate([net(x[i:i + _BATCH]).numpy() for i in range(0, blocks, _BATCH)]).astype(np.float64)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def bandwidth(reference: np.ndarray) -> float:
    """Median squared distance between distinct embeddings of the reference ``(blocks, dims)``.

    Raises
    ------
    ParameterError
        Fewer than two embeddings, or all identical (a constant sound).
    """
    d = _squared_distances(reference, reference)[np.triu_indices(len(reference), k=1)]
    h = float(np.median(d)) if d.size else 0.0
    if not h > 0.0:
        raise ParameterError("the reference's embeddings are all alike (a constant sound): no kernel bandwidth")
    return h


def embedding_mmd(reference: np.ndarray, candidate: np.ndarray, *, h: float) -> float:
    """Unbiased squared MMD between two embedding sets ``(m, d)`` and ``(n, d)`` (m, n >= 2) under
    ``exp(−‖a − b‖² / h)``; see the module doc."""
    def mean_off_diagonal(k: np.ndarray) -> float:
        return float((k.sum() - np.trace(k)) / (len(k) * (len(k) - 1)))
    k_rr = np.exp(-_squared_distances(reference, reference) / h)
    k_cc = np.exp(-_squared_distances(candidate, candidate) / h)
    k_rc = np.exp(-_squared_distances(reference, candidate) / h)
    return mean_off_diagonal(k_rr) + mean_off_diagonal(k_cc) - 2.0 * float(k_rc.mean())
