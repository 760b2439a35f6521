"""``main.py bench`` as an AVX2-only CPU would run it, on a CPU that has AVX-512.

The team checks real time on an AMD EPYC without AVX-512; the machines this project is developed on
often have it (Zen 4, recent Xeons). numpy, OpenBLAS, ONNX Runtime's MLAS and torch pick their
kernels from CPUID when they load, so this script builds ``docs/hide_avx512.c`` (an ``LD_PRELOAD``
library that hides AVX-512 from CPUID through Linux's CPUID faulting) and runs ``main.py bench``
``--runs`` times with the library and as many times without it, alternating, so that the shared
machine's drifts fall on both. Prints each run's figures, the medians and the processor's model name.

It measures the kernels' share of the difference on this core, not the other CPU's clock or
micro-architecture: a Zen 4 core runs AVX-512 on 256-bit units, an Intel core on 512-bit ones.

Needs Linux on x86-64, a C compiler (``cc``) and the ``cpuid_fault`` CPU flag; exits 1 with one line
saying which is missing, and says so when the CPU has no AVX-512 to hide (then ``main.py bench``
already measures AVX2).

Usage: ``python docs/bench_avx2.py [--runs 5] [--blocks 30] [--json OUT]``
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.cli.bench import cpu_model  # noqa: E402

SHIM_SOURCE = ROOT / "docs" / "hide_avx512.c"
#: glibc picks its string functions before the library loads; these tunables take AVX-512 from them.
GLIBC_TUNABLES = "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD"
#: The figures of ``main.py bench --json`` printed per run.
FIGURES = ("stream_realtime_factor", "mono_22050_stream_realtime_factor", "ort_ms_per_block", "phase_ms_per_block")
#: Seconds one ``main.py bench`` may take before the run is given up.
BENCH_TIMEOUT_S = 600


class Unsupported(RuntimeError):
    """This machine cannot hide AVX-512 (the message says why)."""


def cpu_flags() -> set[str]:
    """The first processor's flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def build_shim(directory: Path) -> Path:
    """Compile :data:`SHIM_SOURCE` into ``directory``; raises :class:`Unsupported` where it cannot."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise Unsupported("no C compiler (cc or gcc) on PATH to build docs/hide_avx512.c")
    library = directory / "hide_avx512.so"
    done = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(SHIM_SOURCE)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise Unsupported(f"{compiler} could not build docs/hide_avx512.c: {done.stderr.strip()}")
    return library


def hidden_env(library: Path) -> dict[str, str]:
    """The environment of a process that sees no AVX-512 (faulthandler off: it would take the traps)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    env["LD_PRELOAD"] = " ".join(filter(None, [str(library), env.get("LD_PRELOAD", "")]))
    env["GLIBC_TUNABLES"] = GLIBC_TUNABLES
    return env


def numpy_sees_avx512(env: dict[str, str] | None = None) -> bool:
    """Whether numpy, imported in a child process with ``env``, dispatches to AVX-512 kernels."""
    code = "from numpy._core._multiarray_umath import __cpu_features__ as f; print(int(f['AVX512F']))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise Unsupported(f"a process with AVX-512 hidden failed: {done.stderr.strip()}")
    return done.stdout.strip() == "1"


def bench(blocks: int, env: dict[str, str] | None) -> dict:
    """One ``main.py bench --json`` run in a child process with ``env``; its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), "bench", "--blocks", str(blocks),
                               "--json", str(out)], env=env, capture_output=True, text=True,
                              timeout=BENCH_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"main.py bench failed ({done.returncode}): {done.stderr.strip()[-400:]}")
        return json.loads(out.read_text())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind, alternating (default 5)")
    parser.add_argument("--blocks", type=int, default=30, help="main.py bench --blocks (default 30)")
    parser.add_argument("--json", type=Path, help="write every run's figures as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.blocks < 1:
        parser.error("--runs and --blocks must be at least 1")
    flags = cpu_flags()
    try:
        if "cpuid_fault" not in flags:
            raise Unsupported("this CPU or kernel has no CPUID faulting (no cpuid_fault in /proc/cpuinfo)")
        if "avx512f" not in flags:
            raise Unsupported("this CPU has no AVX-512 to hide: main.py bench already measures AVX2")
        with tempfile.TemporaryDirectory() as tmp:
            env = hidden_env(build_shim(Path(tmp)))
            if numpy_sees_avx512(env):
                raise Unsupported("numpy still sees AVX-512 with docs/hide_avx512.c loaded")
            runs: dict[str, list[dict]] = {"with AVX-512": [], "AVX-512 hidden": []}
            for i in range(args.runs):
                for kind, kind_env in (("with AVX-512", None), ("AVX-512 hidden", env)):
                    print(f"run {i + 1}/{args.runs}: {kind}", file=sys.stderr, flush=True)
                    runs[kind].append(bench(args.blocks, kind_env))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"CPU: {cpu_model()}, {args.runs} runs of each kind, alternating")
    print("| figure | kernels | runs | median |")
    print("|---|---|---|---:|")
    for figure in FIGURES:
        for kind, results in runs.items():
            values = [r[figure] for r in results]
            print(f"| {figure} | {kind} | {', '.join(f'{v:.2f}' for v in values)} | {statistics.median(values):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
