"""The fake model server, exercised through the real anthropic and openai SDK clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest

from vault_agent.testing.fakellm import (
    Fail,
    FakeLLMServer,
    Hang,
    Malformed,
    Reply,
    ToolUse,
    TruncatedStream,
)

ANTHROPIC_ARGS: dict[str, Any] = {
    "model": "claude-test", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
}
OPENAI_ARGS: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


def anthropic_client(server: FakeLLMServer, **opts: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=server.anthropic_base_url, **{"max_retries": 0, **opts})


def openai_client(server: FakeLLMServer, **opts: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="test", base_url=server.openai_base_url, **{"max_retries": 0, **opts})


def caller(provider: str, server: FakeLLMServer, **opts: Any) -> Callable[[], Any]:
    """A zero-argument non-streaming call against the given provider's endpoint."""
    if provider == "anthropic":
        a = anthropic_client(server, **opts)
        return lambda: a.messages.create(**ANTHROPIC_ARGS)
    o = openai_client(server, **opts)
    return lambda: o.chat.completions.create(**OPENAI_ARGS)


SDK = {"anthropic": anthropic, "openai": openai}
providers = pytest.mark.parametrize("provider", ["anthropic", "openai"])


# --- Anthropic Messages -----------------------------------------------------------------------


def test_anthropic_text_reply_parses_into_message_with_cache_usage(server: FakeLLMServer) -> None:
    server.script(Reply(text="hello there", input_tokens=7, output_tokens=3, cache_read_tokens=11,
                        cache_write_tokens=13))
    message = anthropic_client(server).messages.create(**ANTHROPIC_ARGS)

    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "hello there"
    assert message.stop_reason == "end_turn"
    assert message.model == "claude-test"  # echoes the requested model
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
    assert message.usage.cache_read_input_tokens == 11
    assert message.usage.cache_creation_input_tokens == 13


def test_anthropic_stream_yields_text_deltas_and_a_final_message(server: FakeLLMServer) -> None:
    text = "a longer reply that the server splits across several text deltas"
    server.script(Reply(text=text, output_tokens=42, cache_read_tokens=5))
    with anthropic_client(server).messages.stream(**ANTHROPIC_ARGS) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
        assert stream.request_id == "req_fake000001"

    assert len(deltas) > 1 and "".join(deltas) == text
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 42
    assert final.usage.cache_read_input_tokens == 5


@pytest.mark.parametrize("streaming", [False, True])
def test_anthropic_tool_use_reply_becomes_tool_use_blocks_with_dict_input(
    server: FakeLLMServer, streaming: bool
) -> None:
    args = {"path": "notes/today.md", "lines": [1, 2, 3], "nested": {"deep": True}}
    server.script(Reply(text="Let me look.", tool_calls=[ToolUse("read_file", args, id="toolu_1"),
                                                         ToolUse("list_dir", {})]))
    client = anthropic_client(server)
    if streaming:
        with client.messages.stream(**ANTHROPIC_ARGS) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(**ANTHROPIC_ARGS)

    assert message.stop_reason == "tool_use"
    text, first, second = message.content
    assert text.type == "text" and text.text == "Let me look."
    assert isinstance(first, anthropic.types.ToolUseBlock)
    assert (first.id, first.name, first.input) == ("toolu_1", "read_file", args)
    assert second.name == "list_dir" and second.input == {} and second.id.startswith("toolu_")


# --- OpenAI Chat Completions ------------------------------------------------------------------


def test_openai_plain_reply_parses_into_chat_completion(server: FakeLLMServer) -> None:
    server.script(Reply(text="hello", input_tokens=7, output_tokens=3, cache_read_tokens=11, model="gpt-other"))
    completion = openai_client(server).chat.completions.create(**OPENAI_ARGS)

    choice = completion.choices[0]
    assert choice.message.content == "hello" and choice.finish_reason == "stop"
    assert completion.model == "gpt-other"
    assert completion.usage is not None
    # OpenAI counts cached tokens inside prompt_tokens.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (18, 3)
    assert completion.usage.prompt_tokens_details.cached_tokens == 11


def test_openai_tool_calls_reply_carries_json_string_arguments(server: FakeLLMServer) -> None:
    args = {"query": "weather", "days": 3}
    server.script(Reply(tool_calls=[ToolUse("search", args, id="call_1"), ToolUse("noop", {})]))
    completion = openai_client(server).chat.completions.create(**OPENAI_ARGS)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    first, second = choice.message.tool_calls
    assert (first.id, first.type, first.function.name) == ("call_1", "function", "search")
    assert json.loads(first.function.arguments) == args
    assert second.function.name == "noop" and json.loads(second.function.arguments) == {}


def test_openai_stream_with_include_usage_ends_with_a_usage_chunk(server: FakeLLMServer) -> None:
    text = "streamed reply long enough to arrive in several chunks"
    server.script(Reply(text=text, output_tokens=9))
    chunks = list(openai_client(server).chat.completions.create(
        stream=True, stream_options={"include_usage": True}, **OPENAI_ARGS))

    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 9
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_stream_helper_accumulates_tool_calls(server: FakeLLMServer) -> None:
    args = {"path": "a/b.md", "text": "some content long enough to be split into fragments"}
    server.script(Reply(text="Writing.", tool_calls=[ToolUse("write_file", args)]))
    with openai_client(server).chat.completions.stream(**OPENAI_ARGS) as stream:
        completion = stream.get_final_completion()

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Writing."
    (call,) = choice.message.tool_calls
    assert call.function.name == "write_file" and json.loads(call.function.arguments) == args


def test_openai_stream_without_include_usage_has_no_usage(server: FakeLLMServer) -> None:
    server.script(Reply(text="x"))
    chunks = list(openai_client(server).chat.completions.create(stream=True, **OPENAI_ARGS))
    assert chunks and all(c.usage is None and c.choices for c in chunks)


# --- Faults -----------------------------------------------------------------------------------


@providers
def test_429_surfaces_as_rate_limit_error_with_retry_after_visible(server: FakeLLMServer, provider: str) -> None:
    server.script(Fail(429, headers={"Retry-After": "1"}))
    with pytest.raises(SDK[provider].RateLimitError) as info:
        caller(provider, server)()
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.request_id == "req_fake000001"


@providers
def test_sdk_retries_after_429_and_then_succeeds(server: FakeLLMServer, provider: str) -> None:
    server.script(Fail(429, headers={"retry-after-ms": "10"}), Reply(text="ok"))
    caller(provider, server, max_retries=1)()
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1"]


@providers
@pytest.mark.parametrize(("status", "error"), [
    (401, "AuthenticationError"), (400, "BadRequestError"), (500, "InternalServerError"),
])
def test_error_statuses_map_to_sdk_exception_classes(
    server: FakeLLMServer, provider: str, status: int, error: str
) -> None:
    server.script(Fail(status))
    with pytest.raises(getattr(SDK[provider], error)) as info:
        caller(provider, server)()
    assert info.value.status_code == status
    assert "fake server: scripted" in str(info.value)


def test_anthropic_529_is_an_overloaded_error_with_anthropic_error_body(server: FakeLLMServer) -> None:
    server.script(Fail(529))
    with pytest.raises(anthropic.OverloadedError) as info:
        caller("anthropic", server)()
    assert isinstance(info.value, anthropic.InternalServerError)
    assert info.value.type == "overloaded_error"
    assert info.value.body["type"] == "error"


def test_fail_with_string_body_is_sent_verbatim(server: FakeLLMServer) -> None:
    server.script(Fail(502, body="<html>bad gateway</html>"))
    with pytest.raises(openai.InternalServerError) as info:
        caller("openai", server)()
    assert info.value.response.text == "<html>bad gateway</html>"
    assert info.value.response.headers["content-type"].startswith("text/plain")


@providers
def test_malformed_json_raises_a_json_decode_error_rather_than_hanging(
    server: FakeLLMServer, provider: str
) -> None:
    server.script(Malformed())
    # Neither SDK wraps this in its own APIError: the json module's error escapes as-is.
    with pytest.raises(json.JSONDecodeError):
        caller(provider, server)()


def test_anthropic_truncated_stream_ends_quietly_with_no_stop_reason(server: FakeLLMServer) -> None:
    server.script(TruncatedStream("cut off"))
    with anthropic_client(server).messages.stream(**ANTHROPIC_ARGS) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    # The SDK does not notice: the only sign of truncation is the missing stop_reason.
    assert deltas == ["cut off"]
    assert final.content[0].text == "cut off"
    assert final.stop_reason is None


def test_openai_truncated_stream_ends_quietly_with_no_finish_reason(server: FakeLLMServer) -> None:
    server.script(TruncatedStream("cut off"))
    with openai_client(server).chat.completions.stream(**OPENAI_ARGS) as stream:
        completion = stream.get_final_completion()
    assert completion.choices[0].message.content == "cut off"
    assert completion.choices[0].finish_reason is None


@providers
def test_truncated_non_streaming_body_raises_connection_error(server: FakeLLMServer, provider: str) -> None:
    server.script(TruncatedStream())
    with pytest.raises(SDK[provider].APIConnectionError):
        caller(provider, server)()


@providers
def test_hang_past_client_timeout_raises_api_timeout_error(server: FakeLLMServer, provider: str) -> None:
    server.script(Hang(5))
    started = time.perf_counter()
    with pytest.raises(SDK[provider].APITimeoutError):
        caller(provider, server, timeout=0.2)()
    assert time.perf_counter() - started < 2


@providers
def test_exhausted_script_answers_500_without_sdk_retries(server: FakeLLMServer, provider: str) -> None:
    with pytest.raises(SDK[provider].InternalServerError, match="script exhausted"):
        caller(provider, server, max_retries=2)()
    assert len(server.requests) == 1


def test_default_reply_is_served_once_the_script_is_empty(server: FakeLLMServer) -> None:
    server.script(Reply(text="scripted"))
    server.default = Reply(text="default")
    call = caller("anthropic", server)
    assert [call().content[0].text for _ in range(3)] == ["scripted", "default", "default"]


def test_script_is_shared_across_both_endpoints_in_order(server: FakeLLMServer) -> None:
    server.script(Reply(text="first"), Reply(text="second"))
    assert caller("openai", server)().choices[0].message.content == "first"
    assert caller("anthropic", server)().content[0].text == "second"
    assert server.pending == 0


def test_unknown_path_is_404_and_consumes_no_step(server: FakeLLMServer) -> None:
    server.script(Reply(text="kept"))
    client = openai_client(server)
    with pytest.raises(openai.NotFoundError):
        client.models.list()
    assert server.pending == 1


def test_script_rejects_things_that_are_not_steps(server: FakeLLMServer) -> None:
    with pytest.raises(TypeError):
        server.script("hello")  # type: ignore[arg-type]


# --- Recording and lifecycle ------------------------------------------------------------------


def test_requests_record_path_headers_and_parsed_body(server: FakeLLMServer) -> None:
    secret = "sk-live-do-not-leak"
    server.script(Reply(text="a"), Reply(text="b"))
    anthropic.Anthropic(api_key=secret, base_url=server.anthropic_base_url).messages.create(**ANTHROPIC_ARGS)
    openai_client(server).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "summarise the note"}], temperature=0.5)

    (a_path, a_headers, a_body), (o_path, o_headers, o_body) = server.requests
    assert a_path == "/v1/messages" and a_body == ANTHROPIC_ARGS
    assert "anthropic-version" in a_headers
    assert o_path == "/v1/chat/completions" and o_body["temperature"] == 0.5
    # anthropic 2.x sends the API key as a bearer token, not x-api-key.
    assert a_headers["authorization"] == f"Bearer {secret}"
    assert o_headers["authorization"] == "Bearer test"
    assert all(secret not in json.dumps(r.body) for r in server.requests)


def test_server_time_grows_with_scripted_delay(server: FakeLLMServer) -> None:
    server.script(Reply(text="slow", delay_s=0.1))
    before = server.server_time_s
    started = time.perf_counter()
    caller("openai", server)()
    wall = time.perf_counter() - started
    # The handler adds its time after its last write, which the client may have read already:
    # on a loaded machine the handler thread runs on a moment later.
    deadline = time.monotonic() + 5
    while server.server_time_s - before < 0.1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert 0.1 <= server.server_time_s - before <= wall + 0.5


def test_burst_of_concurrent_async_requests_is_all_served(server: FakeLLMServer) -> None:
    server.default = Reply(text="ok")

    async def burst() -> list[str]:
        client = anthropic.AsyncAnthropic(api_key="test", base_url=server.anthropic_base_url, max_retries=0)
        replies = await asyncio.gather(*(client.messages.create(**ANTHROPIC_ARGS) for _ in range(50)))
        return [r.id for r in replies]

    assert len(set(asyncio.run(burst()))) == 50
    assert len(server.requests) == 50


def test_closed_server_stops_serving_pooled_connections() -> None:
    with FakeLLMServer() as server:
        server.default = Reply(text="ok")
        call = caller("openai", server)
        call()  # leaves a keep-alive connection in the client's pool
    with pytest.raises(openai.APIConnectionError):
        call()
    assert len(server.requests) == 1
