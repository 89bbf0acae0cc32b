"""build_model: adapters with retries, the fallback chain, replay when offline, notices, lazy SDK imports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vault_agent.errors import ConfigError
from vault_agent.models import (
    AnthropicModel,
    CompletionRequest,
    FallbackChain,
    Message,
    OpenAIModel,
    ReplayModel,
    RetryingModel,
    build_model,
)
from vault_agent.testing.fakellm import Fail, FakeLLMServer, Reply
from vault_agent.vault.config import ModelConfig, ModelRef

TRANSCRIPT = "model: claude-sonnet-5\nturns:\n  - text: recorded answer\n"


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    (tmp_path / "replays").mkdir()
    (tmp_path / "replays" / "demo.yaml").write_text(TRANSCRIPT, encoding="utf-8")
    return tmp_path


def config(agent: Path, primary: ModelRef, **kw: object) -> ModelConfig:
    return ModelConfig(primary=primary, path=agent / "model.md", **kw)  # type: ignore[arg-type]


def ask() -> CompletionRequest:
    return CompletionRequest(system=[], messages=[Message("user", "hi")])


SONNET = ModelRef("anthropic", "claude-sonnet-5")
MINI = ModelRef("openai", "gpt-4o-mini")


def test_primary_alone_is_the_adapter_wrapped_in_retries(agent: Path) -> None:
    model, notices = build_model(config(agent, SONNET, max_retries=5), agent, env={"ANTHROPIC_API_KEY": "k"})
    assert isinstance(model, RetryingModel) and isinstance(model.inner, AnthropicModel)
    assert (model.provider, model.model, model.max_retries, notices) == ("anthropic", "claude-sonnet-5", 5, [])


def test_fallback_makes_a_chain_of_retrying_adapters(agent: Path, server: FakeLLMServer) -> None:
    primary = ModelRef("anthropic", "claude-test", server.anthropic_base_url)
    fallback = ModelRef("openai", "gpt-4o-mini", server.openai_base_url)
    model, notices = build_model(config(agent, primary, fallback=fallback, max_retries=0), agent,
                                 env={"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"})
    assert isinstance(model, FallbackChain) and notices == []
    assert type(model.models[0].inner) is AnthropicModel  # type: ignore[attr-defined]
    # The fallback is built on first use: a run that never falls back pays for no second SDK client.
    assert model.models[1]._built is None  # type: ignore[attr-defined]
    server.script(Fail(503), Reply(text="from openai"))
    c = model.complete(ask())
    assert c.text == "from openai" and c.fallback_reason == (
        "anthropic:claude-test unavailable (HTTP 503) -> openai:gpt-4o-mini")
    assert type(model.models[1]._built.inner) is OpenAIModel  # type: ignore[attr-defined]


def test_missing_key_with_replay_configured_plays_the_transcript_with_a_notice(agent: Path) -> None:
    model, notices = build_model(config(agent, SONNET, replay="replays/demo.yaml"), agent, env={})
    assert isinstance(model, ReplayModel)
    assert notices == ["offline: ANTHROPIC_API_KEY is not set, playing the recorded transcript "
                       "replays/demo.yaml (replay)"]
    c = model.complete(ask())
    assert c.text == "recorded answer" and c.replay


def test_missing_key_without_replay_is_a_one_line_config_error(agent: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_model(config(agent, SONNET, replay="replays/missing.yaml"), agent, env={"ANTHROPIC_API_KEY": ""})
    line = err.value.one_line()
    assert "\n" not in line and "ANTHROPIC_API_KEY is not set" in line
    assert err.value.path == agent / "model.md" and "export ANTHROPIC_API_KEY=" in (err.value.fix or "")


def test_fallback_without_its_key_is_dropped_with_a_notice(agent: Path) -> None:
    model, notices = build_model(config(agent, SONNET, fallback=MINI), agent, env={"ANTHROPIC_API_KEY": "k"})
    assert isinstance(model, RetryingModel) and isinstance(model.inner, AnthropicModel)
    assert notices == ["fallback openai:gpt-4o-mini disabled: OPENAI_API_KEY is not set"]


def test_local_openai_compatible_server_needs_no_key(agent: Path) -> None:
    model, notices = build_model(config(agent, ModelRef("ollama", "llama3.2", "http://localhost:11434/v1")),
                                 agent, env={})
    assert isinstance(model, RetryingModel) and isinstance(model.inner, OpenAIModel) and notices == []


def test_model_override_replaces_the_primary_and_keeps_the_fallback(agent: Path) -> None:
    cfg = config(agent, SONNET, fallback=ModelRef("anthropic", "claude-haiku-5-5"))
    model, _ = build_model(cfg, agent, env={"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "o"},
                           override="openai:gpt-4o")
    assert isinstance(model, FallbackChain)
    assert [(m.provider, m.model) for m in model.models] == [("openai", "gpt-4o"), ("anthropic", "claude-haiku-5-5")]
    bare, _ = build_model(cfg, agent, env={"ANTHROPIC_API_KEY": "k"}, override="claude-opus-4-1")
    assert (bare.provider, bare.model) == ("anthropic", "claude-opus-4-1")


def test_model_override_with_an_unknown_provider_is_a_config_error(agent: Path) -> None:
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        build_model(config(agent, SONNET), agent, env={}, override="nope:model")
    with pytest.raises(ConfigError, match="cannot tell the provider"):
        build_model(config(agent, SONNET), agent, env={}, override="mystery-model")


def test_provider_replay_and_force_replay_play_the_transcript(agent: Path) -> None:
    replay_cfg = config(agent, ModelRef("replay", "claude-sonnet-5"), replay="replays/demo.yaml")
    model, _ = build_model(replay_cfg, agent, env={})
    assert isinstance(model, ReplayModel) and model.model == "claude-sonnet-5"
    forced, _ = build_model(config(agent, SONNET, replay="replays/demo.yaml"), agent,
                            env={"ANTHROPIC_API_KEY": "k"}, force_replay=True)
    assert isinstance(forced, ReplayModel)
    with pytest.raises(ConfigError, match="no replay transcript configured"):
        build_model(config(agent, SONNET), agent, env={"ANTHROPIC_API_KEY": "k"}, force_replay=True)


def test_temperature_on_anthropic_is_reported_as_not_sent(agent: Path) -> None:
    _, notices = build_model(config(agent, SONNET, temperature=0.3), agent, env={"ANTHROPIC_API_KEY": "k"})
    assert notices == ["temperature is not sent to anthropic:claude-sonnet-5: "
                       "the Anthropic API no longer accepts it"]
    _, none = build_model(config(agent, MINI, temperature=0.3), agent, env={"OPENAI_API_KEY": "k"})
    assert none == []


LAZY_CHECK = """
import sys
import vault_agent.models.factory
assert "anthropic" not in sys.modules and "openai" not in sys.modules, "SDK imported by the package"
from pathlib import Path
from vault_agent.models.factory import build_model
from vault_agent.vault.config import ModelConfig, ModelRef
cfg = ModelConfig(primary=ModelRef("openai", "gpt-4o-mini"), fallback=ModelRef("ollama", "llama3.2",
                  "http://localhost:11434/v1"))
build_model(cfg, Path("."), env={"OPENAI_API_KEY": "k"})
assert "openai" in sys.modules and "anthropic" not in sys.modules, "anthropic imported for an OpenAI chain"
"""


def test_provider_sdks_are_imported_only_by_the_adapters_that_need_them() -> None:
    result = subprocess.run([sys.executable, "-c", LAZY_CHECK], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
