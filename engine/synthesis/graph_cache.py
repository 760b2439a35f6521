"""Export the block-step graph to ONNX with a JSON manifest, and keep it in a per-user cache.

A cached graph is reused only when its manifest names the same configuration, the same code version
(a hash of the modules the graph is built from) and the ONNX file's SHA-256 still matches. A missing,
stale or corrupt file is rebuilt and the reason reported through ``log``. Processes that start on the
same configuration at once (a library rendered in parallel, a cluster's workers on a shared cache)
export it once: the first holds a lock file in the configuration's folder while it exports, the others
wait for it (at most :data:`EXPORT_WAIT_SECONDS`) and reuse its graph.

Cache folder: ``$TEXTURE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/neural-texture``, else
``~/.cache/neural-texture``; one sub-folder per configuration.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch
from filelock import FileLock, Timeout

from engine.synthesis import losses

from engine.analysis import statistics

from engine.synthesis import step_graph
from engine.errors import TextureError
from engine.synthesis.step_graph import GRAPH_OUTPUT_NAMES, AnalyticStep, BlockConfig, example_inputs, graph_input_names
from models import random_banks, trained

GRAPH_FILE = "block_step.onnx"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".export.lock"
OPSET = 17
#: Longest wait for another process's export of the same graph, seconds (an export takes 5-30 s on a 2-core CPU).
EXPORT_WAIT_SECONDS = 300.0
_SOURCES = (step_graph, losses, statistics, random_banks, trained)


def code_version() -> str:
    """Hash of the source of every module the graph is built from (first 16 hex digits)."""
    h = hashlib.sha256()
    for mod in _SOURCES:
        h.update(Path(mod.__file__).read_bytes())
    h.update(torch.__version__.encode())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """The per-user cache folder (see module doc)."""
    if os.environ.get("TEXTURE_CACHE_DIR"):
        return Path(os.environ["TEXTURE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neural-texture"


def config_key(config: BlockConfig) -> str:
    """Stable short hash of a configuration: the cache sub-folder's name."""
    return hashlib.sha256(json.dumps(config.describe(), sort_keys=True).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_graph(config: BlockConfig, out_dir: str | os.PathLike) -> Path:
    """Write ``block_step.onnx`` and ``manifest.json`` for ``config`` into ``out_dir``; returns the graph path.

    Files are written under temporary names of their own and renamed, so a crash never leaves a half
    graph and two exports into one folder never write the same file.
    """
    import onnx  # here, not at the top: importing it costs 1.5 s of every start on a 2-core CPU
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = AnalyticStep(config).eval()
    names = graph_input_names(config.n_layers)
    feed = example_inputs(config)
    args = tuple(torch.from_numpy(feed[n]) for n in names)
    fd, tmp_graph = tempfile.mkstemp(dir=out, prefix=f".{GRAPH_FILE}.", suffix=".partial")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, tmp_graph, input_names=names, output_names=GRAPH_OUTPUT_NAMES,
                              opset_version=OPSET, dynamo=False, do_constant_folding=True)
        onnx.checker.check_model(tmp_graph)
        sha256 = _sha256(Path(tmp_graph))
        graph = out / GRAPH_FILE
        os.replace(tmp_graph, graph)
    finally:
        Path(tmp_graph).unlink(missing_ok=True)
    manifest = {
        "format": "neural-texture block step",
        "code_version": code_version(),
        "config": config.describe(),
        "opset": OPSET,
        "inputs": {n: list(feed[n].shape) for n in names},
        "outputs": GRAPH_OUTPUT_NAMES,
        "sha256": sha256,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
    }
    fd, tmp_manifest = tempfile.mkstemp(dir=out, prefix=".manifest.")
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=2)
    os.replace(tmp_manifest, out / MANIFEST_FILE)
    return graph


def check_cached(config: BlockConfig, folder: Path) -> str | None:
    """Why the graph in ``folder`` cannot be reused for ``config``, or None when it can."""
    graph, manifest_path = folder / GRAPH_FILE, folder / MANIFEST_FILE
    if not graph.exists() or not manifest_path.exists():
        return "not exported yet"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return "manifest is unreadable"
    if not isinstance(manifest, dict):
        return "manifest is malformed"
    if manifest.get("code_version") != code_version():
        return "made by another version of the code (stale)"
    if manifest.get("config") != json.loads(json.dumps(config.describe())):
        return "made for other settings (stale)"
    if manifest.get("sha256") != _sha256(graph):
        return "graph file does not match its manifest (corrupt)"
    return None


def cached_graph(config: BlockConfig, *, log: Callable[[str], None] = lambda msg: None) -> Path:
    """Path of an up-to-date graph for ``config``, exporting it into the cache when needed.

    Raises
    ------
    TextureError
        When the cache folder cannot be written, or another process has held its lock for more than
        :data:`EXPORT_WAIT_SECONDS`.
    """
    folder = cache_root() / config_key(config)
    if check_cached(config, folder) is None:
        return folder / GRAPH_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(folder / LOCK_FILE, timeout=EXPORT_WAIT_SECONDS)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log(f"waiting for another process exporting the ONNX block graph to {folder}")
            lock.acquire()
        try:
            return _export_unless_cached(config, folder, log)
        finally:
            lock.release()
    except Timeout:
        raise TextureError(f"another process has been exporting the ONNX graph to {folder} for over "
                           f"{EXPORT_WAIT_SECONDS:.0f} s") from None
    except OSError as exc:
        raise TextureError(f"cannot write the graph cache {folder}: {exc.strerror or exc}") from None


def _export_unless_cached(config: BlockConfig, folder: Path, log: Callable[[str], None]) -> Path:
    """:func:`cached_graph`'s work under the lock: the graph another process may just have exported, or a new one."""
    reason = check_cached(config, folder)
    if reason is None:
        return folder / GRAPH_FILE
    if reason != "not exported yet":
        log(f"cached ONNX graph in {folder}: {reason}; re-exporting")
    else:
        log(f"exporting ONNX block graph to {folder} (first use)")
    return export_graph(config, folder)


def export_manifest_summary(graph: Path) -> dict:
    """The manifest beside ``graph`` as a dict (for ``export-onnx`` output and telemetry)."""
    return json.loads((graph.parent / MANIFEST_FILE).read_text())

