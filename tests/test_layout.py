"""House rules, checked where they are written (README, "Layout"): one direction through the stack
(the import-linter contracts in pyproject.toml), the engine never imports the GUI, and the MIDI
code (``engine.control``) is imported only by itself, ``main.py`` and ``gui/`` among the product's code
(``engine/``, ``models/``, ``gui/``, ``main.py``; tests and benchmark scripts may drive MIDI directly)."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute names (``from engine.control import midi`` gives both
    ``engine.control`` and ``engine.control.midi``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _product_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _product_files("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_never_imports_the_gui(path):
    assert not {n for n in _imports(path) if n == "gui" or n.startswith("gui.")}, f"{path} imports gui/"


@pytest.mark.parametrize("path", _product_files("engine", "models"), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_control_main_and_gui_import_the_midi_code(path):
    if (ROOT / "engine" / "control") in path.parents:
        return  # the control subpackage itself
    midi = {n for n in _imports(path) if n == "engine.control" or n.startswith("engine.control.")}
    assert not midi, f"{path.relative_to(ROOT)} imports the MIDI code ({', '.join(sorted(midi))})"


def test_the_rules_see_real_imports(tmp_path):
    """The checks read real import statements (so they can fail): a file that imports both is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import gui.app\nfrom engine.control import midi\n")
    assert {"gui.app", "engine.control", "engine.control.midi"} <= _imports(bad)


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the packages under ``root`` with ``root/pyproject.toml``'s contracts."""
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--config", str(root / "pyproject.toml")],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def test_imports_run_one_way_down_the_stack():
    """Every contract of ``[tool.importlinter]`` holds (README's table of allowed imports)."""
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module, line", [
    ("engine/analysis/upward.py", "from engine.live import stream\n"),   # analysis reaching up to live
    ("engine/control/sideways.py", "import engine.live.sinks\n"),         # control and live are independent
    ("engine/live/sinks_up.py", "from engine.control import midi\n"),      # live may not use MIDI either
    ("engine/cli/window.py", "import gui.app\n"),                         # the command line never opens the window
])
def test_the_contracts_catch_an_import_that_runs_up(tmp_path, module, line):
    """The check can fail: a copy of the product with one import against the table breaks a contract."""
    for folder in ("engine", "models", "gui"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert _lint_imports(tmp_path).returncode == 0
    (tmp_path / module).write_text(line)
    result = _lint_imports(tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr


def test_nothing_in_the_product_imports_main():
    """``main.py`` is the top of the stack (import-linter cannot take a lone module as a root)."""
    for path in _product_files("engine", "models", "gui"):
        assert "main" not in _imports(path), f"{path.relative_to(ROOT)} imports main"
