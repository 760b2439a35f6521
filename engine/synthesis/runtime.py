"""ONNX Runtime session for the block-step graph: providers, threads, preallocated buffers.

Providers are tried in the order CUDA, CPU; the provider that really runs is read back from the
session (``session.get_providers()[0]``), not from the list of available ones. On a machine without a
GPU, onnxruntime-gpu's failed CUDA load is silenced (logger severity 4, fatal only) and the CPU provider runs.

Threads: the graph gets all cores but one (:func:`default_threads`); the BLAS that numpy and scipy load gets one
(:func:`limit_blas_threads`, for the whole process, once a stepper is built).

Two backends share one interface, :class:`BlockStepper`: ``"ort"`` (the live path) and ``"torch"``
(the autograd reference, :func:`engine.synthesis.step_graph.autograd_step`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from engine.errors import ParameterError, TextureError
from engine.synthesis.graph_cache import cached_graph
from engine.synthesis.step_graph import GRAPH_OUTPUT_NAMES, BlockConfig, autograd_step, graph_input_names

BACKENDS = ("ort", "torch")


def default_threads() -> int:
    """Intra-op threads: all cores but one for the audio/phase side, at least one."""
    return max(1, (os.cpu_count() or 2) - 1)


def limit_blas_threads() -> None:
    """Keeps every BLAS loaded so far (numpy's and scipy's OpenBLAS) to one thread, for the whole process.

    The engine's matrices are small (a blend change's level spread, ``(bins, bands)``), so a second BLAS thread
    saves little, but OpenBLAS's idle workers spin for a while after each call and took the core the graph and
    torch's blend were about to use: a soak of blend changes every block on this 2-core machine rendered 30 s in
    66 s with the twelfth-octave spread and 20 s without it, 22 s and 16 s at one BLAS thread
    (``docs/EXPERIMENTS.md`` section 59). scipy's own OpenBLAS is loaded here first, so that it is limited too."""
    import scipy.linalg  # noqa: F401 - loads scipy's BLAS before the limit
    threadpool_limits(limits=1, user_api="blas")


class BlockStepper:
    """Runs K guarded Adam steps on a block, by ONNX Runtime or by the torch reference.

    Parameters
    ----------
    config : BlockConfig
    backend : {"ort", "torch"}
    threads : int or None
        Intra-op threads (ORT) or torch threads; default :func:`default_threads`.
    graph : path or None
        An exported graph to load; default: the per-user cache (exported on first use).
    log : callable
        Receives one-line messages (which provider runs, cache rebuilds).

    Attributes
    ----------
    provider : str
        ``"CUDAExecutionProvider"``, ``"CPUExecutionProvider"`` or ``"torch"``.
    """

    def __init__(self, config: BlockConfig, *, backend: str = "ort", threads: int | None = None,
                 graph: str | os.PathLike | None = None, log: Callable[[str], None] = lambda m: None) -> None:
        if backend not in BACKENDS:
            raise ParameterError(f"backend must be one of {BACKENDS}. Found: {backend!r}")
        self.config = config
        self.backend = backend
        self.threads = threads or default_threads()
        limit_blas_threads()
        self.input_names = graph_input_names(config.n_layers)
        if backend == "torch":
            import torch
            torch.set_num_threads(self.threads)
            self._network = config.build_network()
            self.provider = "torch"
            self._session = None
        else:
            self._session = self._make_session(Path(graph) if graph else cached_graph(config, log=log))
            self.provider = self._session.get_providers()[0]
            self._bindings = [self._bind_outputs() for _ in range(2)]
            self._turn = 0
        log(f"block optimiser: backend {backend}, provider {self.provider}, {self.threads} threads")

    def _make_session(self, graph: Path):
        import onnxruntime as ort
        ort.set_default_logger_severity(4)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 4
        wanted = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            return ort.InferenceSession(str(graph), sess_options=opts, providers=wanted)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors for bad graphs
            raise TextureError(f"cannot load ONNX graph {graph}: {str(exc).splitlines()[0]}") from None

    def _bind_outputs(self) -> tuple[object, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """An IO binding whose outputs land in preallocated float32 arrays (allocated once, here), and the
        record of the input arrays bound to it (an input passed again as the same array is not rebound)."""
        bins, b = self.config.spectral.n_bins, self.config.inflight_frames
        trend = (self.config.spectral.envelope_map().shape[0], self.config.coarse_inflight)
        shapes = {"frames_out": (bins, b), "adam_m_out": (bins, b), "adam_v_out": (bins, b),
                  "step_out": (), "loss": (), "coarse_out": trend, "coarse_m_out": trend, "coarse_v_out": trend}
        arrays = {name: np.zeros(shapes[name], dtype=np.float32) for name in GRAPH_OUTPUT_NAMES}
        binding = self._session.io_binding()
        for name, arr in arrays.items():
            binding.bind_output(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)
        return binding, arrays, {}

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call: ``steps_per_call`` steps. ``feed`` uses the graph's input names; returns its outputs by name.

        ORT writes into one of two preallocated output sets, used in turn, so the outputs of one call
        can be fed straight into the next; they are overwritten by the call after that (copy what
        must live longer).
        """
        if self._session is None:
            return autograd_step(self.config, self._network, feed)
        binding, arrays, bound = self._bindings[self._turn]
        self._turn ^= 1
        for name in self.input_names:
            value = feed[name]
            if bound.get(name) is not value:  # the same array is still bound: ORT reads it at run time
                binding.bind_cpu_input(name, value)
                bound[name] = value  # and it must stay alive while bound
        self._session.run_with_iobinding(binding)
        return arrays
