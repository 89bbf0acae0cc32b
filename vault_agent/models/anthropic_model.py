"""The Anthropic Messages API adapter: neutral requests to the wire format and back, SDK errors to ModelErrors.

Temperature is never sent: the installed SDK (2.x) speaks API version
2026-10-21, which answers 400 to any sampling parameter, even temperature 1.0,
and the SDK dropped the argument; smuggling it through extra_body would only
turn a setting into a failed run. The factory tells the user it is ignored.

Prompt caching: Anthropic caches the prefix tools -> system -> messages up to
each `cache_control` breakpoint, at most 4 per request. The last tool gets one
(tools rarely change), and the last remaining breakpoints go to SystemBlocks
marked cache=True; when there are too many, the earliest are dropped because
a later breakpoint covers everything before it anyway.
"""

from __future__ import annotations

import json
from typing import Any

from ..vault.config import ModelRef
from .base import (
    Completion,
    CompletionRequest,
    Message,
    ModelError,
    ModelResponseError,
    OnText,
    SystemBlock,
    ToolCall,
    ToolSpec,
    Usage,
)
from ._sdk import SdkAdapter

_MAX_BREAKPOINTS = 4
_EPHEMERAL = {"type": "ephemeral"}


class AnthropicModel(SdkAdapter):
    """One Anthropic model behind the Model protocol; the SDK's own retries are off (RetryingModel retries)."""

    sdk_name = "anthropic"
    api_name = "an Anthropic API"

    def __init__(self, ref: ModelRef, *, api_key: str, timeout_s: float, base_url: str | None = None) -> None:
        super().__init__(ref, api_key=api_key, timeout_s=timeout_s)
        # base_url None lets the SDK read ANTHROPIC_BASE_URL itself.
        self._client = self._sdk.Anthropic(api_key=api_key, base_url=base_url or ref.base_url or None,
                                           max_retries=0, timeout=timeout_s)

    def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        kwargs = self._request(request)

        def call() -> tuple[Any, str | None]:
            if on_text is None:
                message = self._client.messages.create(**kwargs)
                return message, getattr(message, "_request_id", None)
            with self._client.messages.stream(**kwargs) as stream:
                for event in stream:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        on_text(event.delta.text)
                return stream.get_final_message(), stream.request_id

        message, request_id = self._call(call, kwargs["timeout"])
        return self._completion(message, request_id)

    # --- request -------------------------------------------------------------

    def _request(self, request: CompletionRequest) -> dict[str, Any]:
        tools = _tools(request.tools)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_output_tokens,
            "messages": _messages(request.messages),
            # The tighter of the adapter's timeout and the caller's (e.g. the run's remaining time).
            "timeout": min(self.timeout_s, request.timeout_s),
        }
        system = _system(request.system, _MAX_BREAKPOINTS - (1 if tools else 0))
        if system:
            kwargs["system"] = system
        if tools:
            kwargs["tools"] = tools
        return kwargs

    # --- response ------------------------------------------------------------

    def _completion(self, message: Any, request_id: str | None) -> Completion:
        if message.stop_reason is None:
            raise self._error(ModelResponseError, "sent an incomplete answer (the response ended early)", "run again")
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                args = block.input if isinstance(block.input, dict) else {"_invalid_json": json.dumps(block.input)}
                calls.append(ToolCall(block.id, block.name, args))
        u = message.usage
        usage = Usage(u.input_tokens or 0, u.output_tokens or 0, u.cache_read_input_tokens or 0,
                      u.cache_creation_input_tokens or 0)
        return Completion("".join(texts), calls, usage, message.model or self.model, self.provider,
                          message.stop_reason, request_id=request_id)

    # --- errors --------------------------------------------------------------

    def _error(self, cls: type[ModelError], what: str, fix: str) -> ModelError:
        return cls(f"{self.provider}:{self.model} {what}", provider=self.provider, model=self.model, fix=fix)



def _system(blocks: list[SystemBlock], budget: int) -> list[dict[str, Any]]:
    kept = [b for b in blocks if b.text]
    cached = [i for i, b in enumerate(kept) if b.cache][-budget:] if budget > 0 else []
    out: list[dict[str, Any]] = []
    for i, block in enumerate(kept):
        item: dict[str, Any] = {"type": "text", "text": block.text}
        if i in cached:
            item["cache_control"] = dict(_EPHEMERAL)
        out.append(item)
    return out


def _tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
                                 for t in tools]
    if out:
        out[-1]["cache_control"] = dict(_EPHEMERAL)
    return out


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Neutral turns to Messages API turns; tool results and user text that follow each other share a user turn."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = "assistant" if m.role == "assistant" else "user"
        blocks: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content, "is_error": r.is_error}
            for r in m.tool_results]
        if m.text:
            blocks.append({"type": "text", "text": m.text})
        blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
        if not blocks:
            continue  # the API rejects empty turns
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out
