"""The docs say what the code does: README's command-line synopsis names every command and option
of ``main.build_parser()`` and no other, and README, the code and the tests cite only files that exist."""
import re
from pathlib import Path

import pytest

import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _synopsis() -> dict[str, str]:
    """README's synopsis (the first code block under "Command line"), command → its lines' text.
    ``python main.py [gui] ...`` is the window's line."""
    section = README[README.index("## Command line"):]
    block = section[section.index("```\n") + 4: section.index("\n```", section.index("```\n") + 4)]
    commands: dict[str, str] = {}
    command = None
    for line in block.splitlines():
        if line.startswith("python main.py"):
            words = line[len("python main.py"):].split()
            first = words[0].strip("[]") if words else ""
            command = first if first and not first.startswith("-") else "gui"
            commands[command] = commands.get(command, "") + " " + line
        elif command is not None:
            commands[command] += " " + line
    return commands


def _subparsers() -> dict[str, object]:
    parser = main.build_parser()
    [action] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return dict(action.choices)


def _options(parser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}


SYNOPSIS = _synopsis()


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_the_synopsis_names_every_command_and_option_the_parser_takes(command):
    assert command in SYNOPSIS, f"README's synopsis has no line for {command!r}"
    text = SYNOPSIS[command]
    missing = sorted(o for o in _options(_subparsers()[command]) if not re.search(re.escape(o) + r"(?![\w-])", text))
    assert not missing, f"README's synopsis of {command!r} lacks {', '.join(missing)}"


@pytest.mark.parametrize("command", sorted(SYNOPSIS))
def test_the_synopsis_names_nothing_the_parser_does_not_take(command):
    assert command in _subparsers(), f"README's synopsis names a command {command!r} the parser does not have"
    named = set(re.findall(r"--[a-z][a-z-]*", SYNOPSIS[command]))
    assert named <= _options(_subparsers()[command]), f"{command}: {sorted(named - _options(_subparsers()[command]))}"


def test_the_synopsis_check_sees_a_missing_option():
    """The check can fail: the synopsis without ``--blocks`` lacks what ``bench`` takes."""
    assert "--blocks" in _options(_subparsers()["bench"]) and "--blocks" in SYNOPSIS["bench"]
    assert not re.search(re.escape("--blocks") + r"(?![\w-])", SYNOPSIS["bench"].replace("--blocks", ""))


#: Project files cited by name: repository paths and upper-case documents (``DESIGN.md``).
_CITED = re.compile(r"(?<![\w/.~-])((?:engine|gui|models|tests|docs)/[\w/.-]*\w\.(?:py|md|png|json|pt)|[A-Z][A-Z_]+\.md)\b")


def _sources() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "main.py", ROOT / "pyproject.toml"]
    for folder in ("engine", "gui", "models", "tests", "docs"):
        files += sorted((ROOT / folder).rglob("*.py")) + sorted((ROOT / folder).rglob("*.md"))
    return files


#: Tests that name missing files on purpose (to show a check fails on them).
_CITE_ON_PURPOSE = {ROOT / "tests" / "test_docs.py", ROOT / "tests" / "test_layout.py"}


@pytest.mark.parametrize("path", [p for p in _sources() if p not in _CITE_ON_PURPOSE],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_cited_exists(path):
    cited = set(_CITED.findall(path.read_text()))
    missing = sorted(c for c in cited if not (ROOT / c).exists() and not (ROOT / "docs" / c).exists())
    assert not missing, f"{path.relative_to(ROOT)} cites {', '.join(missing)}, which is not in the project"


def test_the_citation_check_sees_a_missing_file():
    assert _CITED.findall("see DESIGN.md and engine/live/params.py") == ["DESIGN.md", "engine/live/params.py"]
