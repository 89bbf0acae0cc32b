"""The agent's configuration files: persona/*.md, model.md and tools.md.

Formats: spec/persona.md, spec/model-md.md, spec/tools-md.md. Settings live in
frontmatter; the prose below is for people (and, for tools.md, the model).
Folders written for atomic-agents-stack, whose model.md and tools.md are prose
with a `cost_guardrails` YAML block, load too
(spec/compat-atomic-agents-stack.md).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, Finding
from . import frontmatter
from .layout import PERSONA_FILES, AgentPaths
from .reading import NotRegularFile, read_regular

PROVIDERS = ("anthropic", "openai", "replay")
# OpenAI-compatible services: provider name -> (default base_url, API key variable).
OPENAI_COMPATIBLE = {
    "ollama": ("http://localhost:11434/v1", None),
    "lmstudio": ("http://localhost:1234/v1", None),
    "llamacpp": ("http://localhost:8080/v1", None),
    "vllm": ("http://localhost:8000/v1", None),
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "gemini": ("https://generativelanguage.googleapis.com/v1beta/openai/", "GEMINI_API_KEY"),
}
DEFAULT_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
ON_CAP = ("refuse", "fallback")


@dataclass(frozen=True)
class ModelRef:
    """A provider + model pair (the primary or a fallback)."""

    provider: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None

    @property
    def wire(self) -> str:
        """The wire format spoken: anthropic, openai or replay."""
        return "openai" if self.provider in OPENAI_COMPATIBLE else self.provider

    def label(self) -> str:
        return f"{self.provider}:{self.model}"

    def key_env(self) -> str | None:
        if self.api_key_env:
            return self.api_key_env
        if self.provider in OPENAI_COMPATIBLE:
            return OPENAI_COMPATIBLE[self.provider][1]
        return DEFAULT_KEY_ENV.get(self.provider)


@dataclass(frozen=True)
class CostCaps:
    per_run_usd: float | None = None
    daily_usd: float | None = None
    monthly_usd: float | None = None
    warn_at: tuple[float, ...] = (0.8,)
    on_cap: str = "refuse"


@dataclass(frozen=True)
class Prices:
    """USD per million tokens, for models the pricing package does not know."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass
class ModelConfig:
    primary: ModelRef
    max_output_tokens: int = 4096
    context_window: int = 200_000
    temperature: float | None = None
    max_tool_iterations: int = 12
    timeout_s: float = 120.0
    max_retries: int = 3
    context_budget: int | None = None  # prompt tokens at most; default min(window - output, 24k)
    caps: CostCaps = field(default_factory=CostCaps)
    fallback: ModelRef | None = None
    prices: dict[str, Prices] = field(default_factory=dict)  # model name -> prices
    replay: str | None = None  # transcript path for provider: replay
    recall_words: bool = False  # ask the model for recall's search words first (memory/recall_words.py)
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know
    prose: str = ""
    path: Path | None = None

    @property
    def provider(self) -> str:
        return self.primary.provider

    @property
    def model(self) -> str:
        return self.primary.model


@dataclass
class ToolsConfig:
    tools: list[str] = field(default_factory=list)
    capabilities: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    prose: str = ""
    path: Path | None = None


@dataclass
class Persona:
    identity: str = ""
    soul: str = ""
    user: str = ""

    def parts(self) -> list[tuple[str, str]]:
        return [("IDENTITY", self.identity), ("SOUL", self.soul), ("USER", self.user)]


@dataclass
class AgentConfig:
    name: str
    persona: Persona
    model: ModelConfig
    tools: ToolsConfig
    findings: list[Finding] = field(default_factory=list)


# --- reading ---------------------------------------------------------------

def _read_text(path: Path) -> str | None:
    try:
        data = read_regular(path, sys.maxsize)
    except FileNotFoundError:
        return None
    except NotRegularFile:
        raise ConfigError("is a pipe, socket or device, not a file", path=path,
                          fix="replace it with a Markdown file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or exc})", path=path, fix="check permissions") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=path, fix="save the file as UTF-8") from None


def _split(path: Path, text: str) -> tuple[dict[str, Any] | None, str]:
    try:
        fm, body = frontmatter.split(text)
        return (frontmatter.parse(fm) if fm is not None else None), body
    except ConfigError as exc:
        raise ConfigError(exc.message, path=path, fix=exc.fix) from None


def load_persona(paths: AgentPaths, findings: list[Finding]) -> Persona:
    texts: dict[str, str] = {}
    for fname in PERSONA_FILES:
        path = paths.persona / fname
        text = _read_text(path)
        if text is None:
            findings.append(Finding("warning", path, "persona file missing",
                                    f"create persona/{fname} (see spec/persona.md)"))
            texts[fname] = ""
            continue
        _, body = _split(path, text)
        texts[fname] = body.strip()
    return Persona(texts["IDENTITY.md"], texts["SOUL.md"], texts["USER.md"])


def _number(path: Path, key: str, value: Any, *, kind: type = float, minimum: float = 0,
            allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"'{key}' must be a number, got {value!r}", path=path,
                          fix=f"write {key}: followed by a number")
    if kind is int and value != int(value):
        raise ConfigError(f"'{key}' must be a whole number, got {value!r}", path=path,
                          fix=f"write {key}: followed by a whole number")
    if value < minimum:
        raise ConfigError(f"'{key}' must be at least {minimum}, got {value}", path=path)
    return kind(value)


def _temperature(path: Path, value: Any) -> float | None:
    if value is None:
        return None
    t = _number(path, "temperature", value)
    if t > 2:
        raise ConfigError(f"'temperature' must be between 0 and 2, got {t}", path=path)
    return t


def _model_ref(path: Path, key: str, value: Any, default_provider: str | None = None) -> ModelRef:
    if isinstance(value, str):
        provider, sep, model = value.partition(":")
        if not sep or provider.lower() not in (*PROVIDERS, *OPENAI_COMPATIBLE):
            # "qwen2.5:7b" is an Ollama model name, not provider "qwen2.5".
            provider, model = "", value
        value = {"provider": provider, "model": model}
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' must be 'provider:model' or a mapping with provider and model",
                          path=path, fix=f"e.g. {key}: openai:gpt-4o-mini")
    model = value.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"'{key}' has no model", path=path, fix=f"add {key}.model")
    provider = value.get("provider") or infer_provider(model)
    if provider == "unknown" and default_provider:
        provider = default_provider  # a bare model name runs where the primary runs
    return make_ref(path, key, str(provider), model.strip(), value.get("base_url"), value.get("api_key_env"))


def make_ref(path: Path | None, key: str, provider: str, model: str, base_url: Any = None,
             api_key_env: Any = None) -> ModelRef:
    provider = provider.strip().lower()
    if provider not in PROVIDERS and provider not in OPENAI_COMPATIBLE:
        known = ", ".join((*PROVIDERS, *OPENAI_COMPATIBLE))
        raise ConfigError(f"unknown provider {provider!r} in '{key}'", path=path,
                          fix=f"use one of {known}; any other OpenAI-compatible server: provider: openai "
                              "with base_url")
    if base_url is None and provider in OPENAI_COMPATIBLE:
        base_url = OPENAI_COMPATIBLE[provider][0]
    if base_url is not None and not (isinstance(base_url, str) and re.match(r"^https?://", base_url)):
        raise ConfigError(f"base_url must be an http(s) URL, got {base_url!r}", path=path)
    if api_key_env is not None and not isinstance(api_key_env, str):
        raise ConfigError("api_key_env must be the NAME of an environment variable", path=path,
                          fix="write the variable's name, never the key itself")
    return ModelRef(provider, model, base_url, api_key_env)


def infer_provider(model: str) -> str:
    m = model.lower()
    if m.startswith("claude"):
        return "anthropic"
    if re.match(r"^(gpt-|o\d|chatgpt|text-embedding)", m):
        return "openai"
    return "unknown"


def _caps(path: Path, raw: Any) -> CostCaps:
    if raw is None:
        return CostCaps()
    if not isinstance(raw, dict):
        raise ConfigError("'cost' must be a mapping (per_run_usd, daily_usd, monthly_usd, warn_at, on_cap)",
                          path=path)
    warn = raw.get("warn_at", [0.8])
    warn_list = warn if isinstance(warn, list) else [warn]
    warn_at = tuple(sorted(_number(path, "cost.warn_at", w, allow_none=False) for w in warn_list))
    if any(not 0 < w <= 1 for w in warn_at):
        raise ConfigError("cost.warn_at values are fractions of a cap, between 0 and 1", path=path,
                          fix="e.g. warn_at: [0.5, 0.8]")
    on_cap = str(raw.get("on_cap", "refuse")).lower()
    if on_cap not in ON_CAP:
        raise ConfigError(f"cost.on_cap must be refuse or fallback, got {on_cap!r}", path=path)
    return CostCaps(
        per_run_usd=_number(path, "cost.per_run_usd", raw.get("per_run_usd")),
        daily_usd=_number(path, "cost.daily_usd", raw.get("daily_usd")),
        monthly_usd=_number(path, "cost.monthly_usd", raw.get("monthly_usd")),
        warn_at=warn_at,
        on_cap=on_cap,
    )


def _prices(path: Path, raw: Any) -> dict[str, Prices]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("'prices' must map model names to {input, output, cache_read, cache_write}",
                          path=path)
    out: dict[str, Prices] = {}
    for model, p in raw.items():
        if not isinstance(p, dict):
            raise ConfigError(f"prices.{model} must be a mapping of USD per million tokens", path=path)
        out[str(model)] = Prices(
            input=_number(path, f"prices.{model}.input", p.get("input"), allow_none=False),
            output=_number(path, f"prices.{model}.output", p.get("output"), allow_none=False),
            cache_read=_number(path, f"prices.{model}.cache_read", p.get("cache_read")),
            cache_write=_number(path, f"prices.{model}.cache_write", p.get("cache_write")),
        )
    return out


_MODEL_KEYS = {"provider", "model", "base_url", "api_key_env", "max_output_tokens", "context_window",
               "temperature", "max_tool_iterations", "timeout_s", "max_retries", "context_budget", "cost", "fallback",
               "fallback_model", "prices", "replay", "cost_guardrails", "recall_words"}


def parse_model_md(path: Path, text: str) -> ModelConfig:
    meta, prose = _split(path, text)
    if meta is None:
        meta = atomic_model_settings(path, prose)
    if "model" not in meta:
        raise ConfigError("model.md has no 'model'", path=path,
                          fix="add frontmatter with provider: and model: (see spec/model-md.md)")
    model = meta.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"'model' must be a model name, got {model!r}", path=path)
    provider = meta.get("provider") or infer_provider(model)
    if provider == "unknown":
        raise ConfigError(f"cannot tell the provider of model {model!r}", path=path,
                          fix="add 'provider:' (anthropic, openai, replay or an OpenAI-compatible name)")
    primary = make_ref(path, "provider", str(provider), model.strip(), meta.get("base_url"),
                       meta.get("api_key_env"))
    fallback_raw = meta.get("fallback", meta.get("fallback_model"))
    caps_raw = meta.get("cost")
    if caps_raw is None and "cost_guardrails" in meta:
        caps_raw = caps_from_guardrails(path, meta["cost_guardrails"])
    replay = meta.get("replay")
    if primary.provider == "replay" and not replay:
        raise ConfigError("provider replay needs 'replay:' naming a transcript file", path=path,
                          fix="e.g. replay: replays/demo.yaml (relative to the agent folder)")
    temperature = meta.get("temperature")
    recall_words = meta.get("recall_words", False)
    if not isinstance(recall_words, bool):
        raise ConfigError(f"'recall_words' must be true or false, got {recall_words!r}", path=path,
                          fix="recall_words: true asks the model for recall's search words before each run")
    max_output_tokens = _number(path, "max_output_tokens", meta.get("max_output_tokens", 4096), kind=int,
                                minimum=1, allow_none=False)
    context_window = _number(path, "context_window", meta.get("context_window", 200_000), kind=int, minimum=1024,
                             allow_none=False)
    if max_output_tokens >= context_window:
        raise ConfigError(f"'max_output_tokens' ({max_output_tokens:,}) leaves no room for the prompt in "
                          f"'context_window' ({context_window:,})", path=path,
                          fix="lower max_output_tokens or raise context_window to the model's real window")
    return ModelConfig(
        primary=primary,
        max_output_tokens=max_output_tokens,
        context_window=context_window,
        temperature=_temperature(path, temperature),
        max_tool_iterations=_number(path, "max_tool_iterations", meta.get("max_tool_iterations", 12),
                                    kind=int, minimum=1, allow_none=False),
        timeout_s=_number(path, "timeout_s", meta.get("timeout_s", 120), minimum=1, allow_none=False),
        max_retries=_number(path, "max_retries", meta.get("max_retries", 3), kind=int, allow_none=False),
        context_budget=_number(path, "context_budget", meta.get("context_budget"), kind=int, minimum=1024),
        caps=_caps(path, caps_raw),
        fallback=_model_ref(path, "fallback", fallback_raw, primary.provider) if fallback_raw else None,
        prices=_prices(path, meta.get("prices")),
        replay=str(replay) if replay else None,
        recall_words=recall_words,
        extra={k: v for k, v in meta.items() if k not in _MODEL_KEYS},
        prose=prose.strip(),
        path=path,
    )


def caps_from_guardrails(path: Path, g: Any) -> dict[str, Any] | None:
    """atomic-agents-stack's cost_guardrails block -> our cost mapping."""
    if not isinstance(g, dict):
        raise ConfigError("cost_guardrails must be a mapping", path=path)
    if g.get("enabled") is False:
        return None
    daily_action = str(g.get("daily_cap_action", "skip")).lower()
    monthly_action = str(g.get("monthly_cap_action", "skip")).lower()
    # "alert" means "warn and proceed" there: such a cap only feeds the warnings.
    caps: dict[str, Any] = {
        "daily_usd": None if daily_action == "alert" else g.get("daily_cap_usd"),
        "monthly_usd": None if monthly_action == "alert" else g.get("monthly_cap_usd"),
        "per_run_usd": g.get("per_run_cap_usd"),
        "on_cap": "fallback" if "fallback" in (daily_action, monthly_action) else "refuse",
    }
    if g.get("warning_thresholds") is not None:
        caps["warn_at"] = g["warning_thresholds"]
    return caps


_FENCE = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```", re.M | re.S)
_SECTION = re.compile(r"^##\s+(.+?)\s*$", re.M)
_CODE_SPAN = re.compile(r"`([A-Za-z0-9][A-Za-z0-9._:/@-]*)`")
_MAX_OUT = re.compile(r"max output[^|\n]*\|\s*([\d,]+)", re.I)


def atomic_model_settings(path: Path, prose: str) -> dict[str, Any]:
    """Settings from an atomic-agents-stack model.md: a prose file with YAML blocks."""
    settings: dict[str, Any] = {}
    sections = {m.group(1).strip().lower(): m.end() for m in _SECTION.finditer(prose)}

    def first_code_span(title: str) -> str | None:
        start = sections.get(title)
        if start is None:
            return None
        nxt = _SECTION.search(prose, start)
        m = _CODE_SPAN.search(prose[start: nxt.start() if nxt else len(prose)])
        return m.group(1) if m else None

    model = first_code_span("default model") or first_code_span("model")
    if model:
        settings["model"] = model
    fallback = first_code_span("fallback")
    if fallback:
        settings["fallback"] = fallback
    for block in _FENCE.finditer(prose):
        try:
            data = yaml.safe_load(block.group(1))
        except yaml.YAMLError:
            continue
        if isinstance(data, dict):
            for key in ("cost_guardrails", "provider", "base_url", "max_output_tokens", "context_window"):
                if key in data:
                    settings[key] = data[key]
    m = _MAX_OUT.search(prose)
    if m and "max_output_tokens" not in settings:
        settings["max_output_tokens"] = int(m.group(1).replace(",", ""))
    return settings


def parse_tools_md(path: Path, text: str) -> ToolsConfig:
    meta, prose = _split(path, text)
    if meta is None:
        meta = atomic_tools_settings(prose)
    tools = meta.get("tools", [])
    if tools is None:
        tools = []
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise ConfigError("'tools' must be a list of tool names", path=path, fix="e.g. tools: [read_file, remember]")
    caps = meta.get("capabilities", {}) or {}
    if not isinstance(caps, dict):
        raise ConfigError("'capabilities' must be a mapping", path=path, fix="see spec/tools-md.md")
    return ToolsConfig(
        tools=[t.strip() for t in tools],
        capabilities=caps,
        extra={k: v for k, v in meta.items() if k not in ("tools", "capabilities")},
        prose=prose.strip(),
        path=path,
    )


_BULLET = re.compile(r"^\s*[-*]\s+(.*)$", re.M)
# The first path-looking word of a bullet: "./", "memory/", "`drafts/`", "~/agents/x/".
_PATH_WORD = re.compile(r"`?((?:\.{1,2}|~)?/?[\w.~-]*/[\w./~-]*|\.)`?(?=[\s,;:)]|$)")
ATOMIC_DEFAULT_TOOLS = ["read_file", "list_dir", "search_files", "memory_search", "memory_read", "remember",
                        "log_read"]


def atomic_tools_settings(prose: str) -> dict[str, Any]:
    """Grants from an atomic-agents-stack tools.md: '## Read paths' and '## Write paths' bullet lists."""
    caps: dict[str, Any] = {}
    for m in _SECTION.finditer(prose):
        title = m.group(1).strip().lower()
        key = "read" if title.startswith("read path") else "write" if title.startswith("write path") else None
        if key is None:
            continue
        nxt = _SECTION.search(prose, m.end())
        chunk = prose[m.end(): nxt.start() if nxt else len(prose)]
        found = []
        for bullet in _BULLET.finditer(chunk):
            word = _PATH_WORD.search(bullet.group(1))
            if word and not bullet.group(1).lstrip().startswith("<!--"):
                found.append(word.group(1))
        caps[key] = found
    tools = list(ATOMIC_DEFAULT_TOOLS)
    if caps.get("write"):
        tools[3:3] = ["write_file", "edit_file"]
    return {"tools": tools, "capabilities": caps}


def load_model(paths: AgentPaths) -> ModelConfig:
    text = _read_text(paths.model_md)
    if text is None:
        raise ConfigError("model.md is missing", path=paths.model_md,
                          fix="create it with provider: and model: frontmatter (see spec/model-md.md)")
    return parse_model_md(paths.model_md, text)


def load_tools(paths: AgentPaths, findings: list[Finding]) -> ToolsConfig:
    text = _read_text(paths.tools_md)
    if text is None:
        findings.append(Finding("warning", paths.tools_md, "tools.md missing: no tools granted",
                                "create tools.md listing the tools to grant (see spec/tools-md.md)"))
        return ToolsConfig(path=paths.tools_md)
    return parse_tools_md(paths.tools_md, text)


def load_config(paths: AgentPaths) -> AgentConfig:
    """Everything a run needs before it looks at a note. Raises ConfigError on unusable settings."""
    findings: list[Finding] = []
    persona = load_persona(paths, findings)
    model = load_model(paths)
    tools = load_tools(paths, findings)
    return AgentConfig(paths.name, persona, model, tools, findings)
