"""model.md, tools.md and persona: our format, atomic-agents-stack's, and clear errors for bad input."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from vault_agent.errors import ConfigError
from vault_agent.vault.config import load_config, parse_model_md, parse_tools_md
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.layout import AgentPaths

ATOMIC_MODEL = textwrap.dedent("""\
    # MODEL — Ledger

    ## Default model

    **`claude-opus-4-1`**

    Chosen for careful reasoning over household numbers.

    ## Fallback

    **`claude-sonnet-5`**

    ## Token budget

    | Limit | Value |
    |---|---|
    | Max output per turn | 3,000 tokens |

    ## Cost guardrails

    ```yaml
    cost_guardrails:
      enabled: true
      daily_cap_usd: 4.00
      monthly_cap_usd: 60.00
      daily_cap_action: skip
      monthly_cap_action: alert
      warning_thresholds: [0.50, 0.80]
    ```
    """)

ATOMIC_TOOLS = textwrap.dedent("""\
    # TOOLS: ledger

    ## Read paths

    - ./ -- full read access to own context
    - sources/ -- documents the operator drops here

    ## Write paths (own folder ONLY)

    - memory/ -- atomic note capture
    - Own `journal/` (narrative entries)
    - <!-- add more here -->

    ## Hard NOs

    - Never write outside own folder.
    """)

ATOMIC_NOTE = textwrap.dedent("""\
    ---
    schema_version: 1
    name: Emergency fund target — six months
    description: Keep six months of expenses liquid before extra debt payments
    type: decision
    captured: 2026-04-22
    last_seen: 2026-05-06
    sources:
      - conversation_2026-04-22
    confidence: high
    pinned: false
    expires_at: 2026-12-31
    supersedes: null
    superseded_by: null
    tags: [savings, target]
    ---

    **Decided:** six months of expenses, held in a high-yield account.
    """)

ATOMIC_INDEX = textwrap.dedent("""\
    # Ledger — Memory Index

    ## Locked Decisions

    - [Emergency fund target](decision_emergency_fund.md) — six months liquid first
    """)


@pytest.fixture
def atomic_agent(tmp_path: Path) -> AgentFolder:
    root = tmp_path / "vault" / "ledger"
    for rel, text in {
        "persona/IDENTITY.md": "# Ledger\n\nA careful household-finance advisor.\n",
        "persona/SOUL.md": "# Soul\n\nCalm, exact, never preachy.\n",
        "persona/USER.md": "# User\n\nSam, two kids, paying down a card.\n",
        "model.md": ATOMIC_MODEL,
        "tools.md": ATOMIC_TOOLS,
        "memory/INDEX.md": ATOMIC_INDEX,
        "memory/decision_emergency_fund.md": ATOMIC_NOTE,
        "log/2026-05/2026-05-06.jsonl": '{"ts":"2026-05-06T11:32:00-05:00","trigger":"skill","model":'
                                        '"claude-opus-4-1","input_tokens":4102,"output_tokens":892,'
                                        '"status":"ok","summary":"Bonus question","cost_usd":0.13}\n',
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return AgentFolder(root)


def test_an_atomic_agents_stack_folder_loads_without_edits(atomic_agent: AgentFolder) -> None:
    config = atomic_agent.load_config()
    assert config.model.primary.label() == "anthropic:claude-opus-4-1"
    assert config.model.fallback is not None and config.model.fallback.model == "claude-sonnet-5"
    assert config.model.max_output_tokens == 3000
    caps = config.model.caps
    # monthly_cap_action: alert means "warn and proceed" there, so only the daily cap binds.
    assert (caps.daily_usd, caps.monthly_usd, caps.on_cap, caps.warn_at) == (4.0, None, "refuse", (0.5, 0.8))
    assert config.tools.capabilities == {"read": ["./", "sources/"], "write": ["memory/", "journal/"]}
    assert "write_file" in config.tools.tools and "shell" not in config.tools.tools
    assert "Calm, exact" in config.persona.soul
    [note] = atomic_agent.scan_notes()
    assert atomic_agent.notes.findings == []
    assert (note.type, note.name, note.confidence) == ("decision", "Emergency fund target — six months", "high")
    assert str(note.created) == "2026-04-22" and str(note.updated) == "2026-05-06"
    assert str(note.expires) == "2026-12-31" and note.tags == ["savings", "target"]
    [record] = atomic_agent.read_log().records
    from vault_agent.vault.runlog import record_cost, record_model, record_tokens
    assert record_model(record) == "claude-opus-4-1" and record_cost(record) == 0.13
    assert record_tokens(record)["input"] == 4102


def test_atomic_index_keeps_its_hand_lines_when_the_runtime_adds_its_block(atomic_agent: AgentFolder) -> None:
    atomic_agent.rewrite_index()
    text = atomic_agent.paths.index_md.read_text()
    assert text.startswith(ATOMIC_INDEX)
    assert "[[decision_emergency_fund|Emergency fund target — six months]]" in text
    assert atomic_agent.paths.memory.joinpath("decision_emergency_fund.md").read_text() == ATOMIC_NOTE


def test_a_bare_ollama_model_name_with_a_colon_is_not_read_as_a_provider(tmp_path: Path) -> None:
    config = parse_model_md(tmp_path / "model.md", MODEL.format(provider="ollama", extra="fallback: qwen2.5:7b\n"))
    assert config.fallback is not None and config.fallback.model == "qwen2.5:7b"
    assert config.fallback.provider == "ollama"


def test_disabled_guardrails_mean_no_caps(tmp_path: Path) -> None:
    text = ATOMIC_MODEL.replace("enabled: true", "enabled: false")
    assert parse_model_md(tmp_path / "model.md", text).caps.daily_usd is None


MODEL = "---\nprovider: {provider}\nmodel: m1\n{extra}---\nProse.\n"


@pytest.mark.parametrize("extra, message", [
    ("", None),
    ("max_output_tokens: lots\n", "'max_output_tokens' must be a number"),
    ("cost:\n  daily_usd: -1\n", "'cost.daily_usd' must be at least 0"),
    ("cost:\n  on_cap: panic\n", "on_cap must be refuse or fallback"),
    ("cost:\n  warn_at: [2]\n", "fractions of a cap"),
    ("fallback: 42\n", "'fallback' must be 'provider:model'"),
    ("fallback: {provider: nowhere, model: x}\n", "unknown provider 'nowhere'"),
    ("base_url: ftp://x\n", "base_url must be an http(s) URL"),
    ("prices:\n  m1: {input: 1}\n", "prices.m1.output"),
    ("max_output_tokens: .inf\n", "'max_output_tokens' must be a number, got inf"),
    ("context_budget: .nan\n", "'context_budget' must be a number, got nan"),
    ("timeout_s: .nan\n", "'timeout_s' must be a number, got nan"),
    ("context_budget: 1024.5\n", "'context_budget' must be a whole number, got 1024.5"),
    ("max_output_tokens: 8192\ncontext_window: 8192\n", "'max_output_tokens' (8,192) leaves no room"),
])
def test_model_md_values_are_checked_with_one_line_errors(tmp_path: Path, extra: str, message: str | None) -> None:
    path = tmp_path / "model.md"
    text = MODEL.format(provider="openai", extra=extra)
    if message is None:
        config = parse_model_md(path, text)
        assert config.primary.wire == "openai" and config.prose == "Prose."
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_model_md(path, text)
    assert info.value.path == path and "\n" not in info.value.one_line()


def test_unknown_provider_error_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model_md(tmp_path / "model.md", MODEL.format(provider="acme-ai", extra=""))
    assert "unknown provider 'acme-ai'" in info.value.message and "ollama" in (info.value.fix or "")


def test_openai_compatible_presets_fill_in_base_url_and_unknown_keys_are_kept(tmp_path: Path) -> None:
    config = parse_model_md(tmp_path / "model.md", MODEL.format(provider="ollama", extra="house_rule: 1\n"))
    assert config.primary.base_url == "http://localhost:11434/v1" and config.primary.wire == "openai"
    assert config.primary.key_env() is None and config.extra == {"house_rule": 1}


def test_tools_md_grants_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="list of tool names"):
        parse_tools_md(tmp_path / "tools.md", "---\ntools: read_file\n---\n")
    config = parse_tools_md(tmp_path / "tools.md", "---\ntools: [read_file]\ncapabilities: {read: ['.']}\n---\nUse care.\n")
    assert config.tools == ["read_file"] and config.prose == "Use care."
    assert parse_atomic_default_is_read_mostly(tmp_path)


def parse_atomic_default_is_read_mostly(tmp_path: Path) -> bool:
    config = parse_tools_md(tmp_path / "tools.md", "# Tools\n\n## Read paths\n\n- ./\n")
    return config.capabilities == {"read": ["./"]} and "write_file" not in config.tools


def test_loading_an_agents_config_opens_no_note(atomic_agent: AgentFolder) -> None:
    # Config load time must not grow with the note count: it never opens memory/.
    # (bench/bench_vault.py measures the time itself.)
    opened: list[str] = []
    active = [True]

    def hook(event: str, args: tuple) -> None:
        if active[0] and event == "open" and isinstance(args[0], (str, Path)):
            opened.append(str(args[0]))

    sys.addaudithook(hook)
    try:
        load_config(AgentPaths(atomic_agent.root))
    finally:
        active[0] = False
    assert any(p.endswith("model.md") for p in opened)
    assert not [p for p in opened if "/memory/" in p]
