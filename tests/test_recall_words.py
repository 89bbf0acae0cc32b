"""Recall words: with `recall_words: true` a run first asks its model for search words, and recall ranks by them.

Whole runs against the real local HTTP server that speaks the Anthropic and
OpenAI wire formats (vault_agent.testing.fakellm), through the real SDKs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest
from test_runner import agent_for, journal_entries, make_agent, runs

from vault_agent.errors import ConfigError
from vault_agent.memory.recall_words import INSTRUCTION, MAX_CHARS, MAX_WORDS, words_from
from vault_agent.runner import RECALL_WORDS_PREVIEW, Agent
from vault_agent.testing.fakellm import Fail, FakeLLMServer, Reply
from vault_agent.vault.config import parse_model_md

WIRES = ["anthropic", "openai"]
NOTE = "Ahmed at Kapsalon Noord, Prinsengracht 12, every fifth Saturday."
ASKED = "Who looks after my hair?"


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


def salon_agent(tmp_path: Path, server: FakeLLMServer, wire: str, extra: str = "recall_words: true\n") -> Path:
    """An agent whose note on Kapsalon Noord shares no word with ASKED (nor do the related terms of either), among
    notes that do."""
    root = make_agent(tmp_path, server, wire, extra=extra)
    notes = {"kapsalon": ("Kapsalon", NOTE),
             **{f"care-{i}": (f"Plant care {i}", f"Who looks after the plants in week {i}: the neighbours.")
                for i in range(5)},
             **{f"filler-{i}": (f"Filler {i}", f"Invoice number {i} went out on time.") for i in range(100)}}
    for stem, (name, body) in notes.items():
        (root / "memory" / f"{stem}.md").write_text(f"---\ntype: user\nname: {name}\n---\n{body}\n")
    return root


def sent(server: FakeLLMServer, n: int) -> str:
    return json.dumps(server.requests[n].body)


@pytest.mark.parametrize("wire", WIRES)
def test_the_models_words_recall_a_note_the_work_item_shares_no_word_with(tmp_path: Path, server: FakeLLMServer,
                                                                          wire: str) -> None:
    root = salon_agent(tmp_path, server, wire, extra="recall_words: true\nprices:\n  claude-sonnet-5: "
                                                      "{input: 1.0, output: 1.0}\n  gpt-4o-mini: {input: 1.0, "
                                                      "output: 1.0}\n")
    server.script(Reply("hair haircut hairdresser barber kapsalon salon", input_tokens=100, output_tokens=10),
                  Reply("Ahmed.", input_tokens=1000, output_tokens=20))
    result = agent_for(root).run(ASKED)
    assert result.status == "ok" and result.text == "Ahmed."
    # The words call: the instruction and the work item, nothing from the vault, no tools.
    words_call = server.requests[0].body
    assert json.dumps(INSTRUCTION)[1:-1] in json.dumps(words_call) and ASKED in json.dumps(words_call)
    assert "Prinsengracht" not in json.dumps(words_call) and not words_call.get("tools")
    assert NOTE in sent(server, 1)
    [record] = runs(root)
    assert record["recall_words"] == "hair haircut hairdresser barber kapsalon salon" and record["iterations"] == 2
    assert record["gen_ai.usage.input_tokens"] == 1100 and record["gen_ai.usage.output_tokens"] == 30
    assert record["cost_usd"] == pytest.approx(1130 / 1e6)
    assert "1,100 in · 30 out" in journal_entries(root)[0].fields["cost"][0]


def test_without_the_setting_the_run_makes_one_call_and_recall_ranks_by_the_work_items_words(
        tmp_path: Path, server: FakeLLMServer) -> None:
    root = salon_agent(tmp_path, server, "anthropic", extra="")
    server.script(Reply("I don't know."))
    assert agent_for(root).run(ASKED).status == "ok"
    assert len(server.requests) == 1 and NOTE not in sent(server, 0) and "Plant care" in sent(server, 0)
    assert "recall_words" not in runs(root)[0]


@pytest.mark.parametrize("wire", WIRES)
def test_a_failed_words_call_leaves_the_work_items_words_and_the_run_goes_on(tmp_path: Path, server: FakeLLMServer,
                                                                             wire: str) -> None:
    root = salon_agent(tmp_path, server, wire)
    server.script(Fail(401), Reply("Plants: the neighbours."))
    result = agent_for(root).run(ASKED)
    assert result.status == "ok" and result.text == "Plants: the neighbours."
    assert any(w.startswith("recall words: ") and "recalled by the work item's own words" in w
               for w in result.warnings)
    assert "Plant care" in sent(server, 1) and NOTE not in sent(server, 1)
    [record] = runs(root)
    assert record["iterations"] == 2 and "recall_words" not in record


def test_an_empty_reply_leaves_the_work_items_words(tmp_path: Path, server: FakeLLMServer) -> None:
    root = salon_agent(tmp_path, server, "anthropic")
    server.script(Reply("  \n"), Reply("Plants."))
    assert agent_for(root).run(ASKED).status == "ok"
    assert "Plant care" in sent(server, 1) and runs(root)[0]["recall_words"] == ""


def test_a_cap_that_refuses_the_words_call_refuses_the_run_before_any_call(tmp_path: Path,
                                                                          server: FakeLLMServer) -> None:
    extra = "recall_words: true\ncost:\n  per_run_usd: 0.000001\nprices:\n  claude-sonnet-5: {input: 1.0, output: 1.0}\n"
    root = salon_agent(tmp_path, server, "anthropic", extra=extra)
    result = agent_for(root).run(ASKED)
    assert result.status == "refused" and server.requests == []
    [record] = runs(root)
    assert record["cost_usd"] == 0 and record["iterations"] == 0


def test_the_words_call_is_not_one_of_the_tool_call_rounds(tmp_path: Path, server: FakeLLMServer) -> None:
    root = salon_agent(tmp_path, server, "anthropic", extra="recall_words: true\nmax_tool_iterations: 1\n")
    server.script(Reply("hair kapsalon"), Reply("Ahmed."))
    result = agent_for(root).run(ASKED)
    assert result.status == "ok" and result.text == "Ahmed."


def test_a_stored_secret_never_reaches_the_words_call_or_the_record(tmp_path: Path, server: FakeLLMServer) -> None:
    from security_kit import store_secret

    root = salon_agent(tmp_path, server, "anthropic")
    env = {"ANTHROPIC_API_KEY": "x", **store_secret(root.parent, "BANK_TOKEN", "s3cr3t-Value-9876xyz")}
    server.script(Reply("bank s3cr3t-Value-9876xyz token"), Reply("Done."))
    assert Agent(root, env=env).run("Pay with token s3cr3t-Value-9876xyz").status == "ok"
    assert "s3cr3t-Value" not in sent(server, 0) and "[REDACTED:secret:BANK_TOKEN]" in sent(server, 0)
    logged = "".join(p.read_text() for p in (root / "log").rglob("*.jsonl"))
    assert "s3cr3t-Value" not in logged and runs(root)[0]["recall_words"] == "bank [REDACTED:secret:BANK_TOKEN] token"


def test_the_context_preview_makes_no_model_call_and_ranks_by_the_work_item(tmp_path: Path,
                                                                            server: FakeLLMServer) -> None:
    root = salon_agent(tmp_path, server, "anthropic")
    context = agent_for(root, watch=False).context(ASKED)
    assert server.requests == [] and "Plant care" in json.dumps(context.as_dict())
    assert context.warnings == [RECALL_WORDS_PREVIEW]


@pytest.mark.parametrize(("reply", "words"), [
    ("teeth dentist", "teeth dentist"),
    ("Keywords: teeth, dentist\n- clinic\n* hygienist", "teeth, dentist clinic hygienist"),
    ('"teeth" “dentist”', "teeth dentist"),
    ("Search words: teeth", "teeth"),
    ("", ""),
])
def test_the_words_are_taken_from_the_reply_as_one_line(reply: str, words: str) -> None:
    assert words_from(reply) == words


def test_a_long_reply_is_cut_to_the_most_words_and_characters_recall_ranks_by() -> None:
    assert words_from(" ".join(f"w{i}" for i in range(100))).split() == [f"w{i}" for i in range(MAX_WORDS)]
    long = words_from(" ".join("x" * 40 for _ in range(20)))
    assert len(long) <= MAX_CHARS and long.split() == ["x" * 40] * 7


def test_recall_words_must_be_true_or_false(tmp_path: Path) -> None:
    path = tmp_path / "model.md"
    assert parse_model_md(path, "---\nmodel: claude-sonnet-5\nrecall_words: true\n---\n").recall_words is True
    assert parse_model_md(path, "---\nmodel: claude-sonnet-5\n---\n").recall_words is False
    with pytest.raises(ConfigError) as err:
        parse_model_md(path, "---\nmodel: claude-sonnet-5\nrecall_words: sometimes\n---\n")
    line = err.value.one_line()
    assert "model.md" in line and "'recall_words' must be true or false" in line and "recall_words: true" in line


def test_a_search_word_too_common_to_rank_still_recalls_the_note_named_for_it(tmp_path: Path,
                                                                             server: FakeLLMServer) -> None:
    root = make_agent(tmp_path, server, "anthropic", extra="recall_words: true\n")
    notes = {"newsletter-relaunch": ("Newsletter relaunch", "Moving to Buttondown in March."),
             **{f"sent-{i}": (f"Sent {i}", f"The newsletter went out on time, issue {i}.") for i in range(130)},
             **{f"plan-{i}": (f"Garden {i}", f"The plan for bed {i}.") for i in range(3)},
             **{f"misc-{i}": (f"Misc {i}", f"Invoice {i} was paid.") for i in range(400)}}
    for stem, (name, body) in notes.items():
        (root / "memory" / f"{stem}.md").write_text(f"---\ntype: project\nname: {name}\n---\n{body}\n")
    server.script(Reply("plan sent newsletter"), Reply("Buttondown, in March."))
    assert agent_for(root).run("What's the plan for our email bulletin?").status == "ok"
    assert recalled(json.loads(sent(server, 1))) >= {"newsletter-relaunch", "plan-0"}
    # Asked in the person's words, "newsletter" would be filler: the preview recalls the garden plans alone.
    preview = agent_for(root, watch=False).context("plan sent newsletter")
    assert recalled(preview.as_dict()) == {"plan-0", "plan-1", "plan-2"}


def recalled(prompt: object) -> set[str]:
    """The stems of the notes recall packed into a prompt (a request body or a context preview)."""
    return set(re.findall(r'<note link="\[\[([^\]]+)\]\]"', json.dumps(prompt).replace('\\"', '"')))
