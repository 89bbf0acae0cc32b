"""The README's quick start is what CI and a new user run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the quick start has a ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_quick_start_is_exactly_two_commands_one_to_run_one_to_test() -> None:
    commands = _quick_start()
    assert len(commands) == 2
    assert commands[0].startswith("make demo") and commands[1].startswith("make test")


def test_ci_runs_the_readmes_test_command_word_for_word() -> None:
    test_command = _quick_start()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert test_command.strip() in ci_lines


def test_both_quick_start_targets_exist_in_the_makefile() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in _quick_start():
        target = command.split()[1]
        assert re.search(rf"^{target}:", makefile, re.M), target
