"""The examples in spec/custom-tool.md, approval.md, secrets.md and tools-md.md's capability grammar, parsed by
the real code, so those documents cannot drift from it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from vault_agent.security.approvals import APPROVED, ApprovalRequest, FileApprover, read_status
from vault_agent.security.policy import parse_grants
from vault_agent.security.secrets import SecretStore, store_path
from vault_agent.tools.custom import _KEYS, load_manifest
from vault_agent.vault import frontmatter
from vault_agent.vault.config import ToolsConfig

from security_kit import KEY, call, has_python3, make_agent, runtime
from test_spec_examples import doc, example, table_keys


def test_custom_tool_example_loads_runs_and_documents_every_manifest_key(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [word_count]\ncapabilities:\n  read: [memory/]")
    folder = root / "tools" / "word_count"
    folder.mkdir(parents=True)
    (folder / "TOOL.md").write_text(example("custom-tool", "markdown"))
    (folder / "count.py").write_text(example("custom-tool", "python"))
    tool = load_manifest(folder)
    assert (tool.name, tool.command, tool.timeout_s, tool.network) == ("word_count", ["python3", "count.py"], 10,
                                                                        False)
    assert set(table_keys(doc("custom-tool"), "Manifest keys")) == _KEYS
    if has_python3():
        out = call(runtime(root), "word_count", path="memory/hello.md")
        assert (out.status, out.result.content) == ("ok", "9 words")


def test_approval_example_is_an_answered_file_with_exactly_the_documented_keys(tmp_path: Path) -> None:
    text = example("approval", "markdown")
    path = tmp_path / "approvals" / "x.md"
    path.parent.mkdir()
    path.write_text(text)
    assert read_status(path) == APPROVED
    fm, body = frontmatter.split(text)
    documented = set(table_keys(doc("approval"), "Keys"))
    assert set(frontmatter.parse(fm or "")) == documented
    # What the runtime writes has the same keys (and the same body shape).
    root = tmp_path / "agent"
    root.mkdir()
    FileApprover(root, timeout_s=0, poll_s=0).ask(ApprovalRequest("juniper", "20261121T080512-a3f09c", "shell",
                                                                  "pip install --user pandas", "installs packages"))
    [written] = (root / "approvals").glob("*.md")
    wfm, wbody = frontmatter.split(written.read_text())
    assert set(frontmatter.parse(wfm or "")) - {"decided"} == documented
    assert wbody.splitlines()[0] == body.splitlines()[0] and wbody.splitlines()[-2:] == body.splitlines()[-2:]


def test_secrets_example_has_the_keys_the_store_writes(tmp_path: Path) -> None:
    import base64

    documented = json.loads(example("secrets", "json"))
    store = SecretStore(store_path(tmp_path), base64.b64decode(KEY))
    store.set("TOKEN", "value-123456")
    written = json.loads(store_path(tmp_path).read_text())
    assert set(written) == set(documented)
    assert {k: written[k] for k in ("format", "version", "cipher")} == \
        {k: documented[k] for k in ("format", "version", "cipher")}
    assert len(written["key_id"]) == len(documented["key_id"]) == 12


def test_tools_md_capability_grammar_example_parses_and_documents_every_key() -> None:
    text = doc("tools-md")
    caps = yaml.safe_load(example("tools-md", "yaml"))
    assert set(table_keys(text, "More capabilities")) <= set(caps) | {"limits"}
    grants = parse_grants(ToolsConfig(tools=["shell"], capabilities=caps, path=Path("tools.md")))
    assert grants.shell is not None and grants.shell.allow == ("ls", "cat", "grep", "git")
    assert grants.shell.approve == ("curl",) and grants.env == {"GH_TOKEN": "GITHUB_TOKEN"}
    assert (grants.limits.timeout_s, grants.limits.memory_mb, grants.approval_timeout_s) == (60, 1024, 120)
    limits_row = next(line for line in text.splitlines() if line.startswith("| `limits` |"))
    documented_limits = set(re.findall(r"`(\w+)` \d+", limits_row))
    from vault_agent.security.policy import _LIMIT_KEYS

    assert documented_limits == set(_LIMIT_KEYS)
