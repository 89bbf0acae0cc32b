"""`vault-agent mcp` spoken to by the official MCP client (stdio_client + ClientSession) from the same package."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from vault_agent.errors import UnknownSearchType, VaultAgentError
from vault_agent.testing.fakellm import FakeLLMServer, Reply
from vault_agent.vault import runlog
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.templates import create_agent

mcp = pytest.importorskip("mcp")


def _vault(tmp_path: Path, server: FakeLLMServer) -> Path:
    vault = tmp_path / "vault"
    create_agent(vault, "sample", "sample")
    root = vault / "helper"
    (root / "persona").mkdir(parents=True)
    (root / "persona" / "IDENTITY.md").write_text("# Helper\n")
    (root / "model.md").write_text(f"---\nprovider: anthropic\nmodel: claude-sonnet-5\n"
                                   f"base_url: {server.anthropic_base_url}\n---\n")
    (root / "tools.md").write_text("---\ntools: []\n---\n")
    return vault


async def _session(vault: Path, calls: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, str], list[Any]]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "vault_agent.cli", "--vault", str(vault), "mcp"],
                                   env={"ANTHROPIC_API_KEY": "test-key"})
    results = []
    with open(vault / "server.log", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                described = {t.name: t.description or "" for t in (await session.list_tools()).tools}
                for name, args in calls:
                    results.append(await session.call_tool(name, args))
    return described, results


def test_an_mcp_client_lists_runs_searches_and_reads_through_the_official_sdk(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        server.script(Reply("Booked the review for Thursday.", input_tokens=400, output_tokens=20))
        vault = _vault(tmp_path, server)
        described, (listed, ran, found, wrong_type, note, by_stem, escape) = anyio.run(_session, vault, [
            ("list_agents", {}),
            ("run_agent", {"agent": "helper", "work_item": "Book the design review"}),
            ("search_memory", {"agent": "sample", "query": "Lindqvist accountant", "limit": 3}),
            ("search_memory", {"agent": "sample", "query": "accountant", "type": "notes"}),
            ("read_note", {"agent": "sample", "path": "memory/day-rate-from-january-2027.md"}),
            ("read_note", {"agent": "sample", "path": "day-rate-2026"}),
            ("read_note", {"agent": "sample", "path": "../../etc/passwd"}),
        ])
    assert list(described) == ["list_agents", "run_agent", "search_memory", "read_note"]
    # A client model is told, as the agent is, that this is a keyword search to retry in other words.
    assert "search again in other words" in described["search_memory"]
    agents = json.loads(listed.content[0].text)
    assert [a["name"] for a in agents] == ["helper", "sample"] and agents[1]["model"] == "anthropic:claude-sonnet-5"
    result = json.loads(ran.content[0].text)
    assert (result["status"], result["text"]) == ("ok", "Booked the review for Thursday.")
    assert result["cost_usd"] > 0 and not ran.is_error
    [record] = runlog.iter_runs(AgentFolder(vault / "helper").read_log().records)
    assert (record["run_id"], record["trigger"]) == (result["run_id"], "mcp")
    hits = json.loads(found.content[0].text)
    assert hits[0]["path"] == "memory/accountant-lindqvist-partners.md" and len(hits) <= 3
    assert wrong_type.is_error and "unknown type 'notes' (fix: use one of archive, " in wrong_type.content[0].text
    assert "€780" in note.content[0].text and not note.is_error
    assert by_stem.content[0].text.startswith("(this note is superseded by [[day-rate-from-january-2027]]: not current)"
                                              "\n---\ntype: decision")
    assert escape.is_error and "not a Markdown file inside the agent folder" in escape.content[0].text


def test_search_memory_ranks_name_matches_first(tmp_path: Path) -> None:
    from vault_agent.ops.mcp_server import VaultTools
    from vault_agent.vault.folder import Vault

    create_agent(tmp_path / "vault", "sample", "sample")
    tools = VaultTools(Vault(tmp_path / "vault"))
    hits = tools.search_memory("sample", "day rate 2027", limit=2)
    assert [h["path"] for h in hits] == ["memory/day-rate-from-january-2027.md", "memory/day-rate-2026.md"]
    assert tools.search_memory("sample", "?!") == []
    decisions = tools.search_memory("sample", "day rate", type="decision")
    assert decisions and {h["type"] for h in decisions} == {"decision"}
    assert {h["kind"] for h in tools.search_memory("sample", "studio", type="wiki")} == {"wiki"}
    with pytest.raises(UnknownSearchType, match="unknown type 'notes'"):
        tools.search_memory("sample", "day rate", type="notes")


def test_a_client_is_told_which_notes_are_not_current_as_the_agent_is(tmp_path: Path) -> None:
    from vault_agent.ops.mcp_server import VaultTools
    from vault_agent.vault.folder import Vault

    create_agent(tmp_path / "vault", "sample", "sample")  # day-rate-from-january-2027 supersedes day-rate-2026
    tools = VaultTools(Vault(tmp_path / "vault"))
    marks = {h["path"]: h["outdated"] for h in tools.search_memory("sample", "day rate 2027", limit=2)}
    assert marks == {"memory/day-rate-from-january-2027.md": None,
                     "memory/day-rate-2026.md": "superseded by [[day-rate-from-january-2027]]"}
    assert tools.read_note("sample", "day-rate-2026").startswith(
        "(this note is superseded by [[day-rate-from-january-2027]]: not current)\n")
    assert tools.read_note("sample", "day-rate-from-january-2027").startswith("---")


def test_search_memory_returns_its_limit_of_hits_from_the_read_grant_however_many_wiki_pages_outrank_them(
        tmp_path: Path) -> None:
    from memory_helpers import outranked_notes

    from vault_agent.ops.mcp_server import VaultTools
    from vault_agent.vault.folder import Vault
    from vault_agent.vault.layout import AgentPaths

    vault = tmp_path / "vault"
    root = create_agent(vault, "sample", "sample")
    tools_md = root / "tools.md"
    tools_md.write_text(tools_md.read_text().replace('read: ["."]', 'read: ["memory/"]'))
    notes = outranked_notes(AgentPaths(root), above="wiki")  # 70 pages: more than the 50 it once asked for
    tools = VaultTools(Vault(vault))
    found = {limit: [h["path"] for h in tools.search_memory("sample", "kayak", limit=limit)] for limit in (0, 3, 50)}
    assert found == {0: notes[:1], 3: notes[:3], 50: notes}  # 0 is taken for 1; 50: every readable match


def test_a_client_sees_only_what_the_agent_may_read_with_stored_secrets_scrubbed(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from security_kit import store_secret

    from vault_agent.ops.mcp_server import VaultTools
    from vault_agent.vault.folder import Vault

    vault = tmp_path / "vault"
    root = create_agent(vault, "sample", "sample")
    for key, value in store_secret(vault, "BANK_TOKEN", "s3cr3t-Value-9876xyz").items():
        monkeypatch.setenv(key, value)
    (root / "memory" / "bank-token.md").write_text(
        "---\ntype: reference\nname: bank token\n---\nUse token s3cr3t-Value-9876xyz at the bank.\n")
    tools = VaultTools(Vault(vault))
    [hit] = tools.search_memory("sample", "bank token", limit=1)
    shown = json.dumps(hit) + tools.read_note("sample", "bank-token")
    assert "s3cr3t-Value" not in shown and "[REDACTED:secret:BANK_TOKEN]" in shown
    assert tools.search_memory("sample", "studio handbook", type="wiki")
    tools_md = root / "tools.md"
    tools_md.write_text(tools_md.read_text().replace('read: ["."]', 'read: ["memory/"]'))
    assert tools.search_memory("sample", "studio handbook", type="wiki") == []
    with pytest.raises(VaultAgentError, match="outside the agent's read grant"):
        tools.read_note("sample", "wiki/studio-handbook.md")
