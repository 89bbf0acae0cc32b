"""The one Model protocol and the provider-neutral messages, tool calls and usage it speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from ..errors import VaultAgentError


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: name, description, JSON Schema of its arguments."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass
class Message:
    """One turn. role: "user" | "assistant" | "tool" (tool turns carry tool_results)."""

    role: str
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)


@dataclass(frozen=True)
class SystemBlock:
    """A piece of the system prompt. `cache` marks the end of a stable prefix (a cache breakpoint)."""

    text: str
    cache: bool = False


@dataclass
class Usage:
    """Tokens as the provider reported them. input_tokens excludes cache reads and writes."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_tokens + other.cache_read_tokens,
                     self.cache_write_tokens + other.cache_write_tokens)

    def as_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cache_read_tokens": self.cache_read_tokens, "cache_write_tokens": self.cache_write_tokens}


@dataclass
class CompletionRequest:
    system: list[SystemBlock]
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    max_output_tokens: int = 4096
    temperature: float | None = None
    timeout_s: float = 120.0


@dataclass
class Completion:
    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    model: str  # the model that answered, as the provider named it
    provider: str
    stop_reason: str  # "end_turn" | "tool_use" | "max_tokens" | provider-specific
    request_id: str | None = None
    fallback_reason: str | None = None  # set by a fallback chain when a later model answered
    replay: bool = False  # True when a recorded transcript answered, not a live model


OnText = Callable[[str], None]


@runtime_checkable
class Model(Protocol):
    """Anything that can answer a CompletionRequest."""

    provider: str
    model: str

    def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        """Answer the request; call on_text with pieces of the final text as they stream in."""
        ...


class ModelError(VaultAgentError):
    """A model call failed. `retryable` says whether trying again (later, or elsewhere) may help."""

    retryable = False
    kind = "model_error"

    def __init__(self, message: str, *, provider: str = "", model: str = "", status: int | None = None,
                 retry_after_s: float | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.provider = provider
        self.model = model
        self.status = status
        self.retry_after_s = retry_after_s


class ModelAuthError(ModelError):
    """Bad or missing API key, or no permission: never retried."""

    kind = "auth"


class ModelBillingError(ModelError):
    """Out of credit or quota exhausted for good: never retried."""

    kind = "billing"


class ModelBadRequest(ModelError):
    """The provider refused the request as malformed (400/404/422): never retried."""

    kind = "bad_request"


class ModelRateLimited(ModelError):
    kind = "rate_limited"
    retryable = True


class ModelUnavailable(ModelError):
    """5xx, overloaded, or the connection failed."""

    kind = "unavailable"
    retryable = True


class ModelTimeout(ModelError):
    kind = "timeout"
    retryable = True


class ModelResponseError(ModelError):
    """The answer could not be understood: malformed JSON, a truncated stream."""

    kind = "bad_response"
    retryable = True
