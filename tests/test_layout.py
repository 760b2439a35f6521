"""House rules, checked where they are written (DESIGN.md): the engine never imports the GUI, and the MIDI
code (``engine.control``) is imported only by itself, ``main.py`` and ``gui/`` among the product's code
(``engine/``, ``models/``, ``gui/``, ``main.py``; tests and benchmark scripts may drive MIDI directly)."""
import ast
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
