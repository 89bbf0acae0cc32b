"""The OpenAI Chat Completions adapter (OpenAI and every compatible server): wire format both ways, errors mapped.

Output limit: api.openai.com gets `max_completion_tokens`, because its
reasoning models (o-series, gpt-5) reject the deprecated `max_tokens`; any
other server gets `max_tokens`, because compatible servers (Ollama, vLLM,
llama.cpp, LM Studio, Groq, ...) often only know that name and silently ignore
the new one. The host is read from the SDK client, so OPENAI_BASE_URL counts.

Chat Completions has no is_error flag on tool results, so a failed tool's
result text is prefixed with "Error: " for the model to see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..vault.config import ModelRef
from .base import (
    Completion,
    CompletionRequest,
    Message,
    ModelError,
    ModelResponseError,
    OnText,
    ToolCall,
    ToolSpec,
    Usage,
)
from ._sdk import SdkAdapter

_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens"}
_OFFICIAL_HOST = "api.openai.com"


@dataclass
class _Answer:
    """What a response or a stream of chunks adds up to, before it becomes a Completion."""

    text: str = ""
    calls: dict[int, dict[str, str]] = field(default_factory=dict)  # index -> id, name, arguments
    finish_reason: str | None = None
    usage: Any = None
    model: str | None = None
    request_id: str | None = None


class OpenAIModel(SdkAdapter):
    """One Chat Completions model behind the Model protocol; the SDK's own retries are off."""

    sdk_name = "openai"
    api_name = "an OpenAI-compatible API"

    def __init__(self, ref: ModelRef, *, api_key: str | None, timeout_s: float, base_url: str | None = None) -> None:
        super().__init__(ref, api_key=api_key, timeout_s=timeout_s)
        # Local servers need no key, but the SDK insists on one. base_url None lets it read OPENAI_BASE_URL.
        self._client = self._sdk.OpenAI(api_key=api_key or "not-needed", base_url=base_url or ref.base_url or None,
                                        max_retries=0, timeout=timeout_s)
        official = self._client.base_url.host == _OFFICIAL_HOST
        self._max_tokens_key = "max_completion_tokens" if official else "max_tokens"

    def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        kwargs = self._request(request)
        if on_text is None:
            answer = self._call(lambda: _from_response(self._client.chat.completions.create(**kwargs)),
                                kwargs["timeout"])
        else:
            answer = self._call(lambda: self._stream(kwargs, on_text), kwargs["timeout"])
        return self._completion(answer)

    def _stream(self, kwargs: dict[str, Any], on_text: OnText) -> _Answer:
        answer = _Answer()
        stream = self._client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        with stream:
            answer.request_id = stream.response.headers.get("x-request-id")
            for chunk in stream:
                answer.model = chunk.model or answer.model
                if chunk.usage is not None:
                    answer.usage = chunk.usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                delta = choice.delta
                if delta.content:
                    answer.text += delta.content
                    on_text(delta.content)
                for frag in delta.tool_calls or []:
                    call = answer.calls.setdefault(frag.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = frag.id or call["id"]
                    if frag.function is not None:
                        call["name"] += frag.function.name or ""
                        call["arguments"] += frag.function.arguments or ""
                answer.finish_reason = choice.finish_reason or answer.finish_reason
        return answer

    # --- request -------------------------------------------------------------

    def _request(self, request: CompletionRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        system = "\n\n".join(b.text for b in request.system if b.text)
        if system:
            messages.append({"role": "system", "content": system})
        messages += _messages(request.messages)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            self._max_tokens_key: request.max_output_tokens,
            # The tighter of the adapter's timeout and the caller's (e.g. the run's remaining time).
            "timeout": min(self.timeout_s, request.timeout_s),
        }
        if request.tools:
            kwargs["tools"] = _tools(request.tools)
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        return kwargs

    # --- response ------------------------------------------------------------

    def _completion(self, answer: _Answer) -> Completion:
        if answer.finish_reason is None:
            raise self._error(ModelResponseError, "sent an incomplete answer (the response ended early)", "run again")
        calls = [ToolCall(c["id"] or f"call_{i}", c["name"], _arguments(c["arguments"]))
                 for i, c in sorted(answer.calls.items())]
        return Completion(answer.text, calls, _usage(answer.usage), answer.model or self.model, self.provider,
                          _STOP_REASONS.get(answer.finish_reason, answer.finish_reason),
                          request_id=answer.request_id)

    # --- errors --------------------------------------------------------------

    def _error(self, cls: type[ModelError], what: str, fix: str) -> ModelError:
        return cls(f"{self.provider}:{self.model} {what}", provider=self.provider, model=self.model, fix=fix)



def _from_response(resp: Any) -> _Answer:
    answer = _Answer(usage=resp.usage, model=resp.model, request_id=getattr(resp, "_request_id", None))
    if not resp.choices:
        return answer  # finish_reason None: reported as an incomplete answer
    choice = resp.choices[0]
    answer.text = choice.message.content or ""
    answer.finish_reason = choice.finish_reason
    for i, call in enumerate(choice.message.tool_calls or []):
        answer.calls[i] = {"id": call.id or "", "name": call.function.name, "arguments": call.function.arguments}
    return answer


def _arguments(raw: str) -> dict[str, Any]:
    # Models do emit broken JSON; the runner reports it back to the model instead of the run crashing.
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"_invalid_json": raw}
    return parsed if isinstance(parsed, dict) else {"_invalid_json": raw}


def _usage(u: Any) -> Usage:
    if u is None:
        return Usage()
    details = u.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details is not None else 0
    # Not an OpenAI field; compatible gateways in front of Anthropic models report cache writes here.
    written = (getattr(details, "cache_write_tokens", None) or 0) if details is not None else 0
    prompt = u.prompt_tokens or 0
    return Usage(max(0, prompt - cached - written), u.completion_tokens or 0, cached, written)


def _tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [{"type": "function",
             "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}
            for t in tools]


def _call_arguments(arguments: dict[str, Any]) -> str:
    if set(arguments) == {"_invalid_json"}:
        return str(arguments["_invalid_json"])  # echo what the model actually sent
    return json.dumps(arguments)


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        for r in m.tool_results:
            content = r.content if not r.is_error or r.content.startswith("Error") else f"Error: {r.content}"
            out.append({"role": "tool", "tool_call_id": r.call_id, "content": content})
        if m.role == "assistant":
            turn: dict[str, Any] = {"role": "assistant", "content": m.text or None}
            if m.tool_calls:
                turn["tool_calls"] = [
                    {"id": c.id, "type": "function",
                     "function": {"name": c.name, "arguments": _call_arguments(c.arguments)}}
                    for c in m.tool_calls]
            elif not m.text:
                continue  # an empty assistant turn says nothing and some servers reject it
            out.append(turn)
        elif m.text:
            out.append({"role": "user", "content": m.text})
    return out
