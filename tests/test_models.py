"""The Anthropic and OpenAI adapters, retries and fallback, through the real SDKs against FakeLLMServer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vault_agent.models import (
    AnthropicModel,
    CompletionRequest,
    FallbackChain,
    Message,
    Model,
    ModelAuthError,
    ModelBadRequest,
    ModelBillingError,
    ModelRateLimited,
    ModelResponseError,
    ModelTimeout,
    ModelUnavailable,
    OpenAIModel,
    RetryingModel,
    SystemBlock,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from vault_agent.testing.fakellm import Fail, FakeLLMServer, Hang, Malformed, Reply, ToolUse, TruncatedStream
from vault_agent.vault.config import ModelRef

KEY = "sk-test-secret-key-123456"
providers = pytest.mark.parametrize("provider", ["anthropic", "openai"])


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


def adapter(provider: str, server: FakeLLMServer | None, *, timeout_s: float = 5.0,
            base_url: str | None = None) -> AnthropicModel | OpenAIModel:
    if provider == "anthropic":
        url = base_url or (server.anthropic_base_url if server else None)
        return AnthropicModel(ModelRef("anthropic", "claude-test", url), api_key=KEY, timeout_s=timeout_s)
    url = base_url or (server.openai_base_url if server else None)
    return OpenAIModel(ModelRef("openai", "gpt-test", url), api_key=KEY, timeout_s=timeout_s)


def ask(text: str = "hi", **kw: Any) -> CompletionRequest:
    return CompletionRequest(system=[SystemBlock("You are terse.")], messages=[Message("user", text)], **kw)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def body(server: FakeLLMServer, n: int = -1) -> dict[str, Any]:
    return server.requests[n].body


# --- answers -------------------------------------------------------------------------------------

@providers
def test_plain_answer_comes_back_with_text_stop_reason_and_request_id(provider: str, server: FakeLLMServer) -> None:
    server.script(Reply(text="hello there"))
    c = adapter(provider, server).complete(ask())
    assert (c.text, c.tool_calls, c.stop_reason, c.provider) == ("hello there", [], "end_turn", provider)
    assert c.model in ("claude-test", "gpt-test")
    assert c.request_id == "req_fake000001"
    assert not c.replay and c.fallback_reason is None


@providers
@pytest.mark.parametrize("stream", [False, True])
def test_usage_with_cache_tokens_is_normalised_the_same_for_both_providers(
        provider: str, stream: bool, server: FakeLLMServer) -> None:
    server.script(Reply(text="ok", input_tokens=100, output_tokens=7, cache_read_tokens=300, cache_write_tokens=50))
    pieces: list[str] = []
    c = adapter(provider, server).complete(ask(), on_text=pieces.append if stream else None)
    assert c.usage == Usage(input_tokens=100, output_tokens=7, cache_read_tokens=300, cache_write_tokens=50)


@providers
def test_streaming_calls_on_text_with_pieces_that_join_to_the_final_text(provider: str, server: FakeLLMServer) -> None:
    text = "A longer answer that the fake server splits into several deltas."
    server.script(Reply(text=text))
    pieces: list[str] = []
    c = adapter(provider, server).complete(ask(), on_text=pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == text == c.text
    assert body(server)["stream"] is True
    assert c.request_id == "req_fake000001"


@providers
@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_in_an_answer_are_parsed_with_ids_and_arguments(
        provider: str, stream: bool, server: FakeLLMServer) -> None:
    args = {"path": "notes/a long file name.md", "lines": [1, 2, 3]}
    server.script(Reply(text="Reading.", tool_calls=[ToolUse("read_file", args, id="t1"),
                                                      ToolUse("list_dir", {}, id="t2")]))
    c = adapter(provider, server).complete(ask(), on_text=(lambda _: None) if stream else None)
    assert c.stop_reason == "tool_use"
    assert c.tool_calls == [ToolCall("t1", "read_file", args), ToolCall("t2", "list_dir", {})]


CONVERSATION = [
    Message("user", "What is in a.md and b.md?"),
    Message("assistant", "Let me look.", tool_calls=[ToolCall("c1", "read_file", {"path": "a.md"}),
                                                     ToolCall("c2", "read_file", {"path": "b.md"})]),
    Message("tool", tool_results=[ToolResult("c1", "read_file", "alpha")]),
    Message("tool", tool_results=[ToolResult("c2", "read_file", "no such file", is_error=True)]),
]
TOOLS = [ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}}),
         ToolSpec("remember", "Save a note.", {"type": "object"})]


def test_anthropic_tool_round_trip_sends_tool_use_and_results_in_one_user_turn(server: FakeLLMServer) -> None:
    server.script(Reply(text="a.md says alpha."))
    adapter("anthropic", server).complete(CompletionRequest([SystemBlock("sys")], CONVERSATION, TOOLS))
    sent = body(server)
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is in a.md and b.md?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "c1", "name": "read_file", "input": {"path": "a.md"}},
            {"type": "tool_use", "id": "c2", "name": "read_file", "input": {"path": "b.md"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "alpha", "is_error": False},
            {"type": "tool_result", "tool_use_id": "c2", "content": "no such file", "is_error": True}]},
    ]
    assert [t["name"] for t in sent["tools"]] == ["read_file", "remember"]
    assert sent["tools"][0]["input_schema"] == TOOLS[0].input_schema
    assert sent["max_tokens"] == 4096


def test_openai_tool_round_trip_sends_tool_calls_with_json_arguments_and_tool_messages(server: FakeLLMServer) -> None:
    server.script(Reply(text="a.md says alpha."))
    adapter("openai", server).complete(CompletionRequest([SystemBlock("one"), SystemBlock("two", cache=True)],
                                                         CONVERSATION, TOOLS))
    sent = body(server)
    assert sent["messages"] == [
        {"role": "system", "content": "one\n\ntwo"},
        {"role": "user", "content": "What is in a.md and b.md?"},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.md"}'}},
            {"id": "c2", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "b.md"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "alpha"},
        {"role": "tool", "tool_call_id": "c2", "content": "Error: no such file"},
    ]
    assert sent["tools"][0] == {"type": "function", "function": {
        "name": "read_file", "description": "Read a file.", "parameters": TOOLS[0].input_schema}}


def test_openai_compatible_server_gets_max_tokens_and_temperature(server: FakeLLMServer) -> None:
    server.script(Reply(text="ok"))
    adapter("openai", server).complete(ask(max_output_tokens=99, temperature=0.2))
    sent = body(server)
    assert sent["max_tokens"] == 99 and "max_completion_tokens" not in sent
    assert sent["temperature"] == 0.2


def test_openai_official_endpoint_gets_max_completion_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    kwargs = adapter("openai", None)._request(ask(max_output_tokens=99))  # no network: just the request
    assert kwargs["max_completion_tokens"] == 99 and "max_tokens" not in kwargs


def test_anthropic_never_sends_temperature(server: FakeLLMServer) -> None:
    server.script(Reply(text="ok"))
    adapter("anthropic", server).complete(ask(temperature=0.2))
    assert "temperature" not in body(server)


def test_openai_invalid_tool_arguments_become_an_invalid_json_marker(server: FakeLLMServer) -> None:
    completion = {
        "id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "gpt-test",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": '}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    server.script(Fail(200, body=completion), Reply(text="ok"))
    model = adapter("openai", server)
    c = model.complete(ask())
    assert c.tool_calls == [ToolCall("call_1", "read_file", {"_invalid_json": '{"path": '})]
    # Sent back as the model wrote it, so the conversation stays truthful.
    model.complete(CompletionRequest([], [Message("user", "x"), Message("assistant", tool_calls=c.tool_calls),
                                          Message("tool", tool_results=[ToolResult("call_1", "read_file", "bad")])]))
    assert body(server)["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"path": '


# --- Anthropic prompt caching -----------------------------------------------------------------------

def test_anthropic_marks_cached_system_blocks_and_the_last_tool(server: FakeLLMServer) -> None:
    server.script(Reply(text="ok"))
    system = [SystemBlock("persona", cache=True), SystemBlock("memory"), SystemBlock("rules", cache=True)]
    adapter("anthropic", server).complete(CompletionRequest(system, [Message("user", "hi")], TOOLS))
    sent = body(server)
    assert [b.get("cache_control") for b in sent["system"]] == [{"type": "ephemeral"}, None, {"type": "ephemeral"}]
    assert [t.get("cache_control") for t in sent["tools"]] == [None, {"type": "ephemeral"}]


def test_anthropic_keeps_only_the_last_breakpoints_within_the_limit_of_four(server: FakeLLMServer) -> None:
    server.script(Reply(text="ok"), Reply(text="ok"))
    system = [SystemBlock(f"part {i}", cache=True) for i in range(6)]
    model = adapter("anthropic", server)
    model.complete(CompletionRequest(system, [Message("user", "hi")], TOOLS))
    assert [bool(b.get("cache_control")) for b in body(server)["system"]] == [False] * 3 + [True] * 3
    model.complete(CompletionRequest(system, [Message("user", "hi")]))
    assert [bool(b.get("cache_control")) for b in body(server)["system"]] == [False] * 2 + [True] * 4


# --- base URLs from the environment ------------------------------------------------------------------

@providers
def test_sdk_base_url_env_var_is_honoured_when_model_md_sets_none(
        provider: str, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    server.script(Reply(text="via env"))
    assert adapter(provider, None).complete(ask()).text == "via env"
    assert len(server.requests) == 1


# --- failures ----------------------------------------------------------------------------------------

@providers
def test_rate_limit_with_retry_after_waits_that_long_then_succeeds(provider: str, server: FakeLLMServer) -> None:
    server.script(Fail(429, headers={"Retry-After": "1"}), Reply(text="after the wait"))
    sleeps, retries = Sleeps(), []
    model = RetryingModel(adapter(provider, server), max_retries=3, sleep=sleeps,
                          on_retry=lambda exc, n, delay: retries.append((type(exc), n, delay)))
    assert model.complete(ask()).text == "after the wait"
    assert sleeps == [1.0] and len(server.requests) == 2
    assert retries == [(ModelRateLimited, 1, 1.0)]


@providers
def test_retry_after_far_beyond_the_cap_is_raised_instead_of_slept(provider: str, server: FakeLLMServer) -> None:
    server.script(Fail(429, headers={"retry-after-ms": "90000"}))
    sleeps = Sleeps()
    with pytest.raises(ModelRateLimited) as err:
        RetryingModel(adapter(provider, server), max_retries=3, max_delay_s=30, sleep=sleeps).complete(ask())
    assert err.value.retry_after_s == 90 and sleeps == [] and len(server.requests) == 1


@providers
def test_server_errors_back_off_with_jitter_until_retries_run_out(provider: str, server: FakeLLMServer) -> None:
    server.script(*[Fail(500)] * 3)
    sleeps = Sleeps()
    with pytest.raises(ModelUnavailable) as err:
        RetryingModel(adapter(provider, server), max_retries=2, base_delay_s=0.5, sleep=sleeps).complete(ask())
    assert len(server.requests) == 3 and len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0
    assert err.value.status == 500 and f"{provider}:" in err.value.message


@pytest.mark.parametrize("first,second", [("anthropic", "openai"), ("openai", "anthropic")])
def test_exhausted_retries_fall_back_to_the_second_model(first: str, second: str, server: FakeLLMServer) -> None:
    server.script(*[Fail(500)] * 3, Reply(text="from the fallback"), Reply(text="still the fallback"))
    sleeps, seen = Sleeps(), []
    chain = FallbackChain([RetryingModel(adapter(first, server), max_retries=2, sleep=sleeps),
                           RetryingModel(adapter(second, server), max_retries=2, sleep=sleeps)],
                          on_fallback=lambda failed, exc, nxt: seen.append((failed.provider, nxt.provider)))
    c = chain.complete(ask())
    assert c.text == "from the fallback" and c.provider == second
    assert c.fallback_reason is not None
    assert f"{first}:" in c.fallback_reason and f"{second}:" in c.fallback_reason and "500" in c.fallback_reason
    assert "\n" not in c.fallback_reason
    assert seen == [(first, second)] and len(server.requests) == 4
    assert (chain.provider, chain.last_model) == (first, chain.models[1])
    # The rest of the run goes straight to the model that answered.
    assert chain.complete(ask()).text == "still the fallback" and len(server.requests) == 5


@providers
def test_auth_error_is_raised_after_exactly_one_request_without_fallback(provider: str,
                                                                        server: FakeLLMServer) -> None:
    server.script(Fail(401), Reply(text="never reached"))
    sleeps = Sleeps()
    chain = FallbackChain([RetryingModel(adapter(provider, server), max_retries=3, sleep=sleeps),
                           RetryingModel(adapter("openai", server), max_retries=3, sleep=sleeps)])
    with pytest.raises(ModelAuthError) as err:
        chain.complete(ask())
    assert len(server.requests) == 1 and sleeps == []
    line = err.value.one_line()
    assert "\n" not in line and KEY not in line
    assert f"{provider}:" in line and f"check {provider.upper()}_API_KEY" in line


@providers
def test_billing_error_moves_to_the_fallback_without_retrying(provider: str, server: FakeLLMServer) -> None:
    server.script(Fail(402), Reply(text="fallback paid"))
    sleeps = Sleeps()
    chain = FallbackChain([RetryingModel(adapter(provider, server), max_retries=3, sleep=sleeps),
                           RetryingModel(adapter("openai", server), max_retries=3, sleep=sleeps)])
    c = chain.complete(ask())
    assert c.text == "fallback paid" and "out of credit" in (c.fallback_reason or "") and sleeps == []


BILLING_400 = {"type": "error", "error": {"type": "invalid_request_error",
                                          "message": "Your credit balance is too low to access the API."}}
QUOTA_429 = {"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota",
                       "param": None, "code": "insufficient_quota"}}


@providers
@pytest.mark.parametrize("step,error", [
    (Fail(403), ModelAuthError),
    (Fail(402), ModelBillingError),
    (Fail(400, body=BILLING_400), ModelBillingError),
    (Fail(429, body=QUOTA_429), ModelBillingError),
    (Fail(400), ModelBadRequest),
    (Fail(404), ModelBadRequest),
    (Fail(413), ModelBadRequest),
    (Fail(422), ModelBadRequest),
    (Fail(429), ModelRateLimited),
    (Fail(503), ModelUnavailable),
    (Fail(529), ModelUnavailable),
])
def test_http_errors_map_to_model_errors(provider: str, step: Fail, error: type, server: FakeLLMServer) -> None:
    server.script(step)
    with pytest.raises(error) as err:
        adapter(provider, server).complete(ask())
    assert err.value.status == step.status and f"{provider}:" in err.value.message
    assert "\n" not in err.value.one_line() and err.value.fix


@providers
def test_hanging_server_gives_model_timeout(provider: str, server: FakeLLMServer) -> None:
    server.script(Hang(5))
    with pytest.raises(ModelTimeout) as err:
        adapter(provider, server, timeout_s=0.1).complete(ask())
    assert err.value.retryable and "timeout_s" in (err.value.fix or "")
    assert (err.value.provider, err.value.model) == (provider, adapter(provider, server).model)


@providers
def test_unreachable_server_gives_model_unavailable(provider: str) -> None:
    with FakeLLMServer() as gone:
        url = gone.anthropic_base_url if provider == "anthropic" else gone.openai_base_url
    with pytest.raises(ModelUnavailable):
        adapter(provider, None, base_url=url).complete(ask())


@providers
def test_malformed_json_body_gives_model_response_error(provider: str, server: FakeLLMServer) -> None:
    server.script(Malformed())
    with pytest.raises(ModelResponseError):
        adapter(provider, server).complete(ask())


@providers
def test_truncated_stream_gives_model_response_error(provider: str, server: FakeLLMServer) -> None:
    server.script(TruncatedStream(text="half an ans"))
    with pytest.raises(ModelResponseError) as err:
        adapter(provider, server).complete(ask(), on_text=lambda _: None)
    assert "incomplete answer" in err.value.message and err.value.provider == provider


MID_STREAM_ERROR = {
    "anthropic": 'event: error\ndata: {"type": "error", '
                 '"error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n',
    "openai": 'data: {"error": {"message": "Overloaded", "type": "server_error"}}\n\n',
}


@providers
def test_error_event_inside_a_stream_gives_model_unavailable(provider: str, server: FakeLLMServer) -> None:
    server.script(Fail(200, body=MID_STREAM_ERROR[provider], headers={"Content-Type": "text/event-stream"}))
    with pytest.raises(ModelUnavailable, match="failed while answering: Overloaded"):
        adapter(provider, server).complete(ask(), on_text=lambda _: None)


@providers
def test_no_retry_once_text_was_streamed_so_the_answer_is_not_printed_twice(provider: str,
                                                                            server: FakeLLMServer) -> None:
    server.script(TruncatedStream(text="half an answer"), Reply(text="whole"), Reply(text="whole"))
    pieces: list[str] = []
    model: Model = RetryingModel(adapter(provider, server), max_retries=3, sleep=Sleeps())
    chain = FallbackChain([model, RetryingModel(adapter("openai", server), max_retries=0)])
    with pytest.raises(ModelResponseError):
        chain.complete(ask(), on_text=pieces.append)
    assert "".join(pieces) == "half an answer" and len(server.requests) == 1


def test_retrying_model_retries_a_malformed_answer(server: FakeLLMServer) -> None:
    server.script(Malformed(), Reply(text="fine"))
    sleeps = Sleeps()
    assert RetryingModel(adapter("openai", server), max_retries=1, sleep=sleeps).complete(ask()).text == "fine"
    assert len(sleeps) == 1

