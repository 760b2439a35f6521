"""docs/bench_avx2.py: its library hides AVX-512 from the processes it is loaded in and only those,
and a machine that cannot hide it gets one line, not a traceback."""
from __future__ import annotations

import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = runpy.run_path(str(ROOT / "docs" / "bench_avx2.py"), run_name="bench_avx2")
CAN_HIDE = {"cpuid_fault", "avx512f"} <= BENCH["cpu_flags"]() and bool(shutil.which("cc") or shutil.which("gcc"))


@pytest.mark.skipif(not CAN_HIDE, reason="needs a CPU with AVX-512 and CPUID faulting (cpuid_fault in "
                                          "/proc/cpuinfo) and a C compiler")
def test_the_library_hides_avx512_from_numpy_in_its_process_only(tmp_path):
    env = BENCH["hidden_env"](BENCH["build_shim"](tmp_path))
    assert BENCH["numpy_sees_avx512"](None)
    assert not BENCH["numpy_sees_avx512"](env)
    # AVX2 stays: the kernels picked are the AVX2 ones, not the baseline's.
    code = "from numpy._core._multiarray_umath import __cpu_features__ as f; print(int(f['AVX2']), int(f['FMA3']))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["1", "1"]


def test_a_machine_without_cpuid_faulting_gets_one_line(monkeypatch, capsys):
    # A mock: a CPU without CPUID faulting cannot be made on this one; the flags are replaced instead.
    monkeypatch.setitem(BENCH["main"].__globals__, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert BENCH["main"](["--runs", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: this CPU or kernel has no CPUID faulting (no cpuid_fault in /proc/cpuinfo)"
