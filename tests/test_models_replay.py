"""Replay transcripts: playing turns in order, clear errors, recording, and the spec's example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vault_agent.errors import ConfigError
from vault_agent.models import (
    Completion,
    CompletionRequest,
    Message,
    ModelResponseError,
    ReplayModel,
    ToolCall,
    Usage,
    record_transcript,
)

SPEC = Path(__file__).resolve().parents[1] / "spec" / "replay.md"
TRANSCRIPT = """\
model: claude-sonnet-5
description: two turns
turns:
  - text: Looking.
    tool_calls:
      - {name: read_file, arguments: {path: a.md}, id: t1}
      - {name: list_dir, arguments: {}}
    usage: {input_tokens: 10, output_tokens: 3, cache_write_tokens: 7}
  - text: Done.
"""


def ask() -> CompletionRequest:
    return CompletionRequest(system=[], messages=[Message("user", "anything")])


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_replay_plays_turns_in_order_then_fails_clearly(tmp_path: Path) -> None:
    model = ReplayModel(write(tmp_path, TRANSCRIPT))
    first = model.complete(ask())
    assert first.tool_calls == [ToolCall("t1", "read_file", {"path": "a.md"}),
                                ToolCall("replay_1_2", "list_dir", {})]
    assert (first.text, first.stop_reason, first.usage) == ("Looking.", "tool_use", Usage(10, 3, 0, 7))
    assert (first.model, first.provider, first.replay) == ("claude-sonnet-5", "replay", True)
    pieces: list[str] = []
    second = model.complete(ask(), on_text=pieces.append)
    assert (second.text, second.stop_reason, second.usage, pieces) == ("Done.", "end_turn", Usage(), ["Done."])
    with pytest.raises(ModelResponseError, match=r"replay transcript .*t\.yaml has no more turns"):
        model.complete(ask())


def test_replay_without_a_model_reports_the_given_name(tmp_path: Path) -> None:
    model = ReplayModel(write(tmp_path, "turns: [{text: hi}]\n"), model_name="gpt-4o-mini")
    assert model.complete(ask()).model == "gpt-4o-mini"


@pytest.mark.parametrize("text,expected", [
    ("turns:\n  - text: ok\n  - text: [not, text]\n", r"replay turn 2: 'text' must be text"),
    ("turns:\n  - tool_calls: [{arguments: {}}]\n", r"replay turn 1: tool call 1 has no name"),
    ("turns:\n  - tool_calls: [{name: x, arguments: [1]}]\n", r"replay turn 1: tool call 1 \(x\): 'arguments'"),
    ("turns:\n  - usage: {input_tokens: -1}\n", r"replay turn 1: usage.input_tokens must be"),
    ("turns:\n  - usage: {tokens: 1}\n", r"replay turn 1: unknown usage key 'tokens'"),
    ("turns:\n  - just text\n", r"replay turn 1: must be a mapping"),
    ("model: x\n", r"has no 'turns' list"),
    ("turns: [unclosed\n", r"does not parse at line"),
])
def test_malformed_transcript_is_a_config_error_naming_file_turn_and_fix(
        tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as err:
        ReplayModel(path)
    assert err.value.path == path and err.value.fix
    assert "\n" not in err.value.one_line()


def test_missing_transcript_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="replay transcript not found"):
        ReplayModel(tmp_path / "nope.yaml")


def test_json_transcript_is_read_by_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"model": "m", "turns": [{"text": "from json"}]}), "t.json")
    assert ReplayModel(path).complete(ask()).text == "from json"


@pytest.mark.parametrize("name", ["rec.yaml", "rec.json"])
def test_recorded_transcript_plays_back_the_same_completions(tmp_path: Path, name: str) -> None:
    recorded = [
        Completion("Reading “notes”.", [ToolCall("toolu_1", "read_file", {"path": "a.md", "n": [1, 2]})],
                   Usage(100, 20, 300, 40), "claude-sonnet-5-20250929", "anthropic", "tool_use"),
        Completion("All done.", [], Usage(5, 2), "claude-sonnet-5-20250929", "anthropic", "end_turn"),
    ]
    path = tmp_path / name
    record_transcript(recorded, path, "claude-sonnet-5")
    model = ReplayModel(path)
    played = [model.complete(ask()) for _ in recorded]
    for orig, back in zip(recorded, played):
        assert (back.text, back.tool_calls, back.usage, back.stop_reason) == (
            orig.text, orig.tool_calls, orig.usage, orig.stop_reason)
        assert back.model == "claude-sonnet-5" and back.replay


def test_spec_example_transcript_plays(tmp_path: Path) -> None:
    doc = SPEC.read_text(encoding="utf-8")
    m = re.search(r"^```yaml\n(.*?)^```", doc, re.M | re.S)
    assert m and 40 <= len(doc.splitlines()) <= 120
    model = ReplayModel(write(tmp_path, m.group(1)))
    first, second = model.complete(ask()), model.complete(ask())
    assert first.tool_calls[0].name == "read_file" and first.usage.cache_write_tokens == 900
    assert second.stop_reason == "end_turn" and second.usage.cache_read_tokens == 900
