"""The exported ONNX block step on a real ONNX Runtime session against the torch reference, for each live
network (the random banks and the trained 1D net); the cache."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from engine.errors import ParameterError
from engine.synthesis.graph_cache import GRAPH_FILE, MANIFEST_FILE, cache_root, cached_graph, check_cached, config_key, export_graph
from engine.synthesis.runtime import BlockStepper
from engine.synthesis.step_graph import COARSE_LIMIT, BlockConfig, example_inputs, receptive_field_weights
from engine.analysis.spectral import SpectralConfig
from models.random_banks import BankSpec
from models.trained import load_trained

ROOT = Path(__file__).resolve().parents[1]
CFG = BlockConfig(banks=(BankSpec(5, 1, 64), BankSpec(5, 2, 64), BankSpec(5, 8, 64)), steps_per_call=2)
#: One configuration per live network: small random banks (3 parallel layers), the trained 1D net (a 4-layer stack).
CONFIGS = {"random1d": CFG, "trained1d": BlockConfig(network="trained1d", steps_per_call=2)}


@pytest.fixture(scope="module", params=list(CONFIGS))
def steppers(request):
    cfg = CONFIGS[request.param]
    return BlockStepper(cfg, backend="ort"), BlockStepper(cfg, backend="torch")


def test_a_stepper_keeps_the_blas_of_numpy_and_scipy_to_one_thread():
    """OpenBLAS's idle workers spin and took the graph's core (``docs/EXPERIMENTS.md`` section 59): once a stepper
    is built, every BLAS the process has loaded runs one thread, whatever it ran before."""
    threadpool_limits(limits=2, user_api="blas")
    assert all(d["num_threads"] == 2 for d in threadpool_info() if d["user_api"] == "blas")
    BlockStepper(CFG)
    blas = [d for d in threadpool_info() if d["user_api"] == "blas"]
    assert blas and all(d["num_threads"] == 1 for d in blas)
    assert any("scipy.libs" in d["filepath"] for d in blas)  # scipy's own copy, not only numpy's


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_ort_session_runs_on_a_real_provider(steppers):
    ort_s, _ = steppers
    assert ort_s.provider in ("CPUExecutionProvider", "CUDAExecutionProvider")


def test_ort_matches_torch_on_the_same_block(steppers):
    ort_s, torch_s = steppers
    feed = example_inputs(ort_s.config)
    a, b = ort_s.run(feed), torch_s.run(feed)
    assert _rel(a["frames_out"], b["frames_out"]) <= 1e-3
    assert abs(float(a["loss"]) - float(b["loss"])) <= 1e-3 * float(b["loss"])
    assert float(a["step_out"]) == 2.0
    assert not np.allclose(a["frames_out"], feed["frames"])  # it really moved
    assert a["frames_out"].min() >= 0.0
    assert np.all(a["frames_out"] <= feed["upper"][:, None] + 1e-6)
    # the trend moves in the same call, the same way in both backends, and stays within its bound
    assert _rel(a["coarse_out"], b["coarse_out"]) <= 1e-3 and _rel(a["coarse_v_out"], b["coarse_v_out"]) <= 1e-3
    assert not np.allclose(a["coarse_out"], feed["coarse"])
    assert np.abs(a["coarse_out"]).max() <= COARSE_LIMIT


def test_blend_and_bank_weight_changes_act_like_the_reference(steppers):
    ort_s, torch_s = steppers
    base = example_inputs(ort_s.config)
    other = example_inputs(ort_s.config, np.random.default_rng(5))
    variants = []
    for i, bank_rf in enumerate((0.0, 1.0)):
        feed = dict(base)
        feed["bank_weights"] = receptive_field_weights(bank_rf, ort_s.config.n_layers)
        if i:  # a different blended target as well
            for k in other:
                if k.startswith(("gram_", "acorr_")) or k == "mean_spectrum":
                    feed[k] = 0.5 * base[k] + 0.5 * other[k]
        a, b = ort_s.run(feed), torch_s.run(feed)
        assert _rel(a["frames_out"], b["frames_out"]) <= 1e-3
        variants.append(a["frames_out"].copy())
    assert not np.allclose(variants[0], variants[1], atol=1e-4)


def test_inputs_kept_bound_between_calls_are_read_afresh(steppers):
    """The stepper binds an array passed again as the same object only once (the blended target, per
    blend): ORT must then read its current contents, as a fresh feed of the same values gives."""
    ort_s, _ = steppers
    feed = example_inputs(ort_s.config)
    for _ in range(2):  # both of the stepper's alternating bindings now hold these arrays
        ort_s.run(feed)
    feed["mean_spectrum"] *= 3.0  # in place: the same object, new values
    kept = ort_s.run(feed)["frames_out"].copy()
    fresh = ort_s.run({k: v.copy() for k, v in feed.items()})["frames_out"]
    assert np.array_equal(kept, fresh)
    assert not np.allclose(kept, ort_s.run(example_inputs(ort_s.config))["frames_out"])


def test_non_finite_input_never_leaves_the_graph(steppers):
    ort_s, _ = steppers
    feed = example_inputs(ort_s.config)
    feed["frames"] = feed["frames"].copy()
    feed["frames"][3, -1] = np.nan
    feed["coarse"] = feed["coarse"].copy()
    feed["coarse"][2, 5] = np.inf
    out = ort_s.run(feed)
    assert np.all(np.isfinite(out["frames_out"])) and np.all(np.isfinite(out["coarse_out"]))


def test_cache_rebuilds_corrupt_and_stale_graphs(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTURE_CACHE_DIR", str(tmp_path))
    messages = []
    graph = cached_graph(CFG, log=messages.append)
    assert graph.parent == cache_root() / config_key(CFG) and graph.exists()
    assert check_cached(CFG, graph.parent) is None
    assert cached_graph(CFG, log=messages.append) == graph and len(messages) == 1  # reused

    graph.write_bytes(graph.read_bytes()[:1000])  # corrupt: truncated
    assert "corrupt" in check_cached(CFG, graph.parent)
    cached_graph(CFG, log=messages.append)
    assert "corrupt" in messages[-1] and check_cached(CFG, graph.parent) is None
    BlockStepper(CFG, graph=graph)  # the rebuilt file loads in ORT

    manifest = json.loads((graph.parent / MANIFEST_FILE).read_text())
    manifest["code_version"] = "0000"
    (graph.parent / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert "stale" in check_cached(CFG, graph.parent)
    cached_graph(CFG, log=messages.append)
    assert "stale" in messages[-1] and check_cached(CFG, graph.parent) is None

    (graph.parent / MANIFEST_FILE).write_text("{not json")
    assert "unreadable" in check_cached(CFG, graph.parent)


#: A process that waits for ``go`` to appear, then asks the cache for the test's graph and prints what it logged.
_RACER = """
import os, sys, time
from pathlib import Path
from tests.test_step_graph import CFG
from engine.synthesis.graph_cache import cached_graph
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
messages = []
print(cached_graph(CFG, log=messages.append))
print(*messages, sep="\\n")
"""


def test_processes_that_start_at_once_export_the_graph_once(tmp_path):
    """Two real processes ask an empty cache for one graph in the same instant (as a library rendered in
    parallel does): both get a graph ONNX Runtime loads, one of them exported it and the other waited."""
    go = tmp_path / "go"
    env = dict(os.environ, TEXTURE_CACHE_DIR=str(tmp_path / "cache"))
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(go)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(3.0)  # both have imported torch and wait for the signal (the test only slows if not)
    go.touch()
    outputs = [r.communicate(timeout=300) for r in racers]
    assert [r.returncode for r in racers] == [0, 0], [err[-2000:] for _, err in outputs]
    paths = {out.splitlines()[0] for out, _ in outputs}
    logs = "\n".join(out for out, _ in outputs)
    assert len(paths) == 1 and logs.count("(first use)") == 1 and logs.count("waiting for another process") == 1
    graph = tmp_path / "cache" / config_key(CFG) / GRAPH_FILE
    assert paths == {str(graph)} and check_cached(CFG, graph.parent) is None
    assert not list(graph.parent.glob("*.partial"))
    BlockStepper(CFG, graph=graph)


def test_export_writes_graph_and_manifest(tmp_path):
    graph = export_graph(CFG, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert graph.name == GRAPH_FILE
    assert manifest["config"]["block_frames"] == CFG.block_frames
    assert manifest["inputs"]["frames"] == [513, CFG.inflight_frames]
    assert manifest["config"]["banks"][2] == {"width": 5, "dilation": 8, "filters": 64}


def test_network_is_in_the_cache_key_and_the_manifest(tmp_path):
    random1d, trained1d = BlockConfig(), BlockConfig(network="trained1d")
    assert config_key(random1d) != config_key(trained1d)
    graph = export_graph(trained1d, tmp_path / "t")
    manifest = json.loads((tmp_path / "t" / MANIFEST_FILE).read_text())
    assert manifest["config"]["network"] == "trained1d"
    assert manifest["config"]["weights_sha256"] == load_trained("trained1d").describe()["sha256"]
    assert [manifest["inputs"][f"gram_{i}"] for i in range(4)] == [[256, 256], [128, 128], [128, 128], [128, 128]]
    assert check_cached(random1d, graph.parent) == "made for other settings (stale)"


@pytest.mark.parametrize("network", ["random2d", "trained2d"])
def test_2d_networks_are_refused_live_with_a_clear_message(network):
    with pytest.raises(ParameterError, match=f"{network}' is not available live.*--offline"):
        BlockConfig(network=network)


def test_trained1d_needs_the_linear_bins_and_its_longest_span():
    assert BlockConfig(network="trained1d").layer_spans == (3, 7, 15, 31)
    with pytest.raises(ParameterError, match="linear"):
        BlockConfig(network="trained1d", spectral=SpectralConfig(frequency_axis="cqt"))
    with pytest.raises(ParameterError, match="needs 40"):  # span 31 + 8 lags + 1
        BlockConfig(network="trained1d", context_frames=15, inflight_frames=24)
    BlockConfig(network="trained1d", context_frames=16, inflight_frames=24)
