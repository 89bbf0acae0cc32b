"""Builds the model a run uses from model.md: adapters with retries, the fallback chain, replay when offline.

Provider SDKs are imported only inside the adapter constructors, so importing
this module (and `vault-agent --help`) stays light, and an OpenAI-only setup
never imports anthropic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import ConfigError
from ..vault.config import ModelConfig, ModelRef, infer_provider, make_ref
from .anthropic_model import AnthropicModel
from .base import Completion, CompletionRequest, Model, OnText
from .chain import FallbackChain
from .openai_model import OpenAIModel
from .replay import ReplayModel
from .retry import RetryingModel


class _MissingKey(Exception):
    """A model's API key variable is unset; build_model decides whether that is fatal."""

    def __init__(self, env: str) -> None:
        super().__init__(env)
        self.env = env


def build_model(config: ModelConfig, agent_root: Path, *, env: Mapping[str, str] = os.environ,
                override: str | None = None, force_replay: bool = False) -> tuple[Model, list[str]]:
    """The model to call and one-line notices for the user.

    override: "provider:model" (or a model name whose provider can be inferred) from --model; it replaces
    the primary and keeps the fallback. force_replay plays the configured transcript whatever the keys.
    """
    notices: list[str] = []
    primary = _override(config, override) if override else config.primary
    if force_replay or primary.provider == "replay":
        return _replay(config, agent_root, primary), notices
    try:
        first = _adapter(primary, config, agent_root, env)
    except _MissingKey as missing:
        replay_path = agent_root / config.replay if config.replay else None
        if replay_path is None or not replay_path.is_file():
            raise ConfigError(f"{missing.env} is not set (needed by {primary.label()})", path=config.path,
                              fix=f"export {missing.env}=... or set provider: replay with a replay: transcript"
                              ) from None
        notices.append(f"offline: {missing.env} is not set, playing the recorded transcript {config.replay} (replay)")
        return _replay(config, agent_root, primary), notices
    models, refs = [first], [primary]
    fallback = config.fallback
    if fallback is not None:
        missing_env = _missing_key(fallback, env)
        if missing_env:
            notices.append(f"fallback {fallback.label()} disabled: {missing_env} is not set")
        else:
            models.append(_Deferred(fallback, lambda: _adapter(fallback, config, agent_root, env)))
            refs.append(fallback)
    if config.temperature is not None:
        notices += [f"temperature is not sent to {ref.label()}: the Anthropic API no longer accepts it"
                    for ref in refs if ref.wire == "anthropic"]
    return (models[0] if len(models) == 1 else FallbackChain(models)), notices


def _override(config: ModelConfig, override: str) -> ModelRef:
    provider, sep, model = override.strip().partition(":")
    if not sep:
        provider, model = infer_provider(override.strip()), override.strip()
        if provider == "unknown":
            raise ConfigError(f"--model {override}: cannot tell the provider", fix="write --model provider:model")
    if not model.strip():
        raise ConfigError(f"--model {override}: no model name", fix="write --model provider:model")
    same = provider.strip().lower() == config.primary.provider
    # Same provider: keep its endpoint and key variable (a custom OpenAI-compatible server, say).
    return make_ref(None, "--model", provider, model.strip(), config.primary.base_url if same else None,
                    config.primary.api_key_env if same else None)


def _replay(config: ModelConfig, agent_root: Path, ref: ModelRef) -> ReplayModel:
    if not config.replay:
        raise ConfigError("no replay transcript configured", path=config.path,
                          fix="add replay: <transcript file> to model.md (see spec/replay.md)")
    return ReplayModel(agent_root / config.replay, model_name=ref.model)


class _Deferred:
    """A model built on its first call: a fallback that is never needed costs no SDK import or client."""

    def __init__(self, ref: ModelRef, build: Callable[[], Model]) -> None:
        self.provider = ref.provider
        self.model = ref.model
        self._build = build
        self._built: Model | None = None

    def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        if self._built is None:
            self._built = self._build()
        return self._built.complete(request, on_text=on_text)


def _missing_key(ref: ModelRef, env: Mapping[str, str]) -> str | None:
    if ref.provider == "replay":
        return None
    key_env = ref.key_env()
    return key_env if key_env and not env.get(key_env) else None


def _adapter(ref: ModelRef, config: ModelConfig, agent_root: Path, env: Mapping[str, str]) -> Model:
    if ref.provider == "replay":
        return _replay(config, agent_root, ref)  # replays never fail transiently: no retries
    missing_env = _missing_key(ref, env)
    if missing_env:
        raise _MissingKey(missing_env)
    key_env = ref.key_env()
    api_key = env.get(key_env) if key_env else None
    inner: Model
    if ref.wire == "anthropic":
        assert api_key is not None  # anthropic always has a key variable
        inner = AnthropicModel(ref, api_key=api_key, timeout_s=config.timeout_s)
    else:
        inner = OpenAIModel(ref, api_key=api_key, timeout_s=config.timeout_s)
    return RetryingModel(inner, max_retries=config.max_retries)

