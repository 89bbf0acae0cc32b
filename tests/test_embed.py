"""Optional semantic recall against a real local HTTP server speaking the OpenAI embeddings wire format."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from memory_helpers import agent, note

from vault_agent.cli import main
from vault_agent.memory.catalog import Catalog
from vault_agent.memory.embed import OpenAIEmbedder, embedder_for, rrf
from vault_agent.memory.recall import SearchRecaller
from vault_agent.vault.layout import AgentPaths

pytest.importorskip("numpy")

# A toy embedding: one dimension per meaning, so a paraphrase with no shared word still lands close.
MEANINGS = {"dentist": 0, "teeth": 0, "cuspid": 0, "clinic": 0, "coffee": 1, "latte": 1, "espresso": 1,
            "car": 2, "lease": 2, "vehicle": 2, "garden": 3, "weeding": 3}


def toy_vector(text: str) -> list[float]:
    vec = [0.01] * 5
    for word in text.lower().replace(".", " ").replace("?", " ").split():
        if word in MEANINGS:
            vec[MEANINGS[word]] += 1.0
    return vec


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        data = [{"object": "embedding", "index": i, "embedding": toy_vector(t)} for i, t in enumerate(body["input"])]
        payload = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def paths(tmp_path: Path, server: str) -> AgentPaths:
    paths = agent(tmp_path)
    paths.model_md.write_text("---\nprovider: anthropic\nmodel: claude-sonnet-5\nembeddings:\n"
                              f"  base_url: {server}\n  model: toy-embed\n  api_key_env: TOY_KEY\n---\n")
    note(paths, "dentist", "Dr. Alvarez", "The dentist at Smile clinic on Prinsengracht.", type="user")
    note(paths, "coffee", "Usual order", "Flat white with oat milk.", type="user")
    for i in range(12):
        note(paths, f"garden-{i}", f"Garden chores {i}", "Weeding the garden beds.", type="project")
    return paths


def test_index_embed_stores_vectors_once_per_text(paths: AgentPaths) -> None:
    runner = CliRunner(env={"TOY_KEY": "sk-toy"})
    first = runner.invoke(main, ["--vault", str(paths.root.parent), "index", "a", "--embed"])
    assert first.exit_code == 0, first.output
    assert "embedded 14 document(s) with toy-embed" in first.output
    assert _Handler.requests[0]["path"] == "/v1/embeddings" and _Handler.requests[0]["auth"] == "Bearer sk-toy"
    note(paths, "coffee", "Usual order", "Flat white with oat milk, no sugar.", type="user")
    again = runner.invoke(main, ["--vault", str(paths.root.parent), "index", "a", "--embed"])
    assert "embedded 1 document(s)" in again.output  # only the changed text


def test_a_note_is_embedded_as_written_not_as_the_search_index_holds_it(paths: AgentPaths) -> None:
    from vault_agent.memory.embed import embed_missing

    note(paths, "tdw", "Tokyo", "東京デザイン週間のブース, Hauptstraße 5", description="Booth")
    with Catalog(paths) as cat:
        cat.sync()
        embed_missing(cat, embedder_for(paths, env={}))
    assert "Tokyo\nBooth\n東京デザイン週間のブース, Hauptstraße 5\n" in [t for r in _Handler.requests for t in r["input"]]


def test_semantic_recall_finds_a_paraphrase_that_bm25_misses(paths: AgentPaths) -> None:
    today = dt.date(2026, 11, 20)
    with Catalog(paths) as cat:
        cat.sync()
        from vault_agent.memory.embed import embed_missing

        embed_missing(cat, embedder_for(paths, env={}))
        question = "when is my cuspid"  # no word of it in any note nor in the related-terms table
        bm25_only = SearchRecaller(paths, cat, today=today, embedder=None).recall(question, 2000)
        fused = SearchRecaller(paths, cat, today=today).recall(question, 2000)
    assert bm25_only[0].stem == "coffee"  # no word matches: the fallback, most recent (here: path order)
    assert fused[0].stem == "dentist"


def test_semantic_recall_finds_a_readable_paraphrase_however_many_unreadable_notes_are_nearer(
        paths: AgentPaths) -> None:
    for i in range(12):  # nearer to the question than the dentist's note
        note(paths, f"private/teeth-{i}", f"Private {i}", "About my teeth.", type="user")
    with Catalog(paths) as cat:
        cat.sync()
        from vault_agent.memory.embed import embed_missing

        embed_missing(cat, embedder_for(paths, env={}))
        recaller = SearchRecaller(paths, cat, today=dt.date(2026, 11, 20), max_candidates=5,
                                  readable=lambda rel: not rel.startswith("memory/private/"))
        got = recaller.recall("when is my cuspid", 2000)
    assert got[0].stem == "dentist" and not [r for r in got if r.path.startswith("memory/private/")]


def test_an_unreachable_endpoint_leaves_recall_to_bm25(paths: AgentPaths) -> None:
    with Catalog(paths) as cat:
        cat.sync()
        cat.conn.execute("INSERT INTO vectors VALUES ('toy-embed', 'x', zeroblob(20))")
        down = OpenAIEmbedder("http://127.0.0.1:9/v1", "toy-embed", timeout_s=1)
        got = SearchRecaller(paths, cat, embedder=down).recall("garden weeding", 500)
    assert got and got[0].stem.startswith("garden-")


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = rrf([[1, 2, 3], [3, 1, 4]])
    assert sorted(fused, key=lambda i: -fused[i]) == [1, 3, 2, 4]
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
