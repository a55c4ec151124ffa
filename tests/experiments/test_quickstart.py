"""The README's Quick start is docs/quickstart.sh: the same commands, each parsed here, and all of them
run in order (slow) the way a new user runs them."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from effnas.experiments.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from run_quickstart import steps  # noqa: E402


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.startswith("effnas ")]


def test_the_readme_quick_start_is_the_tested_script() -> None:
    assert _readme_commands() == [c for _, c in steps()]
    assert len(steps()) >= 10 and all(what for what, _ in steps())  # each line says what it does


@pytest.mark.parametrize("command", [c for _, c in steps() if c != "effnas --help"])
def test_every_quick_start_command_parses(command: str) -> None:
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.func)


@pytest.mark.slow
def test_the_quick_start_runs_from_an_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for _, command in steps():
        argv = shlex.split(command)[1:]
        assert main(argv if argv == ["--help"] else [*argv, "--quiet"]) == 0, command
    assert (tmp_path / "runs" / "family" / "family.csv").is_file() and (tmp_path / "t3.json").is_file()
