"""Optional semantic recall: embeddings from an OpenAI-compatible endpoint, kept in the index, fused with BM25.

Configured by an `embeddings:` mapping in model.md (spec/index-db.md):
`model`, and `base_url` (an OpenAI-compatible server: Ollama, OpenAI, vLLM,
LM Studio ...) or `provider: ollama | openai` for the usual one, and
optionally `api_key_env`. Vectors are stored L2-normalised per (model,
content hash), so unchanged text is never embedded twice and a rebuilt index
keeps none (it is derived: `vault-agent index NAME --embed` fills it again).
Search is exact brute force with numpy (the `vectors` extra); without numpy
or without a configuration, recall is BM25 alone.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from ..vault import frontmatter
from ..vault.layout import AgentPaths
from .catalog import Catalog

PRESETS = {"ollama": "http://localhost:11434/v1", "openai": "https://api.openai.com/v1"}
RRF_K = 60
EMBED_CHARS = 4000  # of name, description and body: enough for a note, bounded for a wiki page


class Embedder(Protocol):
    model: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingError(Exception):
    """The embeddings endpoint failed; callers fall back to BM25 alone."""


@dataclass
class OpenAIEmbedder:
    """POST {base_url}/embeddings with {"model", "input": [...]}, as OpenAI, Ollama and vLLM accept it."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 30.0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        body = json.dumps({"model": self.model, "input": list(texts)}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.base_url.rstrip("/") + "/embeddings", body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise EmbeddingError(f"embeddings request to {self.base_url} failed: {exc}") from None
        try:
            rows = sorted(data["data"], key=lambda d: d.get("index", 0))
            vectors = [list(map(float, row["embedding"])) for row in rows]
        except (KeyError, TypeError, ValueError):
            raise EmbeddingError(f"unexpected embeddings response from {self.base_url}") from None
        if len(vectors) != len(texts):
            raise EmbeddingError(f"asked for {len(texts)} embeddings, got {len(vectors)}")
        return vectors


def embedder_for(paths: AgentPaths, env: dict[str, str] | None = None, *,
                 timeout_s: float = 30.0) -> OpenAIEmbedder | None:
    """The embedder model.md's `embeddings:` mapping asks for, or None when there is none (or it is unusable)."""
    try:
        fm, _ = frontmatter.split(paths.model_md.read_text(encoding="utf-8"))
        meta: dict[str, Any] = frontmatter.parse(fm) if fm else {}
    except (OSError, UnicodeDecodeError, frontmatter.FrontmatterError):
        return None
    conf = meta.get("embeddings")
    if not isinstance(conf, dict) or not conf.get("model"):
        return None
    base_url = conf.get("base_url") or PRESETS.get(str(conf.get("provider", "")).lower())
    if not base_url:
        return None
    environ = env if env is not None else dict(os.environ)
    key_env = conf.get("api_key_env") or ("OPENAI_API_KEY" if "api.openai.com" in str(base_url) else None)
    return OpenAIEmbedder(str(base_url), str(conf["model"]), environ.get(str(key_env)) if key_env else None,
                          timeout_s)


def embed_missing(catalog: Catalog, embedder: Embedder, *, batch: int = 32) -> int:
    """Embed every document whose text has no vector for this model yet; returns how many were embedded."""
    np = _numpy()
    rows = catalog.conn.execute(
        "SELECT d.hash, d.name, d.description, f.body FROM docs d JOIN docs_fts f ON f.rowid = d.id "
        "WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.model = ? AND v.hash = d.hash) GROUP BY d.hash",
        (embedder.model,)).fetchall()
    done = 0
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        vectors = embedder.embed([f"{name}\n{description}\n{body}"[:EMBED_CHARS] for _, name, description, body
                                  in chunk])
        blobs = []
        for (digest, *_), vec in zip(chunk, vectors):
            arr = np.asarray(vec, dtype=np.float32)
            norm = float(np.linalg.norm(arr)) or 1.0
            blobs.append((embedder.model, digest, (arr / norm).tobytes()))
        catalog.conn.execute("BEGIN IMMEDIATE")
        try:
            catalog.conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?,?,?)", blobs)
            catalog.conn.execute("COMMIT")
        except BaseException:
            catalog.conn.execute("ROLLBACK")
            raise
        done += len(chunk)
    return done


def nearest(catalog: Catalog, model: str, query_vector: Sequence[float], *, kinds: tuple[str, ...],
            limit: int) -> list[int]:
    """Doc ids of the documents of these kinds whose vectors are closest (cosine) to the query's, best first."""
    np = _numpy()
    marks = ",".join("?" * len(kinds))
    rows = catalog.conn.execute(
        f"SELECT d.id, v.vec FROM docs d JOIN vectors v ON v.model = ? AND v.hash = d.hash "
        f"WHERE d.kind IN ({marks})", (model, *kinds)).fetchall()
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    q = np.asarray(query_vector, dtype=np.float32)
    if q.shape[0] != matrix.shape[1]:
        return []  # vectors from another model version: wait for `index --embed`
    scores = matrix @ (q / (float(np.linalg.norm(q)) or 1.0))
    top = np.argsort(-scores)[:limit]
    return [rows[i][0] for i in top]


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) to the ids it ranks (rank from 1)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, 1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return fused


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        raise EmbeddingError("semantic recall needs numpy: pip install 'vault-agent[vectors]'") from None
    return numpy
