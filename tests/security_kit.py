"""Helpers for the tool and security tests: agent folders with a given grant, runtimes, local HTTP servers."""

from __future__ import annotations

import base64
import http.server
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from vault_agent.models.base import ToolCall
from vault_agent.security import sandbox
from vault_agent.security.approvals import Approver
from vault_agent.tools.runtime import ToolOutcome, ToolRuntime, build_runtime
from vault_agent.vault.folder import AgentFolder

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_path() is None,
                                 reason="bubblewrap (bwrap) missing or unable to create namespaces here")


def make_agent(tmp_path: Path, frontmatter: str, name: str = "agent") -> Path:
    """vault/<name> with persona, memory, wiki and a tools.md whose frontmatter is `frontmatter`."""
    root = tmp_path / "vault" / name
    for sub in ("persona", "memory", "wiki", "drafts"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "persona" / "IDENTITY.md").write_text("# Tester\n")
    (root / "model.md").write_text("---\nprovider: openai\nmodel: gpt-4o-mini\n---\n")
    (root / "tools.md").write_text(f"---\n{frontmatter.strip()}\n---\nTools prose.\n")
    (root / "memory" / "hello.md").write_text("---\ntype: reference\nname: Hello\ndescription: greeting\n---\nHi.\n")
    (root / "wiki" / "handbook.md").write_text("# Handbook\n\nRates are public.\n")
    return root


class ScriptedApprover:
    """Answers approval requests from a list (a stand-in for a person at a terminal)."""

    def __init__(self, *outcomes: str) -> None:
        from vault_agent.security.approvals import ApprovalAnswer

        self.answers = [ApprovalAnswer(o, "terminal") for o in outcomes]
        self.asked: list[Any] = []

    def ask(self, request: Any) -> Any:
        self.asked.append(request)
        return self.answers.pop(0)


def runtime(root: Path, *, env: dict[str, str] | None = None, approver: Approver | None = None,
            run_id: str = "20261121T080000-abcdef") -> ToolRuntime:
    folder = AgentFolder(root)
    rt, warnings = build_runtime(folder, folder.load_config(), run_id, env=env or {},
                                 approver=approver or ScriptedApprover())
    assert not [w for w in warnings if "ERROR" in w], warnings
    return rt


def call(rt: ToolRuntime, tool: str, /, **args: Any) -> ToolOutcome:
    [outcome] = rt.execute([ToolCall(f"call-{tool}", tool, args)])
    return outcome


def store_secret(vault: Path, name: str, value: str) -> dict[str, str]:
    """Put a secret in the vault's store; returns the env that opens it."""
    from vault_agent.security.secrets import SecretStore, store_path

    env = {"VAULT_AGENT_MASTER_KEY": KEY}
    store = SecretStore(store_path(vault), base64.b64decode(KEY))
    store.set(name, value)
    return env


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request; answers with the server's `route` function."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        server: LocalServer = self.server.owner  # type: ignore[attr-defined]
        server.hits.append((self.path, dict(self.headers)))
        status, headers, body = server.route(self)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


Route = Callable[[http.server.BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


class LocalServer:
    """A real HTTP server on a loopback address, in a thread."""

    def __init__(self, route: Route, host: str = "127.0.0.1", port: int = 0, tls: Any = None) -> None:
        self.route = route
        self.hits: list[tuple[str, dict[str, str]]] = []
        self.httpd = http.server.ThreadingHTTPServer((host, port), Recorder)
        if tls is not None:  # an ssl.SSLContext for the server side
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.host, self.port = self.httpd.server_address[0], self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def html(body: str) -> Route:
    return lambda h: (200, {"Content-Type": "text/html; charset=utf-8"}, body.encode())


def redirect(location: str) -> Route:
    return lambda h: (302, {"Location": location}, b"")


def files_containing(root: Path, needle: bytes) -> list[Path]:
    out = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            try:
                if needle in p.read_bytes():
                    out.append(p)
            except OSError:
                continue
    return out


def live_cmdlines(marker: str) -> list[str]:
    """Command lines of live processes that contain `marker` (host /proc sees sandboxed ones too)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if marker.encode() in raw and state != "Z":
            found.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.fixture
def servers() -> Iterator[list[LocalServer]]:
    started: list[LocalServer] = []
    yield started
    for s in started:
        s.close()


def has_python3() -> bool:
    return shutil.which("python3", path=sandbox.SAFE_PATH) is not None
