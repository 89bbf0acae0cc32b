"""`vault-agent mcp`: the vault as an MCP server over stdio (list_agents, run_agent, search_memory, read_note).

Built on the official `mcp` package (imported only by this command). Runs go
through Agent.run with trigger `mcp`, so they are logged, journaled and capped
like any other; read_note reads Markdown inside an agent folder and nothing
outside it or in its hidden derived state. The client is a model too: what
search_memory and read_note return is what the agent's own memory tools would
show it, inside its read grant and scrubbed of stored secret values.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any, Callable

from ..errors import VaultAgentError
from ..memory.catalog import Catalog
from ..runner import Agent
from ..security.policy import Policy, parse_grants
from ..security.redact import load_redactor
from ..tools.memory_tools import OTHER_WORDS, TYPE_CHOICES, not_current
from ..vault import runlog
from ..vault.folder import AgentFolder, Vault
from . import schedule as sched

MAX_NOTE_CHARS = 200_000
# What the agent's own memory_search says, for a client model: a keyword search, to retry in other words.
SEARCH_MEMORY = ("Keyword search of AGENT's notes, wiki, journal and skills (their words, aliases and close "
                 "relatives), best first: path, type, name and description of each. When nothing fits, search "
                 f"again in other words: {OTHER_WORDS}. `type` (optional): {TYPE_CHOICES}.")


class VaultTools:
    """The four tools as plain methods, so the protocol layer stays a thin wrapper."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._agents: dict[str, Agent] = {}

    def list_agents(self) -> list[dict[str, Any]]:
        out = []
        for name in self.vault.agent_names():
            folder = self.vault.agent(name)
            try:
                model = folder.load_config().model.primary.label()
            except VaultAgentError as exc:
                model = f"unusable model.md: {exc.message}"
            last = next(iter(reversed(list(runlog.iter_runs(_newest_day(folder))))), None)
            out.append({"name": name, "model": model, "paused": sched.pause_info(folder) is not None,
                        "last_run": {k: last.get(k) for k in ("run_id", "ts", "status")} if last else None})
        return out

    def run_agent(self, agent: str, work_item: str) -> dict[str, Any]:
        if agent not in self._agents:
            self._agents[agent] = Agent(self.vault.agent(agent).root, watch=False)
        result = self._agents[agent].run(work_item, trigger="mcp")
        return {"status": result.status, "text": result.text, "run_id": result.run_id,
                "cost_usd": result.cost_usd, "error": result.error, "model": result.model,
                "notes": [c.path for c in result.captures]}

    def search_memory(self, agent: str, query: str, limit: int = 10, type: str | None = None) -> list[dict[str, Any]]:
        """The same ranked search as `vault-agent search` and the agent's memory_search tool; `outdated` says
        why a note is not current ("superseded by [[x]]", "expired YYYY-MM-DD") as memory_search does."""
        from ..memory.search import outdated, search

        folder = self.vault.agent(agent)
        readable, scrub = _shown(folder)
        with Catalog(folder.paths) as catalog:
            catalog.sync()
            hits = search(catalog, query, type=type or None, limit=max(1, min(limit, 50)), readable=readable)
            past = outdated(catalog, [(h.path, h.stem, h.name) for h in hits], today=dt.date.today().isoformat())
        return [{**{k: scrub(v) if isinstance(v, str) else v for k, v in h.as_dict().items()},
                 "outdated": past.get(h.path)} for h in hits]

    def read_note(self, agent: str, path: str) -> str:
        """A note by path, stem, name or [[wikilink]], resolved and marked as the agent's memory_read tool does."""
        from ..memory.search import read_note_by_ref

        folder = self.vault.agent(agent)
        readable, scrub = _shown(folder)
        with Catalog(folder.paths) as catalog:
            catalog.sync()
            found = read_note_by_ref(folder.paths, catalog, path)
            if found is not None and not readable(found.path):
                raise VaultAgentError(f"{found.path} is outside the agent's read grant", path=folder.paths.tools_md,
                                      fix="grant it under read: in tools.md to show it to the agent and its clients")
            if found is None:
                raise VaultAgentError(f"{path!r} is not a Markdown file inside the agent folder that its index "
                                      "knows", path=folder.root,
                                      fix="give a path such as memory/day-rate-2026.md, a note's stem or name; "
                                          "find notes with search_memory")
            # Marked as memory_read marks it, so a client does not take an outdated note for current.
            return scrub(not_current(catalog, found, path) + found.text[:MAX_NOTE_CHARS])

    def close(self) -> None:
        for agent in self._agents.values():
            agent.close()


def _shown(folder: AgentFolder) -> tuple[Callable[[str], bool], Callable[[str], str]]:
    """Whether the agent may read a path (tools.md's read grant), and the scrubber of its runs."""
    config = folder.load_config()
    rules = Policy(folder.root, parse_grants(config.tools), tools_md=config.tools.path).paths
    redactor, _, warning = load_redactor(folder.root.parent, os.environ)
    if warning:
        # A run goes on with a warning in its record; a client has no record to read it in.
        raise VaultAgentError(warning, path=folder.root.parent,
                              fix="give the MCP server the secret store's key as its runs get it (spec/secrets.md)")
    return (lambda rel: rules.allows(rel, "read")), redactor.scrub


def _newest_day(folder: AgentFolder) -> list[dict[str, Any]]:
    files = runlog.day_files(folder.paths.log)
    return runlog.read_day(files[-1]).records if files else []


def serve(vault: Vault) -> None:
    """Serve the tools on stdin/stdout until the client disconnects."""
    import anyio
    from mcp.server import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    def guarded(fn: Any, *args: Any) -> Any:
        # A user error reaches the client as the tool's one-line error text, not as a crash.
        try:
            return fn(*args)
        except VaultAgentError as exc:
            raise ToolError(exc.one_line()) from None

    tools = VaultTools(vault)
    server = MCPServer("vault-agent", instructions=(
        "Agents that live in a folder of Markdown. list_agents first; run_agent runs one on a work item "
        "(logged and cost-capped); search_memory and read_note read what an agent remembers."))

    @server.tool()
    def list_agents() -> str:
        """The agents in the vault: name, model, whether scheduled runs are paused, the last run."""
        return json.dumps(guarded(tools.list_agents), ensure_ascii=False)

    @server.tool()
    async def run_agent(agent: str, work_item: str) -> str:
        """Run AGENT on one work item; returns status, text, run_id, cost_usd and the notes it saved."""
        result = await anyio.to_thread.run_sync(guarded, tools.run_agent, agent, work_item)
        return json.dumps(result, ensure_ascii=False)

    @server.tool(description=SEARCH_MEMORY)
    def search_memory(agent: str, query: str, limit: int = 10, type: str | None = None) -> str:
        return json.dumps(guarded(tools.search_memory, agent, query, limit, type), ensure_ascii=False)

    @server.tool()
    def read_note(agent: str, path: str) -> str:
        """The Markdown of one note of AGENT: a path such as memory/x.md or wiki/y.md, or a note's file stem."""
        return guarded(tools.read_note, agent, path)

    try:
        anyio.run(server.run_stdio_async)
    finally:
        tools.close()
